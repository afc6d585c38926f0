/**
 * `comms copy` between oci: folders, docker-registry (no Referrers API: the tag schema) and
 * comms serve (the Referrers API): a signed message with its bundle and receipt arrives with the
 * same digests, skopeo reads the same bytes, comms recv verifies it at the destination and thread
 * finds its referrers there; --digest refuses a source that is not the one reviewed before
 * anything is pushed; --all mirrors a mailbox tag for tag; a re-run skips what is there; on one
 * registry blobs are mounted; a manifest over 4 MiB from a hostile source is refused.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ack, copy, loadKeySigner, openRepository, reply, send, thread, type MessageSigner, type Repository } from '../../src/index.ts';
import { replyTagPrefix } from '../../src/protocol/tags.ts';
import { runComms } from '../support/cli.ts';
import { backendKinds, startBackend, type Backend } from '../support/referrers-backends.ts';
import { describeRun, TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { startHostileRegistry } from '../support/hostile-registry.ts';
import { skopeoInspectRaw } from '../support/skopeo.ts';
import { requireTool, tempDir, type TempDir } from '../support/tools.ts';

const sha256 = (b: string | Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const haveSkopeo = requireTool('skopeo');

async function tagMap(repo: Repository): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const tags: string[] = [];
  await repo.tags((page) => {
    tags.push(...page);
  });
  for (const t of tags) out.set(t, (await repo.resolve(t)).digest);
  return out;
}

/** A signed message from alice to bob, with bob's signed receipt and an unsigned reply. */
async function seedMessage(repository: Repository, signer: MessageSigner) {
  const message = await send({ repository, recipient: 'bob', sender: 'alice', input: { text: 'hand-over payload' }, signer });
  const receipt = await ack({ repository, forDigest: message.digest, status: 'accepted', sender: 'bob', signer });
  const answer = await reply({ unsigned: true, unverifiedRecipient: true, repository, to: message.digest, sender: 'bob', input: { text: 'thanks' } });
  return { message, receipt, answer };
}

