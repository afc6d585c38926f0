/**
 * Errors of the signing side. Verification failures are always `VerificationError` (exit 2) from
 * src/errors.ts; these cover key files and signing services, which are not verdicts on a message.
 */
import { CommsError, ExitCode, ProtocolError, type CommsErrorOptions, type ErrorCode } from '../errors.ts';

/**
 * Exit 1: a key file that cannot be used or written. Codes: `KEY_EXISTS` (keygen refuses to
 * overwrite), `KEY_PASSPHRASE_REQUIRED`, `KEY_PASSPHRASE_WRONG`, `KEY_UNSUPPORTED` (not an ECDSA
 * P-256 private key), `KEY_INVALID` (not a parseable PEM key), `AGE_IDENTITY_INVALID` (an age
 * identity file or value holding no usable identity). Messages never contain key material.
 */
export class KeyError extends CommsError {
  constructor(message: string, options: CommsErrorOptions & { code: ErrorCode }) {
    super(message, options);
  }
}

/**
 * Exit 1: signing could not complete. Codes: `IDENTITY_TOKEN_MISSING`, `IDENTITY_TOKEN_INVALID`,
 * `IDENTITY_TOKEN_FETCH` (the CI's OIDC endpoint failed), `FULCIO_FAILED`, `REKOR_FAILED`,
 * `SIGNING_FAILED`. Messages never contain the identity token.
 */
export class SigningError extends CommsError {
  constructor(message: string, options: CommsErrorOptions & { code: ErrorCode }) {
    super(message, options);
  }
}

/**
 * Exit 2: an encrypted payload (or filename) that cannot be decrypted and authenticated. Codes:
 * `AGE_NO_IDENTITY` (none of the identities is a recipient of it), `AGE_HEADER_INVALID` (not an
 * age header, or its MAC does not check), `AGE_PAYLOAD_INVALID` (a chunk fails authentication,
 * or the payload is truncated or extended). Nothing is delivered when it is thrown.
 */
export class DecryptionError extends CommsError {
  override readonly exitCode = ExitCode.VERIFICATION;
  constructor(message: string, options: CommsErrorOptions & { code: ErrorCode }) {
    super(message, options);
  }
}

/**
 * Exit 4: a trust file that cannot be used. Codes: `TRUST_FILE_MISSING`, `TRUST_FILE_UNREADABLE`,
 * `TRUST_FILE_INVALID` (a line that does not parse; the message names the file and line),
 * `TRUST_KEY_UNREADABLE`, `TRUST_KEY_INVALID` (a key file that is not a PEM public key).
 */
export class TrustFileError extends ProtocolError {
  constructor(message: string, options: CommsErrorOptions & { code: string }) {
    super(message, options);
  }
}
