/**
 * Errors of the signing side. Verification failures are always `VerificationError` (exit 2) from
 * src/errors.ts; these cover key files and signing services, which are not verdicts on a message.
 */
import { CommsError, type CommsErrorOptions } from '../errors.ts';

/**
 * Exit 1: a key file that cannot be used or written. Codes: `KEY_EXISTS` (keygen refuses to
 * overwrite), `KEY_PASSPHRASE_REQUIRED`, `KEY_PASSPHRASE_WRONG`, `KEY_UNSUPPORTED` (not an ECDSA
 * P-256 private key), `KEY_INVALID` (not a parseable PEM key). Messages never contain key material.
 */
export class KeyError extends CommsError {
  constructor(message: string, options: CommsErrorOptions & { code: string }) {
    super(message, options);
  }
}

/**
 * Exit 1: signing could not complete. Codes: `IDENTITY_TOKEN_MISSING`, `IDENTITY_TOKEN_INVALID`,
 * `IDENTITY_TOKEN_FETCH` (the CI's OIDC endpoint failed), `FULCIO_FAILED`, `REKOR_FAILED`,
 * `SIGNING_FAILED`. Messages never contain the identity token.
 */
export class SigningError extends CommsError {
  constructor(message: string, options: CommsErrorOptions & { code: string }) {
    super(message, options);
  }
}
