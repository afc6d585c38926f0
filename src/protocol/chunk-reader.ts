/**
 * Reads one chunk layer back to its payload bytes, checking the tar while it streams: exactly one
 * entry, a regular file (no links, directories, PAX or GNU long-name headers), named exactly
 * `chunk_<index>.bin`, at most `chunkBytes` long (from the header, and by counting decompressed
 * output so that a decompression bomb stops at the cap), and nothing after it but zero padding.
 * Every violation is a ProtocolError (exit 4) with a specific code.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { ProtocolError, UsageError, type ErrorCode } from '../errors.ts';
import type { Compression } from './constants.ts';
import { BLOCK, chunkEntryName, isZeroBlock, paddingFor, parseTarHeader } from './tar.ts';

/**
 * Zero bytes accepted after the entry: the two end-of-archive blocks plus padding to a 10240-byte
 * record, as GNU tar writes (Go writes just the two blocks).
 */
export const MAX_TRAILER_BYTES = 24 * BLOCK;

export interface ReadChunkOptions {
  index: number;
  /** The manifest's chunk_bytes: no entry may be larger. */
  chunkBytes: number;
  compression: Compression;
  /** When known (chunkRawSize), the entry must have exactly this size. */
  expectedBytes?: number;
  /** Cap on decompressed bytes (default: header + chunkBytes rounded to blocks + MAX_TRAILER_BYTES). */
  maxOutput?: number;
}

function fail(code: ErrorCode, message: string): ProtocolError {
  return new ProtocolError(message, { code });
}

type State = 'header' | 'data' | 'padding' | 'trailer';

/** The tar parser: passes the entry's data through, refuses everything else. */
class SingleEntryExtractor extends Transform {
  readonly #index: number;
  readonly #chunkBytes: number;
  readonly #expected: number | undefined;
  readonly #maxOutput: number;
  #state: State = 'header';
  readonly #header = Buffer.alloc(BLOCK);
  #headerFill = 0;
  #remaining = 0;
  #size = 0;
  #trailerSeen = 0;
  #total = 0;

