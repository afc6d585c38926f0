/**
 * Crash safety of `comms serve`: the server runs as a child process and is SIGKILLed in the middle
 * of a slow upload, and again right as an upload is being committed. After each restart on the
 * same root: everything committed before is intact, every file in a repository's blob store
 * hashes to its name (no half-written blob is visible), index.json is whole, and the interrupted
 * upload can be finished — the session survives the restart and resumes from its Range.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { digestOf } from '../../src/oci/digest.ts';
import { EMPTY_JSON_BYTES, EMPTY_JSON_DIGEST, MediaType } from '../../src/oci/mediatypes.ts';
import { tempDir, type TempDir } from '../support/tools.ts';

const STANDALONE = new URL('../../src/server/standalone.ts', import.meta.url).pathname;
const REPO = 'crash/repo';
const CHUNK = 1024 * 1024;
const BIG = 24 * CHUNK;

interface Child {
  proc: ChildProcess;
  port: number;
}

async function startChild(root: string): Promise<Child> {
  const proc = spawn(process.execPath, [STANDALONE, '--root', root, '--addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`the server exited (${code}) before listening`)));
  });
  return { proc, port: (JSON.parse(first) as { port: number }).port };
}

async function kill(child: Child): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const gone = new Promise((resolve) => child.proc.once('exit', resolve));
  child.proc.kill('SIGKILL');
  await gone;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function call(port: number, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One MiB of pseudo-random bytes; chunk i of the big blob is this with i written over its first 4 bytes. */
const BASE = (() => {
  const out = Buffer.alloc(CHUNK);
  let block = createHash('sha256').update('crash test').digest();
  for (let off = 0; off < CHUNK; off += 32) {
    block = createHash('sha256').update(block).digest();
    block.copy(out, off);
  }
  return out;
})();

/** Bytes `[start, end)` of the big blob. */
function bigSlice(start: number, end: number): Buffer {
  const out = Buffer.alloc(end - start);
  for (let off = start; off < end; ) {
    const i = Math.floor(off / CHUNK);
    const chunk = Buffer.from(BASE);
    chunk.writeUInt32BE(i, 0);
    const from = off - i * CHUNK;
    const n = Math.min(CHUNK - from, end - off);
    chunk.copy(out, off - start, from, from + n);
    off += n;
  }
  return out;
}

const BIG_DIGEST = (() => {
  const h = createHash('sha256');
  for (let off = 0; off < BIG; off += CHUNK) h.update(bigSlice(off, Math.min(BIG, off + CHUNK)));
  return `sha256:${h.digest('hex')}`;
})();

/** Streams the big blob into a PATCH slowly, until the connection dies. */
function slowPatch(port: number, location: string): Promise<void> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, method: 'PATCH', path: location, headers: { 'content-type': 'application/octet-stream' }, agent: false });
    req.on('error', () => resolve());
    req.on('response', (res) => {
      res.resume();
      resolve();
    });
    void (async () => {
      for (let off = 0; off < BIG && !req.destroyed; off += CHUNK) {
        if (!req.write(bigSlice(off, off + CHUNK))) await new Promise((r) => req.once('drain', r));
        await sleep(30);
      }
      req.end();
    })().catch(() => resolve());
  });
}

/** Every blob file of every repository under `root` hashes to its own name; index.json parses. */
async function assertStoreWhole(root: string): Promise<void> {
  const repoDir = join(root, REPO);
  for (const alg of await readdir(join(repoDir, 'blobs'))) {
    for (const hex of await readdir(join(repoDir, 'blobs', alg))) {
      const bytes = await readFile(join(repoDir, 'blobs', alg, hex));
      assert.equal(createHash(alg).update(bytes).digest('hex'), hex, `blobs/${alg}/${hex} is not whole`);
    }
  }
  const index = JSON.parse(await readFile(join(repoDir, 'index.json'), 'utf8')) as { manifests: unknown[] };
  assert.ok(Array.isArray(index.manifests));
}

let dir: TempDir;
let child: Child | undefined;
const manifestBytes = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ImageManifest,
    config: { mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: 2 },
    layers: [],
  }),
);

before(async () => {
  dir = await tempDir('comms-serve-crash-');
});
after(async () => {
  if (child !== undefined) await kill(child);
  await dir.cleanup();
});

