/**
 * The registry's error answers: every 4xx/5xx carries the distribution spec's JSON body
 * `{"errors":[{"code","message","detail"}]}` with one of the spec's codes. Handlers throw
 * RegistryHttpError; the dispatcher turns it (or any other thrown value) into the response.
 */
import { DigestMismatchError, NotFoundError } from '../errors.ts';

/** The OCI Distribution Spec v1.1 error codes, with the status each is answered with by default. */
export const ErrorCode = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
} as const;
export type ErrorCode = keyof typeof ErrorCode;

const MESSAGES: Record<ErrorCode, string> = {
  BLOB_UNKNOWN: 'blob unknown to registry',
  BLOB_UPLOAD_INVALID: 'blob upload invalid',
  BLOB_UPLOAD_UNKNOWN: 'blob upload unknown to registry',
  DIGEST_INVALID: 'provided digest did not match uploaded content',
  MANIFEST_BLOB_UNKNOWN: 'manifest references a blob unknown to registry',
  MANIFEST_INVALID: 'manifest invalid',
  MANIFEST_UNKNOWN: 'manifest unknown to registry',
  NAME_INVALID: 'invalid repository name',
  NAME_UNKNOWN: 'repository name not known to registry',
  SIZE_INVALID: 'provided length did not match content length',
  UNAUTHORIZED: 'authentication required',
  DENIED: 'requested access to the resource is denied',
  UNSUPPORTED: 'the operation is unsupported',
  TOOMANYREQUESTS: 'too many requests',
};

export interface RegistryErrorOptions {
  /** HTTP status; default the code's usual one. */
  status?: number;
  detail?: unknown;
  /** Extra response headers (e.g. `Range` on a 416, `WWW-Authenticate` on a 401). */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class RegistryHttpError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;
  /** Further entries answered in the same body (one per missing blob, as the spec asks). */
  private more: RegistryHttpError[] = [];

  constructor(code: ErrorCode, message?: string, options: RegistryErrorOptions = {}) {
    super(message ?? MESSAGES[code], options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RegistryHttpError';
    this.code = code;
    this.status = options.status ?? ErrorCode[code];
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  /** One answer carrying every error of `errors` (non-empty); status and headers are the first's. */
  static combine(errors: RegistryHttpError[]): RegistryHttpError {
    const [first, ...rest] = errors;
    if (first === undefined) throw new TypeError('combine() needs at least one error');
    first.more = rest;
    return first;
  }

  /** The JSON body the spec prescribes. */
  body(): string {
    const entries = [this, ...this.more].map((e) => {
      const entry: Record<string, unknown> = { code: e.code, message: e.message };
      if (e.detail !== undefined) entry['detail'] = e.detail;
      return entry;
    });
    return JSON.stringify({ errors: entries });
  }
}

/**
 * Maps what the layout store throws onto the registry's answer; `notFound` names the code an
 * absent object gets at this endpoint (BLOB_UNKNOWN, MANIFEST_UNKNOWN, ...). Anything else is
 * returned unchanged, for the dispatcher to answer 500 (inputs are validated before the store
 * sees them, so a store error left over is our fault, not the client's).
 */
export function toRegistryError(err: unknown, notFound: ErrorCode): unknown {
  if (err instanceof NotFoundError) return new RegistryHttpError(notFound, undefined, { cause: err });
  if (err instanceof DigestMismatchError) return new RegistryHttpError('DIGEST_INVALID', err.message, { cause: err });
  return err;
}
