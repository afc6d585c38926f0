/**
 * messages go out and come back byte for byte, through a real
 * docker-registry (plain HTTP on loopback) and through an OCI layout folder, gzip and zstd, at
 * the edges of chunking (0 bytes, 1 byte, exactly one chunk, one chunk + 1) and at 1 GiB in
 * 64 MiB chunks; every message signed with the test key and verified against it (the default
 * path). The CLI does one round trip each way with --json checked; then recv's selection rules:
 * --since (with v1.0's 5 minutes of skew), --max (oldest first), dedupe of a message tagged
 * twice or sent twice with one id, name conflicts (suffix, or --no-clobber: exit 1, nothing
 * touched), --message text and stdin.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadKeySigner, openRepository, receive, send, type MessageSigner, type Repository } from '../../src/index.ts';
import { inboxPrefix, inboxTag } from '../../src/protocol/tags.ts';
import { runComms, TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { sha256File, sha256Hex, writeMixedFile } from '../support/messages-data.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { requireTool, skipMessage, tempDir, type TempDir } from '../support/tools.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const SMALL_CHUNK = 64 * KiB;
const BIG_CHUNK = 64 * MiB;
/**
 * The 1 GiB cases use the default levels (gzip 6, zstd 3): the four took 2.3–2.7 minutes on the
 * shared 2-core machine (level 1 saved only ~15 s, the random quarter of the data costs gzip the
 * same at every level). Should they grow past ~3 minutes, set level 1 here.
 */
const BIG_LEVEL: number | undefined = undefined;
const COMPRESSIONS = ['gzip', 'zstd'] as const;
const SMALL_SIZES: { name: string; bytes: number; chunks: number }[] = [
  { name: '0 bytes', bytes: 0, chunks: 0 },
  { name: '1 byte', bytes: 1, chunks: 1 },
  { name: 'exactly one chunk', bytes: SMALL_CHUNK, chunks: 1 },
  { name: 'one chunk + 1 byte', bytes: SMALL_CHUNK + 1, chunks: 2 },
];

/** Arguments that make a CLI recv verify against the test key, as a user would. */
const VERIFY_ARGS = ['--trusted-key', TEST_PUB];

