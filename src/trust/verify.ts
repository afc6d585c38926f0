/**
 * Verifying a message's Sigstore bundle against a trust policy, before anything is materialised.
 *
 * The bundle's `messageSignature` must cover exactly the message manifest: its messageDigest must
 * equal the message digest, the manifest bytes must hash to that digest, and the signature must
 * verify over those bytes (@sigstore/verify). Then the signer must be one the policy trusts:
 * - key-signed bundles: one of `trustedKeys` (PEM public keys);
 * - keyless bundles: the certificate chains to the trusted root's Fulcio CA, carries an SCT, and the
 *   signature is in a trusted Rekor log while the certificate was valid; and the certificate's
 *   identity (SAN) and OIDC issuer match `certificateIdentity` / `certificateIdentityRegexp` and
 *   `certificateOidcIssuer`.
 * An empty policy is refused: comms never accepts "any identity".
 *
 * A trust file (trust-file.ts) adds signers AND binds each to identities. A signer the trust file
 * binds is "verified as X" only when the artifact's `dockercomms.sender` claims X and X is one of
 * its identities; a bound signer claiming anyone else is refused (SENDER_MISMATCH), naming both.
 * A signer trusted only through the flags (trustedKeys, certificateIdentity*) is verified as its
 * key id or certificate identity, and the sender stays a claim (unless requireSenderMatch).
 *
 * Every failure is a VerificationError (exit 2) whose `code` says which check failed and whose
 * message says why, in words a person can act on.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { bundleFromJSON, isBundleWithMessageSignature, type Bundle, type BundleWithMessageSignature } from '@sigstore/bundle';
import { X509Certificate } from '@sigstore/core';
import { HashAlgorithm, TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier, type SignedEntity, type TrustMaterial } from '@sigstore/verify';
import { UsageError, VerificationError, type ErrorCode } from '../errors.ts';
import { parseDigest } from '../oci/digest.ts';
import { MAX_BUNDLE_BYTES } from '../protocol/constants.ts';
import { keyIdOf } from './key-id.ts';
import type { TrustFile } from './trust-file.ts';
import { senderMatches, type TrustPolicy, type VerifiedSigner, type VerifyContext } from './policy.ts';
import { parseTrustedKey } from './public-key.ts';
import { toTrustedRoot } from './trusted-root.ts';

export { senderMatches, type TrustPolicy, type VerifiedSigner, type VerifyContext };

const DIGEST_ALGORITHMS: Partial<Record<HashAlgorithm, 'sha256' | 'sha512'>> = {
  [HashAlgorithm.SHA2_256]: 'sha256',
  [HashAlgorithm.SHA2_512]: 'sha512',
};

/**
 * Verifies `bundleBytes` (the bundle blob) over `artifact` (the message manifest bytes), whose
 * digest the message is known by (`expectedDigest`, `sha256:<hex>`), against `policy`.
 * Resolves with who signed; rejects with VerificationError.
 */
export async function verifyMessageBundle(
  bundleBytes: Uint8Array,
  artifact: Uint8Array,
  expectedDigest: string,
  policy: TrustPolicy,
  context?: VerifyContext,
): Promise<VerifiedSigner> {
  const checked = checkPolicy(policy);
  const expected = checkArtifact(artifact, expectedDigest);
  const bundle = parseBundle(bundleBytes);
  checkCoveredDigest(bundle, expected);

  const content = bundle.verificationMaterial.content;
  const verified =
    content.$case === 'publicKey' ? verifyKeySigned(bundle, artifact, content.publicKey.hint, checked) : verifyKeyless(bundle, artifact, checked);

  const sender = context?.sender;
  if (verified.boundTo.length > 0) {
    if (sender !== undefined && sender !== '') {
      if (!verified.boundTo.includes(sender)) {
        throw fail(
          'SENDER_MISMATCH',
          `the artifact claims to be from ${quote(sender)} but is signed by ${describeSigner(verified)}, which the trust file binds to ${verified.boundTo.map(quote).join(', ')}`,
        );
      }
      return { ...verified, identity: sender, bound: true };
    }
    if (context !== undefined && policy.requireSenderMatch) {
      throw fail('SENDER_UNKNOWN', 'the policy requires the sender to match the signer, but the artifact names no sender');
    }
    if (verified.boundTo.length === 1) return { ...verified, identity: verified.boundTo[0]!, bound: true };
    return verified;
  }
  if (policy.requireSenderMatch && context !== undefined) {
    if (sender === undefined || sender === '') {
      throw fail('SENDER_UNKNOWN', 'the policy requires the sender to match the signer, but the message names no sender');
    }
    if (!senderMatches(verified, sender)) {
      throw fail('SENDER_MISMATCH', `the message claims to be from ${quote(sender)} but was signed by ${describeSigner(verified)}`);
    }
  }
  return verified;
}

