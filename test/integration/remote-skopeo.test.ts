/**
 * Interoperability with a client nobody here wrote (skopeo / containers/image), through a real
 * docker-registry: skopeo reads what RemoteRepository pushed (same manifest bytes, same digest,
 * blobs intact — including one uploaded in chunks), and RemoteRepository reads and verifies
 * what skopeo pushed (its own uploads, from a `dir:` copy).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Descriptor, ImageManifest } from '../../src/oci/descriptor.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { EMPTY_JSON_BYTES, EMPTY_JSON_DIGEST, MediaType } from '../../src/oci/mediatypes.ts';
import { RegistryClient } from '../../src/oci/remote/index.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { skopeoCopy, skopeoInspectRaw, skopeoListTags } from '../support/skopeo.ts';
import { requireTools, skipMessage, tempDir } from '../support/tools.ts';

if (!requireTools('docker-registry', 'skopeo')) {
  it('skopeo interop', (t) => t.skip(skipMessage('docker-registry', 'skopeo')));
} else {
  describe('skopeo interop through docker-registry', () => {
    let server: RegistryServer;
    let other: RegistryServer;
    let client: RegistryClient;
    const empty: Descriptor = { mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: 2 };
    const small = new TextEncoder().encode('hello from comms');
    // Larger than the monolithic limit with a 1 MiB chunk size: this one goes up in PATCHes.
    const large = randomBytes(3 * 1024 * 1024 + 17);
    const layers: Descriptor[] = [
      { mediaType: 'text/plain', digest: digestOf(small), size: small.length },
      { mediaType: 'application/octet-stream', digest: digestOf(large), size: large.length },
    ];
    const manifestBytes = new TextEncoder().encode(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageManifest, artifactType: 'application/vnd.example.interop', config: empty, layers }),
    );
    const manifest: Descriptor = { mediaType: MediaType.ImageManifest, digest: digestOf(manifestBytes), size: manifestBytes.length };

    before(async () => {
      [server, other] = await Promise.all([startRegistry({ mode: 'plain' }), startRegistry({ mode: 'plain' })]);
      client = new RegistryClient({ plainHttp: true, chunkSize: 1024 * 1024, monolithicMaxBytes: 1024 * 1024 });
      const repo = client.repository(`${server.host}/interop/ours`);
      await repo.push(empty, EMPTY_JSON_BYTES);
      await repo.push(layers[0]!, small);
      await repo.push(layers[1]!, large);
      await repo.pushManifest(manifest, manifestBytes, 'v1');
    });
    after(async () => {
      await client.close();
      await server.stop();
      await other.stop();
    });

    it('skopeo reads what the client pushed: same bytes, same digest', async () => {
      const raw = await skopeoInspectRaw(`${server.host}/interop/ours:v1`);
      assert.deepEqual(raw, Buffer.from(manifestBytes));
      assert.equal(digestOf(raw), manifest.digest);
      assert.deepEqual(await skopeoListTags(`${server.host}/interop/ours`), ['v1']);
      // skopeo fetches and checks every blob on the way into a dir: copy.
      const dir = await tempDir('comms-skopeo-dir-');
      try {
        await skopeoCopy(`${server.host}/interop/ours:v1`, `dir:${dir.path}`);
        assert.deepEqual(await readFile(join(dir.path, layers[1]!.digest.slice('sha256:'.length))), large);
        assert.deepEqual(await readFile(join(dir.path, 'manifest.json')), Buffer.from(manifestBytes));
      } finally {
        await dir.cleanup();
      }
    });

    it('the client reads what skopeo pushed, verifying every blob', async () => {
      const dir = await tempDir('comms-skopeo-dir-');
      try {
        await skopeoCopy(`${server.host}/interop/ours:v1`, `dir:${dir.path}`);
        // Another registry, so skopeo uploads every blob itself (no cross-repository mount).
        await skopeoCopy(`dir:${dir.path}`, `${other.host}/interop/theirs:v2`);
      } finally {
        await dir.cleanup();
      }
      const repo = client.repository(`${other.host}/interop/theirs`);
      const fetched = await repo.fetchManifest('v2');
      assert.equal(fetched.descriptor.digest, manifest.digest, 'digest preserved');
      const parsed = JSON.parse(new TextDecoder().decode(fetched.bytes)) as ImageManifest;
      for (const desc of [parsed.config, ...parsed.layers]) {
        const chunks: Buffer[] = [];
        for await (const c of await repo.fetch(desc)) chunks.push(c as Buffer);
        assert.equal(digestOf(Buffer.concat(chunks)), desc.digest);
      }
      assert.equal((await repo.resolve('v2')).digest, manifest.digest);
    });
  });
}
