/** Small response and request helpers shared by the endpoint handlers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readCapped } from '../util/read-capped.ts';
import { RegistryHttpError } from './errors.ts';

export type Headers = Record<string, string | number>;

/** Ends the response with no body (Content-Length 0 unless the headers say otherwise, as HEAD does). */
export function sendEmpty(res: ServerResponse, status: number, headers: Headers = {}): void {
  res.writeHead(status, { 'content-length': 0, ...headers });
  res.end();
}

/** Sends `body` (omitted for HEAD, with its Content-Length kept). */
export function sendBytes(req: IncomingMessage, res: ServerResponse, status: number, body: Uint8Array | string, headers: Headers): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { ...headers, 'content-length': bytes.length });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, value: unknown, headers: Headers = {}): void {
  sendBytes(req, res, status, JSON.stringify(value), { 'content-type': 'application/json', ...headers });
}

/** The spec's error body. When the request body was not read, the connection is closed after it. */
export function sendRegistryError(req: IncomingMessage, res: ServerResponse, err: RegistryHttpError): void {
  const headers: Headers = { 'content-type': 'application/json', ...err.headers };
  if (bodyPending(req)) headers['connection'] = 'close';
  sendBytes(req, res, err.status, err.body(), headers);
}

/** Whether the request announced a body that has not been read to its end. */
function bodyPending(req: IncomingMessage): boolean {
  if (req.complete) return false;
  const len = req.headers['content-length'];
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/**
 * The request body's chunks, failing with `timedOut()` when no byte arrives for `idleMs`: a body
 * that trickles or stalls cannot hold a request (and its upload session) open for ever.
 */
export async function* bodyChunks(req: IncomingMessage, idleMs: number, timedOut: () => RegistryHttpError): AsyncGenerator<Buffer> {
  const it = req.iterator({ destroyOnReturn: false });
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timedOut()), idleMs);
    });
    let next: IteratorResult<unknown>;
    try {
      next = await Promise.race([it.next(), idle]);
    } finally {
      clearTimeout(timer);
    }
    if (next.done === true) return;
    yield next.value as Buffer;
  }
}

/** The 408 answered when a request body stalls: `code` is the endpoint's own (what was being sent). */
export function bodyTimeout(code: 'BLOB_UPLOAD_INVALID' | 'MANIFEST_INVALID', idleMs: number): () => RegistryHttpError {
  return () =>
    new RegistryHttpError(code, `no byte of the request body arrived for ${idleMs / 1000} s, this registry's body idle timeout; the request was cut off`, {
      status: 408,
      detail: { idleTimeoutMs: idleMs },
    });
}

/**
 * Reads the whole request body, refusing more than `cap` bytes with 413 SIZE_INVALID — before
 * reading anything when Content-Length already says so — and a body idle for `idleMs` with 408.
 */
export async function readBody(req: IncomingMessage, cap: number, idleMs: number): Promise<Buffer> {
  const tooLarge = (): RegistryHttpError =>
    new RegistryHttpError('SIZE_INVALID', `the body exceeds the ${cap}-byte limit`, { status: 413, detail: { limit: cap } });
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > cap) throw tooLarge();
  const body = await readCapped(bodyChunks(req, idleMs, bodyTimeout('MANIFEST_INVALID', idleMs)), cap);
  if (body === undefined) throw tooLarge();
  return body;
}

/** Reads and drops whatever body the request has (so a keep-alive connection stays usable). */
export async function drainBody(req: IncomingMessage, idleMs: number): Promise<void> {
  for await (const _ of bodyChunks(req, idleMs, bodyTimeout('BLOB_UPLOAD_INVALID', idleMs))) {
    // discarded
  }
}

/** Query parameters of a raw request target. */
export function queryOf(rawUrl: string): URLSearchParams {
  const q = rawUrl.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
}

/** A `Link: <path?query>; rel="next"` value, as the tag list and referrers endpoints paginate. */
export function nextLink(path: string, params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, v);
  return `<${path}?${q.toString()}>; rel="next"`;
}

/** A page-size parameter: absent → `cap`; a non-negative integer → at most `cap`; else 400. */
export function pageSize(value: string | null, cap: number): number {
  if (value === null || value === '') return cap;
  if (!/^[0-9]{1,9}$/.test(value)) {
    throw new RegistryHttpError('UNSUPPORTED', `n must be a non-negative integer, got ${JSON.stringify(value.slice(0, 50))}`, { status: 400 });
  }
  return Math.min(Number(value), cap);
}
