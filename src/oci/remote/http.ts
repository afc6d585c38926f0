/**
 * The request/response shapes the registry client's layers pass to each other. A `Send` turns
 * a request into a response; a `Layer` wraps a Send with one cross-cutting concern (auth, retry,
 * redirects), the way undici composes interceptors onto a dispatcher.
 */
import { Readable } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';
import { readCapped } from '../../util/read-capped.ts';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A body that can be sent again (bytes, text) or only once (a stream). */
export type RequestBody = Uint8Array | string | Readable;

export interface HttpRequest {
  method: HttpMethod;
  url: URL;
  /** Header names in lowercase. */
  headers?: Record<string, string>;
  body?: RequestBody;
  signal?: AbortSignal | undefined;
  /**
   * Whether sending the request twice has the effect of sending it once. Defaults to true for
   * GET and HEAD only; the retry layer never repeats a request that is not idempotent.
   */
  idempotent?: boolean;
  /** Token scopes the request needs (`repository:<name>:pull,push`), for the auth layer. */
  scopes?: string[];
  /** The repository the request concerns, named in error messages. */
  repository?: string;
  /** Follow 301/302/303/307/308 (GET and HEAD only). */
  followRedirects?: boolean;
  /** Which attempt this is (1-based); set by the retry layer, reported to onRequest. */
  attempt?: number;
}

/** The body of a response: undici's BodyReadable, or any Readable in tests. */
export type ResponseBody = Readable & { dump?: (opts?: { limit: number }) => Promise<void> };

export interface HttpResponse {
  status: number;
  /** Lowercased names, as node and undici give them. */
  headers: IncomingHttpHeaders;
  body: ResponseBody;
  /** The URL that answered (after redirects). */
  url: URL;
}

export type Send = (request: HttpRequest) => Promise<HttpResponse>;
export type Layer = (next: Send) => Send;

/** Wraps `base` in `layers`; the first layer is the outermost (sees the request first). */
export function compose(base: Send, ...layers: Layer[]): Send {
  return layers.reduceRight<Send>((next, layer) => layer(next), base);
}

/** The first value of a response header, or undefined. */
export function header(response: { headers: IncomingHttpHeaders }, name: string): string | undefined {
  const v = response.headers[name.toLowerCase()];
  if (Array.isArray(v)) return v[0];
  return v;
}

/** Every value of a header, comma-joined occurrences kept as separate entries. */
export function headerValues(response: { headers: IncomingHttpHeaders }, name: string): string[] {
  const v = response.headers[name.toLowerCase()];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** Reads and drops a response body we do not need, so its connection returns to the pool. */
export async function discard(response: HttpResponse): Promise<void> {
  try {
    if (response.body.dump) await response.body.dump({ limit: 64 * 1024 });
    else response.body.destroy();
  } catch {
    // A body that fails while being thrown away changes nothing.
  }
}

/** Reads a body up to `limit` bytes; beyond that returns undefined and destroys the rest. */
export async function readLimited(body: Readable, limit: number): Promise<Buffer | undefined> {
  const bytes = await readCapped(body, limit);
  if (bytes === undefined) body.destroy();
  return bytes;
}

export function isReplayable(body: RequestBody | undefined): boolean {
  return !(body instanceof Readable);
}

export function isIdempotent(request: HttpRequest): boolean {
  return request.idempotent ?? (request.method === 'GET' || request.method === 'HEAD');
}

/** Query parameters that never carry secrets, shown as they are in logs and onRequest events. */
const SAFE_QUERY = new Set(['n', 'last', 'digest', 'mount', 'from', 'artifacttype', 'service', 'scope']);

/** A URL fit for logs: no credentials, and query values other than known-harmless ones hidden. */
export function redactUrl(url: URL): string {
  const u = new URL(url.href);
  u.username = '';
  u.password = '';
  for (const key of [...new Set(u.searchParams.keys())]) {
    if (!SAFE_QUERY.has(key.toLowerCase())) u.searchParams.set(key, 'redacted');
  }
  return u.href;
}