if (!requireTool('docker-registry')) {
  it('message round trips', (t) => t.skip(skipMessage('docker-registry')));
} else {
  describe('message round trips', () => {
    let registry: RegistryServer;
    let work: TempDir;
    let signer: MessageSigner;
    let trustedKey: string;
    let layoutCount = 0;

    before(async () => {
      [registry, work, signer, trustedKey] = await Promise.all([
        startRegistry({ mode: 'plain' }),
        tempDir('comms-msg-rt-'),
        loadKeySigner(TEST_KEY),
        readFile(TEST_PUB, 'utf8'),
      ]);
    });
    after(async () => {
      await registry?.stop();
      await work?.cleanup();
    });

    /** The two kinds of mailbox, as `--repo` strings. */
    const targets: { name: string; ref: (repo: string) => string }[] = [
      { name: 'docker-registry', ref: (repo) => `${registry.host}/${repo}` },
      { name: 'oci layout', ref: (repo) => `oci:${join(work.path, `layout-${repo}-${layoutCount++}`)}` },
    ];

    const verify = () => ({ trustedKeys: [trustedKey] });

    /** A fresh, empty folder under the suite's temp folder. */
    let dirCount = 0;
    async function freshDir(name: string): Promise<string> {
      const dir = join(work.path, `${name}-${dirCount++}`);
      await mkdir(dir, { recursive: true });
      return dir;
    }

    /** Sends `file` signed, receives it verified into a fresh folder; returns both results. */
    async function roundTrip(repo: Repository, file: string, recipient: string, opts: { compression: 'gzip' | 'zstd'; chunkBytes: number; level?: number }) {
      const sent = await send({ repository: repo, recipient, input: { path: file }, sender: 'alice@example.com', signer, ...opts });
      const out = await freshDir('out');
      const got = await receive({ repository: repo, me: recipient, outDir: out, verify: verify() });
      assert.deepEqual(got.failures, []);
      assert.equal(got.messages.length, 1, 'exactly the message sent is received');
      const m = got.messages[0]!;
      assert.equal(m.digest, sent.digest);
      assert.equal(m.verified?.kind, 'key', 'the signature was verified against the trusted key');
      return { sent, received: m, out };
    }

    for (const target of targets) {
      for (const compression of COMPRESSIONS) {
        for (const size of SMALL_SIZES) {
          it(`${target.name}, ${compression}: ${size.name} arrives with the same sha256`, async () => {
            const file = join(await freshDir('src'), `payload-${size.bytes}.bin`);
            const payload = randomBytes(size.bytes);
            await writeFile(file, payload);
            const repo = await openRepository(target.ref('small'), { create: true });
            const recipient = `rt-${target.name}-${compression}-${size.bytes}`;
            const { sent, received } = await roundTrip(repo, file, recipient, { compression, chunkBytes: SMALL_CHUNK });
            assert.equal(sent.bytes, size.bytes);
            assert.equal(sent.chunks, size.chunks);
            assert.equal(sent.compression, compression);
            assert.ok(sent.bundle, 'the message was signed');
            assert.equal(received.filename, `payload-${size.bytes}.bin`);
            assert.equal(received.bytes, size.bytes);
            assert.equal(await sha256File(received.path), sha256Hex(payload));
          });
        }
      }
    }

    describe('1 GiB in 64 MiB chunks', () => {
      let bigDir: string;
      let bigFile: string;
      let bigSha: string;
      before(async () => {
        bigDir = await freshDir('big');
        bigFile = join(bigDir, 'big.bin');
        bigSha = await writeMixedFile(bigFile, GiB);
      });
      after(async () => {
        if (bigDir !== undefined) await rm(bigDir, { recursive: true, force: true });
      });

      for (const target of targets) {
        for (const compression of COMPRESSIONS) {
          it(`${target.name}, ${compression}: 1 GiB arrives with the same sha256`, async (t) => {
            const started = Date.now();
            const ref = target.ref('big');
            const repo = await openRepository(ref, { create: true });
            const { sent, received, out } = await roundTrip(repo, bigFile, `big-${compression}`, { compression, chunkBytes: BIG_CHUNK, level: BIG_LEVEL });
            try {
              assert.equal(sent.bytes, GiB);
              assert.equal(sent.chunks, 16);
              assert.equal(received.bytes, GiB);
              assert.equal((await stat(received.path)).size, GiB);
              assert.equal(await sha256File(received.path), bigSha);
            } finally {
              await rm(out, { recursive: true, force: true });
              // The layout's ~0.5 GiB of layers is not needed again; the registry's goes with it.
              if (ref.startsWith('oci:')) await rm(ref.slice(4), { recursive: true, force: true });
            }
            t.diagnostic(`1 GiB ${compression} via ${target.name}: ${((Date.now() - started) / 1000).toFixed(1)} s send + receive`);
          });
        }
      }
    });

    describe('the CLI', () => {
      it('send --json reports digest, tag, bytes and chunks; recv --json reports digest, filename, path, bytes and sender (docker-registry)', async () => {
        const src = await freshDir('cli-src');
        const file = join(src, 'report.csv');
        const payload = randomBytes(150 * KiB);
        await writeFile(file, payload);
        const repo = `${registry.host}/cli`;
        const s = await runComms([
          'send',
          file,
          '--repo',
          repo,
          '--recipient',
          'carol',
          '--sender',
          'alice',
          '--key',
          TEST_KEY,
          '--chunk-bytes',
          '64KiB',
          '--compress',
          'zstd',
          '--json',
        ]);
        assert.equal(s.code, 0, s.stderr);
        assert.equal(s.json.length, 1);
        const sent = s.json[0]!;
        assert.match(String(sent['digest']), /^sha256:[0-9a-f]{64}$/);
        assert.match(String(sent['tag']), new RegExp(`^${inboxPrefix('carol')}\\d{8}-[0-9a-f]{8}-[0-9a-f]{8}$`));
        assert.equal(sent['bytes'], payload.length);
        assert.equal(sent['chunks'], 3);
        assert.equal(sent['compression'], 'zstd');
        assert.equal(sent['signed'], true);

        const out = await freshDir('cli-out');
        const r = await runComms(['recv', '--repo', repo, '--me', 'carol', '--out', out, ...VERIFY_ARGS, '--json']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.json.length, 1);
        const got = r.json[0]!;
        assert.equal(got['digest'], sent['digest']);
        assert.equal(got['tag'], sent['tag']);
        assert.equal(got['filename'], 'report.csv');
        assert.equal(got['path'], join(out, 'report.csv'));
        assert.equal(got['bytes'], payload.length);
        assert.equal(got['sender'], 'alice');
        assert.equal((got['verified'] as { kind: string }).kind, 'key');
        assert.equal(await sha256File(join(out, 'report.csv')), sha256Hex(payload));
      });

      it('the same round trip through an OCI layout folder', async () => {
        const src = await freshDir('cli-src');
        const file = join(src, 'one.bin');
        await writeFile(file, 'x');
        const repo = `oci:${await freshDir('cli-layout')}`;
        const s = await runComms(['send', file, '--repo', repo, '--to', 'dave', '--sender', 'alice', '--key', TEST_KEY, '--json']);
        assert.equal(s.code, 0, s.stderr);
        assert.equal(s.json[0]!['chunks'], 1);
        assert.equal(s.json[0]!['bytes'], 1);
        const out = await freshDir('cli-out');
        const r = await runComms(['recv', '--repo', repo, '--me', 'dave', '--out', out, ...VERIFY_ARGS, '--json']);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(
          r.json.map((j) => [j['digest'], j['filename'], j['bytes'], j['sender']]),
          [[s.json[0]!['digest'], 'one.bin', 1, 'alice']],
        );
        assert.equal(await readFile(join(out, 'one.bin'), 'utf8'), 'x');
      });

      it('--message sends the text as message.txt', async () => {
        const repo = `oci:${await freshDir('cli-layout')}`;
        const text = 'build 42 passed ✓ <ok> & done\n';
        const s = await runComms(['send', '--message', text, '--repo', repo, '--to', 'ci', '--key', TEST_KEY, '--json']);
        assert.equal(s.code, 0, s.stderr);
        assert.equal(s.json[0]!['bytes'], Buffer.byteLength(text));
        const out = await freshDir('cli-out');
        const r = await runComms(['recv', '--repo', repo, '--me', 'ci', '--out', out, ...VERIFY_ARGS, '--json']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.json[0]!['filename'], 'message.txt');
        assert.equal(await readFile(join(out, 'message.txt'), 'utf8'), text);
      });

      it('- sends stdin (as stdin.bin, or the --filename given), chunked like a file', async () => {
        const repo = `${registry.host}/stdin`;
        const payload = randomBytes(2 * SMALL_CHUNK + 5);
        const a = await runComms(['send', '-', '--repo', repo, '--to', 'erin', '--key', TEST_KEY, '--chunk-bytes', String(SMALL_CHUNK), '--json'], {
          stdin: payload,
        });
        assert.equal(a.code, 0, a.stderr);
        assert.equal(a.json[0]!['bytes'], payload.length);
        assert.equal(a.json[0]!['chunks'], 3);
        const b = await runComms(['send', '-', '--filename', 'notes.txt', '--repo', repo, '--to', 'erin', '--key', TEST_KEY, '--json'], { stdin: 'piped\n' });
        assert.equal(b.code, 0, b.stderr);
        const out = await freshDir('cli-out');
        const r = await runComms(['recv', '--repo', repo, '--me', 'erin', '--out', out, ...VERIFY_ARGS, '--json']);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.json.map((j) => j['filename']).sort(), ['notes.txt', 'stdin.bin']);
        assert.equal(await sha256File(join(out, 'stdin.bin')), sha256Hex(payload));
        assert.equal(await readFile(join(out, 'notes.txt'), 'utf8'), 'piped\n');
      });
    });

    describe("recv's selection rules", () => {
      /** Sends a small text message created at `at`. */
      async function sendAt(repo: Repository, recipient: string, text: string, at: Date, extra: { messageId?: string; sessionId?: string } = {}) {
        return send({ repository: repo, recipient, input: { text, filename: `${text}.txt` }, sender: 'alice', signer, now: () => at, ...extra });
      }

      it('--since keeps what was created since then, less 5 minutes of clock skew', async () => {
        const repoRef = `oci:${await freshDir('since-layout')}`;
        const repo = await openRepository(repoRef, { create: true });
        const since = new Date(Date.now() - 60 * 60 * 1000);
        await sendAt(repo, 'frank', 'old', new Date(since.getTime() - 10 * 60 * 1000));
        await sendAt(repo, 'frank', 'skewed', new Date(since.getTime() - 3 * 60 * 1000));
        await sendAt(repo, 'frank', 'new', new Date());
        const out = await freshDir('since-out');
        const r = await runComms(['recv', '--repo', repoRef, '--me', 'frank', '--out', out, '--since', since.toISOString(), ...VERIFY_ARGS, '--json']);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.json.map((j) => j['filename']).sort(), ['new.txt', 'skewed.txt']);
        assert.deepEqual((await readdir(out)).sort(), ['new.txt', 'skewed.txt']);
        // A duration works the same way.
        const out2 = await freshDir('since-out');
        const r2 = await runComms(['recv', '--repo', repoRef, '--me', 'frank', '--out', out2, '--since', '1h', ...VERIFY_ARGS, '--json']);
        assert.equal(r2.code, 0, r2.stderr);
        assert.deepEqual(r2.json.map((j) => j['filename']).sort(), ['new.txt', 'skewed.txt']);
      });

      it('--max N receives the N oldest', async () => {
        const repoRef = `${registry.host}/max`;
        const repo = await openRepository(repoRef);
        const t0 = Date.now() - 60_000;
        await sendAt(repo, 'grace', 'third', new Date(t0 + 3000));
        await sendAt(repo, 'grace', 'first', new Date(t0 + 1000));
        await sendAt(repo, 'grace', 'second', new Date(t0 + 2000));
        const out = await freshDir('max-out');
        const r = await runComms(['recv', '--repo', repoRef, '--me', 'grace', '--out', out, '--max', '2', ...VERIFY_ARGS, '--json']);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(
          r.json.map((j) => j['filename']),
          ['first.txt', 'second.txt'],
        );
        assert.deepEqual((await readdir(out)).sort(), ['first.txt', 'second.txt']);
      });

      it('a message tagged twice, or sent twice with one message id, is delivered once', async () => {
        const repoRef = `${registry.host}/dedupe`;
        const repo = await openRepository(repoRef);
        const once = await sendAt(repo, 'heidi', 'twice-tagged', new Date());
        // The same manifest under a second inbox tag of the same recipient (another session id).
        const m = await repo.fetchManifest(once.tag);
        const secondTag = inboxTag({ recipient: 'heidi', date: new Date(), sessionId: 'ffffffff-0000-4000-8000-000000000000', messageId: once.messageId });
        assert.notEqual(secondTag, once.tag);
        await repo.pushManifest(m.descriptor, m.bytes, secondTag);
        // One message id, two different manifests (created a second apart).
        const id = '0b5e8c1e-3c1a-4f7e-9d2a-6a1f00000001';
        const a = await sendAt(repo, 'heidi', 'same-id', new Date(Date.now() - 2000), { messageId: id });
        const b = await sendAt(repo, 'heidi', 'same-id', new Date(Date.now() - 1000), { messageId: id });
        assert.notEqual(a.digest, b.digest);

        const out = await freshDir('dedupe-out');
        const got = await receive({ repository: repo, me: 'heidi', outDir: out, verify: verify() });
        assert.deepEqual(got.failures, []);
        assert.equal(got.messages.filter((x) => x.digest === once.digest).length, 1);
        assert.equal(got.messages.filter((x) => x.messageId === id).length, 1);
        assert.equal(got.messages.length, 2);
        assert.deepEqual((await readdir(out)).sort(), ['same-id.txt', 'twice-tagged.txt']);
      });

      it('an existing file is never overwritten: the message gets name-1.ext; with --no-clobber recv fails (exit 1) and touches nothing', async () => {
        const repoRef = `oci:${await freshDir('clobber-layout')}`;
        const repo = await openRepository(repoRef, { create: true });
        await sendAt(repo, 'ivan', 'report', new Date());
        const out = await freshDir('clobber-out');
        await writeFile(join(out, 'report.txt'), 'mine, keep me');

        const strict = await runComms(['recv', '--repo', repoRef, '--me', 'ivan', '--out', out, '--no-clobber', ...VERIFY_ARGS, '--json']);
        assert.equal(strict.code, 1, strict.stderr);
        assert.equal(JSON.parse(strict.stderr.trim().split('\n').at(-1)!).error.code, 'FILE_EXISTS');
        assert.deepEqual(await readdir(out), ['report.txt']);
        assert.equal(await readFile(join(out, 'report.txt'), 'utf8'), 'mine, keep me');

        const r = await runComms(['recv', '--repo', repoRef, '--me', 'ivan', '--out', out, ...VERIFY_ARGS, '--json']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.json[0]!['path'], join(out, 'report-1.txt'));
        assert.equal(await readFile(join(out, 'report.txt'), 'utf8'), 'mine, keep me');
        assert.equal(await readFile(join(out, 'report-1.txt'), 'utf8'), 'report');
        assert.deepEqual((await readdir(out)).sort(), ['report-1.txt', 'report.txt']);
      });
    });
  });
}
