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

/**
 * Every `code` a CommsError can carry: comms' own, and the error codes of the OCI Distribution
 * Spec that a registry's answer passes through (its raw `errors[]` stay in `registryErrors`).
 * `HTTP_<status>` names a registry answer with no spec code. Add a code here when a new case needs one.
 */
export const ERROR_CODES = [
  'ABORTED',
  'AGE_HEADER_INVALID',
  'AGE_IDENTITY_INVALID',
  'AGE_NO_IDENTITY',
  'AGE_PAYLOAD_INVALID',
  'AGE_RECIPIENT_INVALID',
  'ANNOTATION_INVALID',
  'ANNOTATION_MISSING',
  'ARTIFACT_DIGEST_MISMATCH',
  'ARTIFACT_TYPE',
  'BAD_REQUEST',
  'BLOB_UPLOAD_INVALID',
  'BUNDLE_DIGEST_MISMATCH',
  'BUNDLE_INVALID',
  'BUNDLE_MALFORMED',
  'BUNDLE_NOT_FOUND',
  'BUNDLE_UNSUPPORTED',
  'CHUNK_COUNT_MISMATCH',
  'CHUNK_INDEX_DUPLICATE',
  'CHUNK_INDEX_GAP',
  'CHUNK_INDEX_INVALID',
  'CHUNK_SIZE_MISMATCH',
  'CHUNK_TOO_LARGE',
  'COMPRESSION_UNSUPPORTED',
  'CONFIG_NOT_EMPTY',
  'CONNECTION_FAILED',
  'COPY_TOO_DEEP',
  'COPY_TOO_MANY_MANIFESTS',
  'CREDENTIAL_HELPER_FAILED',
  'CREDENTIAL_HELPER_INVALID',
  'CREDENTIAL_HELPER_MISSING',
  'DECOMPRESSION_FAILED',
  'DELETE_INCOMPLETE',
  'DESCRIPTOR_INVALID',
  'DESTINATION_DIGEST_MISMATCH',
  'DIGEST_INVALID',
  'DIGEST_MISMATCH',
  'DOCKER_CONFIG_INVALID',
  'DOCKER_CONFIG_UNREADABLE',
  'ENCRYPTION_UNSUPPORTED',
  'FAILURE',
  'FILE_EXISTS',
  'FULCIO_FAILED',
  'IDENTITY_MISMATCH',
  'IDENTITY_TOKEN_FETCH',
  'IDENTITY_TOKEN_INVALID',
  'IDLE_TIMEOUT',
  'INDEX_TOO_LARGE',
  'INPUT_CHANGED',
  'INSECURE_LISTEN',
  'INSECURE_REALM',
  'INVALID_CHALLENGE',
  'INVALID_DESCRIPTOR',
  'INVALID_INDEX',
  'INVALID_LINK',
  'INVALID_LOCATION',
  'INVALID_RANGE',
  'INVALID_REDIRECT',
  'INVALID_REFERENCE',
  'INVALID_TAG',
  'INVALID_TAG_LIST',
  'INVALID_TOKEN_RESPONSE',
  'IO_ERROR',
  'ISSUER_MISMATCH',
  'KEY_EXISTS',
  'KEY_INVALID',
  'KEY_NOT_FOUND',
  'KEY_PASSPHRASE_REQUIRED',
  'KEY_PASSPHRASE_WRONG',
  'KEY_UNREADABLE',
  'KEY_UNSUPPORTED',
  'KEY_WRITE_FAILED',
  'LAYER_MEDIA_TYPE',
  'LAYOUT_INVALID',
  'LISTEN_FAILED',
  'LIST_LIMIT',
  'LOCK_TIMEOUT',
  'LOGIN_REFUSED',
  'MANIFEST_INVALID',
  'MANIFEST_MEDIA_TYPE',
  'MANIFEST_NOT_JSON',
  'MANIFEST_SCHEMA_VERSION',
  'MANIFEST_TOO_LARGE',
  'MANIFEST_UNKNOWN',
  'MISSING_LOCATION',
  'NOT_A_MESSAGE',
  'NOT_FOUND',
  'NO_AGE_RECIPIENT',
  'NO_SENDER',
  'NO_SIGNER',
  'NO_TRUST_POLICY',
  'OCI_SUBJECT_MISMATCH',
  'OUT_INVALID',
  'OUT_NOT_A_FOLDER',
  'OUT_UNUSABLE',
  'PARTIAL_FILE_REPLACED',
  'PATH_NOT_ALLOWED',
  'PAYLOAD_NOT_JSON',
  'POLICY_EMPTY',
  'POLICY_INCOMPLETE',
  'POLICY_INVALID',
  'POLICY_MISMATCH',
  'PROTOCOL_ERROR',
  'RANGE_MISMATCH',
  'RECEIPT_DIR_INVALID',
  'RECEIPT_SIGNER',
  'RECEIPT_SUBJECT_MISMATCH',
  'RECEIPT_WRITE_FAILED',
  'REFERRERS_INDEX_CONTENDED',
  'REFERRERS_INDEX_INVALID',
  'REFERRERS_UNSUPPORTED',
  'REGISTRY_DIGEST_MISMATCH',
  'REKOR_FAILED',
  'REPLY_SUBJECT_MISMATCH',
  'REPOINTED',
  'REQUEST_FAILED',
  'SENDER_AMBIGUOUS',
  'SENDER_MISMATCH',
  'SENDER_UNKNOWN',
  'SENDER_UNVERIFIED',
  'SIGNATURE_INVALID',
  'SIGNING_FAILED',
  'SIZE_INVALID',
  'SOURCE_DIGEST_MISMATCH',
  'STATE_FILE_IN_OUT',
  'STATE_INVALID',
  'TAR_EMPTY',
  'TAR_ENTRY_NAME',
  'TAR_ENTRY_TYPE',
  'TAR_HEADER_INVALID',
  'TAR_MULTIPLE_ENTRIES',
  'TAR_TRAILING_DATA',
  'TAR_TRUNCATED',
  'TIMEOUT',
  'TLS_CERTIFICATE',
  'TOO_MANY_CHUNKS',
  'TOO_MANY_REDIRECTS',
  'TOTAL_BYTES_MISMATCH',
  'TOTAL_TOO_LARGE',
  'TRUSTED_KEY_INVALID',
  'TRUSTED_ROOT_UNAVAILABLE',
  'TRUST_BINDING_NOT_FOUND',
  'TRUST_FILE_INVALID',
  'TRUST_FILE_MISSING',
  'TRUST_FILE_UNREADABLE',
  'TRUST_KEY_INVALID',
  'TRUST_KEY_UNREADABLE',
  'UNAUTHORIZED',
  'UNSAFE_FILENAME',
  'UNSUPPORTED_VERSION',
  'UNTRUSTED_KEY',
  'UPLOAD_RANGE_MISMATCH',
  'UPLOAD_RESUME_FAILED',
  'USAGE',
  'VERIFICATION_FAILED',
] as const;

