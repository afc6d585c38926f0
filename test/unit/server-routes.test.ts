/** The registry's router: raw paths → endpoints, with names, digests, tags and upload ids validated. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RegistryHttpError } from '../../src/server/errors.ts';
import { parseRoute } from '../../src/server/routes.ts';

const D = `sha256:${'a'.repeat(64)}`;
const ID = '123e4567-e89b-12d3-a456-426614174000';

function refusedWith(path: string, code: string, method = 'GET', status?: number): void {
  assert.throws(
    () => parseRoute(path, method),
    (err: unknown) => err instanceof RegistryHttpError && err.code === code && (status === undefined || err.status === status),
    `${method} ${path}`,
  );
}

describe('parseRoute', () => {
  it('maps each endpoint, taking the longest name before the endpoint keyword', () => {
    assert.deepEqual(parseRoute('/v2/', 'GET'), { kind: 'ping' });
    assert.deepEqual(parseRoute('/v2', 'GET'), { kind: 'ping' });
    assert.deepEqual(parseRoute(`/v2/a/b/blobs/${D}`, 'GET'), { kind: 'blob', name: 'a/b', digest: D });
    assert.deepEqual(parseRoute('/v2/a/blobs/uploads/', 'GET'), { kind: 'uploads', name: 'a' });
    assert.deepEqual(parseRoute(`/v2/a/blobs/uploads/${ID}`, 'GET'), { kind: 'upload', name: 'a', id: ID });
    assert.deepEqual(parseRoute('/v2/a/manifests/v1.0', 'GET'), { kind: 'manifest', name: 'a', reference: 'v1.0', isDigest: false });
    assert.deepEqual(parseRoute(`/v2/a/manifests/${D}`, 'GET'), { kind: 'manifest', name: 'a', reference: D, isDigest: true });
    assert.deepEqual(parseRoute('/v2/a/tags/list', 'GET'), { kind: 'tags', name: 'a' });
    assert.deepEqual(parseRoute(`/v2/a/referrers/${D}`, 'GET'), { kind: 'referrers', name: 'a', digest: D });
    // Endpoint words are fine as name components where they cannot be confused with the layout's folders.
    assert.deepEqual(parseRoute('/v2/tags/manifests/tags/list', 'GET'), { kind: 'tags', name: 'tags/manifests' });
    assert.deepEqual(parseRoute('/v2/manifests/manifests/latest', 'GET'), { kind: 'manifest', name: 'manifests', reference: 'latest', isDigest: false });
  });

  it('answers undefined (404) for shapes that are no endpoint', () => {
    for (const p of ['/', '/v1/x/blobs/' + D, '/v2/x', '/v2/x/blobs', '/v2/x/tags/list/more', '/v2/x/catalog'])
      assert.equal(parseRoute(p, 'GET'), undefined, p);
  });

  it('refuses traversal, encoded or not, and names outside the grammar with NAME_INVALID', () => {
    for (const p of [
      `/v2/../x/blobs/${D}`,
      `/v2/a/../../x/blobs/${D}`,
      `/v2/%2e%2e/x/blobs/${D}`,
      `/v2/a%2F..%2Fb/manifests/latest`,
      `/v2/./a/tags/list`,
      `/v2//a/tags/list`,
      `/v2/A/tags/list`,
      `/v2/a-/tags/list`,
      `/v2/a\\b/tags/list`,
      `/v2/${'a'.repeat(256)}/tags/list`,
    ]) {
      refusedWith(p, 'NAME_INVALID');
    }
  });

  it("refuses nested names that would land in a repository's own layout folders", () => {
    for (const c of ['blobs', 'referrers', 'index.json', 'oci-layout', 'index.json.lock']) refusedWith(`/v2/a/${c}/tags/list`, 'NAME_INVALID');
    // As the first component they are ordinary repositories at the root.
    assert.deepEqual(parseRoute('/v2/blobs/tags/list', 'GET'), { kind: 'tags', name: 'blobs' });
  });

  it('refuses malformed digests and unknown algorithms with DIGEST_INVALID; a PUT to a bad tag with MANIFEST_INVALID, other methods with 404 MANIFEST_UNKNOWN', () => {
    for (const d of ['md5:d41d8cd98f00b204e9800998ecf8427e', 'sha256:abc', `sha256:${'A'.repeat(64)}`, 'sha256:..%2F..%2Fetc', 'sha256']) {
      refusedWith(`/v2/a/blobs/${d}`, 'DIGEST_INVALID');
      refusedWith(`/v2/a/referrers/${d}`, 'DIGEST_INVALID');
    }
    refusedWith('/v2/a/manifests/md5:d41d8cd98f00b204e9800998ecf8427e', 'DIGEST_INVALID');
    for (const t of ['-x', '.x', 'a%20b', 'x'.repeat(129), '.INVALID_MANIFEST_NAME']) {
      refusedWith(`/v2/a/manifests/${t}`, 'MANIFEST_INVALID', 'PUT', 400);
      for (const method of ['GET', 'HEAD', 'DELETE']) refusedWith(`/v2/a/manifests/${t}`, 'MANIFEST_UNKNOWN', method, 404);
    }
  });

  it('refuses upload ids this server cannot have issued with BLOB_UPLOAD_UNKNOWN', () => {
    for (const id of ['..', 'abc', `${ID}.json`, ID.toUpperCase()]) refusedWith(`/v2/a/blobs/uploads/${id}`, 'BLOB_UPLOAD_UNKNOWN');
  });
});
