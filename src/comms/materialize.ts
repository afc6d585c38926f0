/**
 * Writing a received message into the output folder: chunks are fetched (bounded parallelism),
 * checked while streaming (layer digest by the Target, tar shape and size by the chunk reader),
 * and written at their offsets into a temporary file on the same filesystem; then fsync, a byte-count
 * check, and an atomic link onto a name that does not exist yet. Any failure removes the
 * temporary file: a message that fails a check leaves nothing behind, and nothing existing is
 * ever overwritten.
 */
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { chmod, link, lstat, mkdir, mkdtemp, open, readdir, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Repository } from '../oci/target.ts';
import { alternativeFilename } from '../protocol/filename.ts';
import { readChunk } from '../protocol/chunk-reader.ts';
import { chunkRawSize } from '../protocol/sizes.ts';
import type { MessageInfo } from '../protocol/validate.ts';
import { CommsError, ProtocolError, type CommsErrorOptions } from '../errors.ts';
import { forEachLimit } from '../util/pool.ts';
import { isPidAlive } from '../util/process.ts';
import type { AgeIdentities } from '../trust/age.ts';

export type ConflictPolicy = 'suffix' | 'fail';

export interface MaterializeOptions {
  outDir: string;
  parallel?: number;
  onConflict?: ConflictPolicy;
  signal?: AbortSignal;
  onProgress?: (bytesWritten: number) => void;
  /** A private folder from openScratch(outDir); one is opened (and released) when absent. */
  scratchDir?: string;
  /**
   * The payload is an age file: decrypt it with these identities and write the plaintext under
   * `filename` instead. A payload that does not decrypt and authenticate entirely leaves nothing.
   */
  decrypt?: { identities: AgeIdentities; filename: string };
}

/** The path written and its size in bytes (the plaintext's when decrypted). */
export interface Materialized {
  path: string;
  bytes: number;
}

export class FileExistsError extends CommsError {
  constructor(message: string, options: CommsErrorOptions = {}) {
    super(message, { code: 'FILE_EXISTS', ...options });
  }
}

/**
 * Where partial files go: a scratch folder on the same filesystem as the output folder (so the
 * final link is atomic), outside it when the OS temp folder shares that filesystem — then a recv
 * killed mid-transfer leaves nothing at all in --out — else a hidden `.comms-partial` inside it.
 *
 * The scratch folder must be private: another local user who can write into it can replace a
 * partial file just before it is linked into --out. The usual folder (`comms-partial-<uid>`) is
 * used only when lstat shows a real directory owned by this user with mode 0700 (it is created so
 * when absent); anything else (a folder another user made first, a symlink, a looser mode) is left
 * untouched and this run gets a fresh private folder from mkdtemp instead, removed by release().
 * Partial files are named `<pid>-<random>.part`; those of dead processes are swept on each run.
 */
export interface Scratch {
  dir: string;
  /** Removes the folder when it was made for this run only; the usual one is kept. */
  release(): Promise<void>;
}

export async function openScratch(outDir: string): Promise<Scratch> {
  const [o, t] = await Promise.all([stat(outDir), stat(os.tmpdir()).catch(() => undefined)]);
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  const [base, name] = t !== undefined && t.dev === o.dev ? [os.tmpdir(), `comms-partial-${uid ?? 0}`] : [outDir, '.comms-partial'];
  await sweepStaleRunFolders(base, name, uid);
  const usual = path.join(base, name);
  if (await claimPrivateDir(usual, uid)) {
    await sweepStalePartials(usual);
    return { dir: usual, release: async () => undefined };
  }
  // The pid in the name lets a later run remove the folder of a run that was killed.
  const dir = await mkdtemp(path.join(base, `${name}-${process.pid}-`));
  return { dir, release: () => rm(dir, { recursive: true, force: true }) };
}

