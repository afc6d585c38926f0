/**
 * Typed errors. Every error that leaves the library is a CommsError carrying the exit code the
 * CLI ends with, a stable machine-readable `code`, and its `cause`. Nothing in comms classifies
 * an error by looking at its message text: callers branch on the class, `exitCode` or `code`.
 */

/** The CLI contract (wire-format.md): scripts branch on these. */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  VERIFICATION: 2,
  AUTH: 3,
  PROTOCOL: 4,
  NOT_FOUND: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** One entry of an OCI Distribution error body: `{"errors":[{"code","message","detail"}]}`. */
export interface RegistryErrorEntry {
  code: string;
  message?: string;
  detail?: unknown;
}

export interface CommsErrorOptions {
  /** Stable identifier, e.g. `DIGEST_MISMATCH`, `MANIFEST_UNKNOWN`, `INVALID_REFERENCE`. */
  code?: string;
  cause?: unknown;
  /** The registry host the failure concerns, when there is one. Never contains credentials. */
  registry?: string;
  /** HTTP status of the response that caused the error, when there is one. */
  status?: number;
  /** The registry's `errors[]` entries, as it sent them. */
  registryErrors?: RegistryErrorEntry[];
}

export class CommsError extends Error {
  readonly exitCode: ExitCode = ExitCode.FAILURE;
  readonly code: string;
  readonly registry: string | undefined;
  readonly status: number | undefined;
  readonly registryErrors: RegistryErrorEntry[];

  constructor(message: string, options: CommsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? 'FAILURE';
    this.registry = options.registry;
    this.status = options.status;
    this.registryErrors = options.registryErrors ?? [];
  }
}

/** Exit 2: a signature, bundle or identity policy check failed. */
export class VerificationError extends CommsError {
  override readonly exitCode = ExitCode.VERIFICATION;
  constructor(message: string, options: CommsErrorOptions = {}) {
    super(message, { code: 'VERIFICATION_FAILED', ...options });
  }
}

/** Exit 3: the registry refused our credentials, or we lack permission. */
export class AuthError extends CommsError {
  override readonly exitCode = ExitCode.AUTH;
  constructor(message: string, options: CommsErrorOptions = {}) {
    super(message, { code: 'UNAUTHORIZED', ...options });
  }
}

/** Exit 4: malformed input (reference, manifest, tar, digest mismatch) or a protocol violation. */
export class ProtocolError extends CommsError {
  override readonly exitCode = ExitCode.PROTOCOL;
  constructor(message: string, options: CommsErrorOptions = {}) {
    super(message, { code: 'PROTOCOL_ERROR', ...options });
  }
}

/** Exit 4: content whose bytes do not hash to the digest (or size) that names them. */
export class DigestMismatchError extends ProtocolError {
  constructor(message: string, options: CommsErrorOptions = {}) {
    super(message, { code: 'DIGEST_MISMATCH', ...options });
  }
}

/** Exit 4: a reference, repository name, tag or digest that does not match the OCI grammar. */
export class InvalidReferenceError extends ProtocolError {
  constructor(message: string, options: CommsErrorOptions = {}) {
    super(message, { code: 'INVALID_REFERENCE', ...options });
  }
}

/** Exit 4: a command-line flag or option value that is not acceptable. */
export class UsageError extends ProtocolError {
  constructor(message: string, options: CommsErrorOptions = {}) {
    super(message, { code: 'USAGE', ...options });
  }
}

/** Exit 5: a manifest, blob, tag, repository or message that does not exist. */
export class NotFoundError extends CommsError {
  override readonly exitCode = ExitCode.NOT_FOUND;
  constructor(message: string, options: CommsErrorOptions = {}) {
    super(message, { code: 'NOT_FOUND', ...options });
  }
}

/**
 * Exit 1: the registry does not implement the Referrers API (it answered 404 on the endpoint).
 * Callers fall back to the referrers tag schema; it is a distinct class so nobody tests text.
 */
export class ReferrersUnsupportedError extends CommsError {
  constructor(message: string, options: CommsErrorOptions = {}) {
    super(message, { code: 'REFERRERS_UNSUPPORTED', ...options });
  }
}

/** Exit 1: the operation was cancelled through its AbortSignal. */
export class AbortError extends CommsError {
  constructor(message = 'the operation was aborted', options: CommsErrorOptions = {}) {
    super(message, { code: 'ABORTED', ...options });
  }
}

/** The exit code for any thrown value: CommsError carries its own; anything else is 1. */
export function exitCodeOf(err: unknown): ExitCode {
  return err instanceof CommsError ? err.exitCode : ExitCode.FAILURE;
}