  constructor(o: ReadChunkOptions, maxOutput: number) {
    super();
    this.#index = o.index;
    this.#chunkBytes = o.chunkBytes;
    this.#expected = o.expectedBytes;
    this.#maxOutput = maxOutput;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#total += chunk.length;
    if (this.#total > this.#maxOutput) {
      cb(
        fail(
          'CHUNK_TOO_LARGE',
          `chunk ${this.#index} decompresses to more than ${this.#maxOutput} bytes (chunk_bytes ${this.#chunkBytes}): refusing a decompression bomb`,
        ),
      );
      return;
    }
    try {
      this.#consume(chunk);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  #consume(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      switch (this.#state) {
        case 'header': {
          const n = Math.min(BLOCK - this.#headerFill, chunk.length - off);
          chunk.copy(this.#header, this.#headerFill, off, off + n);
          this.#headerFill += n;
          off += n;
          if (this.#headerFill === BLOCK) this.#onHeader();
          break;
        }
        case 'data': {
          const n = Math.min(this.#remaining, chunk.length - off);
          this.push(chunk.subarray(off, off + n));
          this.#remaining -= n;
          off += n;
          if (this.#remaining === 0) this.#endData();
          break;
        }
        case 'padding': {
          const n = Math.min(this.#remaining, chunk.length - off);
          if (!isZeroBlock(chunk.subarray(off, off + n))) throw fail('TAR_TRAILING_DATA', `chunk ${this.#index}: non-zero bytes in the tar padding`);
          this.#remaining -= n;
          off += n;
          if (this.#remaining === 0) this.#state = 'trailer';
          break;
        }
        case 'trailer': {
          const rest = chunk.subarray(off);
          for (let i = 0; i < rest.length; i++) {
            if (rest[i] !== 0) {
              // A non-zero byte where the next header would start is a second entry.
              const pos = this.#trailerSeen + i;
              if (pos < BLOCK) throw fail('TAR_MULTIPLE_ENTRIES', `chunk ${this.#index}: the tar holds more than one entry`);
              throw fail('TAR_TRAILING_DATA', `chunk ${this.#index}: data after the tar's end-of-archive marker`);
            }
          }
          this.#trailerSeen += rest.length;
          if (this.#trailerSeen > MAX_TRAILER_BYTES)
            throw fail('CHUNK_TOO_LARGE', `chunk ${this.#index}: more than ${MAX_TRAILER_BYTES} bytes of padding after the tar entry`);
          off = chunk.length;
          break;
        }
      }
    }
  }

  #onHeader(): void {
    if (isZeroBlock(this.#header)) throw fail('TAR_EMPTY', `chunk ${this.#index}: the tar holds no entry`);
    const h = parseTarHeader(this.#header);
    const want = chunkEntryName(this.#index);
    if (h.typeflag !== '0' && h.typeflag !== '\0') {
      const kind: Record<string, string> = {
        '1': 'a hard link',
        '2': 'a symbolic link',
        '3': 'a character device',
        '4': 'a block device',
        '5': 'a directory',
        '6': 'a FIFO',
        x: 'a PAX extended header',
        g: 'a PAX global header',
        L: 'a GNU long name',
        K: 'a GNU long link name',
      };
      throw fail('TAR_ENTRY_TYPE', `chunk ${this.#index}: the tar entry is ${kind[h.typeflag] ?? `of type ${JSON.stringify(h.typeflag)}`}, not a regular file`);
    }
    if (h.linkname !== '') throw fail('TAR_ENTRY_TYPE', `chunk ${this.#index}: the tar entry carries a link target`);
    if (h.prefix !== '' || h.name !== want) {
      const shown = h.prefix === '' ? h.name : `${h.prefix}/${h.name}`;
      throw fail('TAR_ENTRY_NAME', `chunk ${this.#index}: the tar entry is named ${JSON.stringify(shown)}, expected ${JSON.stringify(want)}`);
    }
    if (h.size > this.#chunkBytes)
      throw fail('CHUNK_TOO_LARGE', `chunk ${this.#index}: the tar entry has ${h.size} bytes, more than chunk_bytes ${this.#chunkBytes}`);
    if (this.#expected !== undefined && h.size !== this.#expected) {
      throw fail('CHUNK_SIZE_MISMATCH', `chunk ${this.#index}: the tar entry has ${h.size} bytes, the manifest implies ${this.#expected}`);
    }
    this.#size = h.size;
    this.#remaining = h.size;
    this.#state = 'data';
    if (h.size === 0) this.#endData();
  }

  #endData(): void {
    this.#remaining = paddingFor(this.#size);
    this.#state = this.#remaining === 0 ? 'trailer' : 'padding';
  }

  override _flush(cb: TransformCallback): void {
    if (this.#state === 'header') {
      cb(
        this.#total === 0
          ? fail('TAR_EMPTY', `chunk ${this.#index}: the layer decompresses to nothing`)
          : fail('TAR_TRUNCATED', `chunk ${this.#index}: the tar header is cut short`),
      );
      return;
    }
    if (this.#state === 'data' || this.#state === 'padding') {
      cb(fail('TAR_TRUNCATED', `chunk ${this.#index}: the tar entry is cut short`));
      return;
    }
    cb();
  }
}

function checkOptions(o: ReadChunkOptions): void {
  if (!Number.isSafeInteger(o.index) || o.index < 0) throw new UsageError(`chunk index must be a non-negative integer, got ${o.index}`);
  if (!Number.isSafeInteger(o.chunkBytes) || o.chunkBytes <= 0) throw new UsageError(`chunk_bytes must be a positive integer, got ${o.chunkBytes}`);
  if (o.compression !== 'gzip' && o.compression !== 'zstd') throw new UsageError(`unknown compression ${JSON.stringify(o.compression)}`);
  if (o.expectedBytes !== undefined && (!Number.isSafeInteger(o.expectedBytes) || o.expectedBytes < 0))
    throw new UsageError(`expectedBytes must be a non-negative integer`);
  if (o.maxOutput !== undefined && (!Number.isSafeInteger(o.maxOutput) || o.maxOutput < 0)) throw new UsageError(`maxOutput must be a non-negative integer`);
}

/** Largest decompressed size a valid chunk of `chunkBytes` can have. */
export function maxChunkOutput(chunkBytes: number): number {
  return BLOCK + chunkBytes + paddingFor(chunkBytes) + MAX_TRAILER_BYTES;
}

/**
 * The payload bytes of chunk `index`, from its compressed layer. The returned stream errors with
 * a ProtocolError at the first violation (and destroys `compressed`); errors of `compressed`
 * itself (a DigestMismatchError from a verifying fetch, say) come through unchanged.
 */
export function readChunk(compressed: Readable, options: ReadChunkOptions): Readable {
  checkOptions(options);
  const decompressor = options.compression === 'zstd' ? zlib.createZstdDecompress({ chunkSize: 1024 * 1024 }) : zlib.createGunzip({ chunkSize: 1024 * 1024 });
  const out = new SingleEntryExtractor(options, options.maxOutput ?? maxChunkOutput(options.chunkBytes));
  const abort = (err: Error): void => {
    if (!out.destroyed) out.destroy(err);
  };
  compressed.on('error', abort);
  decompressor.on('error', (cause: Error) =>
    abort(new ProtocolError(`chunk ${options.index}: the ${options.compression} stream is corrupt: ${cause.message}`, { code: 'DECOMPRESSION_FAILED', cause })),
  );
  out.on('close', () => {
    decompressor.destroy();
    compressed.destroy();
  });
  compressed.pipe(decompressor).pipe(out);
  return out;
}
