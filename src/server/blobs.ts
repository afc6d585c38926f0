/**
 * `HEAD|GET|DELETE /v2/<name>/blobs/<digest>`. A GET streams the stored file as it is: every blob
 * was verified against its digest when it was written (uploads are hashed before they are
 * committed, and the layout store hashes again on the way in), and clients verify what they
 * download, so hashing it again on every read would only halve the download rate. A Range GET
 * sends the requested slice the same way (`Accept-Ranges: bytes`, 206, 416).
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { RegistryHttpError, toRegistryError } from './errors.ts';
import type { RequestContext } from './context.ts';
import { sendEmpty } from './http.ts';
import { blobFile, blobSize } from './repositories.ts';

const OCTET = 'application/octet-stream';

/**
 * Measured against 256 KiB, 1 MiB and 4 MiB (4 × 64 MiB to curl, bench/RESULTS.md §2): half a
 * MiB used the least CPU; 4 MiB buffers, or a read stream piped to the response, used more.
 */
const SEND_CHUNK = 512 * 1024;

/**
 * Writes bytes `start` to `end` (inclusive) of `fh` to `res` through two reused buffers: one is
 * read into while the other is being written, and nothing is allocated per chunk.
 */
async function sendFile(fh: FileHandle, start: number, end: number, res: ServerResponse, signal: AbortSignal): Promise<void> {
  const size = end + 1;
  const chunk = Math.min(SEND_CHUNK, size - start);
  const buffers = [Buffer.allocUnsafe(chunk), Buffer.allocUnsafe(chunk)];
  let pending: Promise<void> = Promise.resolve();
  for (let pos = start, i = 0; pos < size; i ^= 1) {
    const buf = buffers[i] as Buffer;
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
    if (bytesRead === 0) throw new Error(`the blob file ended at ${pos} of ${size} bytes`);
    pos += bytesRead;
    // The previous chunk must be out before its buffer is read into again.
    await pending;
    if (signal.aborted || res.destroyed) throw new Error('the client went away');
    pending = new Promise<void>((resolve, reject) => {
      res.write(buf.subarray(0, bytesRead), (err) => (err ? reject(err) : resolve()));
    });
  }
  await pending;
  await new Promise<void>((resolve) => res.end(resolve));
}

type ByteRange = { start: number; end: number } | 'unsatisfiable' | undefined;

/**
 * A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range against a blob of `size` bytes. Anything
 * else (several ranges, another unit, nonsense) is ignored and the whole blob is sent, as RFC 9110
 * allows.
 */
export function parseRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (m === null) return undefined;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== '' && Number(b) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

export async function handleBlob(ctx: RequestContext, name: string, digest: string): Promise<void> {
  const { req, res } = ctx;
  const layout = await ctx.repos.get(name);
  if (req.method === 'DELETE') {
    try {
      await layout.delete({ mediaType: OCTET, digest, size: 0 }, { signal: ctx.signal });
    } catch (err) {
      throw toRegistryError(err, 'BLOB_UNKNOWN');
    }
    sendEmpty(res, 202);
    return;
  }
  const size = await blobSize(layout, digest);
  if (size === undefined) throw new RegistryHttpError('BLOB_UNKNOWN', `blob ${digest} unknown to repository ${name}`, { detail: { digest } });
  const headers = {
    'content-type': OCTET,
    'docker-content-digest': digest,
    'accept-ranges': 'bytes',
    etag: `"${digest}"`,
  };
  const range = parseRange(typeof req.headers.range === 'string' ? req.headers.range : undefined, size);
  if (range === 'unsatisfiable') {
    sendEmpty(res, 416, { ...headers, 'content-range': `bytes */${size}` });
    return;
  }
  const reply =
    range === undefined
      ? { status: 200, start: 0, end: size - 1, headers: { ...headers, 'content-length': size } }
      : {
          status: 206,
          start: range.start,
          end: range.end,
          headers: { ...headers, 'content-length': range.end - range.start + 1, 'content-range': `bytes ${range.start}-${range.end}/${size}` },
        };
  if (req.method === 'HEAD') {
    sendEmpty(res, reply.status, reply.headers);
    return;
  }
  let fh;
  try {
    fh = await open(blobFile(layout, digest), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new RegistryHttpError('BLOB_UNKNOWN', `blob ${digest} unknown to repository ${name}`, { detail: { digest } });
    throw err;
  }
  try {
    res.writeHead(reply.status, reply.headers);
    await sendFile(fh, reply.start, reply.end, res, ctx.signal);
  } finally {
    await fh.close();
  }
}
