/**
 * Crash-safe file writes for the layout store: everything is written to a temp file in the
 * layout's own temp folder (same filesystem, so rename is atomic), fsynced, then moved into place
 * — so a reader sees either the old file or the whole new one, never a prefix of it.
 */
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { link, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbortError, CommsError } from '../../errors.ts';
import { VerifyingStream } from '../digest.ts';
import type { Descriptor } from '../descriptor.ts';

/** A unique name in `tmpDir`; the pid prefix tells a sweeper whose file it was. */
export function tempPath(tmpDir: string, purpose: string): string {
  return join(tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}.${purpose}`);
}

/** Makes a rename or link in `dir` durable; filesystems that cannot fsync a directory are tolerated. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'ENOTSUP') throw err;
  } finally {
    await fh?.close();
  }
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  for (let off = 0; off < chunk.length; ) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
    off += bytesWritten;
  }
}

/**
 * Writes `bytes` to `dest` atomically. `replace` renames over whatever is there; `create` only
 * creates `dest` when it is absent (hard link, which fails on an existing name) and returns
 * false when someone else created it first — so a concurrent writer's file is never clobbered.
 */
export async function writeFileAtomic(tmpDir: string, dest: string, bytes: Uint8Array, mode: 'replace' | 'create'): Promise<boolean> {
  const tmp = tempPath(tmpDir, 'file');
  let renamed = false;
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await writeAll(fh, bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (mode === 'replace') {
      await rename(tmp, dest);
      renamed = true;
      await fsyncDir(dirname(dest));
      return true;
    }
    try {
      await link(tmp, dest);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    await fsyncDir(dirname(dest));
    return true;
  } finally {
    // After a rename there is nothing left to remove.
    if (!renamed) await rm(tmp, { force: true });
  }
}

function asCommsError(err: unknown, what: string): CommsError {
  if (err instanceof CommsError) return err;
  if ((err as Error | undefined)?.name === 'AbortError') return new AbortError(undefined, { cause: err });
  return new CommsError(`${what}: ${(err as Error | undefined)?.message ?? String(err)}`, { code: 'IO_ERROR', cause: err });
}

export interface StreamWriteOptions {
  onProgress?: ((bytes: number) => void) | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Streams `source` into `dest`, hashing and counting on the way (VerifyingStream); only content
 * that matches `desc` is renamed into place. On any failure the temp file is removed and the
 * error (DigestMismatchError, AbortError, or an I/O CommsError) is thrown.
 */
export async function streamToFileAtomic(tmpDir: string, dest: string, source: Readable, desc: Descriptor, options: StreamWriteOptions = {}): Promise<void> {
  const tmp = tempPath(tmpDir, 'blob');
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'wx', 0o644);
    const handle = fh;
    let written = 0;
    await pipeline(
      source,
      new VerifyingStream(desc.digest, desc.size),
      async (chunks: AsyncIterable<Buffer>) => {
        for await (const chunk of chunks) {
          await writeAll(handle, chunk);
          written += chunk.length;
          options.onProgress?.(written);
        }
      },
      options.signal !== undefined ? { signal: options.signal } : {},
    );
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, dest);
    await fsyncDir(dirname(dest));
  } catch (err) {
    if (!source.destroyed) source.destroy();
    throw asCommsError(err, `writing ${desc.digest} failed`);
  } finally {
    await fh?.close().catch(() => undefined);
    await rm(tmp, { force: true });
  }
}