/** The error codes of the OCI Distribution Spec (v1.1), as a registry sends them in `errors[].code`. */
export const REGISTRY_ERROR_CODES = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
  // Defined by distribution (registry:2) beside the spec's list.
  'TAG_INVALID',
  'MANIFEST_UNVERIFIED',
  'PAGINATION_NUMBER_INVALID',
  'RANGE_INVALID',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number] | (typeof REGISTRY_ERROR_CODES)[number] | `HTTP_${number}`;

const REGISTRY_CODES: ReadonlySet<string> = new Set(REGISTRY_ERROR_CODES);

/** The registry's own code as an ErrorCode when the spec defines it (any case), else undefined. */
export function registryErrorCode(code: string | undefined): ErrorCode | undefined {
  const upper = code?.toUpperCase();
  return upper !== undefined && REGISTRY_CODES.has(upper) ? (upper as ErrorCode) : undefined;
}

/** One entry of an OCI Distribution error body: `{"errors":[{"code","message","detail"}]}`. */
export interface RegistryErrorEntry {
  code: string;
  message?: string;
  detail?: unknown;
}

export interface CommsErrorOptions {
  /** Stable identifier, e.g. `DIGEST_MISMATCH`, `MANIFEST_UNKNOWN`, `INVALID_REFERENCE`. */
  code?: ErrorCode;
  cause?: unknown;
  /** The registry host the failure concerns, when there is one. Never contains credentials. */
  registry?: string;
  /** HTTP status of the response that caused the error, when there is one. */
  status?: number;
  /** The registry's `errors[]` entries, as it sent them. */
  registryErrors?: RegistryErrorEntry[];
  /**
   * The library option (a field of the call's options object, e.g. `max`, `outDir`) whose value
   * the error is about. The message names the option the same way; the CLI names its flag instead.
   */
  option?: string;
}

export class CommsError extends Error {
  readonly exitCode: ExitCode = ExitCode.FAILURE;
  readonly code: ErrorCode;
  readonly registry: string | undefined;
  readonly status: number | undefined;
  readonly registryErrors: RegistryErrorEntry[];
  readonly option: string | undefined;

  constructor(message: string, options: CommsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? 'FAILURE';
    this.registry = options.registry;
    this.status = options.status;
    this.registryErrors = options.registryErrors ?? [];
    this.option = options.option;
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
