/**
 * Who signed, as an audit record names it: a key signer by its key id (hex sha256 of the public
 * key), a keyless signer by the identity (email or URI) in the certificate Fulcio issued for it.
 * Read from what was signed, never from a claim.
 */
import { X509Certificate } from '@sigstore/core';
import type { MessageSigner, SignedBundle } from './signer.ts';

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
      const san = X509Certificate.parse(Buffer.from(raw, 'base64')).subjectAltName;
      if (san !== undefined) out.identity = san;
    }
  } catch {
    // An unreadable certificate leaves the identity out rather than inventing one.
  }
  return out;
}
