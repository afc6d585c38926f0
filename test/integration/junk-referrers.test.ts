/**
 * Junk bundles cannot starve the genuine one. Anyone with push access can make thousands of
 * "bundles" refer to a message; recv must still verify it in a small, bounded number of requests:
 * it tries at most MAX_BUNDLES_TRIED bundles, the v1.0-style `bundle-<hex12>-` tags first (closest
 * in time to the message's creation), then the referrers, newest first.
 *
 * Real docker-registry (no Referrers API, so the tag-schema index is the referrers list). The junk
 * is seeded cheaply: an index listing 5,000 junk bundle descriptors ahead of the genuine one (planted
 * in the registry's storage in one write: distribution refuses an index naming manifests it does not
 * hold, and pushing 5,000 manifests first would only slow the test), and junk bundle manifests under
 * `bundle-<hex12>-` tags dated after the message.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { receive } from '../../src/comms/receive.ts';
import { send } from '../../src/comms/send.ts';
import { MAX_BUNDLES_TRIED, verifyMessage } from '../../src/comms/verify-message.ts';
import { readReferrersIndex } from '../../src/oci/remote/tag-schema.ts';
import type { Descriptor, ImageIndex } from '../../src/oci/descriptor.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { MediaType } from '../../src/oci/mediatypes.ts';
import { openRemoteRepository } from '../../src/oci/remote/index.ts';
import { referrersTag } from '../../src/oci/remote/referrers.ts';
import { ArtifactType } from '../../src/protocol/constants.ts';
import { bundleTagPrefix } from '../../src/protocol/tags.ts';
import { loadKeySigner } from '../../src/trust/key-signer.ts';
import { TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { plantRegistryManifest } from '../support/hostile-store.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { requireTool, skipMessage, tempDir, type TempDir } from '../support/tools.ts';

const JUNK_REFERRERS = 5000;
const JUNK_TAGS = 2 * MAX_BUNDLES_TRIED;
const NEWER_JUNK = 3;

let registry: RegistryServer | undefined;
let work: TempDir;

before(async () => {
  work = await tempDir('comms-junk-');
  if (requireTool('docker-registry')) registry = await startRegistry({ mode: 'plain' });
});
after(async () => {
  await registry?.stop();
  await work?.cleanup();
});

const enc = new TextEncoder();
const push = async (repo: ReturnType<typeof openRemoteRepository>, bytes: Uint8Array, mediaType: string, tag?: string): Promise<Descriptor> => {
  const desc = { mediaType, digest: digestOf(bytes), size: bytes.length };
  if (mediaType === MediaType.ImageManifest) await repo.pushManifest(desc, bytes, tag);
  else await repo.push(desc, bytes);
  return desc;
};

describe('a message buried under junk bundles', () => {
  it(`${JUNK_REFERRERS} junk referrers in the index and ${JUNK_TAGS} junk bundle tags: recv still verifies it, in a small bounded number of requests`, async (t) => {
    if (registry === undefined) return t.skip(skipMessage('docker-registry'));
    const ref = `${registry.host}/junk/mbox`;
    const repo = openRemoteRepository(ref, { plainHttp: true });
    const sent = await send({ repository: repo, recipient: 'bob', sender: 'alice', input: { text: 'the genuine one' }, signer: await loadKeySigner(TEST_KEY) });
    const message = sent.descriptor;

    // Junk bundle manifests under bundle tags dated an hour and more after the message.
    const junkLayer = await push(repo, enc.encode('{"not":"a sigstore bundle"}'), ArtifactType.Bundle);
    const config = await push(repo, enc.encode('{}'), 'application/vnd.oci.empty.v1+json');
    const createdS = Math.floor(
      Date.parse(JSON.parse(new TextDecoder().decode((await repo.fetchManifest(message.digest)).bytes)).annotations['dockercomms.created_at']) / 1000,
    );
    for (let i = 0; i < JUNK_TAGS; i++) {
      const manifest = enc.encode(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ImageManifest,
          artifactType: ArtifactType.Bundle,
          config,
          layers: [junkLayer],
          subject: { mediaType: MediaType.ImageManifest, digest: message.digest, size: message.size },
          annotations: { junk: String(i) },
        }),
      );
      await push(repo, manifest, MediaType.ImageManifest, `${bundleTagPrefix(message.digest)}${createdS + 3600 + i}-${String(i).padStart(6, '0')}`);
    }
    // 5,000 junk descriptors ahead of the genuine entry in the tag-schema index, in one push.
    const index = await readReferrersIndex(repo, referrersTag(message.digest));
    assert.equal(index.manifests.length, 1, 'the genuine bundle is in the index');
    const junk: Descriptor[] = Array.from({ length: JUNK_REFERRERS }, (_, i) => ({
      mediaType: MediaType.ImageManifest,
      digest: `sha256:${i.toString(16).padStart(64, 'a')}`,
      size: 400,
      artifactType: ArtifactType.Bundle,
    }));
    // …and a few newer junk entries after it (fewer than the bound).
    const newer = junk.slice(0, NEWER_JUNK).map((d) => ({ ...d, digest: d.digest.replace(/^sha256:a/, 'sha256:b') }));
    const buried: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [...junk, index.manifests[0]!, ...newer] };
    await plantRegistryManifest(registry.storageDir, 'junk/mbox', referrersTag(message.digest), enc.encode(JSON.stringify(buried)));
    assert.equal(
      (await readReferrersIndex(repo, referrersTag(message.digest))).manifests.length,
      JUNK_REFERRERS + 1 + NEWER_JUNK,
      'the registry serves the buried index',
    );

    const requests: string[] = [];
    const counted = openRemoteRepository(ref, { plainHttp: true, onRequest: (e) => requests.push(`${e.method} ${e.url}`) });
    const out = path.join(work.path, 'out');
    await mkdir(out);
    const r = await receive({ repository: counted, me: 'bob', outDir: out, verify: { trustedKeys: [await readFile(TEST_PUB, 'utf8')] } });
    assert.deepEqual(
      r.failures.map((f) => f.error.message),
      [],
    );
    assert.equal(r.messages.length, 1);
    assert.ok(r.messages[0]!.verified, 'verified');
    assert.equal(await readFile(path.join(out, 'message.txt'), 'utf8'), 'the genuine one');
    t.diagnostic(`recv: ${requests.length} requests`);
    assert.ok(requests.length <= 2 * MAX_BUNDLES_TRIED + 10, `${requests.length} requests:\n${requests.join('\n')}`);

    // Through the index alone (as when the bundle tags are gone): newest entries first, bounded.
    requests.length = 0;
    const bytes = (await counted.fetchManifest(message.digest)).bytes;
    requests.length = 0;
    const v = await verifyMessage(counted, message, bytes, { policy: { trustedKeys: [await readFile(TEST_PUB, 'utf8')] }, source: 'referrers' });
    assert.equal(v.bundleDigest, index.manifests[0]!.digest);
    t.diagnostic(`verify through the index: ${requests.length} requests`);
    assert.ok(requests.length <= 2 * MAX_BUNDLES_TRIED + 2, `${requests.length} requests:\n${requests.join('\n')}`);
  });
});
