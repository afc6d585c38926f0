/**
 * Writing a received message into the output folder: chunks are fetched (bounded parallelism),
 * checked while streaming (layer digest by the Target, tar shape and size by the chunk reader),
 * and written at their offsets into a temporary file on the same filesystem; then fsync, a byte-count
 * check, and an atomic link onto a name that does not exist yet. Any failure removes the
 * temporary file: a message that fails a check leaves nothing behind, and nothing existing is
 * ever overwritten.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Repository } from '../oci/target.ts';
import { readChunk } from '../protocol/chunk-reader.ts';
import { chunkRawSize } from '../protocol/sizes.ts';
import type { MessageInfo } from '../protocol/validate.ts';
import { CommsError, ProtocolError } from '../errors.ts';
import { forEachLimit } from '../util/pool.ts';
import { isPidAlive } from '../util/process.ts';

export type ConflictPolicy = 'suffix' | 'fail';

export interface MaterializeOptions {
  outDir: string;
  parallel?: number;
  onConflict?: ConflictPolicy;
  signal?: AbortSignal;
  onProgress?: (bytesWritten: number) => void;
  /** From scratchDirFor(outDir); computed when absent. */
  scratchDir?: string;
}

export class FileExistsError extends CommsError {
  constructor(message: string) {
    super(message, { code: 'FILE_EXISTS' });
  }
}

/**
 * Where partial files go: a scratch folder on the same filesystem as the output folder (so the
 * final link is atomic), outside it when the OS temp folder shares that filesystem — then a recv
 * killed mid-transfer leaves nothing at all in --out — else a hidden `.comms-partial` inside it.
 * Partial files are named `<pid>-<random>.part`; those of dead processes are swept on each run.
 */
export async function scratchDirFor(outDir: string): Promise<string> {
  const [o, t] = await Promise.all([stat(outDir), stat(os.tmpdir()).catch(() => undefined)]);
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const dir = t !== undefined && t.dev === o.dev ? path.join(os.tmpdir(), `comms-partial-${uid}`) : path.join(outDir, '.comms-partial');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await sweepStalePartials(dir);
  return dir;
}

async function sweepStalePartials(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = /^(\d+)-[0-9a-f]+\.part$/.exec(name);
    if (m && !isPidAlive(Number(m[1]))) await unlink(path.join(dir, name)).catch(() => undefined);
  }
}

/** Returns the path of the file written. */
export async function materialize(repo: Repository, info: MessageInfo, options: MaterializeOptions): Promise<string> {
  const scratch = options.scratchDir ?? (await scratchDirFor(options.outDir));
  const tmpPath = path.join(scratch, `${process.pid}-${randomBytes(6).toString('hex')}.part`);
  // 0o666 less the umask, as any file a user creates; the partial file lives outside --out.
  const fh = await open(tmpPath, 'wx', 0o666);
  let closed = false;
  let written = 0;
  try {
    await forEachLimit(info.layers, options.parallel ?? 4, async (layer, i) => {
      // The validator already checked that total_bytes fits chunk_bytes × chunk_count.
      const expected = chunkRawSize(info.totalBytes, info.chunkBytes, i);
      const compressed = await repo.fetch(layer, { signal: options.signal });
      // The reader stops a chunk that decompresses past its expected size, while streaming.
      const raw = readChunk(compressed, { index: i, chunkBytes: info.chunkBytes, compression: info.compression, expectedBytes: expected });
      const got = await writeAt(fh, raw, i * info.chunkBytes, (n) => {
        written += n;
        options.onProgress?.(written);
      }, options.signal);
      if (got !== expected) {
        throw new ProtocolError(`chunk ${i} holds ${got} bytes, expected ${expected} (total_bytes ${info.totalBytes}, chunk_bytes ${info.chunkBytes})`, { code: 'TOTAL_BYTES_MISMATCH' });
      }
    }, options.signal);
    if (written !== info.totalBytes) {
      throw new ProtocolError(`received ${written} bytes, the manifest says total_bytes ${info.totalBytes}`, { code: 'TOTAL_BYTES_MISMATCH' });
    }
    await fh.truncate(info.totalBytes);
    await fh.sync();
    await fh.close();
    closed = true;
    const finalPath = await linkNoClobber(tmpPath, options.outDir, info.filename, options.onConflict ?? 'suffix');
    await unlink(tmpPath);
    await syncDir(options.outDir);
    return finalPath;
  } catch (err) {
    if (!closed) await fh.close().catch(() => undefined);
    await unlink(tmpPath).catch(() => undefined);
    throw err;
  }
}

async function writeAt(fh: FileHandle, source: NodeJS.ReadableStream, start: number, onBytes: (n: number) => void, signal?: AbortSignal): Promise<number> {
  let pos = start;
  let count = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      fh.write(chunk, 0, chunk.length, pos).then(
        ({ bytesWritten }) => {
          pos += bytesWritten;
          count += bytesWritten;
          onBytes(bytesWritten);
          cb();
        },
        (e: unknown) => cb(e as Error),
      );
    },
  });
  await pipeline(source, sink, { signal });
  return count;
}

/** `name`, then `name-1.ext`, `name-2.ext`…: link(2) fails when the target exists, so no race overwrites. */
async function linkNoClobber(tmpPath: string, dir: string, filename: string, policy: ConflictPolicy): Promise<string> {
  const ext = path.extname(filename);
  const stem = ext === filename ? filename : filename.slice(0, filename.length - ext.length);
  for (let n = 0; n < 10000; n++) {
    const candidate = path.join(dir, n === 0 ? filename : `${stem}-${n}${ext}`);
    try {
      await link(tmpPath, candidate);
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (policy === 'fail') throw new FileExistsError(`${candidate} already exists (--no-clobber): not overwritten`);
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
