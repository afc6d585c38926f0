/**
 * Reading a trusted public key (a `--trusted-key` file, or a library caller's PEM string) before
 * anything is fetched: a private key (even one whose public half could be derived), an encrypted
 * key, or anything that is not a PEM public key of a kind that signs is refused up front, so a
 * mistaken key never turns into "every genuine message failed verification" (and rejected receipts).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { UsageError } from '../errors.ts';

/** Key kinds whose signatures a Sigstore bundle can carry. */
const SIGNING_KEY_TYPES = new Set(['ec', 'rsa', 'rsa-pss', 'ed25519']);

/**
 * The public key in `pem`; `label` names where it came from in the error (`--trusted-key alice.pub`).
 * Throws UsageError (exit 4) with code `TRUSTED_KEY_INVALID`, never quoting the key's content.
 */
export function parseTrustedKey(pem: string, label: string): KeyObject {
  const refuse = (why: string, cause?: unknown) =>
    new UsageError(`${label} ${why}`, { code: 'TRUSTED_KEY_INVALID', ...(cause === undefined ? {} : { cause }) });
  // A PEM block's type line says what it holds; a private key is refused whatever else the file has.
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(pem)) {
    throw refuse('is an encrypted private key, not a public key: trust the public key file (`comms keygen` writes NAME.pub beside NAME.key)');
  }
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(pem)) {
    throw refuse(
      'is a private key, not a public key: trust the public key file (`comms keygen` writes NAME.pub beside NAME.key), and keep the private key private',
    );
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (cause) {
    throw refuse('is not a PEM public key (expected a "-----BEGIN PUBLIC KEY-----" block, as `comms keygen` writes in NAME.pub)', cause);
  }
  if (key.type !== 'public' || !SIGNING_KEY_TYPES.has(key.asymmetricKeyType ?? '')) {
    throw refuse(`holds a ${key.asymmetricKeyType ?? 'unknown'} key, which cannot verify signatures (expected ECDSA, RSA or Ed25519)`);
  }
  return key;
}
