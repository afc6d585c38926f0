/**
 * The retry layer: exponential backoff with full jitter on 429, 502, 503, 504 (and 500 for reads)
 * and on dropped or refused connections, honouring Retry-After, with a bounded number of attempts
 * (a request that went silent for the whole idle timeout is tried again once only). Only requests
 * that are idempotent AND whose body can be sent again are repeated; anything else is returned
 * (or thrown) as it came, so a half-sent stream is never blindly replayed.
 */
import { sleep } from '../../util/abort.ts';
import { findErrorCode } from '../../util/error-code.ts';
import { discard, header, isIdempotent, isReplayable, type Layer } from './http.ts';

export interface RetryPolicy {
  /** Total attempts including the first (1 disables retries). */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 200, maxDelayMs: 10_000 };

/** A server asking us to come back later than this is not waited for. */
export const MAX_RETRY_AFTER_MS = 60_000;

export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/**
 * A 500 is retried for reads only: distribution's filesystem store answers 500 to a GET of a tag
 * whose link file another client is rewriting at that moment (measured: ~5% of reads of a
 * referrers index under 20 concurrent writers). A read changes nothing, so trying again is safe.
 */
function retryableStatus(status: number, method: string): boolean {
  return RETRYABLE_STATUS.has(status) || (status === 500 && (method === 'GET' || method === 'HEAD'));
}

/** Error codes (node and undici) of a connection that dropped, was refused or timed out. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** Error codes of a request on which nothing arrived for the idle timeout (connect, headers, body). */
const TIMEOUT_CODES: ReadonlySet<string> = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

/**
 * How many times one request (with its retries, or a download with its resumes) may go silent for
 * the whole idle timeout before it is given up: the total time spent waiting on a silent registry
 * is then at most MAX_STALLS × the timeout, whatever the retry policy.
 */
export const MAX_STALLS = 2;

/** How long one request may stay silent (connecting, awaiting the answer, between body bytes), by default. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** Whether `err` (or an error in its cause chain) is an idle timeout, judged by code. */
export function isTimeoutError(err: unknown): boolean {
  return findErrorCode(err, (code) => TIMEOUT_CODES.has(code)) !== undefined;
}

/** Whether `err` (or an error in its cause chain) is a transient network failure, judged by code. */
export function isTransientNetworkError(err: unknown): boolean {
  return findErrorCode(err, (code) => TRANSIENT_CODES.has(code)) !== undefined;
}

/** Retry-After as milliseconds from `now`: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Full jitter: uniform in [0, min(maxDelay, base * 2^(attempt-1))]. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

export interface RetryLayerOptions {
  /** Replaces the timer (tests record the delays instead of waiting them). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  now?: () => number;
}

export function retryLayer(policy: RetryPolicy = DEFAULT_RETRY, options: RetryLayerOptions = {}): Layer {
  const wait = options.sleep ?? sleep;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const maxAttempts = Math.max(1, Math.floor(policy.maxAttempts));
  return (next) => async (req) => {
    const repeatable = isIdempotent(req) && isReplayable(req.body);
    let stalls = 0;
    for (let attempt = 1; ; attempt++) {
      const last = !repeatable || attempt >= maxAttempts;
      let res;
      try {
        res = await next({ ...req, attempt });
      } catch (err) {
        if (last || req.signal?.aborted || !isTransientNetworkError(err)) throw err;
        if (isTimeoutError(err) && ++stalls >= MAX_STALLS) throw err;
        await wait(backoffDelay(attempt, policy, random), req.signal);
        continue;
      }
      if (last || !retryableStatus(res.status, req.method)) return res;
      const retryAfter = parseRetryAfter(header(res, 'retry-after'), now());
      if (retryAfter !== undefined && retryAfter > MAX_RETRY_AFTER_MS) return res;
      await discard(res);
      await wait(retryAfter ?? backoffDelay(attempt, policy, random), req.signal);
    }
  };
}