/** Creates `dir` 0700, or accepts an existing one only when it is a real directory of ours, 0700. */
async function claimPrivateDir(dir: string, uid: number | undefined): Promise<boolean> {
  let created = false;
  try {
    await mkdir(dir, { mode: 0o700 });
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  // A folder we just made may have lost bits to the umask; one we did not make is never changed.
  if (created) await chmod(dir, 0o700);
  return isPrivateDir(await lstat(dir), uid);
}

function isPrivateDir(st: Stats, uid: number | undefined): boolean {
  return st.isDirectory() && !st.isSymbolicLink() && (uid === undefined || st.uid === uid) && (st.mode & 0o777) === 0o700;
}

/** Removes per-run folders (`<name>-<pid>-XXXXXX`) of runs that died, when they are ours. */
async function sweepStaleRunFolders(base: string, name: string, uid: number | undefined): Promise<void> {
  const prefix = `${name}-`;
  for (const entry of await readdir(base).catch(() => [] as string[])) {
    if (!entry.startsWith(prefix)) continue;
    const m = /^(\d+)-[A-Za-z0-9]{6}$/.exec(entry.slice(prefix.length));
    if (!m || isPidAlive(Number(m[1]))) continue;
    const dir = path.join(base, entry);
    const st = await lstat(dir).catch(() => undefined);
    if (st !== undefined && isPrivateDir(st, uid)) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function sweepStalePartials(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = /^(\d+)-[0-9a-f]+\.part$/.exec(name);
    if (m && !isPidAlive(Number(m[1]))) await unlink(path.join(dir, name)).catch(() => undefined);
  }
}

export async function materialize(repo: Repository, info: MessageInfo, options: MaterializeOptions): Promise<Materialized> {
  if (options.scratchDir === undefined) {
    const scratch = await openScratch(options.outDir);
    try {
      return await materialize(repo, info, { ...options, scratchDir: scratch.dir });
    } finally {
      await scratch.release();
    }
  }
  const tmpPath = path.join(options.scratchDir, `${process.pid}-${randomBytes(6).toString('hex')}.part`);
  const plainPath = path.join(options.scratchDir, `${process.pid}-${randomBytes(6).toString('hex')}.part`);
  // Readable and writable by this user only while it is partial; given the usual mode just
  // before it is linked into --out.
  const fh = await open(tmpPath, 'wx', 0o600);
  let closed = false;
  let written = 0;
  try {
    await forEachLimit(
      info.layers,
      options.parallel ?? 4,
      async (layer, i) => {
        // The validator already checked that total_bytes fits chunk_bytes × chunk_count.
        const expected = chunkRawSize(info.totalBytes, info.chunkBytes, i);
        const compressed = await repo.fetch(layer, { signal: options.signal });
        // The reader stops a chunk that decompresses past its expected size, while streaming.
        const raw = readChunk(compressed, { index: i, chunkBytes: info.chunkBytes, compression: info.compression, expectedBytes: expected });
        const got = await writeAt(
          fh,
          raw,
          i * info.chunkBytes,
          (n) => {
            written += n;
            options.onProgress?.(written);
          },
          options.signal,
        );
        if (got !== expected) {
          throw new ProtocolError(`chunk ${i} holds ${got} bytes, expected ${expected} (total_bytes ${info.totalBytes}, chunk_bytes ${info.chunkBytes})`, {
            code: 'TOTAL_BYTES_MISMATCH',
          });
        }
      },
      options.signal,
    );
    if (written !== info.totalBytes) {
      throw new ProtocolError(`received ${written} bytes, the manifest says total_bytes ${info.totalBytes}`, { code: 'TOTAL_BYTES_MISMATCH' });
    }
    await fh.truncate(info.totalBytes);
    await fh.chmod(0o666 & ~process.umask());
    await fh.sync();
    const synced = await fh.stat();
    await fh.close();
    closed = true;
    let done = { path: tmpPath, bytes: info.totalBytes, filename: info.filename, synced };
    if (options.decrypt !== undefined) {
      const plain = await decryptFile(tmpPath, plainPath, options.decrypt.identities, options.signal);
      done = { path: plainPath, bytes: plain.size, filename: options.decrypt.filename, synced: plain };
      await unlink(tmpPath);
    }
    const finalPath = await linkNoClobber(done.path, options.outDir, done.filename, options.onConflict ?? 'suffix');
    // What was linked must be the very file written and checked here, not one put in its place.
    const linked = await lstat(finalPath).catch(() => undefined);
    if (linked === undefined || linked.ino !== done.synced.ino || linked.dev !== done.synced.dev) {
      if (linked?.isFile()) await unlink(finalPath).catch(() => undefined);
      throw new CommsError(
        `the partial file of ${done.filename} was replaced in ${options.scratchDir} before it was linked into ${options.outDir}; nothing was delivered`,
        {
          code: 'PARTIAL_FILE_REPLACED',
        },
      );
    }
    await unlink(done.path);
    await syncDir(options.outDir);
    return { path: finalPath, bytes: done.bytes };
  } catch (err) {
    if (!closed) await fh.close().catch(() => undefined);
    await unlink(tmpPath).catch(() => undefined);
    await unlink(plainPath).catch(() => undefined);
    throw err;
  }
}

/**
 * Decrypts the age file `from` into a new file `to` (0600 while partial, then the usual mode),
 * synced; returns its stat.
 */
async function decryptFile(from: string, to: string, identities: AgeIdentities, signal: AbortSignal | undefined): Promise<Stats> {
  const { decryptFileTo } = await import('../trust/age.ts');
  await decryptFileTo(from, to, identities, signal);
  const fh = await open(to, 'r+');
  try {
    await fh.chmod(0o666 & ~process.umask());
    await fh.sync();
    return await fh.stat();
  } finally {
    await fh.close();
  }
}

/**
 * Pieces queued while a write is in flight go to the file together in one positional writev(2):
 * decompression keeps running during the write, and a 1 MiB piece or a batch of smaller ones costs
 * one call instead of one per piece. At most WRITE_BATCH_BYTES wait per chunk (bounded memory):
 * 1 MiB, one decompressed piece. With 4 MiB, a disk slowed by other writers let each of the 4
 * chunks hold up to 8 MiB (queued plus in flight), buffers old enough to outlive young-generation
 * collections; a 1 GiB encrypted receive under such load peaked at 147–178 MiB with 4 MiB and
 * 154–158 MiB with 1 MiB, in no more time (bench/RESULTS.md §7).
 */
const WRITE_BATCH_BYTES = 1024 * 1024;

async function writeAt(fh: FileHandle, source: NodeJS.ReadableStream, start: number, onBytes: (n: number) => void, signal?: AbortSignal): Promise<number> {
  let pos = start;
  let count = 0;
  const put = (buffers: Buffer[], cb: (err?: Error | null) => void): void => {
    const size = buffers.reduce((n, b) => n + b.length, 0);
    writeAll(fh, buffers, size, pos).then(
      () => {
        pos += size;
        count += size;
        onBytes(size);
        cb();
      },
      (e: unknown) => cb(e as Error),
    );
  };
  const sink = new Writable({
    highWaterMark: WRITE_BATCH_BYTES,
    write(chunk: Buffer, _enc, cb) {
      put([chunk], cb);
    },
    writev(chunks, cb) {
      put(
        chunks.map((c) => c.chunk as Buffer),
        cb,
      );
    },
  });
  await pipeline(source, sink, { signal });
  return count;
}

/** Writes every byte of `buffers` at `position`, continuing after a short write. */
async function writeAll(fh: FileHandle, buffers: Buffer[], size: number, position: number): Promise<void> {
  let done = 0;
  let rest = buffers;
  while (done < size) {
    const { bytesWritten } = await fh.writev(rest, position + done);
    if (bytesWritten === 0) throw new CommsError('the output file accepted no bytes', { code: 'IO_ERROR' });
    done += bytesWritten;
    if (done >= size) return;
    // Drop what was written: whole buffers, then the front of the first one left.
    let skip = bytesWritten;
    const next: Buffer[] = [];
    for (const b of rest) {
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      next.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
    rest = next;
  }
}

/** `name`, then `name-1.ext`, `name-2.ext`…: link(2) fails when the target exists, so no race overwrites. */
async function linkNoClobber(tmpPath: string, dir: string, filename: string, policy: ConflictPolicy): Promise<string> {
  for (let n = 0; n < 10000; n++) {
    // `name-n.ext`, cut to fit 255 bytes when the name is already that long.
    const candidate = path.join(dir, n === 0 ? filename : alternativeFilename(filename, n));
    try {
      await link(tmpPath, candidate);
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (policy === 'fail') throw new FileExistsError(`${candidate} already exists (onConflict "fail"): not overwritten`, { option: 'onConflict' });
    }
  }
  throw new FileExistsError(`no free name for ${filename} in ${dir}`);
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r').catch(() => undefined);
  if (d === undefined) return;
  await d.sync().catch(() => undefined);
  await d.close();
}
