/**
 * Expiry: a message whose created_at + ttl_seconds lies more than 5 minutes (the clock-skew
 * allowance) in the past is not delivered by receive, watch or the library waits, on docker-registry,
 * comms serve and an oci: folder; includeExpired brings it back. `send --ttl` takes durations.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ack, loadKeySigner, OciLayout, receive, send, TimeoutError, waitForReceipt, watch } from '../../src/index.ts';
import { backendKinds, mailboxFixture } from '../support/referrers-backends.ts';
import { runComms, TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { tempDir } from '../support/tools.ts';

const HOUR = 3600;
const ago = (ms: number) => () => new Date(Date.now() - ms);

type Kind = 'docker-registry' | 'comms-serve' | 'oci';
const kinds: Kind[] = [...backendKinds(), 'oci'];

for (const kind of kinds) {
  describe(`expiry on ${kind}`, () => {
    const { freshRepo, scratch } = mailboxFixture(kind, 'expiry');

    it('receive passes over a message expired beyond the 5-minute skew, delivers one within it, and includeExpired delivers both', async () => {
      const { repo } = await freshRepo();
      const signer = await loadKeySigner(TEST_KEY);
      const policy = { trustedKeys: [await readFile(TEST_PUB, 'utf8')] };
      // Expired an hour ago; expired 2 minutes ago (inside the skew allowance); fresh.
      const old = await send({
        repository: repo,
        recipient: 'me',
        sender: 'alice',
        input: { text: 'old', filename: 'old.txt' },
        ttlSeconds: HOUR,
        now: ago(2 * HOUR * 1000),
        signer,
      });
      const edge = await send({
        repository: repo,
        recipient: 'me',
        sender: 'alice',
        input: { text: 'edge', filename: 'edge.txt' },
        ttlSeconds: HOUR,
        now: ago(HOUR * 1000 + 120_000),
        signer,
      });
      const fresh = await send({
        repository: repo,
        recipient: 'me',
        sender: 'alice',
        input: { text: 'fresh', filename: 'fresh.txt' },
        ttlSeconds: HOUR,
        signer,
      });
      const out = await tempDir('comms-expiry-out-');
      try {
        const r = await receive({ repository: repo, me: 'me', outDir: out.path, verify: policy });
        assert.deepEqual(r.failures, []);
        assert.deepEqual(new Set(r.messages.map((m) => m.digest)), new Set([edge.digest, fresh.digest]));
        const all = await receive({ repository: repo, me: 'me', outDir: join(out.path, 'all'), verify: policy, includeExpired: true });
        assert.deepEqual(new Set(all.messages.map((m) => m.digest)), new Set([old.digest, edge.digest, fresh.digest]));
      } finally {
        await out.cleanup();
      }
    });

    it('watch never delivers an expired message', async () => {
      const { repo } = await freshRepo();
      const old = await send({
        unsigned: true,
        repository: repo,
        recipient: 'me',
        sender: 'alice',
        input: { text: 'old' },
        ttlSeconds: 60,
        now: ago(HOUR * 1000),
      });
      const fresh = await send({ unsigned: true, repository: repo, recipient: 'me', sender: 'alice', input: { text: 'fresh' } });
      const out = await tempDir('comms-expiry-watch-');
      const state = await tempDir('comms-expiry-state-');
      const ac = new AbortController();
      const seen: string[] = [];
      try {
        let polls = 0;
        for await (const item of watch({
          repository: repo,
          me: 'me',
          outDir: out.path,
          verify: false,
          intervalMs: 50,
          stateFile: join(state.path, 's.json'),
          signal: ac.signal,
          now: () => {
            polls++;
            return new Date();
          },
        })) {
          seen.push(item.digest ?? item.tag);
          if (item.digest === fresh.digest) {
            // Let it poll a few more times: the expired one must still not come.
            setTimeout(() => ac.abort(), 400);
          }
        }
        assert.ok(polls >= 2, `watch polled ${polls} times`);
        assert.deepEqual(seen, [fresh.digest]);
        assert.ok(!seen.includes(old.digest));
      } finally {
        ac.abort();
        await out.cleanup();
        await state.cleanup();
      }
    });

    it('waitForReceipt is not ended by an expired receipt, and is by a live one', async () => {
      const { repo } = await freshRepo();
      const m = await send({ unsigned: true, repository: repo, recipient: 'bob', sender: 'alice', input: { text: 'question' } });
      await ack({ unsigned: true, repository: repo, forDigest: m.digest, status: 'accepted', sender: 'bob', ttlSeconds: 60, now: ago(HOUR * 1000) });
      await assert.rejects(waitForReceipt(repo, m.digest, { allowUnverified: true, timeoutMs: 600, intervalMs: 100 }), TimeoutError);
      const live = await ack({ unsigned: true, repository: repo, forDigest: m.digest, status: 'accepted', sender: 'bob' });
      const got = await waitForReceipt(repo, m.digest, { allowUnverified: true, timeoutMs: 30_000, intervalMs: 100 });
      assert.equal(got.descriptor.digest, live.digest);
    });

    if (kind === 'oci') {
      it('send --ttl takes a duration (1h → ttl_seconds 3600, 7d → 604800); --ttl with --ttl-seconds, or a malformed --ttl, is refused before anything is written', async () => {
        const dir = join(scratch(), 'cli');
        const sent = await runComms(['send', '--repo', `oci:${dir}`, '--to', 'me', '--no-sign', '--json', '-m', 'hi', '--ttl', '1h']);
        assert.equal(sent.code, 0, sent.stderr);
        const week = await runComms(['send', '--repo', `oci:${dir}`, '--to', 'me', '--no-sign', '--json', '-m', 'hi', '--ttl', '7d']);
        assert.equal(week.code, 0, week.stderr);
        const layout = await OciLayout.open(dir);
        const ttlOf = async (digest: unknown) =>
          (JSON.parse(new TextDecoder().decode((await layout.fetchManifest(String(digest))).bytes)) as { annotations: Record<string, string> }).annotations[
            'dockercomms.ttl_seconds'
          ];
        assert.equal(await ttlOf(sent.json[0]!['digest']), '3600');
        assert.equal(await ttlOf(week.json[0]!['digest']), '604800');
        const both = await runComms([
          'send',
          '--repo',
          `oci:${join(scratch(), 'both')}`,
          '--to',
          'me',
          '--no-sign',
          '-m',
          'hi',
          '--ttl',
          '1h',
          '--ttl-seconds',
          '60',
        ]);
        assert.equal(both.code, 4, both.stderr);
        assert.match(both.stderr, /--ttl and --ttl-seconds/);
        const bad = await runComms(['send', '--repo', `oci:${join(scratch(), 'bad')}`, '--to', 'me', '--no-sign', '-m', 'hi', '--ttl', '1 fortnight']);
        assert.equal(bad.code, 4, bad.stderr);
        assert.match(bad.stderr, /--ttl: "1 fortnight" is not a time to live/);
      });

      it('recv passes over an expired message; recv --include-expired delivers it', async () => {
        const dir = join(scratch(), 'cli-recv');
        const repo = await OciLayout.open(dir, { create: true });
        const old = await send({
          unsigned: true,
          repository: repo,
          recipient: 'me',
          sender: 'alice',
          input: { text: 'old' },
          ttlSeconds: 60,
          now: ago(HOUR * 1000),
        });
        const out = await tempDir('comms-expiry-cli-');
        try {
          const plain = await runComms(['recv', '--repo', `oci:${dir}`, '--me', 'me', '--out', join(out.path, 'a'), '--no-verify', '--json']);
          assert.equal(plain.code, 0, plain.stderr);
          assert.deepEqual(plain.json, []);
          const all = await runComms([
            'recv',
            '--repo',
            `oci:${dir}`,
            '--me',
            'me',
            '--out',
            join(out.path, 'b'),
            '--no-verify',
            '--json',
            '--include-expired',
          ]);
          assert.equal(all.code, 0, all.stderr);
          assert.deepEqual(
            all.json.map((j) => j['digest']),
            [old.digest],
          );
        } finally {
          await out.cleanup();
        }
      });
    }
  });
}
