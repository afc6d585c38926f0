/**
 * gc and rm delete a message with its receipts, its signature bundles, its receipts' bundles and
 * their entries in the referrers tag-schema index — and nothing else: not a live message, not its
 * receipt, not an artifact that is not comms'. --dry-run deletes nothing. A registry that refuses
 * DELETE is reported per artifact and the message is kept. An oci: folder also loses the blobs
 * nothing references any more. On docker-registry (delete enabled, and disabled), comms serve and oci:.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { startServer } from '../../src/server/index.ts';
import { join } from 'node:path';
import { gc, removeMessages } from '../../src/comms/remove.ts';
import { ack, loadKeySigner, NotFoundError, OciLayout, send, type Repository } from '../../src/index.ts';
import { createKeySigner } from '../../src/trust/key-signer.ts';
import { backendKinds, countingRepo, mailboxFixture } from '../support/referrers-backends.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { pushForeignManifest } from '../support/referrers-seed.ts';
import { runComms, TEST_KEY } from '../support/cli.ts';
import { requireTool, tempDir } from '../support/tools.ts';

type Kind = 'docker-registry' | 'comms-serve' | 'oci';
const kinds: Kind[] = [...backendKinds(), 'oci'];
const HOUR = 3_600_000;

async function gone(repo: Repository, digest: string): Promise<boolean> {
  try {
    await repo.fetchManifest(digest);
    return false;
  } catch (err) {
    if (err instanceof NotFoundError) return true;
    throw err;
  }
}

/** An expired signed message with a signed receipt, a live one with a receipt, and a foreign manifest. */
async function seed(repo: Repository) {
  const alice = await loadKeySigner(TEST_KEY);
  const me = createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
  const old = await send({
    repository: repo,
    recipient: 'me',
    sender: 'alice',
    input: { text: 'old news' },
    ttlSeconds: 60,
    signer: alice,
    now: () => new Date(Date.now() - HOUR),
  });
  const oldReceipt = await ack({ repository: repo, forDigest: old.digest, status: 'accepted', sender: 'me', signer: me });
  const live = await send({ repository: repo, recipient: 'me', sender: 'alice', input: { text: 'fresh' }, signer: alice });
  const liveReceipt = await ack({ repository: repo, forDigest: live.digest, status: 'accepted', sender: 'me', signer: me });
  const foreign = await pushForeignManifest(repo);
  return { old, oldReceipt, live, liveReceipt, foreign };
}

for (const kind of kinds) {
  describe(`gc and rm on ${kind}`, () => {
    const { freshRepo } = mailboxFixture(kind, 'gc');

    it('gc --dry-run deletes nothing; gc deletes the expired message, its bundle, receipt, receipt bundle and index entries, and nothing else; rm deletes a chosen one', async () => {
      const { repo } = await freshRepo();
      const s = await seed(repo);
      const oldBundle = s.old.bundle!.digest;
      const oldReceiptBundle = s.oldReceipt.bundle!.digest;

      const dry = await gc({ repository: repo, dryRun: true });
      assert.equal(dry.failed, 0);
      assert.deepEqual(dry.messages, [s.old.digest]);
      const planned = new Set(dry.steps.filter((st) => st.kind !== 'referrers-index').map((st) => st.digest));
      assert.deepEqual(planned, new Set([s.old.digest, oldBundle, s.oldReceipt.digest, oldReceiptBundle]));
      for (const d of planned) assert.equal(await gone(repo, d), false, `dry run kept ${d}`);

      const done = await gc({ repository: repo });
      assert.equal(done.failed, 0, JSON.stringify(done.steps.filter((st) => st.error)));
      for (const d of planned) assert.equal(await gone(repo, d), true, `deleted ${d}`);
      // The message's inbox tag went with it.
      assert.equal(await gone(repo, s.old.tag), true);
      if (kind === 'docker-registry') {
        // The tag-schema indexes of the message and of its receipt are gone too.
        assert.ok(done.steps.some((st) => st.kind === 'referrers-index'));
        const hex = (d: string) => `sha256-${d.slice('sha256:'.length)}`;
        assert.equal(await gone(repo, hex(s.old.digest)), true);
        assert.equal(await gone(repo, hex(s.oldReceipt.digest)), true);
        assert.equal(await gone(repo, hex(s.live.digest)), false, 'the live message keeps its index');
      }
      for (const d of [s.live.digest, s.live.bundle!.digest, s.liveReceipt.digest, s.liveReceipt.bundle!.digest, s.foreign.descriptor.digest]) {
        assert.equal(await gone(repo, d), false, `kept ${d}`);
      }
      if (repo instanceof OciLayout) {
        const blobsBefore = (await readdir(join(repo.root, 'blobs', 'sha256'))).length;
        const removed = await repo.removeUnreferencedBlobs({ olderThanMs: 0 });
        assert.ok(removed.length >= 1, "the expired message's chunk and bundle blobs went");
        assert.equal((await readdir(join(repo.root, 'blobs', 'sha256'))).length, blobsBefore - removed.length);
        // Everything kept still reads whole.
        const liveManifest = JSON.parse(new TextDecoder().decode((await repo.fetchManifest(s.live.digest)).bytes)) as {
          layers: { digest: string; size: number; mediaType: string }[];
        };
        for (const l of liveManifest.layers) assert.equal(await repo.exists(l), true);
      }

      const rm = await removeMessages({ repository: repo, digests: [s.live.digest] });
      assert.equal(rm.failed, 0);
      for (const d of [s.live.digest, s.live.bundle!.digest, s.liveReceipt.digest, s.liveReceipt.bundle!.digest])
        assert.equal(await gone(repo, d), true, `rm deleted ${d}`);
      assert.equal(await gone(repo, s.foreign.descriptor.digest), false, 'a foreign artifact is never deleted');
      await assert.rejects(
        removeMessages({ repository: repo, digests: [s.foreign.descriptor.digest] }),
        (e: unknown) => (e as { code?: string }).code === 'NOT_A_MESSAGE',
      );
    });

    if (kind === 'oci') {
      it('comms gc --dry-run --json lists, comms gc deletes and removes unreferenced blobs, comms rm deletes a chosen message', async () => {
        const { repo, ref } = await freshRepo();
        const s = await seed(repo);
        const dry = await runComms(['gc', '--repo', ref, '--dry-run', '--json']);
        assert.equal(dry.code, 0, dry.stderr);
        assert.ok(dry.json.some((j) => j['kind'] === 'message' && j['digest'] === s.old.digest && j['deleted'] === false));
        assert.equal(await gone(repo, s.old.digest), false);
        const real = await runComms(['gc', '--repo', ref]);
        assert.equal(real.code, 0, real.stderr);
        assert.match(real.stdout, new RegExp(`deleted message ${s.old.digest}`));
        assert.equal(await gone(repo, s.old.digest), true);
        const rm = await runComms(['rm', '--repo', ref, s.live.digest]);
        assert.equal(rm.code, 0, rm.stderr);
        assert.equal(await gone(repo, s.live.digest), true);
        assert.equal(await gone(repo, s.foreign.descriptor.digest), false);
      });
    }
  });
}

