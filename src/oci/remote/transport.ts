/**
 * The innermost Send: one HTTP exchange over an undici dispatcher, reported to the onRequest
 * hook (method, redacted URL, status, attempt) so tests and `--verbose` can count requests.
 */
import type { Dispatcher } from 'undici';
import { redactUrl, type HttpRequest, type HttpResponse, type Send } from './http.ts';
import { request } from './undici-parts.ts';

export interface RequestEvent {
  method: string;
  /** The URL without credentials or secret-bearing query values. */
  url: string;
  /** Absent when the request failed before a response arrived. */
  status?: number;
  attempt: number;
}

export interface TransportOptions {
  userAgent?: string;
  onRequest?: ((event: RequestEvent) => void) | undefined;
}

export function undiciTransport(dispatcher: Dispatcher, options: TransportOptions = {}): Send {
  return async (req: HttpRequest): Promise<HttpResponse> => {
    const headers: Record<string, string> = { ...req.headers };
    if (options.userAgent !== undefined && headers['user-agent'] === undefined) headers['user-agent'] = options.userAgent;
    const event = { method: req.method, url: redactUrl(req.url), attempt: req.attempt ?? 1 };
    let res: Dispatcher.ResponseData;
    try {
      res = await request(dispatcher, {
        origin: req.url.origin,
        path: `${req.url.pathname}${req.url.search}`,
        method: req.method,
        headers,
        body: req.body ?? null,
        signal: req.signal ?? null,
      });
    } catch (err) {
      options.onRequest?.(event);
      throw err;
    }
    options.onRequest?.({ ...event, status: res.statusCode });
    return { status: res.statusCode, headers: res.headers, body: res.body, url: req.url };
  };
}
