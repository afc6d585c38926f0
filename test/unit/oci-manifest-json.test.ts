/**
 * One reader of untrusted OCI JSON: the protocol's validator, the registry's manifest check, the
 * layout store and the Referrers API client refuse the same malformed descriptor, each with its
 * own error, naming the same field.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError } from '../../src/errors.ts';
import { parseManifestFields } from '../../src/oci/layout/manifest-fields.ts';
import { ManifestFormatError, readImageManifest } from '../../src/oci/manifest-json.ts';
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

describe('readImageManifest: the reader discover, thread and bundle verification use', () => {
  it('reads a manifest whose layers Go wrote as null as one with no layers, and keeps its fields', () => {
    const m = readImageManifest(
      json({
        schemaVersion: 2,
        mediaType: MediaType.ImageManifest,
        artifactType: 'application/x',
        config,
        layers: null,
        subject: layer,
        annotations: { a: 'b' },
      }),
    );
    assert.deepEqual(m, {
      schemaVersion: 2,
      mediaType: MediaType.ImageManifest,
      artifactType: 'application/x',
      config,
      layers: [],
      subject: layer,
      annotations: { a: 'b' },
    });
  });
  for (const [label, bytes, field] of [
    ['a fractional layer size', manifestWith({ size: 1.5 }), 'layers[0].size'],
    ['a non-string annotation on a layer', manifestWith({ annotations: { n: 1 } }), 'layers[0].annotations.n'],
    ['a subject that is not a descriptor', json({ schemaVersion: 2, config, layers: [], subject: 'sha256:x' }), 'subject'],
    ['a non-string manifest annotation', json({ schemaVersion: 2, config, layers: [], annotations: { n: 1 } }), 'annotations.n'],
    ['schemaVersion 1', json({ schemaVersion: 1, config, layers: [] }), 'schemaVersion'],
    ['no config', json({ schemaVersion: 2, layers: [] }), 'config'],
  ] as const) {
    it(`refuses ${label}, naming ${field}`, () => {
      assert.throws(
        () => readImageManifest(bytes),
        (e: unknown) => e instanceof ManifestFormatError && e.field === field,
      );
    });
  }
  it('refuses bytes that are not a JSON object', () => {
    assert.throws(() => readImageManifest(json([1])), ManifestFormatError);
    assert.throws(() => readImageManifest(new TextEncoder().encode('{')), ManifestFormatError);
  });
});