async function assertCommittedIntact(port: number): Promise<void> {
  const m = await call(port, 'GET', `/v2/${REPO}/manifests/committed`);
  assert.equal(m.status, 200);
  assert.deepEqual(m.body, manifestBytes);
  const b = await call(port, 'GET', `/v2/${REPO}/blobs/${EMPTY_JSON_DIGEST}`);
  assert.deepEqual(b.body, Buffer.from(EMPTY_JSON_BYTES));
}

it('SIGKILL mid-upload and mid-commit loses nothing committed, shows nothing half-written, and the upload completes after restart', async () => {
  const root = join(dir.path, 'root');
  child = await startChild(root);
  // Committed content before any crash.
  assert.equal((await call(child.port, 'POST', `/v2/${REPO}/blobs/uploads/?digest=${EMPTY_JSON_DIGEST}`, Buffer.from(EMPTY_JSON_BYTES))).status, 201);
  assert.equal((await call(child.port, 'PUT', `/v2/${REPO}/manifests/committed`, manifestBytes, { 'content-type': MediaType.ImageManifest })).status, 201);

  // 1. Killed while a slow PATCH is streaming the big blob in.
  const start = await call(child.port, 'POST', `/v2/${REPO}/blobs/uploads/`);
  assert.equal(start.status, 202);
  const location = start.headers.location as string;
  const dataFile = join(root, '_uploads', `${location.split('/').at(-1)}.data`);
  const patching = slowPatch(child.port, location);
  for (let i = 0; i < 500 && ((await stat(dataFile).catch(() => undefined))?.size ?? 0) < 4 * CHUNK; i++) await sleep(20);
  await kill(child);
  await patching;

  child = await startChild(root);
  await assertCommittedIntact(child.port);
  await assertStoreWhole(root);
  assert.equal((await call(child.port, 'HEAD', `/v2/${REPO}/blobs/${BIG_DIGEST}`)).status, 404, 'the interrupted blob is not visible');

  // The session survived: resume from its Range, finish, commit.
  const status = await call(child.port, 'GET', location);
  assert.equal(status.status, 204);
  const held = Number(/^0-(\d+)$/.exec(status.headers.range as string)![1]) + 1;
  assert.ok(held >= 4 * CHUNK && held < BIG, `held ${held}`);
  const rest = await call(child.port, 'PATCH', location, bigSlice(held, BIG), { 'content-range': `${held}-${BIG - 1}` });
  assert.equal(rest.status, 202);
  assert.equal(rest.headers.range, `0-${BIG - 1}`);

  // 2. Killed right after the committing PUT is sent (while it verifies or moves the blob in).
  const committing = call(child.port, 'PUT', `${location}?digest=${BIG_DIGEST}`).catch(() => undefined);
  // Aim for the moment the upload is linked into the store's temp folder but not yet renamed in.
  const tmpDir = join(root, REPO, '.tmp');
  for (let i = 0; i < 400 && (await readdir(tmpDir).catch(() => [])).length === 0; i++) await sleep(1);
  await kill(child);
  await committing;

  child = await startChild(root);
  await assertCommittedIntact(child.port);
  await assertStoreWhole(root);
  // Either the commit had finished (the blob is there, whole), or the session is still there to finish.
  const linked = (await readdir(tmpDir).catch(() => [])).length > 0;
  if ((await call(child.port, 'HEAD', `/v2/${REPO}/blobs/${BIG_DIGEST}`)).status !== 200) {
    if (linked) {
      // Cut between link and rename: the session file is shared with the store now and takes no more bytes.
      assert.equal((await call(child.port, 'PATCH', location, Buffer.from('x'), { 'content-range': `${BIG}-${BIG}` })).status, 400);
    }
    const again = await call(child.port, 'PUT', `${location}?digest=${BIG_DIGEST}`);
    assert.equal(again.status, 201, again.body.toString());
  }
  const head = await call(child.port, 'HEAD', `/v2/${REPO}/blobs/${BIG_DIGEST}`);
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(BIG));
  const got = await call(child.port, 'GET', `/v2/${REPO}/blobs/${BIG_DIGEST}`);
  assert.equal(digestOf(got.body), BIG_DIGEST);

  // A fresh, monolithic retry of the same content also completes (and finds it already stored).
  const small = bigSlice(0, 3 * CHUNK);
  assert.equal((await call(child.port, 'POST', `/v2/${REPO}/blobs/uploads/?digest=${digestOf(small)}`, small)).status, 201);
  await assertStoreWhole(root);
  await kill(child);
  child = undefined;
});