describe('copy', () => {
  let dir: TempDir;
  let signer: MessageSigner;
  const backends = new Map<string, Backend>();
  before(async () => {
    dir = await tempDir('comms-copy-');
    signer = await loadKeySigner(TEST_KEY);
    for (const kind of backendKinds()) backends.set(kind, await startBackend(kind));
  });
  after(async () => {
    for (const b of backends.values()) await b.stop();
    await dir?.cleanup();
  });

  for (const kind of backendKinds()) {
    it(`air-gapped hand-over, oci: folder → ${kind}: same digests, skopeo reads the bytes, recv verifies, thread finds bundle and receipt; --recursive brings the reply with its tags`, async () => {
      const folder = `oci:${join(dir.path, `handover-${kind}`)}`;
      const local = await openRepository(folder, { create: true });
      const { message, receipt, answer } = await seedMessage(local, signer);
      const dst = backends.get(kind)!.freshRepo('copy');

      const wrong = `sha256:${'0'.repeat(64)}`;
      const refused = await runComms(['copy', `${folder}@${message.digest}`, dst, '--digest', wrong]);
      assert.equal(refused.code, 4, describeRun(refused));
      assert.match(refused.stderr, /not the expected/);
      const wrongFolder = join(dir.path, `never-${kind}`);
      const refusedFolder = await runComms(['copy', `${folder}@${message.digest}`, `oci:${wrongFolder}`, '--digest', wrong]);
      assert.equal(refusedFolder.code, 4, describeRun(refusedFolder));
      await assert.rejects(lstat(wrongFolder), 'a refused copy creates no destination folder');
      const untouched = await openRepository(dst);
      await assert.rejects(untouched.resolve(message.digest), (e: { exitCode?: number }) => e.exitCode === 5, 'nothing was pushed');

      const r = await runComms(['copy', `${folder}@${message.digest}`, dst, '--digest', message.digest, '--json']);
      assert.equal(r.code, 0, describeRun(r));
      const result = r.json[0] as { digest: string; manifests: { digest: string; tags: string[] }[]; blobsCopied: number };
      assert.equal(result.digest, message.digest);
      const copied = new Set(result.manifests.map((m) => m.digest));
      assert.deepEqual(
        copied,
        new Set([message.digest, message.bundle!.digest, receipt.digest, receipt.bundle!.digest]),
        'message, its bundle, the receipt and its bundle; no reply without --recursive',
      );
      assert.ok(!copied.has(answer.digest));
      assert.deepEqual(result.manifests.find((m) => m.digest === message.digest)!.tags, [message.tag], 'the inbox tag travels with the message');

      const remote = await openRepository(dst);
      for (const d of copied) {
        const src = await local.fetchManifest(d);
        const got = await remote.fetchManifest(d);
        assert.deepEqual(Buffer.from(got.bytes), Buffer.from(src.bytes), `manifest ${d} has the same bytes`);
      }
      if (haveSkopeo) {
        const raw = await skopeoInspectRaw(`${dst}:${message.tag}`);
        assert.equal(sha256(raw), message.digest, 'skopeo reads the message with its digest');
      }
      const root = await thread(remote, message.digest);
      assert.deepEqual(
        new Set(root.children.map((c) => c.digest)),
        new Set([message.bundle!.digest, receipt.digest]),
        'referrers are findable at the destination',
      );

      const out = join(dir.path, `inbox-${kind}`);
      const recv = await runComms(['recv', '--repo', dst, '--me', 'bob', '--out', out, '--trusted-key', TEST_PUB]);
      assert.equal(recv.code, 0, describeRun(recv));
      assert.deepEqual(await readdir(out), ['message.txt']);

      const again = await runComms(['copy', `${folder}@${message.digest}`, dst, '--json']);
      assert.equal(again.code, 0, describeRun(again));
      assert.equal((again.json[0] as { blobsCopied: number }).blobsCopied, 0, 'a re-run sends no blob the destination has');

      // --recursive takes the reply too, with the tags that name it: its inbox tag and its reply- tag.
      const rec = await runComms(['copy', `${folder}@${message.digest}`, backends.get(kind)!.freshRepo('copy-r'), '--recursive', '--json']);
      assert.equal(rec.code, 0, describeRun(rec));
      const copiedReply = (rec.json[0] as { manifests: { digest: string; tags: string[] }[] }).manifests.find((m) => m.digest === answer.digest);
      assert.ok(copiedReply !== undefined, 'the reply is copied with --recursive');
      const sourceTags = [...(await tagMap(local))].filter(([, d]) => d === answer.digest).map(([t]) => t);
      assert.equal(sourceTags.length, 2, `the reply has two tags at the source: ${sourceTags.join(', ')}`);
      assert.ok(sourceTags.some((t) => t.startsWith(replyTagPrefix(message.digest))));
      assert.deepEqual([...copiedReply.tags].sort(), sourceTags.sort(), 'both travel with it');
    });
  }

  it('--all --recursive mirrors a mailbox from docker-registry (or comms serve) to another registry and to a folder, tag for tag', async () => {
    const kinds = [...backends.keys()];
    const from = backends.get(kinds[0]!)!.freshRepo('mirror');
    const to = backends.get(kinds[kinds.length - 1]!)!.freshRepo('mirror');
    const source = await openRepository(from);
    const { message, receipt, answer } = await seedMessage(source, signer);
    await send({ repository: source, recipient: 'carol', sender: 'alice', input: { text: 'second' }, signer });
    const r = await runComms(['copy', from, to, '--all', '--recursive', '--json']);
    assert.equal(r.code, 0, describeRun(r));
    const want = await tagMap(source);
    const isSchema = (t: string) => /^sha256-/.test(t);
    const got = await tagMap(await openRepository(to));
    for (const [t, d] of want) if (!isSchema(t)) assert.equal(got.get(t), d, `tag ${t}`);
    const root = await thread(await openRepository(to), message.digest);
    assert.deepEqual(new Set(root.children.map((c) => c.digest)), new Set([message.bundle!.digest, receipt.digest, answer.digest]));

    const folder = `oci:${join(dir.path, 'mirror')}`;
    const toFolder = await runComms(['copy', to, folder, '--all']);
    assert.equal(toFolder.code, 0, describeRun(toFolder));
    const inFolder = await tagMap(await openRepository(folder));
    for (const [t, d] of want) if (!isSchema(t)) assert.equal(inFolder.get(t), d, `tag ${t} in the folder`);
    if (haveSkopeo) {
      const raw = await skopeoInspectRaw(`${folder}:${message.tag}`);
      assert.equal(sha256(raw), message.digest, 'skopeo reads the folder with the same digest');
    }
  });

  it('an interrupted copy is finished by a re-run, which sends only the missing blobs', async () => {
    const backend = backends.values().next().value!;
    const source = await openRepository(`oci:${join(dir.path, 'interrupt')}`, { create: true });
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    const sent = await send({
      repository: source,
      recipient: 'bob',
      sender: 'alice',
      input: { path: await writeTemp(dir, 'big.bin', big) },
      chunkBytes: 1024 * 1024,
      compression: 'gzip',
      level: 0,
      signer,
    });
    const dstRef = backend.freshRepo('interrupt');
    const destination = await openRepository(dstRef);
    const controller = new AbortController();
    await assert.rejects(
      copy({
        source,
        destination,
        reference: sent.digest,
        concurrency: 1,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.blobsCopied >= 2) controller.abort(new Error('stop'));
        },
      }),
      (e: { exitCode?: number }) => e.exitCode === 1,
    );
    await assert.rejects(destination.resolve(sent.digest), 'the message was not pushed before its blobs');
    const done = await copy({ source, destination, reference: sent.digest });
    assert.ok(done.blobsSkipped >= 2, `blobs already there are skipped (${done.blobsSkipped})`);
    assert.equal((await destination.resolve(sent.tag)).digest, sent.digest);
  });

  it('between two repositories of one registry, blobs are mounted, not sent', async () => {
    const backend = backends.values().next().value!;
    const a = backend.freshRepo('mount');
    const b = backend.freshRepo('mount');
    const sent = await send({ repository: await openRepository(a), recipient: 'bob', sender: 'alice', input: { text: 'mount me' }, signer });
    const result = await copy({ source: await openRepository(a), destination: await openRepository(b), reference: sent.tag });
    assert.ok(result.blobsMounted >= 2, `mounted ${result.blobsMounted}`);
    assert.equal(result.blobsCopied, 0);
    assert.equal(result.bytesCopied, 0);
    assert.equal((await (await openRepository(b)).resolve(sent.tag)).digest, sent.digest);
  });

  it('a hostile source serving a manifest over 4 MiB is refused (exit 4) and nothing is written', async () => {
    const huge = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, config: {}, layers: [], pad: 'x'.repeat(5 * 1024 * 1024) }));
    const hostile = await startHostileRegistry({ manifests: { box: { big: huge } } });
    try {
      const folder = join(dir.path, 'from-hostile');
      const r = await runComms(['copy', `${hostile.host}/box:big`, `oci:${folder}`]);
      assert.equal(r.code, 4, describeRun(r));
      assert.match(r.stderr, /larger than|more than/);
      await assert.rejects(lstat(folder), 'the destination folder was not even created');
    } finally {
      await hostile.close();
    }
  });
});

async function writeTemp(dir: TempDir, name: string, bytes: Uint8Array): Promise<string> {
  const { writeFile } = await import('node:fs/promises');
  const p = join(dir.path, name);
  await writeFile(p, bytes);
  return p;
}
