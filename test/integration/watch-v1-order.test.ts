/**
 * watch against what dockercomms v1.0 does and what a hostile sender can send, on real
 * docker-registry:
 * - v1.0 pushes the inbox tag first and the signature bundle after it. A poll in between must not
 *   refuse the message: it waits (no receipt, nothing recorded as handled) and is delivered,
 *   verified, once the bundle arrives; a bundle that never comes is refused once, after the grace.
 * - the state file is out of reach of received files: a message named `.comms-watch.json` (whose
 *   content is a state that would suppress a later message) is delivered intact, never overwritten
 *   and never loaded as state; a state file placed directly inside --out is refused before any request.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadKeySigner, send, watch, type ReceivedMessage, type ReceiveFailure } from '../../src/index.ts';
import { pushBundle } from '../../src/comms/bundle.ts';
import type { Repository } from '../../src/oci/target.ts';
import type { TrustPolicy } from '../../src/trust/verify.ts';
import { countingRepo, startBackend, type Backend, type CountingRepo } from '../support/referrers-backends.ts';
import { TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { rawGetManifest, rawTags } from '../support/messages-raw.ts';
import { requireTool, skipMessage, tempDir, type TempDir } from '../support/tools.ts';

const PATIENCE_MS = 60_000;

async function eventually(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + PATIENCE_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until the watcher has listed tags `n` more times. */
async function morePolls(c: CountingRepo, n: number): Promise<void> {
  const start = c.count('GET', /\/tags\/list$/);
  await eventually(() => c.count('GET', /\/tags\/list$/) >= start + n, `${n} more polls`);
}

interface Running {
  delivered: ReceivedMessage[];
  failures: ReceiveFailure[];
  waits: { tag: string; digest: string; code: string }[];
  pollErrors: unknown[];
  stop(): Promise<void>;
}

function startWatcher(
  repo: Repository,
  outDir: string,
  extra: { stateFile?: string; verify?: TrustPolicy | false; bundleGraceMs?: number; writeReceipt?: boolean } = {},
): Running {
  const controller = new AbortController();
  const w: Running = { delivered: [], failures: [], waits: [], pollErrors: [], stop: async () => {} };
  const loop = (async () => {
    for await (const item of watch({
      repository: repo,
      me: 'bob',
      outDir,
      verify: extra.verify ?? false,
      stateFile: extra.stateFile,
      bundleGraceMs: extra.bundleGraceMs,
      writeReceipt: extra.writeReceipt,
      intervalMs: 100,
      signal: controller.signal,
      onBundleWait: (m) => w.waits.push({ tag: m.tag, digest: m.digest, code: m.error.code }),
      onPollError: (e) => w.pollErrors.push(e),
    })) {
      if ('error' in item) w.failures.push(item);
      else w.delivered.push(item);
    }
  })();
  w.stop = async () => {
    controller.abort();
    await loop;
  };
  running.push(w);
  return w;
}

/** Every watcher started; stopped at the end even when a test failed before stopping its own. */
const running: Running[] = [];

const hasRegistry = requireTool('docker-registry');

