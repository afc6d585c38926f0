/**
 * Cuts a payload stream into chunk layers: each a one-entry tar (`chunk_<i>.bin`, see tar.ts)
 * compressed with gzip or zstd, written to a spool file while its digest and size are computed.
 *
 * Memory does not grow with the payload or the chunk size: bytes flow input → tar framing →
 * compressor → hash → spool file through bounded stream buffers. The tar header needs the
 * entry's size before its data; when the caller knows the total (`totalBytes`, e.g. from stat)
 * every chunk's size is known and the input is read once; otherwise each raw piece is first
 * spooled to disk to learn its size, then compressed from there.
 *
 * The generator produces a chunk only when asked for the next one, so a consumer uploading N in
 * parallel holds at most N spool files (plus the one being written).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { CommsError, UsageError } from '../errors.ts';
import { checkAborted } from '../util/abort.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import { Annotation, MAX_CHUNKS, chunkMediaTypeFor, type Compression } from './constants.ts';
import { chunkRawSize, totalChunks } from './sizes.ts';
import { END_OF_ARCHIVE, MAX_USTAR_SIZE, chunkEntryName, encodeTarHeader, paddingFor } from './tar.ts';

export { totalChunks } from './sizes.ts';

export const DEFAULT_GZIP_LEVEL = 6;
export const DEFAULT_ZSTD_LEVEL = 3;
/** Largest piece handed down the pipeline at once; bounds the buffering between stages. */
const PIECE_BYTES = 1024 * 1024;

export interface WriteChunksOptions {
  chunkBytes: number;
  compression: Compression;
  /** gzip 0..9 (default 6), zstd 1..19 (default 3). */
  level?: number;
  /** An existing folder for the spool files; the caller removes it when done. */
  spoolDir: string;
  signal?: AbortSignal;
  /**
   * The payload's exact size when known: the input is then read once, without spooling raw
   * pieces; a payload that turns out shorter or longer fails with INPUT_CHANGED.
   */
  totalBytes?: number;
  /** Refuse payloads needing more chunks than this (default MAX_CHUNKS, 10000). */
  maxChunks?: number;
  /** Called with the size of each payload piece as it enters the compressor (progress). */
  onRead?: (bytes: number) => void;
}

export interface SpooledChunk {
  index: number;
  /** Payload bytes in this chunk (the tar entry's size). */
  rawBytes: number;
  /** Chunk media type, digest and size of the compressed layer, annotation dockercomms.chunk.index. */
  descriptor: Descriptor;
  /** The spool file holding the compressed layer; belongs to the consumer until dispose(). */
  path: string;
  /** Removes the spool file. */
  dispose(): Promise<void>;
}

export interface ChunkWriteStats {
  chunkCount: number;
  /** Payload bytes read so far; the payload's total once `done`. */
  rawBytes: number;
  compressedBytes: number;
  /** True once the input was read to its end and every chunk produced. */
  done: boolean;
}

/** The chunk generator, with live statistics (final when `stats.done`). */
export type ChunkStream = AsyncGenerator<SpooledChunk, ChunkWriteStats, undefined> & { readonly stats: ChunkWriteStats };

/** Pulls exact amounts from a Readable, keeping at most one input piece aside. */
class ByteReader {
  readonly #it: AsyncIterator<unknown>;
  #pending: Buffer | undefined;
  #ended = false;

  constructor(input: Readable | AsyncIterable<unknown>) {
    this.#it = input[Symbol.asyncIterator]();
  }

