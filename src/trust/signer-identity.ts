/**
 * Who signed, as an audit record names it: a key signer by its key id (hex sha256 of the public
 * key), a keyless signer by the identity (email or URI) in the certificate Fulcio issued for it.
 * Read from what was signed, never from a claim.
 */
import { createRequire } from 'node:module';
import type { MessageSigner, SignedBundle } from './signer.ts';

/**
 * @sigstore/core, required on first use: only a keyless signature carries a certificate, and
 * a run that does not sign keylessly should not load it (by then the keyless signer has).
 */
const sigstoreCore = (): typeof import('@sigstore/core') => createRequire(import.meta.url)('@sigstore/core');

export interface SignerIdentity {
  kind: MessageSigner['kind'];
  /** Key signers: the key id. */
  keyId?: string;
  /** Keyless signers: the certificate's subject alternative name. */
  identity?: string;
}

export function signerIdentityOf(signer: MessageSigner, signed: SignedBundle): SignerIdentity {
  const keyId = (signer as { keyId?: unknown }).keyId;
  if (signer.kind === 'key') return typeof keyId === 'string' ? { kind: 'key', keyId } : { kind: 'key' };
  const out: SignerIdentity = { kind: signer.kind };
  try {
    const material = (
      signed.json as { verificationMaterial?: { certificate?: { rawBytes?: string }; x509CertificateChain?: { certificates?: { rawBytes?: string }[] } } }
    ).verificationMaterial;
    const raw = material?.certificate?.rawBytes ?? material?.x509CertificateChain?.certificates?.[0]?.rawBytes;
    if (raw !== undefined) {
      const san = sigstoreCore().X509Certificate.parse(Buffer.from(raw, 'base64')).subjectAltName;
      if (san !== undefined) out.identity = san;
    }
  } catch {
    // An unreadable certificate leaves the identity out rather than inventing one.
  }
  return out;
}