/**
 * Checks a policy before it is used on anything (recv calls it before its first request): a
 * trusted key that is not a usable public key, a bad identity regexp, an empty or incomplete
 * policy is a UsageError (exit 4) with the same code verifyMessageBundle would give, never a
 * per-message verification failure.
 */
export function checkTrustPolicy(policy: TrustPolicy): void {
  try {
    checkPolicy(policy);
  } catch (err) {
    if (err instanceof VerificationError) throw new UsageError(err.message, { code: err.code, cause: err });
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------

interface CheckedPolicy {
  keys: { id: string; key: KeyObject }[];
  trust: TrustFile | undefined;
  /** Whether the flags (not the trust file) name a keyless identity. */
  flagKeyless: boolean;
  identity: string | undefined;
  identityRegexp: RegExp | undefined;
  identityRegexpSource: string | undefined;
  issuer: string | undefined;
  trustedRoot: TrustedRoot | undefined;
}

function checkPolicy(policy: TrustPolicy): CheckedPolicy {
  const flagKeys = (policy.trustedKeys ?? []).map((pem, i) => {
    let key: KeyObject;
    try {
      // A private or encrypted key, or garbage, is refused rather than half-used.
      key = parseTrustedKey(pem, `trusted key #${i + 1}`);
    } catch (err) {
      throw fail('POLICY_INVALID', (err as Error).message, err);
    }
    return { id: keyIdOf(key), key };
  });
  const trust = policy.trust;
  const keys = [...flagKeys];
  for (const e of trust?.entries ?? []) {
    if (e.kind !== 'key') continue;
    if (e.publicKey === undefined || e.keyId === undefined) {
      throw fail('POLICY_INVALID', `the trust file's key ${quote(e.keyPath)} (line ${e.line}) was not loaded: read the file with loadTrustFile`);
    }
    if (!keys.some((k) => k.id === e.keyId)) keys.push({ id: e.keyId, key: e.publicKey });
  }
  const trustKeyless = (trust?.entries ?? []).some((e) => e.kind === 'keyless');
  const identity = nonEmpty(policy.certificateIdentity);
  const regexpSource = nonEmpty(policy.certificateIdentityRegexp);
  const issuer = nonEmpty(policy.certificateOidcIssuer);
  let identityRegexp: RegExp | undefined;
  if (regexpSource !== undefined) {
    try {
      identityRegexp = new RegExp(regexpSource);
    } catch (err) {
      throw fail('POLICY_INVALID', `the certificate identity regexp ${quote(regexpSource)} is not a valid regular expression`, err);
    }
  }
  const wantsIdentity = identity !== undefined || identityRegexp !== undefined;
  if (keys.length === 0 && !wantsIdentity && !trustKeyless) {
    throw fail(
      'POLICY_EMPTY',
      issuer !== undefined
        ? 'the policy names an OIDC issuer but no certificate identity: add certificateIdentity or certificateIdentityRegexp'
        : 'no trust policy: give a trust file (trust), trustedKeys, or certificateIdentity (or certificateIdentityRegexp) with certificateOidcIssuer; comms does not accept a signature from anyone',
    );
  }
  if (wantsIdentity && issuer === undefined) {
    throw fail('POLICY_INCOMPLETE', 'a certificate identity needs its OIDC issuer: add certificateOidcIssuer');
  }
  const trustedRoot = policy.trustedRoot === undefined ? undefined : toTrustedRoot(policy.trustedRoot);
  return { keys, trust, flagKeyless: wantsIdentity, identity, identityRegexp, identityRegexpSource: regexpSource, issuer, trustedRoot };
}

function checkArtifact(artifact: Uint8Array, expectedDigest: string): { algorithm: 'sha256' | 'sha512'; hex: string; digest: string } {
  let parsed;
  try {
    parsed = parseDigest(expectedDigest);
  } catch (err) {
    throw fail('DIGEST_INVALID', `the message digest ${quote(expectedDigest)} is not a valid digest`, err);
  }
  const actual = createHash(parsed.algorithm).update(artifact).digest('hex');
  if (actual !== parsed.hex) {
    throw fail(
      'ARTIFACT_DIGEST_MISMATCH',
      `the manifest bytes hash to ${parsed.algorithm}:${actual}, but the message is ${expectedDigest}: the manifest was altered`,
    );
  }
  return { ...parsed, digest: expectedDigest };
}

function parseBundle(bytes: Uint8Array): BundleWithMessageSignature {
  if (bytes.byteLength > MAX_BUNDLE_BYTES) {
    throw fail('BUNDLE_MALFORMED', `the bundle is ${bytes.byteLength} bytes, more than any Sigstore bundle (limit ${MAX_BUNDLE_BYTES})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw fail('BUNDLE_MALFORMED', 'the bundle is not JSON', err);
  }
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (err) {
    const fields = (err as { fields?: unknown }).fields;
    const which = Array.isArray(fields) && fields.length > 0 ? `: invalid ${fields.slice(0, 5).join(', ')}` : '';
    throw fail('BUNDLE_MALFORMED', `the bundle is not a valid Sigstore bundle${which}`, err);
  }
  if (!isBundleWithMessageSignature(bundle)) {
    throw fail('BUNDLE_UNSUPPORTED', 'the bundle holds a DSSE envelope, not a message signature over the manifest');
  }
  if (bundle.verificationMaterial?.content === undefined) {
    throw fail('BUNDLE_MALFORMED', 'the bundle has no verification material');
  }
  return bundle;
}

function checkCoveredDigest(bundle: BundleWithMessageSignature, expected: { algorithm: string; hex: string; digest: string }): void {
  const md = bundle.content.messageSignature.messageDigest;
  const algorithm = DIGEST_ALGORITHMS[md.algorithm];
  const covered = `${algorithm ?? `hash-algorithm-${md.algorithm}`}:${Buffer.from(md.digest).toString('hex')}`;
  if (algorithm !== expected.algorithm || Buffer.from(md.digest).toString('hex') !== expected.hex) {
    throw fail('BUNDLE_DIGEST_MISMATCH', `the bundle covers ${covered} but the message is ${expected.digest}: it is the signature of another message`);
  }
}

function verifyKeySigned(bundle: BundleWithMessageSignature, artifact: Uint8Array, hint: string, policy: CheckedPolicy): VerifiedSigner {
  const signedBy = hint === '' ? 'a key with no hint' : `key ${quote(hint)}`;
  if (policy.keys.length === 0) {
    throw fail('POLICY_MISMATCH', `the message is signed with ${signedBy}, but the policy trusts no keys (only keyless identities)`);
  }
  let entity: SignedEntity;
  try {
    entity = toSignedEntity(bundle, Buffer.from(artifact));
  } catch (err) {
    throw fail('BUNDLE_MALFORMED', 'the bundle cannot be read', err);
  }
  // Without a trusted root, a key-signed bundle stands on its key alone: log entries and
  // timestamps it may carry cannot be checked, so they are not counted (cosign's --insecure-ignore-tlog).
  if (policy.trustedRoot === undefined) entity = { ...entity, tlogEntries: [], timestamps: [] };
  // The hint is the signer's claim; a matching key is tried first, but any trusted key may verify.
  const byHint = policy.keys.filter((k) => k.id === hint.toLowerCase());
  const candidates = [...byHint, ...policy.keys.filter((k) => !byHint.includes(k))];
  let lastError: unknown;
  for (const candidate of candidates) {
    const material = trustMaterial(policy.trustedRoot, candidate.key);
    try {
      new Verifier(material, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(entity);
      return { kind: 'key', identity: candidate.id, keyId: candidate.id, bound: false, boundTo: policy.trust?.identitiesOfKey(candidate.id) ?? [] };
    } catch (err) {
      lastError = err;
    }
  }
  const trusted = policy.keys.map((k) => k.id.slice(0, 16)).join(', ');
  if (byHint.length > 0) {
    const code = (lastError as { code?: unknown } | undefined)?.code;
    const why =
      code === 'SIGNATURE_ERROR' || typeof code !== 'string'
        ? 'the manifest or the bundle was altered'
        : `${code}: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
    throw fail('SIGNATURE_INVALID', `the signature does not verify with trusted key ${hint.slice(0, 16)}: ${why}`, lastError);
  }
  throw fail(
    'UNTRUSTED_KEY',
    `the message is signed with ${signedBy}, which is not one of the trusted keys (${trusted}), and no trusted key verifies its signature`,
    lastError,
  );
}

function verifyKeyless(bundle: BundleWithMessageSignature, artifact: Uint8Array, policy: CheckedPolicy): VerifiedSigner {
  const claimed = claimedIdentity(bundle);
  const trustKeyless = (policy.trust?.entries ?? []).some((e) => e.kind === 'keyless');
  if (!policy.flagKeyless && !trustKeyless) {
    throw fail(
      'POLICY_MISMATCH',
      `the message is signed keylessly (certificate for ${quote(claimed)}), but the policy names no certificate identity, only trusted keys`,
    );
  }
  if (policy.trustedRoot === undefined) {
    throw fail(
      'TRUSTED_ROOT_UNAVAILABLE',
      'the message is signed keylessly, and verifying it needs a Sigstore trusted root (trustedRoot, or the public-good root)',
    );
  }
  let signer;
  try {
    const entity = toSignedEntity(bundle, Buffer.from(artifact));
    signer = new Verifier(trustMaterial(policy.trustedRoot)).verify(entity);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const reason = err instanceof Error ? err.message : String(err);
    throw fail(
      'SIGNATURE_INVALID',
      `the keyless signature does not verify against the trusted root${typeof code === 'string' ? ` (${code})` : ''}: ${reason}`,
      err,
    );
  }
  const san = signer.identity?.subjectAlternativeName;
  const issuer = signer.identity?.extensions?.issuer;
  if (san === undefined || san === '') {
    throw fail('IDENTITY_MISMATCH', 'the signing certificate carries no identity (subject alternative name)');
  }
  const boundTo = policy.trust?.identitiesOfCertificate(san, issuer) ?? [];
  const verified: VerifiedSigner = {
    kind: 'keyless',
    identity: san,
    certificateIdentity: san,
    bound: false,
    boundTo,
    ...(issuer !== undefined ? { issuer } : {}),
  };
  // The trust file accepts what it binds; the flags' identity rule is checked otherwise.
  if (boundTo.length > 0) return verified;
  if (!policy.flagKeyless) {
    throw fail('IDENTITY_MISMATCH', `signed by ${quote(san)} (issuer ${quote(issuer ?? '(none)')}), which the trust file binds to no identity`);
  }
  if (policy.identity !== undefined && san !== policy.identity) {
    throw fail('IDENTITY_MISMATCH', `identity mismatch: signed by ${quote(san)}, but the policy requires ${quote(policy.identity)}`);
  }
  if (policy.identityRegexp !== undefined && !policy.identityRegexp.test(san)) {
    throw fail('IDENTITY_MISMATCH', `identity mismatch: signed by ${quote(san)}, which does not match ${quote(policy.identityRegexpSource ?? '')}`);
  }
  if (issuer !== policy.issuer) {
    throw fail(
      'ISSUER_MISMATCH',
      `issuer mismatch: the certificate was issued on a token from ${quote(issuer ?? '(none)')}, but the policy requires ${quote(policy.issuer ?? '')}`,
    );
  }
  return verified;
}

const EMPTY_ROOT = TrustedRoot.fromJSON({});

function trustMaterial(root: TrustedRoot | undefined, key?: KeyObject): TrustMaterial {
  const material = toTrustMaterial(root ?? EMPTY_ROOT);
  if (key === undefined) return material;
  return { ...material, publicKey: () => ({ publicKey: key, validFor: () => true }) };
}

/** The certificate's SAN before anything is verified: for messages only, never for decisions. */
function claimedIdentity(bundle: BundleWithMessageSignature): string {
  try {
    const content = bundle.verificationMaterial.content;
    const raw =
      content.$case === 'certificate'
        ? content.certificate.rawBytes
        : content.$case === 'x509CertificateChain'
          ? content.x509CertificateChain.certificates[0]?.rawBytes
          : undefined;
    return raw === undefined ? '(no certificate)' : (X509Certificate.parse(Buffer.from(raw)).subjectAltName ?? '(no identity)');
  } catch {
    return '(unreadable certificate)';
  }
}

function describeSigner(v: VerifiedSigner): string {
  return v.kind === 'key' ? `key ${v.keyId ?? v.identity}` : `${quote(v.certificateIdentity ?? v.identity)} (issuer ${quote(v.issuer ?? '(none)')})`;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

/** Quotes an untrusted string for a message: JSON escaping, bounded length. */
function quote(s: string): string {
  return JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}…` : s);
}

function fail(code: ErrorCode, message: string, cause?: unknown): VerificationError {
  return new VerificationError(message, { code, ...(cause !== undefined ? { cause } : {}) });
}
