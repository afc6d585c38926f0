/**
 * What a verifier is told to trust (TrustPolicy), what it reports (VerifiedSigner), and whether a
 * claimed sender names a verified signer. Plain data and comparisons, apart from verify.ts, so
 * that code which only reads a policy or a verdict does not load the Sigstore verifier.
 */
import type { TrustFile } from './trust-file.ts';

export interface TrustPolicy {
  /** PEM public keys whose signatures are accepted. */
  trustedKeys?: string[];
  /** Exact certificate identity (SAN: email or URI) a keyless signature must carry. */
  certificateIdentity?: string;
  /** A regular expression the certificate identity must match (unanchored, as in cosign). */
  certificateIdentityRegexp?: string;
  /** Exact OIDC issuer a keyless certificate must carry; required with an identity. */
  certificateOidcIssuer?: string;
  /** Sigstore TrustedRoot JSON; required to verify keyless bundles (see trusted-root.ts). */
  trustedRoot?: object | undefined;
  /** Also require the message's claimed sender to be the verified signer (see VerifyContext, senderMatches). */
  requireSenderMatch?: boolean;
  /** Signers bound to identities (loadTrustFile); keyless lines need `trustedRoot` too. */
  trust?: TrustFile;
}

export interface VerifiedSigner {
  kind: 'key' | 'keyless';
  /**
   * The verified identity: the identity the trust file binds the signer to (and the artifact's
   * sender claims); else the key id (hex sha256 of the DER public key), or the certificate SAN.
   */
  identity: string;
  /** True when `identity` comes from a trust-file binding (the sender claim is then verified). */
  bound: boolean;
  /** Every identity the trust file binds this signer to (empty when it names none). */
  boundTo: string[];
  /** The OIDC issuer of a keyless certificate. */
  issuer?: string;
  /** The certificate SAN of a keyless signature. */
  certificateIdentity?: string;
  /** The key id of a key-signed bundle. */
  keyId?: string;
}

/**
 * What the message claims about itself. When a context is passed and the policy sets
 * requireSenderMatch, the claimed sender must be present and match the verified signer; without a
 * context the sender is not checked here, and the caller applies `senderMatches` itself.
 */
export interface VerifyContext {
  /** The message's claimed sender (`dockercomms.sender`). */
  sender?: string;
}

/**
 * Whether a message's claimed sender names the verified signer:
 * - keyless: the sender equals the certificate identity (SAN) exactly; an email identity is
 *   compared without regard to case;
 * - key: the sender equals the key id (64 hex characters, any case, optionally `sha256:`-prefixed).
 *   Mapping a human name to a key is the caller's configuration, not this function's.
 * An empty sender never matches.
 */
export function senderMatches(verified: VerifiedSigner, sender: string): boolean {
  if (sender === '') return false;
  if (verified.bound || verified.boundTo.length > 0) return verified.boundTo.includes(sender);
  if (verified.kind === 'key') {
    const id = verified.keyId ?? verified.identity;
    const claimed = sender.toLowerCase().replace(/^sha256:/, '');
    return /^[0-9a-f]{64}$/.test(claimed) && claimed === id.toLowerCase();
  }
  const san = verified.certificateIdentity ?? verified.identity;
  if (sender === san) return true;
  return isEmail(san) && sender.toLowerCase() === san.toLowerCase();
}

function isEmail(identity: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:/i.test(identity) && identity.includes('@');
}
