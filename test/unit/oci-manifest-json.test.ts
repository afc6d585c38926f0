/**
 * One reader of untrusted OCI JSON: the protocol's validator, the registry's manifest check, the
 * layout store and the Referrers API client refuse the same malformed descriptor, each with its
 * own error, naming the same field.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError } from '../../src/errors.ts';
import { parseManifestFields } from '../../src/oci/layout/manifest-fields.ts';
import { EMPTY_JSON_DIGEST, MediaType } from '../../src/oci/mediatypes.ts';
import { indexManifests } from '../../src/oci/remote/referrers.ts';
import { InvalidManifestError, parseArtifactManifest } from '../../src/protocol/validate.ts';
import { RegistryHttpError } from '../../src/server/errors.ts';
import { checkManifest } from '../../src/server/manifest-check.ts';

const config = { mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: 2 };
const layer = { mediaType: 'application/octet-stream', digest: `sha256:${'a'.repeat(64)}`, size: 10 };
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const manifestWith = (bad: object) =>
  json({ schemaVersion: 2, mediaType: MediaType.ImageManifest, artifactType: 'application/x', config, layers: [{ ...layer, ...bad }] });
const indexWith = (bad: object) =>
  json({ schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [{ ...layer, mediaType: MediaType.ImageManifest, ...bad }] });

describe('every reader refuses the same malformed descriptor', () => {
  for (const [label, bad, field] of [
    ['a fractional size', { size: 1.5 }, 'size'],
    ['an empty mediaType', { mediaType: '' }, 'mediaType'],
    ['a non-string annotation', { annotations: { n: 1 } }, 'annotations.n'],
  ] as const) {
    it(`${label}: protocol, registry check, layout store and referrers client`, () => {
      assert.throws(
        () => parseArtifactManifest(manifestWith(bad)),
        (e: unknown) => e instanceof InvalidManifestError && e.field === `layers[0].${field}`,
      );
      assert.throws(
        () => checkManifest(manifestWith(bad), MediaType.ImageManifest),
        (e: unknown) => e instanceof RegistryHttpError && e.message.startsWith(`layers[0].${field} `),
      );
      assert.throws(
        () => parseManifestFields(manifestWith(bad), MediaType.ImageManifest),
        (e: unknown) => e instanceof ProtocolError && e.code === 'MANIFEST_INVALID' && e.message.includes(`layers[0].${field} `),
      );
      assert.throws(
        () => indexManifests(indexWith(bad), 'referrers'),
        (e: unknown) => e instanceof ProtocolError && e.code === 'INVALID_INDEX' && e.message.includes(`manifests[0].${field} `),
      );
    });
  }
});