describe('gc on docker-registry with delete disabled', { skip: !requireTool('docker-registry') }, () => {
  let registry: RegistryServer;
  before(async () => {
    registry = await startRegistry({ mode: 'plain', extraConfig: { storage: { delete: { enabled: false } } } });
  });
  after(async () => {
    await registry?.stop();
  });

  it('reports each refused deletion, keeps the message, and the CLI exits non-zero', async () => {
    const ref = `${registry.host}/gc/refused`;
    const c = countingRepo(ref);
    try {
      const s = await seed(c.repo);
      const r = await gc({ repository: c.repo });
      assert.ok(r.failed >= 3, `${r.failed} failed steps`);
      for (const st of r.steps) assert.ok(st.error !== undefined, `${st.kind} ${st.digest} reported as refused`);
      assert.equal(await gone(c.repo, s.old.digest), false, 'the message is kept');
      const cli = await runComms(['gc', '--repo', ref, '--plain-http']);
      assert.notEqual(cli.code, 0);
      assert.match(cli.stderr, /could not delete receipt sha256:/);
      assert.match(cli.stderr, /could not delete message sha256:.*kept/);
    } finally {
      await c.close();
    }
  });
});

describe('comms serve removes the blobs gc left unreferenced', () => {
  it("after gc, its sweep removes the expired message's chunk and keeps the live message's", async () => {
    const dir = await tempDir('comms-gc-serve-');
    // Sweeps every second (half the upload TTL, at least 1 s), with no grace for unreferenced blobs.
    const server = await startServer({ root: dir.path, port: 0, uploadTtlMs: 2000, blobGraceMs: 0 });
    const c = countingRepo(`127.0.0.1:${server.port}/gc/mailbox`);
    try {
      const s = await seed(c.repo);
      const chunkFile = async (digest: string) => {
        const m = JSON.parse(new TextDecoder().decode((await c.repo.fetchManifest(digest)).bytes)) as { layers: { digest: string }[] };
        return join(dir.path, 'gc', 'mailbox', 'blobs', 'sha256', m.layers[0]!.digest.slice('sha256:'.length));
      };
      const oldChunk = await chunkFile(s.old.digest);
      const liveChunk = await chunkFile(s.live.digest);
      const exists = (p: string) =>
        stat(p).then(
          () => true,
          () => false,
        );
      assert.equal(await exists(oldChunk), true);
      const r = await gc({ repository: c.repo });
      assert.equal(r.failed, 0);
      for (let i = 0; i < 100 && (await exists(oldChunk)); i++) await delay(100);
      assert.equal(await exists(oldChunk), false, "the expired message's chunk is gone");
      assert.equal(await exists(liveChunk), true, "the live message's chunk stays");
      assert.equal(await gone(c.repo, s.live.digest), false);
    } finally {
      await c.close();
      await server.close();
      await dir.cleanup();
    }
  });
});