describe('watch on docker-registry: v1.0 send order and the state file', () => {
  let backend: Backend | undefined;
  let work: TempDir;
  let savedStateHome: string | undefined;
  before(async () => {
    work = await tempDir('comms-watch-v1-');
    // The default state folder of watch() (the library reads the environment, as the CLI does).
    savedStateHome = process.env['XDG_STATE_HOME'];
    process.env['XDG_STATE_HOME'] = join(work.path, 'state-home');
    if (hasRegistry) backend = await startBackend('docker-registry');
  });
  after(async () => {
    await Promise.all(running.map((w) => w.stop().catch(() => undefined)));
    if (savedStateHome === undefined) delete process.env['XDG_STATE_HOME'];
    else process.env['XDG_STATE_HOME'] = savedStateHome;
    await backend?.stop();
    await work?.cleanup();
  });

  const receiptTags = async (ref: string) =>
    (await rawTags(`http://${backend!.host}`, ref.slice(backend!.host.length + 1))).filter((t) => t.startsWith('receipt-'));

  it('inbox tag first, bundle after a poll (v1.0 order): the message waits without a receipt, then is delivered verified', async (t) => {
    if (backend === undefined) return t.skip(skipMessage('docker-registry'));
    const ref = backend.freshRepo('late-bundle');
    const sender = countingRepo(ref);
    const c = countingRepo(ref);
    const out = join(work.path, 'late-out');
    const stateFile = join(work.path, 'late-state', 'watch.json');
    try {
      // The message and its inbox tag, with no bundle yet: what a v1.0 sender has pushed mid-send.
      const sent = await send({
        unsigned: true,
        repository: sender.repo,
        recipient: 'bob',
        sender: 'alice',
        input: { text: 'signed late', filename: 'late.txt' },
      });
      const w = startWatcher(c.repo, out, { stateFile, verify: { trustedKeys: [await readFile(TEST_PUB, 'utf8')] }, writeReceipt: true });
      await eventually(() => w.waits.length === 1, 'the watcher to hold the message back');
      await morePolls(c, 3);
      assert.deepEqual(
        w.waits.map((x) => [x.digest, x.code]),
        [[sent.digest, 'BUNDLE_NOT_FOUND']],
      );
      assert.deepEqual(w.failures, [], 'not refused while the bundle may still come');
      assert.equal(w.delivered.length, 0);
      assert.deepEqual(await receiptTags(ref), [], 'no receipt while waiting');
      const state = JSON.parse(await readFile(stateFile, 'utf8')) as { tags: string[]; pending?: Record<string, number> };
      assert.deepEqual(state.tags, [], 'nothing recorded as handled');
      assert.deepEqual(Object.keys(state.pending ?? {}), [sent.tag], 'the wait is recorded, so a restart keeps its start');

      // The bundle arrives (signed with the key the watcher trusts).
      const manifest = await sender.repo.fetchManifest(sent.digest);
      await pushBundle(sender.repo, manifest.descriptor, manifest.bytes, await loadKeySigner(TEST_KEY));
      await eventually(() => w.delivered.length === 1, 'delivery once the bundle is there');
      await morePolls(c, 2);
      await w.stop();
      const [m] = w.delivered;
      assert.equal(m!.digest, sent.digest);
      assert.equal(m!.verified?.kind, 'key');
      assert.equal(await readFile(join(out, 'late.txt'), 'utf8'), 'signed late');
      assert.equal(m!.receipt?.status, 'accepted');
      assert.deepEqual(w.failures, []);
      const receipts = await receiptTags(ref);
      assert.equal(receipts.length, 1, `one receipt: ${receipts}`);
      const receipt = await rawGetManifest(`http://${backend.host}`, ref.slice(backend.host.length + 1), receipts[0]!);
      assert.equal((receipt.json['annotations'] as Record<string, string>)['dockercomms.receipt.status'], 'accepted');
      assert.equal(w.waits.length, 1, 'the hold is reported once');
    } finally {
      await sender.close();
      await c.close();
    }
  });

  it('a bundle that never comes: refused once the grace has passed, with one rejected receipt, and not again', async (t) => {
    if (backend === undefined) return t.skip(skipMessage('docker-registry'));
    const ref = backend.freshRepo('no-bundle');
    const sender = countingRepo(ref);
    const c = countingRepo(ref);
    const out = join(work.path, 'nobundle-out');
    try {
      const sent = await send({ unsigned: true, repository: sender.repo, recipient: 'bob', sender: 'alice', input: { text: 'never signed' } });
      const w = startWatcher(c.repo, out, {
        stateFile: join(work.path, 'nobundle-state.json'),
        verify: { trustedKeys: [await readFile(TEST_PUB, 'utf8')] },
        writeReceipt: true,
        bundleGraceMs: 1500,
      });
      await eventually(() => w.failures.length === 1, 'the refusal after the grace');
      const waitedPolls = c.count('GET', /\/tags\/list$/);
      await morePolls(c, 3);
      await w.stop();
      assert.ok(waitedPolls >= 2, `tried on more than one poll (${waitedPolls})`);
      assert.equal(w.failures.length, 1, 'refused once, then recorded as handled');
      assert.equal(w.failures[0]!.digest, sent.digest);
      assert.equal(w.failures[0]!.error.code, 'BUNDLE_NOT_FOUND');
      assert.equal(w.failures[0]!.receipt?.status, 'rejected');
      assert.equal((await receiptTags(ref)).length, 1);
      assert.deepEqual(await readdir(out), []);
    } finally {
      await sender.close();
      await c.close();
    }
  });

  it('a received .comms-watch.json is kept intact and never loaded as the state (default state file, outside --out)', async (t) => {
    if (backend === undefined) return t.skip(skipMessage('docker-registry'));
    const ref = backend.freshRepo('state-name');
    const sender = countingRepo(ref);
    const c = countingRepo(ref);
    const out = join(work.path, 'state-out');
    try {
      // A state that, if loaded, would mark a later message as delivered already.
      const laterId = randomUUID();
      const hostile = JSON.stringify({ version: 1, tags: [], digests: [], messageIds: [laterId] });
      const first = await send({
        unsigned: true,
        repository: sender.repo,
        recipient: 'bob',
        sender: 'mallory',
        input: { text: hostile, filename: '.comms-watch.json' },
      });
      let w = startWatcher(c.repo, out);
      await eventually(() => w.delivered.length === 1, 'the message named .comms-watch.json');
      const other = await send({
        unsigned: true,
        repository: sender.repo,
        recipient: 'bob',
        sender: 'alice',
        input: { text: 'second', filename: 'second.txt' },
      });
      await eventually(() => w.delivered.length === 2, 'the next message');
      await morePolls(c, 2);
      await w.stop();
      assert.deepEqual(w.pollErrors, []);
      assert.deepEqual(
        w.delivered.map((m) => m.digest),
        [first.digest, other.digest],
      );
      assert.equal(w.delivered[0]!.path, join(out, '.comms-watch.json'));
      assert.equal(await readFile(join(out, '.comms-watch.json'), 'utf8'), hostile, 'the received file is not overwritten by the state');

      // Restarted: the real state is found (nothing delivered twice), the received file is not read as one.
      const later = await send({
        unsigned: true,
        repository: sender.repo,
        recipient: 'bob',
        sender: 'alice',
        input: { text: 'later', filename: 'later.txt' },
        messageId: laterId,
      });
      w = startWatcher(c.repo, out);
      await eventually(() => w.delivered.length === 1 || w.pollErrors.length > 0, 'the message sent while stopped');
      await morePolls(c, 2);
      await w.stop();
      assert.deepEqual(w.pollErrors, []);
      assert.deepEqual(
        w.delivered.map((m) => m.digest),
        [later.digest],
      );
      assert.deepEqual((await readdir(out)).sort(), ['.comms-watch.json', 'later.txt', 'second.txt']);
      assert.equal((await readdir(join(work.path, 'state-home', 'comms', 'watch'))).length, 1, 'the state is under $XDG_STATE_HOME/comms/watch');
    } finally {
      await sender.close();
      await c.close();
    }
  });

  it('a state file directly inside --out is refused before any request (exit 4)', async (t) => {
    if (backend === undefined) return t.skip(skipMessage('docker-registry'));
    const c = countingRepo(backend.freshRepo('state-in-out'));
    const out = join(work.path, 'state-in-out');
    try {
      const run = async (stateFile: string) => {
        // Bounded: a watcher that does not refuse would otherwise run until stopped.
        for await (const item of watch({ repository: c.repo, me: 'bob', outDir: out, verify: false, stateFile, signal: AbortSignal.timeout(5000) })) void item;
      };
      const err = await run(join(out, '.', 'watch-state.json')).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof Error && (err as { code?: string }).code === 'STATE_FILE_IN_OUT' && (err as { exitCode?: number }).exitCode === 4, String(err));
      assert.deepEqual(c.requests, [], 'no request made');
    } finally {
      await c.close();
    }
  });
});
