/**
 * Blob upload, per the OCI distribution spec:
 * - skipped when the registry already has the blob (HEAD), or mounted from another repository;
 *   a small blob pushed with `skipExistsCheck` is uploaded without the HEAD;
 * - small blobs: read into memory, verified, then POST + PUT ?digest= (monolithic);
 * - large or streamed blobs: POST, then PATCH chunk after chunk (Content-Range, following the
 *   Location each time), then PUT ?digest=. Memory stays about one chunk. Digest and size are
 *   checked while the source is read; a mismatch cancels the upload session (DELETE) and
 *   throws DigestMismatchError, so the registry never commits wrong content.
 * A PATCH is not idempotent: after a dropped connection the client asks the upload URL how
 * many bytes the registry kept (its Range) and sends the rest, instead of replaying it.
 */
import { ReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { AbortError, CommsError, DigestMismatchError, ProtocolError } from '../../errors.ts';
import type { Descriptor } from '../descriptor.ts';
import { hasherFor, parseDigest } from '../digest.ts';
import { validateRepositoryName } from '../reference.ts';
import { SMALL_BLOB_MAX_BYTES, type PushOptions, type PushResult } from '../target.ts';
import { discard, header, readLimited, type HttpResponse } from './http.ts';
import type { RepoIO } from './repo-io.ts';
import { backoffDelay, isTransientNetworkError, parseRetryAfter, RETRYABLE_STATUS, MAX_RETRY_AFTER_MS } from './retry.ts';
import { sleep } from '../../util/abort.ts';

interface Session {
  /** The latest upload URL (each PATCH answers with the next one). */
  location: URL;
  /** The registry's OCI-Chunk-Min-Length, when it sent one. */
  minChunk?: number;
}

function digestText(algorithm: string, hash: { digest(enc: 'hex'): string }): string {
  return `${algorithm}:${hash.digest('hex')}`;
}

/** Frees a source the upload will not read. */
function release(content: Readable | Uint8Array): void {
  if (content instanceof Readable) content.destroy();
}

function locationOf(res: HttpResponse, base: URL, operation: string, registry: string): URL {
  const location = header(res, 'location');
  if (location === undefined) {
    throw new ProtocolError(`${operation}: ${registry} answered ${res.status} without a Location`, { code: 'MISSING_LOCATION', registry });
  }
  try {
    return new URL(location, base);
  } catch (cause) {
    throw new ProtocolError(`${operation}: ${registry} sent an invalid Location`, { code: 'INVALID_LOCATION', cause, registry });
  }
}

/** `0-<end>` → bytes held (end + 1); '0-0' and absence mean nothing for a fresh chunk at `expectedStart` 0. */
export function committedBytes(range: string | undefined): number | undefined {
  if (range === undefined) return 0;
  const m = /^\s*(?:bytes=)?(\d+)-(\d+)\s*$/.exec(range);
  if (!m) return undefined;
  const end = Number(m[2]);
  // distribution answers "0-0" both for an empty upload and one byte; empty is the safe reading.
  return end === 0 ? 0 : end + 1;
}

async function exists(io: RepoIO, desc: Descriptor, signal?: AbortSignal): Promise<boolean> {
  const operation = `check blob ${desc.digest}`;
  const url = await io.url(`blobs/${desc.digest}`, signal);
  const res = await io.send({ method: 'HEAD', url, followRedirects: true, scopes: io.scopes('pull'), signal }, operation);
  if (res.status === 200) {
    await discard(res);
    return true;
  }
  if (res.status === 404) {
    await discard(res);
    return false;
  }
  throw await io.fail(res, operation);
}

export { exists as blobExists };

/** Reads a small source whole, checking size and digest; nothing is sent before it passes. */
async function readVerified(content: Readable | Uint8Array, desc: Descriptor, operation: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  if (content instanceof Readable) {
    const read = await readLimited(content, desc.size);
    if (read === undefined) throw new DigestMismatchError(`${operation}: the content is larger than its descriptor's size ${desc.size}`);
    bytes = read;
  } else {
    bytes = content;
  }
  if (bytes.length !== desc.size) {
    throw new DigestMismatchError(`${operation}: the content has ${bytes.length} bytes, its descriptor says ${desc.size}`);
  }
  const { algorithm } = parseDigest(desc.digest);
  const actual = digestText(algorithm, hasherFor(desc.digest).update(bytes));
  if (actual !== desc.digest) throw new DigestMismatchError(`${operation}: content digest mismatch: expected ${desc.digest}, got ${actual}`);
  return bytes;
}

async function startSession(io: RepoIO, operation: string, signal?: AbortSignal): Promise<Session> {
  const url = await io.url('blobs/uploads/', signal);
  // Starting a session twice only leaves an idle session behind, which registries expire.
  const res = await io.send({ method: 'POST', url, idempotent: true, scopes: io.scopes('pull', 'push'), signal }, operation);
  if (res.status !== 202) throw await io.fail(res, operation);
  await discard(res);
  const session: Session = { location: locationOf(res, url, operation, io.registry) };
  const min = Number(header(res, 'oci-chunk-min-length'));
  if (Number.isInteger(min) && min > 0) session.minChunk = min;
  return session;
}

/** Cancels an upload session, best effort (the registry also expires it). */
async function cancel(io: RepoIO, location: URL): Promise<void> {
  try {
    const res = await io.send(
      { method: 'DELETE', url: location, idempotent: true, scopes: io.scopes('pull', 'push'), signal: AbortSignal.timeout(10_000) },
      'cancel upload',
    );
    await discard(res);
  } catch {
    // The session is abandoned either way.
  }
}

/** PUT <location>?digest=…, with the final bytes (or none). */
async function finish(io: RepoIO, desc: Descriptor, location: URL, body: Uint8Array | undefined, operation: string, signal?: AbortSignal): Promise<void> {
  const url = new URL(location.href);
  url.searchParams.append('digest', desc.digest);
  let res: HttpResponse;
  try {
    res = await io.send(
      {
        method: 'PUT',
        url,
        headers: { 'content-type': 'application/octet-stream' },
        ...(body !== undefined ? { body } : {}),
        // Bytes in memory can be sent again; a PUT that already committed then fails, and the HEAD below settles it.
        idempotent: true,
        scopes: io.scopes('pull', 'push'),
        signal,
      },
      operation,
    );
  } catch (err) {
    if (!signal?.aborted && (await exists(io, desc, signal).catch(() => false))) return;
    throw err;
  }
  if (res.status === 201 || res.status === 204 || res.status === 200) {
    await discard(res);
    const reported = header(res, 'docker-content-digest');
    if (reported !== undefined && reported !== desc.digest) {
      throw new ProtocolError(`${operation}: ${io.registry} stored the blob as ${reported}, expected ${desc.digest}`, {
        code: 'REGISTRY_DIGEST_MISMATCH',
        registry: io.registry,
      });
    }
    return;
  }
  const error = await io.fail(res, operation);
  // A retried PUT whose first attempt committed finds its session gone; the blob tells the truth.
  if (await exists(io, desc, signal).catch(() => false)) return;
  throw error;
}

interface PatchState {
  location: URL;
  /** Bytes the registry holds. */
  offset: number;
}

/** Asks the upload URL how much it holds (GET → 204 + Range) and where to continue. */
async function uploadStatus(io: RepoIO, location: URL, operation: string, signal?: AbortSignal): Promise<PatchState> {
  const res = await io.send({ method: 'GET', url: location, scopes: io.scopes('pull', 'push'), signal }, operation);
  if (res.status !== 204 && res.status !== 200) throw await io.fail(res, operation);
  await discard(res);
  const held = committedBytes(header(res, 'range'));
  if (held === undefined) {
    throw new ProtocolError(`${operation}: ${io.registry} sent an unreadable upload Range`, { code: 'INVALID_RANGE', registry: io.registry });
  }
  return { location: header(res, 'location') === undefined ? location : locationOf(res, location, operation, io.registry), offset: held };
}

/** Sends `chunk` (which starts at byte `state.offset`) and resumes from the registry's Range on a dropped connection. */
async function patchChunk(io: RepoIO, state: PatchState, chunk: Uint8Array, operation: string, signal?: AbortSignal): Promise<PatchState> {
  let { location, offset } = state;
  let rest = chunk;
  const end = offset + chunk.length;
  for (let attempt = 1; ; attempt++) {
    let failure: unknown;
    let waitMs: number | undefined;
    try {
      const res = await io.send(
        {
          method: 'PATCH',
          url: location,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + rest.length - 1}` },
          body: rest,
          idempotent: false,
          scopes: io.scopes('pull', 'push'),
          signal,
        },
        operation,
      );
      if (res.status === 202 || res.status === 204) {
        await discard(res);
        const next = locationOf(res, location, operation, io.registry);
        const held = committedBytes(header(res, 'range'));
        if (header(res, 'range') !== undefined && held !== end) {
          throw new ProtocolError(`${operation}: ${io.registry} holds ${held ?? '?'} bytes after a chunk ending at ${end}`, {
            code: 'UPLOAD_RANGE_MISMATCH',
            registry: io.registry,
          });
        }
        return { location: next, offset: end };
      }
      if (!RETRYABLE_STATUS.has(res.status)) throw await io.fail(res, operation);
      waitMs = parseRetryAfter(header(res, 'retry-after'));
      failure = await io.fail(res, operation);
    } catch (err) {
      if (!isTransientNetworkError(err)) throw err;
      failure = err;
    }
    if (attempt >= io.retry.maxAttempts || signal?.aborted || (waitMs ?? 0) > MAX_RETRY_AFTER_MS) throw failure;
    await sleep(waitMs ?? backoffDelay(attempt, io.retry), signal);
    const status = await uploadStatus(io, location, operation, signal);
    if (status.offset < offset || status.offset > end) {
      throw new CommsError(`${operation}: cannot resume the upload: ${io.registry} holds ${status.offset} bytes, expected ${offset}-${end}`, {
        code: 'UPLOAD_RESUME_FAILED',
        registry: io.registry,
        cause: failure,
      });
    }
    rest = rest.subarray(status.offset - offset);
    offset = status.offset;
    location = status.location;
    if (rest.length === 0) return { location, offset };
  }
}

/** Reads a source into a caller's buffer: `readInto` returns how many bytes it placed, 0 at the end. */
interface ByteSource {
  readInto(target: Buffer, offset: number, length: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * A file stream nothing has read from yet (`createReadStream(path)`): the upload reads the file
 * itself, straight into its chunk buffer, instead of taking the stream's 64 KiB pieces and copying
 * them: fewer reads, no short-lived Buffers for the garbage collector.
 */
function unreadFileStream(content: Readable): { path: string; start: number; end: number } | undefined {
  if (!(content instanceof ReadStream) || typeof content.path !== 'string' || content.bytesRead !== 0 || content.readableDidRead) return undefined;
  const { start, end } = content as ReadStream & { start?: number; end?: number };
  return { path: content.path, start: start ?? 0, end: end ?? Number.POSITIVE_INFINITY };
}

async function fileSource(stream: ReadStream, file: { path: string; start: number; end: number }): Promise<ByteSource> {
  stream.destroy();
  const fh = await open(file.path, 'r');
  let pos = file.start;
  return {
    async readInto(target, offset, length) {
      const n = Math.min(length, file.end + 1 - pos);
      if (n <= 0) return 0;
      const { bytesRead } = await fh.read(target, offset, n, pos);
      pos += bytesRead;
      return bytesRead;
    },
    close: () => fh.close(),
  };
}

function streamSource(content: Readable | Uint8Array): ByteSource {
  if (!(content instanceof Readable)) {
    let pos = 0;
    return {
      readInto: async (target, offset, length) => {
        const n = Math.min(length, content.length - pos);
        target.set(content.subarray(pos, pos + n), offset);
        pos += n;
        return n;
      },
      close: async () => {},
    };
  }
  const it = content[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  let pending: Buffer | undefined;
  return {
    async readInto(target, offset, length) {
      while (pending === undefined || pending.length === 0) {
        const r = await it.next();
        if (r.done === true) return 0;
        const c = r.value;
        pending = typeof c === 'string' ? Buffer.from(c) : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
      }
      const n = pending.copy(target, offset, 0, Math.min(length, pending.length));
      pending = pending.subarray(n);
      return n;
    },
    close: async () => {
      await it.return?.();
    },
  };
}

async function chunked(io: RepoIO, desc: Descriptor, content: Readable | Uint8Array, session: Session, options: PushOptions, operation: string): Promise<void> {
  const { signal } = options;
  const chunkSize = Math.max(io.chunkSize, session.minChunk ?? 0);
  const { algorithm } = parseDigest(desc.digest);
  const hash = hasherFor(desc.digest);
  const buffer = Buffer.allocUnsafe(Math.min(chunkSize, Math.max(desc.size, 1)));
  const larger = () => new DigestMismatchError(`${operation}: the content is larger than its descriptor's size ${desc.size}`);
  let fill = 0;
  let read = 0;
  let state: PatchState = { location: session.location, offset: 0 };
  const file = content instanceof Readable ? unreadFileStream(content) : undefined;
  const source = file !== undefined ? await fileSource(content as ReadStream, file) : streamSource(content);
  try {
    for (;;) {
      if (signal?.aborted) throw new AbortError(`${operation}: aborted`, { cause: signal.reason, registry: io.registry });
      if (fill === buffer.length) {
        // The chunk completing the blob is held back until the digest has been checked; only the
        // end of the source may follow it.
        if (read >= desc.size) {
          if ((await source.readInto(Buffer.allocUnsafe(1), 0, 1)) > 0) throw larger();
          break;
        }
        state = await patchChunk(io, state, buffer.subarray(0, fill), operation, signal);
        session.location = state.location;
        fill = 0;
        options.onProgress?.(state.offset);
      }
      const n = await source.readInto(buffer, fill, buffer.length - fill);
      if (n === 0) break;
      hash.update(buffer.subarray(fill, fill + n));
      fill += n;
      read += n;
      if (read > desc.size) throw larger();
    }
  } finally {
    await source.close();
  }
  if (read !== desc.size) throw new DigestMismatchError(`${operation}: the content has ${read} bytes, its descriptor says ${desc.size}`);
  const actual = digestText(algorithm, hash);
  if (actual !== desc.digest) throw new DigestMismatchError(`${operation}: content digest mismatch: expected ${desc.digest}, got ${actual}`);
  if (fill > 0) {
    state = await patchChunk(io, state, buffer.subarray(0, fill), operation, signal);
    session.location = state.location;
  }
  await finish(io, desc, state.location, undefined, operation, signal);
  options.onProgress?.(desc.size);
}

export async function uploadBlob(io: RepoIO, desc: Descriptor, content: Readable | Uint8Array, options: PushOptions = {}): Promise<PushResult> {
  const { signal } = options;
  const operation = `push blob ${desc.digest}`;
  // A small blob the caller expects to be new goes straight to POST + PUT: the HEAD would cost a
  // round trip to save sending a few bytes.
  const blind = options.skipExistsCheck === true && options.mountFrom === undefined && desc.size <= SMALL_BLOB_MAX_BYTES;
  if (!blind && (await exists(io, desc, signal))) {
    release(content);
    return { descriptor: desc, skipped: true };
  }

  let session: Session | undefined;
  if (options.mountFrom !== undefined && options.mountFrom !== io.repository) {
    validateRepositoryName(options.mountFrom);
    const url = await io.url('blobs/uploads/', signal);
    url.searchParams.set('mount', desc.digest);
    url.searchParams.set('from', options.mountFrom);
    const scopes = [...io.scopes('pull', 'push'), `repository:${options.mountFrom}:pull`];
    const res = await io.send({ method: 'POST', url, idempotent: true, scopes, signal }, `mount blob ${desc.digest} from ${options.mountFrom}`);
    if (res.status === 201) {
      await discard(res);
      release(content);
      return { descriptor: desc, skipped: true };
    }
    if (res.status !== 202) throw await io.fail(res, `mount blob ${desc.digest} from ${options.mountFrom}`);
    // 202: the registry could not mount and opened an ordinary upload instead.
    await discard(res);
    session = { location: locationOf(res, url, operation, io.registry) };
  }

  try {
    if (desc.size <= io.monolithicMaxBytes) {
      const bytes = await readVerified(content, desc, operation);
      session ??= await startSession(io, operation, signal);
      await finish(io, desc, session.location, bytes, operation, signal);
      options.onProgress?.(desc.size);
    } else {
      session ??= await startSession(io, operation, signal);
      await chunked(io, desc, content, session, options, operation);
    }
  } catch (err) {
    release(content);
    if (session !== undefined) await cancel(io, session.location);
    throw err;
  }
  return { descriptor: desc, skipped: false };
}
