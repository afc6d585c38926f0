/** What a manifest PUT must look like before the registry stores it. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { digestOf } from '../../src/oci/digest.ts';
import { EMPTY_JSON_DIGEST, MediaType } from '../../src/oci/mediatypes.ts';
import { RegistryHttpError } from '../../src/server/errors.ts';
import { checkManifest } from '../../src/server/manifest-check.ts';

const EMPTY = { mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: 2 };
const LAYER = { mediaType: 'application/octet-stream', digest: digestOf('layer'), size: 5 };
const enc = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

function invalid(doc: unknown, mediaType: string = MediaType.ImageManifest): void {
  assert.throws(
    () => checkManifest(enc(doc), mediaType),
    (err: unknown) => err instanceof RegistryHttpError && err.code === 'MANIFEST_INVALID',
    JSON.stringify(doc),
  );
}

describe('checkManifest', () => {
  it('lists the blobs an image manifest needs (config and layers, foreign layers excepted) and its subject', () => {
    const foreign = { ...LAYER, digest: digestOf('foreign'), urls: ['https://example.com/layer'] };
    const subject = { mediaType: MediaType.ImageManifest, digest: digestOf('subject'), size: 7 };
    const c = checkManifest(
      enc({ schemaVersion: 2, mediaType: MediaType.ImageManifest, artifactType: 'x/y', config: EMPTY, layers: [LAYER, foreign], subject }),
      MediaType.ImageManifest,
    );
    assert.deepEqual(
      c.blobs.map((d) => d.digest),
      [EMPTY.digest, LAYER.digest],
    );
    assert.deepEqual(c.manifests, []);
    assert.equal(c.subject?.digest, subject.digest);
    assert.equal(c.artifactType, 'x/y');
    assert.equal(c.isIndex, false);
  });

  it('lists the child manifests an index needs', () => {
    const child = { mediaType: MediaType.ImageManifest, digest: digestOf('child'), size: 5 };
    const c = checkManifest(enc({ schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [child] }), MediaType.ImageIndex);
    assert.equal(c.isIndex, true);
    assert.deepEqual(
      c.manifests.map((d) => d.digest),
      [child.digest],
    );
    assert.deepEqual(c.blobs, []);
  });

  it('accepts a Docker schema 2 manifest that names its media type, refuses one that does not', () => {
    const doc = {
      schemaVersion: 2,
      mediaType: MediaType.DockerManifest,
      config: { ...EMPTY, mediaType: 'application/vnd.docker.container.image.v1+json' },
      layers: [],
    };
    assert.equal(checkManifest(enc(doc), MediaType.DockerManifest).blobs.length, 1);
    invalid({ ...doc, mediaType: undefined }, MediaType.DockerManifest);
  });

  it('refuses malformed documents with MANIFEST_INVALID', () => {
    invalid('not json');
    invalid('[1,2]');
    invalid({ schemaVersion: 1, config: EMPTY, layers: [] });
    invalid({ schemaVersion: 2, mediaType: MediaType.ImageIndex, config: EMPTY, layers: [] });
    invalid({ schemaVersion: 2, layers: [] });
    invalid({ schemaVersion: 2, config: EMPTY });
    invalid({ schemaVersion: 2, config: EMPTY, layers: [], manifests: [] });
    invalid({ schemaVersion: 2, config: { ...EMPTY, digest: 'md5:00' }, layers: [] });
    invalid({ schemaVersion: 2, config: { ...EMPTY, size: -1 }, layers: [] });
    invalid({ schemaVersion: 2, config: { ...EMPTY, size: 1.5 }, layers: [] });
    invalid({ schemaVersion: 2, config: { digest: EMPTY.digest, size: 2 }, layers: [] });
    invalid({ schemaVersion: 2, config: EMPTY, layers: [], subject: { digest: 'nope' } });
    invalid({ schemaVersion: 2, config: EMPTY, layers: [], annotations: { n: 1 } });
    invalid({ schemaVersion: 2, config: EMPTY, layers: [], artifactType: 3 });
    invalid({ schemaVersion: 2, mediaType: MediaType.ImageManifest, manifests: [] }, MediaType.ImageIndex);
    invalid({ schemaVersion: 2, manifests: [{ mediaType: MediaType.ImageManifest, digest: 'sha256:x', size: 1 }] }, MediaType.ImageIndex);
    assert.throws(() => checkManifest(new Uint8Array([0x7b, 0xff, 0x7d]), MediaType.ImageManifest), RegistryHttpError, 'invalid UTF-8');
  });
});
