/**
 * OciLayout behaviour the Repository contract cannot see: the files on disk, corruption, crash
 * debris, hostile digests, the index.json lock and its stale-lock recovery.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { AbortError, CommsError, DigestMismatchError, InvalidReferenceError, NotFoundError, ProtocolError } from '../../src/errors.ts';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';
import { ANNOTATION_REF_NAME, EMPTY_JSON_BYTES, EMPTY_JSON_DIGEST, MAX_MANIFEST_BYTES, MediaType } from '../../src/oci/mediatypes.ts';

const enc = new TextEncoder();
const EMPTY: Descriptor = { mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: 2 };

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'comms-layout-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function blob(text: string): { desc: Descriptor; bytes: Uint8Array } {
  const bytes = enc.encode(text);
  return { desc: { mediaType: 'application/octet-stream', digest: digestOf(bytes), size: bytes.length }, bytes };
}

function manifest(fields: { annotations?: Record<string, string>; subject?: Descriptor; artifactType?: string } = {}): { desc: Descriptor; bytes: Uint8Array } {
  const bytes = enc.encode(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageManifest, config: EMPTY, layers: [EMPTY], ...fields }));
  return { desc: { mediaType: MediaType.ImageManifest, digest: digestOf(bytes), size: bytes.length }, bytes };
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function readJson(path: string): Promise<any> {
  return JSON.parse(await readFile(path, 'utf8'));
}

function blobFile(root: string, digest: string): string {
  const [alg, hex] = digest.split(':') as [string, string];
  return join(root, 'blobs', alg, hex);
}

/** The pid of a process that has exited (so certainly not holding anything). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  assert.ok(child.pid !== undefined);
  return child.pid;
}

describe('OciLayout on disk', () => {
  it('open without create on a missing folder is NotFoundError; create writes a spec-valid layout', async () => {
    await withDir(async (dir) => {
      const root = join(dir, 'store');
      await assert.rejects(OciLayout.open(root), NotFoundError);
      await mkdir(root);
      await assert.rejects(OciLayout.open(root), NotFoundError, 'a plain folder is not a layout');

      const layout = await OciLayout.open(root, { create: true });
      assert.equal(layout.name, `oci:${root}`);
      assert.equal(await readFile(join(root, 'oci-layout'), 'utf8'), '{"imageLayoutVersion":"1.0.0"}');
      assert.deepEqual(await readJson(join(root, 'index.json')), { schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [] });
      assert.ok((await stat(join(root, 'blobs'))).isDirectory());
      await OciLayout.open(root); // now it is one

      await writeFile(join(root, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
      await assert.rejects(OciLayout.open(root), ProtocolError);
    });
  });

  it('create keeps an existing index.json (a second creator never empties it)', async () => {
    await withDir(async (dir) => {
      const a = await OciLayout.open(dir, { create: true });
      await a.push(EMPTY, EMPTY_JSON_BYTES);
      const m = manifest({ annotations: { keep: 'me' } });
      await a.pushManifest(m.desc, m.bytes, 'kept');
      const b = await OciLayout.open(dir, { create: true });
      assert.equal((await b.resolve('kept')).digest, m.desc.digest);
    });
  });

  it('index.json holds one entry per tag and one per untagged manifest; blobs live at blobs/<alg>/<hex>', async () => {
    await withDir(async (dir) => {
      const layout = await OciLayout.open(dir, { create: true });
      await layout.push(EMPTY, EMPTY_JSON_BYTES);
      const a = manifest({ annotations: { n: 'a' } });
      const b = manifest({ annotations: { n: 'b' }, artifactType: 'application/vnd.example.b' });
      await layout.pushManifest(a.desc, a.bytes, 'v1');
      await layout.tag(a.desc, 'v1-alias');
      await layout.pushManifest(b.desc, b.bytes);

      let index = await readJson(join(dir, 'index.json'));
      assert.equal(index.schemaVersion, 2);
      assert.equal(index.mediaType, MediaType.ImageIndex);
      const summary = (idx: any): string[] =>
        idx.manifests.map((e: any) => `${e.digest}|${e.annotations?.[ANNOTATION_REF_NAME] ?? '-'}|${e.artifactType ?? '-'}`).sort();
      assert.deepEqual(summary(index), [`${a.desc.digest}|v1|-`, `${a.desc.digest}|v1-alias|-`, `${b.desc.digest}|-|application/vnd.example.b`].sort());
      for (const e of index.manifests) {
        assert.equal(e.mediaType, MediaType.ImageManifest);
        assert.deepEqual(await readFile(blobFile(dir, e.digest)), Buffer.from(e.digest === a.desc.digest ? a.bytes : b.bytes));
      }

      // Moving both of a's tags to b leaves a reachable as an untagged entry, b no longer untagged.
      await layout.tag(b.desc, 'v1');
      await layout.tag(b.desc, 'v1-alias');
      index = await readJson(join(dir, 'index.json'));
      assert.deepEqual(
        summary(index),
        [`${a.desc.digest}|-|-`, `${b.desc.digest}|v1|application/vnd.example.b`, `${b.desc.digest}|v1-alias|application/vnd.example.b`].sort(),
      );
    });
  });

  it('a blob corrupted on disk is detected by fetch and fetchManifest', async () => {
    await withDir(async (dir) => {
      const layout = await OciLayout.open(dir, { create: true });
      const { desc, bytes } = blob('precious bytes that must not change');
      await layout.push(desc, bytes);
      const flipped = Buffer.from(bytes);
      flipped[3] = flipped[3]! ^ 0xff;
      await writeFile(blobFile(dir, desc.digest), flipped);
      await assert.rejects(async () => readAll(await layout.fetch(desc)), DigestMismatchError);
      await writeFile(blobFile(dir, desc.digest), Buffer.concat([Buffer.from(bytes), Buffer.from('tail')]));
      await assert.rejects(async () => readAll(await layout.fetch(desc)), DigestMismatchError);

      await layout.push(EMPTY, EMPTY_JSON_BYTES);
      const m = manifest({ annotations: { corrupt: 'soon' } });
      await layout.pushManifest(m.desc, m.bytes, 'm');
      await writeFile(blobFile(dir, m.desc.digest), Buffer.from(m.bytes).reverse());
      await assert.rejects(layout.fetchManifest('m'), DigestMismatchError);
    });
  });

  it('a failed or aborted push leaves no temp file and no blob behind', async () => {
    await withDir(async (dir) => {
      const layout = await OciLayout.open(dir, { create: true });
      const { desc, bytes } = blob('some content to push');
      const liar = { ...desc, digest: blob('different content!!!').desc.digest };
      await assert.rejects(layout.push(liar, Readable.from([Buffer.from(bytes)])), DigestMismatchError);

      // A source that fails half-way (a network drop, a read error).
      const failing = new Readable({
        read() {
          this.push(Buffer.from('first half'));
          this.destroy(new Error('source broke'));
        },
      });
      await assert.rejects(layout.push(desc, failing), CommsError);

      const controller = new AbortController();
      controller.abort();
      await assert.rejects(layout.push(desc, bytes, { signal: controller.signal }), AbortError);

      assert.deepEqual(await readdir(join(dir, '.tmp')), []);
      assert.equal(await layout.exists(desc), false);
      assert.equal(await layout.exists(liar), false);
    });
  });

  it('push of an existing blob does not read the input', async () => {
    await withDir(async (dir) => {
      const layout = await OciLayout.open(dir, { create: true });
      const { desc, bytes } = blob('stored once');
      await layout.push(desc, bytes);
      let read = false;
      const input = new Readable({
        read() {
          read = true;
          this.push(null);
        },
      });
      const result = await layout.push(desc, input);
      assert.equal(result.skipped, true);
      assert.equal(read, false);
      assert.equal(input.destroyed, true, 'the unread input is released');
    });
  });

  it('hostile digests are refused before any file is touched', async () => {
    await withDir(async (dir) => {
      const root = join(dir, 'store');
      const layout = await OciLayout.open(root, { create: true });
      const before = (await readdir(dir)).sort();
      for (const digest of ['sha256:../../../escape', 'sha256/../../escape', '../escape', 'sha256:' + '0'.repeat(63) + '/', 'sha1:' + '0'.repeat(40)]) {
        const desc = { mediaType: 'application/octet-stream', digest, size: 1 };
        await assert.rejects(layout.push(desc, enc.encode('x')), InvalidReferenceError);
        await assert.rejects(layout.pushManifest({ ...desc, mediaType: MediaType.ImageManifest }, enc.encode('x')), InvalidReferenceError);
        await assert.rejects(layout.delete(desc), InvalidReferenceError);
        await assert.rejects(
          layout.referrers(desc, () => undefined),
          InvalidReferenceError,
        );
      }
      assert.deepEqual((await readdir(dir)).sort(), before);
      assert.deepEqual(await readdir(join(root, 'blobs')), []);
    });
  });

  it('pushManifest refuses bytes that are not a manifest of the declared type, storing nothing', async () => {
    await withDir(async (dir) => {
      const layout = await OciLayout.open(dir, { create: true });
      const cases: Array<[string, Uint8Array]> = [
        ['not JSON', enc.encode('{nope')],
        ['wrong mediaType', enc.encode(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [] }))],
        ['no layers', enc.encode(JSON.stringify({ schemaVersion: 2, config: EMPTY }))],
        ['bad subject', enc.encode(JSON.stringify({ schemaVersion: 2, config: EMPTY, layers: [], subject: { mediaType: 'x', digest: 'sha256:zz', size: 1 } }))],
      ];
      for (const [why, bytes] of cases) {
        const desc: Descriptor = { mediaType: MediaType.ImageManifest, digest: digestOf(bytes), size: bytes.length };
        await assert.rejects(layout.pushManifest(desc, bytes, 'x'), ProtocolError, why);
        assert.equal(await layout.exists(desc), false, why);
      }
      const huge = new Uint8Array(MAX_MANIFEST_BYTES + 1).fill(0x20);
      await assert.rejects(layout.pushManifest({ mediaType: MediaType.ImageManifest, digest: digestOf(huge), size: huge.length }, huge), ProtocolError);
      await assert.rejects(layout.resolve('x'), NotFoundError);
    });
  });

  it('fetchManifest refuses a stored manifest above 4 MiB', async () => {
    await withDir(async (dir) => {
      const layout = await OciLayout.open(dir, { create: true });
      const big = new Uint8Array(MAX_MANIFEST_BYTES + 10).fill(0x20);
      const desc: Descriptor = { mediaType: 'application/octet-stream', digest: digestOf(big), size: big.length };
      await layout.push(desc, big);
      // Another tool's index.json naming it as a manifest.
      const index = await readJson(join(dir, 'index.json'));
      index.manifests.push({ ...desc, mediaType: MediaType.ImageManifest, annotations: { [ANNOTATION_REF_NAME]: 'big' } });
      await writeFile(join(dir, 'index.json'), JSON.stringify(index));
      await assert.rejects(layout.fetchManifest('big'), ProtocolError);
    });
  });

  it('keeps a referrers file per subject, dropped when the referrer is deleted', async () => {
    await withDir(async (dir) => {
      const layout = await OciLayout.open(dir, { create: true });
      await layout.push(EMPTY, EMPTY_JSON_BYTES);
      const subject = manifest({ annotations: { role: 'subject' } });
      await layout.pushManifest(subject.desc, subject.bytes, 'subject');
      const ref = manifest({ subject: subject.desc, artifactType: 'application/vnd.example.sig', annotations: { k: 'v' } });
      const result = await layout.push(ref.desc, Readable.from([Buffer.from(ref.bytes)]));
      assert.equal(result.ociSubject, subject.desc.digest);

      const [, shex] = subject.desc.digest.split(':') as [string, string];
      const [, rhex] = ref.desc.digest.split(':') as [string, string];
      const file = join(dir, 'referrers', 'sha256', shex, `sha256-${rhex}.json`);
      assert.deepEqual(await readJson(file), { ...ref.desc, artifactType: 'application/vnd.example.sig', annotations: { k: 'v' } });
      const index = await readJson(join(dir, 'index.json'));
      assert.ok(
        index.manifests.some((e: Descriptor) => e.digest === ref.desc.digest && e.annotations === undefined),
        'the untagged referrer is recorded',
      );

      // Pushing it again is skipped, still reports the subject, and does not duplicate anything.
      const again = await layout.pushManifest(ref.desc, ref.bytes);
      assert.equal(again.skipped, true);
      assert.equal(again.ociSubject, subject.desc.digest);

      await layout.delete(ref.desc);
      await assert.rejects(stat(file), { code: 'ENOENT' });
      const left: Descriptor[] = [];
      await layout.referrers(subject.desc, (page) => void left.push(...page));
      assert.deepEqual(left, []);
      assert.ok(!(await readJson(join(dir, 'index.json'))).manifests.some((e: Descriptor) => e.digest === ref.desc.digest));
    });
  });

  it('reindexReferrers indexes referrers another tool wrote without the referrers folder', async () => {
    await withDir(async (dir) => {
      const layout = await OciLayout.open(dir, { create: true });
      await layout.push(EMPTY, EMPTY_JSON_BYTES);
      const subject = manifest({ annotations: { role: 'subject' } });
      await layout.pushManifest(subject.desc, subject.bytes, 'subject');
      const ref = manifest({ subject: subject.desc, artifactType: 'application/vnd.example.sig' });
      await layout.pushManifest(ref.desc, ref.bytes, 'sig');
      await rm(join(dir, 'referrers'), { recursive: true });
      const list = async (): Promise<string[]> => {
        const out: string[] = [];
        await layout.referrers(subject.desc, (page) => void out.push(...page.map((d) => d.digest)));
        return out;
      };
      assert.deepEqual(await list(), []);
      assert.equal(await layout.reindexReferrers(), 1);
      assert.deepEqual(await list(), [ref.desc.digest]);
    });
  });

  it('sweepTemp removes old temp files and keeps fresh ones', async () => {
    await withDir(async (dir) => {
      const layout = await OciLayout.open(dir, { create: true });
      await writeFile(join(dir, '.tmp', 'old.blob'), 'crashed writer');
      await writeFile(join(dir, '.tmp', 'new.blob'), 'live writer');
      const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
      await utimes(join(dir, '.tmp', 'old.blob'), twoDaysAgo, twoDaysAgo);
      assert.equal(await layout.sweepTemp(), 1);
      assert.deepEqual(await readdir(join(dir, '.tmp')), ['new.blob']);
    });
  });
});

describe('OciLayout index.json lock', () => {
  async function seeded(dir: string, lock: { staleMs?: number; timeoutMs?: number }): Promise<{ layout: OciLayout; m: Descriptor }> {
    const setup = await OciLayout.open(dir, { create: true });
    await setup.push(EMPTY, EMPTY_JSON_BYTES);
    const m = manifest({ annotations: { lock: 'test' } });
    await setup.pushManifest(m.desc, m.bytes);
    return { layout: await OciLayout.open(dir, { lock }), m: m.desc };
  }

  it('recovers a lock left by a dead process without waiting for it to age', async () => {
    await withDir(async (dir) => {
      // staleMs of an hour: only the dead-pid rule can free this lock within timeoutMs.
      const { layout, m } = await seeded(dir, { staleMs: 3_600_000, timeoutMs: 10_000 });
      const lockFile = join(dir, 'index.json.lock');
      await writeFile(lockFile, JSON.stringify({ pid: await deadPid(), host: hostname(), created: Date.now(), token: 'crashed' }));
      await layout.tag(m, 'after-crash');
      assert.equal((await layout.resolve('after-crash')).digest, m.digest);
      await assert.rejects(stat(lockFile), { code: 'ENOENT' });
    });
  });

  it('waits for a live holder and gives up with LOCK_TIMEOUT, leaving its lock alone', async () => {
    await withDir(async (dir) => {
      const { layout, m } = await seeded(dir, { staleMs: 3_600_000, timeoutMs: 300 });
      const lockFile = join(dir, 'index.json.lock');
      const held = JSON.stringify({ pid: process.pid, host: hostname(), created: Date.now(), token: 'alive' });
      await writeFile(lockFile, held);
      await assert.rejects(layout.tag(m, 'blocked'), (err: unknown) => err instanceof CommsError && err.code === 'LOCK_TIMEOUT');
      assert.equal(await readFile(lockFile, 'utf8'), held);
      await assert.rejects(layout.resolve('blocked'), NotFoundError);
    });
  });

  it('an empty lock file (a writer killed between creating and writing it) does not block tag writes', async () => {
    await withDir(async (dir) => {
      // The default staleMs (30 s) is far beyond timeoutMs: only the empty-lock rule frees it in time.
      const { layout, m } = await seeded(dir, { timeoutMs: 5_000 });
      const lockFile = join(dir, 'index.json.lock');
      await writeFile(lockFile, '');
      await layout.tag(m, 'after-empty-lock');
      assert.equal((await layout.resolve('after-empty-lock')).digest, m.digest);
      await assert.rejects(stat(lockFile), { code: 'ENOENT' });
    });
  });

  it('the lock file appears with its whole content: a reader never sees it empty or torn', async () => {
    await withDir(async (dir) => {
      const { layout, m } = await seeded(dir, {});
      const lockFile = join(dir, 'index.json.lock');
      // Another process reads the lock file in a tight loop while this one takes and releases it.
      const watcher = spawn(
        process.execPath,
        [
          '-e',
          `const fs = require('node:fs');
           let seen = 0, bad = 0;
           const stop = Date.now() + 60000;
           while (!fs.existsSync(${JSON.stringify(join(dir, 'stop'))}) && Date.now() < stop) {
             let text;
             try { text = fs.readFileSync(${JSON.stringify(lockFile)}, 'utf8'); } catch { continue; }
             seen++;
             try { JSON.parse(text).token.length; } catch { bad++; }
           }
           process.stdout.write(JSON.stringify({ seen, bad }));`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      watcher.stdout.on('data', (b: Buffer) => (out += b.toString()));
      const exited = new Promise<void>((resolve) => watcher.once('close', () => resolve()));
      for (let i = 0; i < 400; i++) await layout.tag(m, `t${i % 2}`);
      await writeFile(join(dir, 'stop'), '');
      await exited;
      const { seen, bad } = JSON.parse(out) as { seen: number; bad: number };
      assert.ok(seen > 0, 'the watcher saw the lock held at least once');
      assert.equal(bad, 0, `the lock file was seen empty or torn ${bad} of ${seen} times`);
    });
  });

  it('breaks a lock older than staleMs even when its pid cannot be checked (another host)', async () => {
    await withDir(async (dir) => {
      const { layout, m } = await seeded(dir, { staleMs: 1_000, timeoutMs: 10_000 });
      await writeFile(join(dir, 'index.json.lock'), JSON.stringify({ pid: 1, host: `not-${hostname()}`, created: Date.now() - 60_000, token: 'elsewhere' }));
      await layout.tag(m, 'after-timeout');
      assert.equal((await layout.resolve('after-timeout')).digest, m.digest);
    });
  });
});

describe('OciLayout index journal', () => {
  const tagsOf = async (layout: OciLayout): Promise<string[]> => {
    const out: string[] = [];
    await layout.tags((page) => void out.push(...page));
    return out;
  };

  it('a journaling layout appends tag changes to the journal instead of rewriting index.json; every layout reads them; compact() folds them in', async () => {
    await withDir(async (dir) => {
      const journaling = await OciLayout.open(dir, { create: true, journal: true, journalIdleMs: 600_000 });
      await journaling.push(EMPTY, EMPTY_JSON_BYTES);
      const before = await readFile(join(dir, 'index.json'), 'utf8');
      const ms = ['a', 'b', 'c'].map((t) => ({ t, m: manifest({ annotations: { t } }) }));
      for (const { t, m } of ms) await journaling.pushManifest(m.desc, m.bytes, t);
      await journaling.untag('b');
      assert.equal(await readFile(join(dir, 'index.json'), 'utf8'), before, 'index.json untouched');
      assert.equal((await readFile(join(dir, 'index.json.journal'), 'utf8')).trim().split('\n').length, 4, 'one line per change');
      // Another process's view: a plain layout on the same folder.
      const plain = await OciLayout.open(dir);
      assert.deepEqual(await tagsOf(plain), ['a', 'c']);
      assert.equal((await plain.resolve('c')).digest, ms[2]?.m.desc.digest);
      assert.equal((await plain.resolve(ms[1]!.m.desc.digest)).digest, ms[1]?.m.desc.digest, 'the untagged manifest stays reachable');

      await journaling.compact();
      await assert.rejects(stat(join(dir, 'index.json.journal')), { code: 'ENOENT' });
      const index = await readJson(join(dir, 'index.json'));
      assert.deepEqual(
        index.manifests.map((m: Descriptor) => m.annotations?.[ANNOTATION_REF_NAME] ?? m.digest).sort(),
        ['a', 'c', ms[1]!.m.desc.digest].sort(),
      );

      // A layout that does not journal folds a journal it finds into index.json on its next update.
      await journaling.tag(ms[0]!.m.desc, 'd');
      await plain.tag(ms[0]!.m.desc, 'e');
      await assert.rejects(stat(join(dir, 'index.json.journal')), { code: 'ENOENT' });
      assert.deepEqual(
        (await readJson(join(dir, 'index.json'))).manifests
          .map((m: Descriptor) => m.annotations?.[ANNOTATION_REF_NAME])
          .filter(Boolean)
          .sort(),
        ['a', 'c', 'd', 'e'],
      );
    });
  });

  it('a journal found again after it was folded in (a crash between the two steps) changes nothing', async () => {
    await withDir(async (dir) => {
      const journaling = await OciLayout.open(dir, { create: true, journal: true, journalIdleMs: 600_000 });
      await journaling.push(EMPTY, EMPTY_JSON_BYTES);
      const a = manifest({ annotations: { m: 'a' } });
      const b = manifest({ annotations: { m: 'b' } });
      await journaling.pushManifest(a.desc, a.bytes, 't');
      await journaling.pushManifest(b.desc, b.bytes, 't');
      await journaling.pushManifest(a.desc, a.bytes, 'u');
      await journaling.untag('u');
      await journaling.delete(b.desc);
      await journaling.pushManifest(b.desc, b.bytes, 'v');
      const journal = await readFile(join(dir, 'index.json.journal'));
      const expected = { tags: await tagsOf(journaling), v: (await journaling.resolve('v')).digest, a: (await journaling.resolve(a.desc.digest)).digest };
      await journaling.compact();
      const folded = await readJson(join(dir, 'index.json'));
      await writeFile(join(dir, 'index.json.journal'), journal);
      const reopened = await OciLayout.open(dir);
      assert.deepEqual({ tags: await tagsOf(reopened), v: (await reopened.resolve('v')).digest, a: (await reopened.resolve(a.desc.digest)).digest }, expected);
      await reopened.tag(a.desc, 'w');
      const again = await readJson(join(dir, 'index.json'));
      const names = (doc: { manifests: Descriptor[] }): string[] =>
        doc.manifests.map((m) => `${m.digest} ${m.annotations?.[ANNOTATION_REF_NAME] ?? ''}`).sort();
      // As if the journal had never come back: a's untagged entry became its tag w, nothing else moved.
      assert.deepEqual(names(again), [...names(folded).filter((n) => n !== `${a.desc.digest} `), `${a.desc.digest} w`].sort());
    });
  });

  it('a last journal line still being written is not read', async () => {
    await withDir(async (dir) => {
      const journaling = await OciLayout.open(dir, { create: true, journal: true, journalIdleMs: 600_000 });
      await journaling.push(EMPTY, EMPTY_JSON_BYTES);
      const a = manifest({ annotations: { m: 'a' } });
      await journaling.pushManifest(a.desc, a.bytes, 't');
      await writeFile(join(dir, 'index.json.journal'), `{"op":"untag","tag":"t"`, { flag: 'a' });
      assert.deepEqual(await tagsOf(await OciLayout.open(dir)), ['t']);
    });
  });
});
