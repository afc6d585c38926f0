/**
 * A watcher started on a mailbox nobody has sent to yet (the registry does not know the
 * repository) waits quietly at its normal interval: no poll error, no back-off, one note; the
 * first message sent there is delivered. On docker-registry and comms serve.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { OciLayout, send, watch } from '../../src/index.ts';
import { collect, spawnComms } from '../support/cli.ts';
import { backendKinds, countingRepo, startBackend, type Backend } from '../support/referrers-backends.ts';
import { tempDir } from '../support/tools.ts';

for (const kind of backendKinds()) {
  describe(`watch on a mailbox that does not exist yet, on ${kind}`, () => {
    let backend: Backend;
    before(async () => {
      backend = await startBackend(kind);
    });
    after(async () => {
      await backend?.stop();
    });

    it('polls at its interval without errors or back-off until the mailbox appears, then delivers', async () => {
      const ref = backend.freshRepo('missing');
      const watcher = countingRepo(ref);
      const sender = countingRepo(ref);
      const out = await tempDir('comms-watch-missing-');
      const ac = new AbortController();
      const pollErrors: unknown[] = [];
      let missingNotes = 0;
      try {
        const items = watch({
          repository: watcher.repo,
          me: 'me',
          outDir: join(out.path, 'in'),
          stateFile: join(out.path, 'state.json'),
          verify: false,
          intervalMs: 100,
          maxBackoffMs: 60_000,
          signal: ac.signal,
          onMailboxMissing: () => missingNotes++,
          onPollError: (e) => pollErrors.push(e),
        });
        const sent = (async () => {
          // Send once the watcher has listed 8 times, or after 10 s. At a steady 100 ms interval that takes about
          // 0.8 s; with back-off (100 ms doubling) the 8th listing would only come after 12.7 s, so a wide margin
          // for a slow machine still tells the two apart.
          const deadline = Date.now() + 10_000;
          while (watcher.count('GET', /\/tags\/list$/) < 8 && Date.now() < deadline) await delay(50);
          return send({ unsigned: true, repository: sender.repo, recipient: 'me', sender: 'alice', input: { text: 'first' } });
        })();
        const first = await items.next();
        const s = await sent;
        ac.abort();
        await items.return(undefined);
        assert.ok(!first.done && !('error' in first.value), 'a message was delivered');
        assert.equal(first.value.digest, s.digest);
        assert.deepEqual(pollErrors, [], 'no poll error while the mailbox was missing');
        assert.equal(missingNotes, 1, 'one note for the missing mailbox');
        const listings = watcher.count('GET', /\/tags\/list$/);
        assert.ok(listings >= 8, `polled at the normal interval while waiting (${listings} listings before the send)`);
      } finally {
        ac.abort();
        await watcher.close();
        await sender.close();
        await out.cleanup();
      }
    });
  });
}

describe('recv --watch on an oci: folder that does not exist yet', () => {
  it('says so once, waits at --interval, and delivers the first message sent there; Ctrl-C ends it with 0', async () => {
    const dir = await tempDir('comms-watch-missing-oci-');
    try {
      const box = join(dir.path, 'box');
      const child = spawnComms([
        'recv',
        '--watch',
        '--repo',
        `oci:${box}`,
        '--me',
        'me',
        '--out',
        join(dir.path, 'in'),
        '--no-verify',
        '--json',
        '--interval',
        '100ms',
        '--state-file',
        join(dir.path, 'state.json'),
      ]);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (b: Buffer) => void (stdout += b.toString()));
      child.stderr!.on('data', (b: Buffer) => void (stderr += b.toString()));
      const done = collect(child, 180_000);
      const until = async (what: () => boolean, label: string) => {
        for (let i = 0; i < 1200 && !what(); i++) await delay(100);
        assert.ok(what(), `${label}; stderr: ${stderr}`);
      };
      await until(() => stderr.includes('does not exist yet'), 'the watcher noted the missing folder');
      await delay(1000); // several polls of the missing folder
      const sent = await send({
        unsigned: true,
        repository: await OciLayout.open(box, { create: true }),
        recipient: 'me',
        sender: 'alice',
        input: { text: 'first' },
      });
      await until(() => stdout.includes(sent.digest), 'the first message was delivered');
      child.kill('SIGINT');
      const r = await done;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr.split('does not exist yet').length - 1, 1, 'one note');
      assert.doesNotMatch(r.stderr, /poll failed/);
    } finally {
      await dir.cleanup();
    }
  });
});