  async hasMore(): Promise<boolean> {
    while (this.#pending === undefined) {
      if (this.#ended) return false;
      const r = await this.#it.next();
      if (r.done === true) {
        this.#ended = true;
        return false;
      }
      const v = r.value;
      const b = typeof v === 'string' ? Buffer.from(v) : v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : undefined;
      if (b === undefined) throw new UsageError('the input stream must yield bytes');
      if (b.length > 0) this.#pending = b;
    }
    return true;
  }

  /** Up to `max` bytes; undefined at the end of the input. */
  async read(max: number): Promise<Buffer | undefined> {
    if (!(await this.hasMore())) return undefined;
    const p = this.#pending!;
    if (p.length <= max) {
      this.#pending = undefined;
      return p;
    }
    this.#pending = p.subarray(max);
    return p.subarray(0, max);
  }

  /** Stops reading; an unfinished input stream is destroyed, as for-await would. */
  async close(): Promise<void> {
    if (!this.#ended) {
      this.#ended = true;
      await this.#it.return?.();
    }
  }
}

function checkOptions(o: WriteChunksOptions): void {
  if (!Number.isSafeInteger(o.chunkBytes) || o.chunkBytes <= 0) throw new UsageError(`chunk size must be a positive integer, got ${o.chunkBytes}`);
  if (o.chunkBytes > MAX_USTAR_SIZE)
    throw new UsageError(`chunk size ${o.chunkBytes} is larger than a tar entry holds without PAX headers (${MAX_USTAR_SIZE})`);
  if (o.compression !== 'gzip' && o.compression !== 'zstd') throw new UsageError(`unknown compression ${JSON.stringify(o.compression)}`);
  if (o.level !== undefined) {
    const [lo, hi] = o.compression === 'gzip' ? [0, 9] : [1, 19];
    if (!Number.isInteger(o.level) || o.level < lo || o.level > hi) throw new UsageError(`${o.compression} level must be ${lo}..${hi}, got ${o.level}`);
  }
  if (o.totalBytes !== undefined && (!Number.isSafeInteger(o.totalBytes) || o.totalBytes < 0))
    throw new UsageError(`totalBytes must be a non-negative integer, got ${o.totalBytes}`);
  if (o.maxChunks !== undefined && (!Number.isSafeInteger(o.maxChunks) || o.maxChunks < 0))
    throw new UsageError(`maxChunks must be a non-negative integer, got ${o.maxChunks}`);
}

function compressor(compression: Compression, level: number | undefined): zlib.Gzip | zlib.ZstdCompress {
  // 1 MiB output pieces: zlib's 16 KiB default costs about a quarter more CPU in callbacks.
  if (compression === 'gzip') return zlib.createGzip({ level: level ?? DEFAULT_GZIP_LEVEL, chunkSize: PIECE_BYTES });
  return zlib.createZstdCompress({
    chunkSize: PIECE_BYTES,
    params: {
      [zlib.constants.ZSTD_c_compressionLevel]: level ?? DEFAULT_ZSTD_LEVEL,
      // A content checksum, as the zstd CLI and v1.0's encoder write by default.
      [zlib.constants.ZSTD_c_checksumFlag]: 1,
    },
  });
}

function tooManyChunks(maxChunks: number): UsageError {
  return new UsageError(`the payload needs more than ${maxChunks} chunks: use a larger chunk size`, { code: 'TOO_MANY_CHUNKS' });
}

function inputChanged(message: string): CommsError {
  return new CommsError(message, { code: 'INPUT_CHANGED' });
}

/** Hashes and counts what passes, on its way to the spool file. */
class DigestTap extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
}

/**
 * Cuts `input` into spooled chunk layers (see the file comment). The empty input yields none.
 * An async-iterable input may reuse the buffer of a piece it yielded once the piece after next is
 * asked for: each piece is written (and the write awaited) before then.
 */
export function writeChunks(input: Readable | AsyncIterable<unknown>, options: WriteChunksOptions): ChunkStream {
  const stats: ChunkWriteStats = { chunkCount: 0, rawBytes: 0, compressedBytes: 0, done: false };
  const gen = generate(input, options, stats);
  return Object.defineProperty(gen, 'stats', { value: stats, enumerable: true }) as ChunkStream;
}

