/**
 * Turns a registry's answer (status + OCI error body) or a failed connection into a typed
 * CommsError. Classification is by HTTP status and the registry's `errors[].code` only —
 * never by message text. Messages name the registry and repository and never carry secrets.
 */
import {
  AbortError,
  AuthError,
  CommsError,
  NotFoundError,
  ProtocolError,
  registryErrorCode,
  type CommsErrorOptions,
  type RegistryErrorEntry,
} from '../../errors.ts';
import { findErrorCode } from '../../util/error-code.ts';
import { readLimited, type HttpResponse } from './http.ts';
import { isTimeoutError, isTransientNetworkError } from './retry.ts';

/** What the failing request was doing, for the message. */
export interface ErrorContext {
  registry: string;
  repository?: string | undefined;
  /** e.g. `fetch blob sha256:…`, `push manifest v1`. */
  operation: string;
  /** The idle timeout in force, named when a request timed out. */
  timeoutMs?: number | undefined;
}

const MAX_ERROR_BODY = 64 * 1024;
const AUTH_CODES: ReadonlySet<string> = new Set(['UNAUTHORIZED', 'DENIED']);
const PROTOCOL_CODES: ReadonlySet<string> = new Set([
  'MANIFEST_INVALID',
  'DIGEST_INVALID',
  'NAME_INVALID',
  'TAG_INVALID',
  'SIZE_INVALID',
  'BLOB_UPLOAD_INVALID',
  'RANGE_INVALID',
  'MANIFEST_UNVERIFIED',
  'PAGINATION_NUMBER_INVALID',
]);

/** Parses `{"errors":[{code,message,detail}]}`; anything else yields []. */
export function parseErrorBody(bytes: Uint8Array | undefined): RegistryErrorEntry[] {
  if (bytes === undefined || bytes.length === 0) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return [];
  }
  const errors = (parsed as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors)) return [];
  const out: RegistryErrorEntry[] = [];
  for (const e of errors) {
    if (e === null || typeof e !== 'object' || typeof (e as { code?: unknown }).code !== 'string') continue;
    const entry: RegistryErrorEntry = { code: (e as { code: string }).code };
    const message = (e as { message?: unknown }).message;
    if (typeof message === 'string') entry.message = message;
    if ((e as { detail?: unknown }).detail !== undefined) entry.detail = (e as { detail?: unknown }).detail;
    out.push(entry);
  }
  return out;
}

function where(ctx: ErrorContext): string {
  return ctx.repository === undefined ? `registry ${ctx.registry}` : `registry ${ctx.registry}, repository ${ctx.repository}`;
}

/** Strips control characters and bounds a registry-supplied string before it goes into a message. */
function clean(s: string): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return t.length > 200 ? `${t.slice(0, 200)}…` : t;
}

/** The typed error for a status and the registry's error entries. */
export function errorFor(status: number, entries: RegistryErrorEntry[], ctx: ErrorContext): CommsError {
  const codes = entries.map((e) => e.code.toUpperCase());
  const first = entries[0];
  const detail = first === undefined ? '' : `: ${clean(first.code)}${first.message ? ` ${clean(first.message)}` : ''}`;
  const opts: CommsErrorOptions = { registry: ctx.registry, status, registryErrors: entries };
  const code = registryErrorCode(first?.code);
  if (status === 401 || status === 403 || codes.some((c) => AUTH_CODES.has(c))) {
    const why = status === 403 || codes.includes('DENIED') ? 'access denied' : 'authentication required or refused';
    return new AuthError(`${ctx.operation}: ${why} by ${where(ctx)} (HTTP ${status}${detail})`, { ...opts, ...(code ? { code } : {}) });
  }
  if (codes.some((c) => c.endsWith('_UNKNOWN')) || status === 404) {
    return new NotFoundError(`${ctx.operation}: not found in ${where(ctx)} (HTTP ${status}${detail})`, { ...opts, ...(code ? { code } : {}) });
  }
  if (status === 400 || codes.some((c) => PROTOCOL_CODES.has(c))) {
    return new ProtocolError(`${ctx.operation}: rejected by ${where(ctx)} (HTTP ${status}${detail})`, { ...opts, code: code ?? 'BAD_REQUEST' });
  }
  return new CommsError(`${ctx.operation}: ${where(ctx)} answered HTTP ${status}${detail}`, { ...opts, code: code ?? `HTTP_${status}` });
}

/** Reads the (bounded) error body of an unexpected response and returns the typed error. */
export async function responseError(res: HttpResponse, ctx: ErrorContext): Promise<CommsError> {
  let bytes: Buffer | undefined;
  try {
    bytes = await readLimited(res.body, MAX_ERROR_BODY);
  } catch {
    bytes = undefined;
  }
  return errorFor(res.status, parseErrorBody(bytes), ctx);
}

/** Node's codes for a certificate the client could not verify. */
const CERT_CODES: ReadonlySet<string> = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
]);

export function isCertificateError(err: unknown): boolean {
  const code = findErrorCode(err);
  return code !== undefined && CERT_CODES.has(code);
}

/** A thrown transport error as a CommsError (CommsErrors pass through unchanged). */
export function networkError(err: unknown, ctx: ErrorContext, signal?: AbortSignal): CommsError {
  if (err instanceof CommsError) return err;
  if (signal?.aborted) return new AbortError(`${ctx.operation}: aborted`, { cause: signal.reason ?? err, registry: ctx.registry });
  const code = findErrorCode(err);
  if (isCertificateError(err)) {
    return new CommsError(
      `${ctx.operation}: the TLS certificate of ${ctx.registry} is not trusted (${code}); trust the CA that signed it (caFile), or skip the check (insecure)`,
      { code: 'TLS_CERTIFICATE', cause: err, registry: ctx.registry },
    );
  }
  if (isTimeoutError(err)) {
    const limit = ctx.timeoutMs === undefined ? 'the idle timeout' : `${formatMs(ctx.timeoutMs)}, the idle timeout`;
    return new CommsError(`${ctx.operation}: nothing arrived from ${ctx.registry} for ${limit} (${code})`, {
      code: 'IDLE_TIMEOUT',
      cause: err,
      registry: ctx.registry,
    });
  }
  if (isTransientNetworkError(err)) {
    return new CommsError(`${ctx.operation}: connection to ${ctx.registry} failed (${code})`, {
      code: 'CONNECTION_FAILED',
      cause: err,
      registry: ctx.registry,
    });
  }
  return new CommsError(`${ctx.operation}: request to ${ctx.registry} failed${code ? ` (${code})` : ''}`, {
    code: 'REQUEST_FAILED',
    cause: err,
    registry: ctx.registry,
  });
}

/** 30000 → `30s`, 1500 → `1.5s`, 250 → `250ms`. */
function formatMs(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${Number((ms / 1000).toFixed(3))}s`;
}
