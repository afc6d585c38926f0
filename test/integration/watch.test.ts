/**
 * watch: messages sent while a watcher runs are each delivered exactly
 * once, also across a restart of the watcher with the same state file (only the new ones come);
 * the library's watch() stops on its AbortSignal, `comms recv --watch` stops cleanly (exit 0) on
 * SIGINT; and a poll that fails because the registry died backs off and recovers once the
 * registry is back. Run on docker-registry and comms serve.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { send, watch, type ReceivedMessage, type ReceiveFailure } from '../../src/index.ts';
import type { Repository } from '../../src/oci/target.ts';
import { backendKinds, countingRepo, startBackend, type Backend, type CountingRepo } from '../support/referrers-backends.ts';
import { spawnComms } from '../support/cli.ts';
import { tempDir, type TempDir } from '../support/tools.ts';

/** How long a condition may take before the test calls it broken (not a timing assertion). */
const PATIENCE_MS = 60_000;

/** Resolves once `cond()` holds, checking every 20 ms; rejects after PATIENCE_MS naming `what`. */
async function eventually(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + PATIENCE_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface RunningWatcher {
  delivered: ReceivedMessage[];
  failures: ReceiveFailure[];
  pollErrors: { error: unknown; retryInMs: number }[];
  /** Aborts the watcher and waits for its loop to end. */
  stop(): Promise<void>;
}

/** Runs the library's watch() in the background, collecting what it yields. */
function startWatcher(repo: Repository, outDir: string, stateFile: string, extra: { intervalMs?: number; maxBackoffMs?: number } = {}): RunningWatcher {
  const controller = new AbortController();
  const w: RunningWatcher = { delivered: [], failures: [], pollErrors: [], stop: async () => {} };
  const loop = (async () => {
    for await (const item of watch({
      repository: repo,
      me: 'bob',
      outDir,
      verify: false,
      stateFile,
      intervalMs: extra.intervalMs ?? 100,
      maxBackoffMs: extra.maxBackoffMs,
      signal: controller.signal,
      onPollError: (error, retryInMs) => w.pollErrors.push({ error, retryInMs }),
    })) {
      if ('error' in item) w.failures.push(item);
      else w.delivered.push(item);
    }
  })();
  w.stop = async () => {
    controller.abort();
    await loop;
  };
  return w;
}

/** Sends a text from alice to bob. */
async function sendText(repo: Repository, text: string) {
  return send({ unsigned: true, repository: repo, recipient: 'bob', sender: 'alice', input: { text, filename: `${text}.txt` } });
}

/** Waits until the watcher has listed tags `n` more times (so `n` more polls saw the repository). */
async function morePolls(c: CountingRepo, n: number): Promise<void> {
  const start = c.count('GET', /\/tags\/list$/);
  await eventually(() => c.count('GET', /\/tags\/list$/) >= start + n, `${n} more polls`);
}

const digestsOf = (items: { digest: string }[]) => items.map((m) => m.digest);

for (const kind of backendKinds()) {
  describe(`watch on ${kind}`, () => {
    let backend: Backend;
    before(async () => {
      backend = await startBackend(kind);
    });
    after(async () => {
      await backend?.stop();
    });

    it('library watch(): each message sent while it runs is delivered once; a restart with the same state file delivers only new ones', async () => {
      const ref = backend.freshRepo('watch');
      const sender = countingRepo(ref);
      const c = countingRepo(ref);
      const out: TempDir = await tempDir('comms-watch-');
      const stateFile = join(out.path, 'state', 'watch.json');
      try {
        const before = await sendText(sender.repo, 'before');
        let w = startWatcher(c.repo, out.path, stateFile);
        // A message already waiting is delivered on the first poll.
        await eventually(() => w.delivered.length === 1, 'the waiting message');
        const m1 = await sendText(sender.repo, 'first');
        await eventually(() => w.delivered.length === 2, 'the first message sent while watching');
        const [m2, m3] = [await sendText(sender.repo, 'second'), await sendText(sender.repo, 'third')];
        await eventually(() => w.delivered.length >= 4, 'two more messages');
        // Several more polls over the same tags deliver nothing again.
        await morePolls(c, 3);
        await w.stop();
        assert.deepEqual(digestsOf(w.delivered).sort(), [before, m1, m2, m3].map((m) => m.digest).sort());
        assert.deepEqual(w.failures, []);

        // Stopped: two more arrive; a new watcher on the same state file delivers those two only.
        const [m4, m5] = [await sendText(sender.repo, 'fourth'), await sendText(sender.repo, 'fifth')];
        w = startWatcher(c.repo, out.path, stateFile);
        await eventually(() => w.delivered.length >= 2, 'the two sent while stopped');
        await morePolls(c, 3);
        const m6 = await sendText(sender.repo, 'sixth');
        await eventually(() => w.delivered.length >= 3, 'the one sent after the restart');
        await morePolls(c, 3);
        await w.stop();
        assert.deepEqual(digestsOf(w.delivered).sort(), [m4, m5, m6].map((m) => m.digest).sort());

        // On disk: each message once (a duplicate delivery would have made `name-1.txt`).
        const files = (await readdir(out.path)).filter((f) => f.endsWith('.txt')).sort();
        assert.deepEqual(files, ['before.txt', 'fifth.txt', 'first.txt', 'fourth.txt', 'second.txt', 'sixth.txt', 'third.txt']);
        assert.equal(await readFile(join(out.path, 'sixth.txt'), 'utf8'), 'sixth');
      } finally {
        await sender.close();
        await c.close();
        await out.cleanup();
      }
    });

    it('comms recv --watch: delivers each new message once, exits 0 on SIGINT, and a restart delivers only what came meanwhile', async () => {
      const ref = backend.freshRepo('cliwatch');
      const sender = countingRepo(ref);
      const out = await tempDir('comms-cli-watch-');
      const stateHome = await tempDir('comms-cli-watch-state-');
      try {
        const args = ['recv', '--watch', '--interval', '200ms', '--repo', ref, '--me', 'bob', '--out', out.path, '--no-verify', '--json', '--plain-http'];
        const run = async (expect: { digest: string }[], sendWhileRunning: () => Promise<{ digest: string }[]>) => {
          const child = spawnComms(args, { env: { XDG_STATE_HOME: stateHome.path } });
          const lines: Record<string, unknown>[] = [];
          let stderr = '';
          child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
          createInterface({ input: child.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
          const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
            child.once('exit', (code, signal) => resolve({ code, signal })),
          );
          try {
            await eventually(() => lines.length >= expect.length, `the watcher to deliver ${expect.length} waiting message(s); stderr: ${stderr}`);
            const more = await sendWhileRunning();
            await eventually(() => lines.length >= expect.length + more.length, `the watcher to deliver what was sent while it ran; stderr: ${stderr}`);
            // Let it poll a few more times (a second delivery would show up as an extra line).
            await new Promise((r) => setTimeout(r, 1000));
            child.kill('SIGINT');
            const end = await exited;
            assert.deepEqual(end, { code: 0, signal: null }, `a clean stop on SIGINT; stderr: ${stderr}`);
            assert.deepEqual(lines.map((l) => l['digest']).sort(), [...expect, ...more].map((m) => m.digest).sort());
          } finally {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          }
        };
        const waiting = await sendText(sender.repo, 'waiting');
        await run([waiting], async () => [await sendText(sender.repo, 'live')]);
        const meanwhile = await sendText(sender.repo, 'meanwhile');
        await run([meanwhile], async () => []);
        const files = (await readdir(out.path)).filter((f) => f.endsWith('.txt')).sort();
        assert.deepEqual(files, ['live.txt', 'meanwhile.txt', 'waiting.txt']);
        // The record of what was delivered is kept outside --out, one file for this --out/--repo/--me.
        assert.deepEqual((await readdir(out.path)).sort(), files);
        assert.equal((await readdir(join(stateHome.path, 'comms', 'watch'))).length, 1);
      } finally {
        await sender.close();
        await out.cleanup();
        await stateHome.cleanup();
      }
    });

    if (kind === 'docker-registry') {
      it('a poll error (registry killed) backs off, and the watcher recovers when the registry is back', async () => {
        const registry = backend.registry!;
        const ref = backend.freshRepo('fault');
        const sender = countingRepo(ref);
        // One attempt per request: the watcher's own back-off is what is under test here.
        const c = countingRepo(ref, { retry: { maxAttempts: 1 } });
        const out = await tempDir('comms-watch-fault-');
        try {
          const m1 = await sendText(sender.repo, 'before-crash');
          const w = startWatcher(c.repo, out.path, join(out.path, 'state', 'watch.json'), { intervalMs: 100, maxBackoffMs: 800 });
          await eventually(() => w.delivered.length === 1, 'the first message');
          await registry.kill();
          await eventually(() => w.pollErrors.length >= 3, 'three failed polls');
          await registry.restart();
          const m2 = await sendText(sender.repo, 'after-restart');
          await eventually(() => w.delivered.length === 2, 'the message sent after the restart');
          await morePolls(c, 2);
          await w.stop();
          assert.deepEqual(digestsOf(w.delivered), [m1.digest, m2.digest]);
          // Back-off: every retry waits longer than the poll interval, growing to the ceiling.
          const waits = w.pollErrors.map((e) => e.retryInMs);
          assert.ok(
            waits.every((ms) => ms > 100 && ms <= 800),
            `waits ${waits}`,
          );
          for (let i = 1; i < waits.length; i++) assert.ok(waits[i]! >= waits[i - 1]!, `waits grow: ${waits}`);
          assert.equal(waits.at(-1), 800, `reaches the ceiling: ${waits}`);
        } finally {
          await sender.close();
          await c.close();
          await out.cleanup();
        }
      });
    }
  });
}