async function* generate(
  input: Readable | AsyncIterable<unknown>,
  options: WriteChunksOptions,
  stats: ChunkWriteStats,
): AsyncGenerator<SpooledChunk, ChunkWriteStats, undefined> {
  checkOptions(options);
  const { chunkBytes, compression, signal, totalBytes } = options;
  const maxChunks = options.maxChunks ?? MAX_CHUNKS;
  if (totalBytes !== undefined && totalChunks(totalBytes, chunkBytes) > maxChunks) throw tooManyChunks(maxChunks);
  const mediaType = chunkMediaTypeFor(compression);
  const reader = new ByteReader(input);
  const stem = path.join(options.spoolDir, `comms-chunk-${randomBytes(6).toString('hex')}`);
  // Files of the chunk being made; removed if anything fails before it is handed over.
  let inFlight: string[] = [];
  try {
    for (let index = 0; ; index++) {
      checkAborted(signal);
      let size: number;
      let data: () => AsyncIterable<Buffer>;
      const layerPath = `${stem}-${index}.layer`;
      if (totalBytes !== undefined) {
        if (index * chunkBytes >= totalBytes) break;
        size = Math.min(chunkBytes, totalBytes - index * chunkBytes);
        data = () => readExactly(reader, size, totalBytes);
      } else {
        if (!(await reader.hasMore())) break;
        if (index >= maxChunks) throw tooManyChunks(maxChunks);
        const rawPath = `${stem}-${index}.raw`;
        inFlight.push(rawPath);
        size = await spoolRaw(reader, rawPath, chunkBytes, signal);
        data = () => readRange(rawPath, 0, size);
      }
      inFlight.push(layerPath);
      const tap = await compressTo(layerPath, index, size, data(), compressor(compression, options.level), signal, options.onRead);
      for (const p of inFlight) if (p !== layerPath) await rm(p, { force: true });
      inFlight = [];
      stats.chunkCount++;
      stats.rawBytes += size;
      stats.compressedBytes += tap.size;
      yield {
        index,
        rawBytes: size,
        descriptor: {
          mediaType,
          digest: `sha256:${tap.hash.digest('hex')}`,
          size: tap.size,
          annotations: { [Annotation.ChunkIndex]: String(index) },
        },
        path: layerPath,
        dispose: () => rm(layerPath, { force: true }),
      };
    }
    if (totalBytes !== undefined && (await reader.hasMore())) {
      throw inputChanged(`the input is longer than the ${totalBytes} bytes announced (it changed while being read?)`);
    }
    stats.done = true;
    return stats;
  } catch (err) {
    checkAborted(signal);
    throw err;
  } finally {
    for (const p of inFlight) await rm(p, { force: true });
    await reader.close();
  }
}

/**
 * Writes the tar framing of `data` through `zip` into `layerPath`, hashing on the way.
 *
 * The compressor is fed by hand, each write awaited, then ended with no data, rather than by
 * pipeline(): Node's zlib finishes the frame inside the last chunk or in a separate empty step
 * depending on whether end() arrived before that chunk was processed, and zstd's bytes differ
 * between the two. Awaiting each write makes it always the separate step, so the layer bytes,
 * and the digests that resumed uploads rely on, are the same on every run. Reading the next
 * input piece overlaps the compression of the current one.
 */
async function compressTo(
  layerPath: string,
  index: number,
  size: number,
  data: AsyncIterable<Buffer>,
  zip: zlib.Gzip | zlib.ZstdCompress,
  signal: AbortSignal | undefined,
  onRead?: (bytes: number) => void,
): Promise<DigestTap> {
  const tap = new DigestTap();
  let firstError: unknown;
  const feeding = (async () => {
    if (!(await write(zip, encodeTarHeader(chunkEntryName(index), size)))) return;
    const it = data[Symbol.asyncIterator]();
    try {
      let next = it.next();
      for (;;) {
        const r = await next;
        if (r.done === true) break;
        next = it.next();
        // If the write fails the read-ahead is abandoned; keep its rejection from going unhandled.
        next.catch(() => {});
        if (!(await write(zip, r.value))) return;
        onRead?.(r.value.length);
      }
    } finally {
      await it.return?.();
    }
    const pad = paddingFor(size);
    if (pad > 0 && !(await write(zip, Buffer.alloc(pad)))) return;
    if (!(await write(zip, Buffer.from(END_OF_ARCHIVE)))) return;
    zip.end();
  })().catch((err: unknown) => {
    firstError ??= err;
    zip.destroy(err as Error);
  });
  const flowing = pipeline(zip, tap, createWriteStream(layerPath, { flags: 'wx' }), signal === undefined ? {} : { signal }).catch((err: unknown) => {
    firstError ??= err;
  });
  await Promise.all([feeding, flowing]);
  if (firstError !== undefined) throw firstError;
  return tap;
}

/** Writes and waits until the chunk is processed; false when the stream was destroyed (its pipeline reports why). */
function write(w: Writable, chunk: Buffer): Promise<boolean> {
  if (w.destroyed) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    w.write(chunk, (err) => resolve(err === undefined || err === null));
  });
}

async function* readExactly(reader: ByteReader, size: number, totalBytes: number): AsyncGenerator<Buffer> {
  let remaining = size;
  while (remaining > 0) {
    const b = await reader.read(Math.min(remaining, PIECE_BYTES));
    if (b === undefined) throw inputChanged(`the input ended before the ${totalBytes} bytes announced (it changed while being read?)`);
    remaining -= b.length;
    yield b;
  }
}

/** Copies up to `chunkBytes` of the input into `rawPath`; returns how many bytes it holds. */
async function spoolRaw(reader: ByteReader, rawPath: string, chunkBytes: number, signal: AbortSignal | undefined): Promise<number> {
  const fh = await open(rawPath, 'wx');
  let n = 0;
  try {
    while (n < chunkBytes) {
      checkAborted(signal);
      const b = await reader.read(Math.min(chunkBytes - n, PIECE_BYTES));
      if (b === undefined) break;
      let off = 0;
      while (off < b.length) off += (await fh.write(b, off, b.length - off)).bytesWritten;
      n += b.length;
    }
  } finally {
    await fh.close();
  }
  return n;
}

/**
 * `size` bytes of a file from `start`, read into two buffers used in turn: compressTo awaits each
 * write (so a yielded buffer is consumed before the piece after next is read into it), and
 * reusing them spares the garbage collector a chunk's worth of short-lived buffers.
 */
async function* readRange(filePath: string, start: number, size: number): AsyncGenerator<Buffer> {
  const fh = await open(filePath, 'r');
  try {
    const buffers = [Buffer.allocUnsafe(Math.min(PIECE_BYTES, Math.max(size, 1))), Buffer.allocUnsafe(Math.min(PIECE_BYTES, Math.max(size, 1)))];
    let pos = 0;
    for (let turn = 0; pos < size; turn ^= 1) {
      const buf = buffers[turn]!;
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), start + pos);
      if (bytesRead === 0) throw inputChanged(`${filePath} ended ${size - pos} bytes early at offset ${start + pos} (it changed while being read?)`);
      pos += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

export interface FileChunkOptions {
  chunkBytes: number;
  /** The file's size when sending began (from stat). */
  totalBytes: number;
  compression: Compression;
  level?: number;
  spoolDir: string;
  signal?: AbortSignal;
  /** Called with the size of each payload piece as it enters the compressor (progress). */
  onRead?: (bytes: number) => void;
}

/**
 * Chunk `index` of a regular file, spooled as its layer: the same bytes writeChunks() produces
 * for that chunk, but read from the file's own byte range, so several chunks can be compressed at
 * once (zlib works on the libuv thread pool: one compressor per core). The caller checks that
 * the file did not change size meanwhile.
 */
export async function spoolFileChunk(filePath: string, index: number, options: FileChunkOptions): Promise<SpooledChunk> {
  checkOptions(options);
  const { chunkBytes, totalBytes } = options;
  if (totalChunks(totalBytes, chunkBytes) > MAX_CHUNKS) throw tooManyChunks(MAX_CHUNKS);
  const size = chunkRawSize(totalBytes, chunkBytes, index);
  const layerPath = path.join(options.spoolDir, `comms-chunk-${randomBytes(6).toString('hex')}-${index}.layer`);
  try {
    const tap = await compressTo(
      layerPath,
      index,
      size,
      readRange(filePath, index * chunkBytes, size),
      compressor(options.compression, options.level),
      options.signal,
      options.onRead,
    );
    return {
      index,
      rawBytes: size,
      descriptor: {
        mediaType: chunkMediaTypeFor(options.compression),
        digest: `sha256:${tap.hash.digest('hex')}`,
        size: tap.size,
        annotations: { [Annotation.ChunkIndex]: String(index) },
      },
      path: layerPath,
      dispose: () => rm(layerPath, { force: true }),
    };
  } catch (err) {
    await rm(layerPath, { force: true });
    checkAborted(options.signal);
    throw err;
  }
}
