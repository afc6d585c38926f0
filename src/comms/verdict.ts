/**
 * One trust verdict for every artifact a person or agent acts on — message, reply, receipt:
 * `verified` (with the verified identity), `unsigned` (no signature bundle refers to it),
 * `invalid` (a bundle exists but none verifies, a bound signer claims someone else, a receipt not
 * signed by the message's recipient, an artifact listed under a message it does not refer to),
 * or `unchecked` (no trust policy was given). Waits, threads and discovery all decide with it.
 */
import type { Descriptor } from '../oci/descriptor.ts';
import type { OperationOptions, Repository } from '../oci/target.ts';
import { Annotation, ArtifactType } from '../protocol/constants.ts';
import { senderMatches, type TrustPolicy } from '../trust/policy.ts';
import { NotFoundError, ProtocolError, VerificationError } from '../errors.ts';
import type { TagSnapshot } from './tag-snapshot.ts';
import type { VerifiedMessage } from './verify-message.ts';

export type TrustStatus = 'verified' | 'unsigned' | 'invalid' | 'unchecked';

export interface Verdict {
  status: TrustStatus;
  /** True only for `verified`. */
  verified: boolean;
  /**
   * The verified identity: the identity the trust file binds the signer to (the sender claim,
   * checked), else the key id or certificate identity. Absent unless verified.
   */
  identity?: string;
  /** True when `identity` is the artifact's sender claim, verified (bound, or named by the signer itself). */
  senderVerified?: boolean;
  /** Who signed, as verification found it. */
  signer?: VerifiedMessage;
  /** What the artifact says about itself (`dockercomms.sender`): a claim unless senderVerified. */
  claimedSender?: string;
  /** Why it is not verified. */
  reason?: string;
  /** The VerificationError code behind an `invalid` verdict. */
  code?: string;
}

/** What an artifact says about itself, read loosely (no validation beyond the JSON shape). */
export interface ArtifactClaims {
  artifactType?: string;
  subject?: string;
  annotations: Record<string, string>;
}

export function claimsOf(bytes: Uint8Array): ArtifactClaims {
  try {
    const m = JSON.parse(new TextDecoder().decode(bytes)) as {
      artifactType?: unknown;
      config?: { mediaType?: unknown };
      subject?: { digest?: unknown };
      annotations?: unknown;
    };
    const annotations: Record<string, string> = {};
    if (m.annotations !== null && typeof m.annotations === 'object') {
      for (const [k, v] of Object.entries(m.annotations as Record<string, unknown>)) if (typeof v === 'string') annotations[k] = v;
    }
    const artifactType = typeof m.artifactType === 'string' ? m.artifactType : typeof m.config?.mediaType === 'string' ? m.config.mediaType : undefined;
    return {
      ...(artifactType !== undefined ? { artifactType } : {}),
      ...(typeof m.subject?.digest === 'string' ? { subject: m.subject.digest } : {}),
      annotations,
    };
  } catch {
    return { annotations: {} };
  }
}

export interface VerdictOptions extends OperationOptions {
  snapshot?: TagSnapshot;
}

/**
 * The verdict on one artifact (its descriptor and manifest bytes) under `policy`. Only transport
 * and auth failures reject; every verdict on the artifact itself is a resolved Verdict.
 */
export async function verifyArtifact(
  repo: Repository,
  descriptor: Descriptor,
  bytes: Uint8Array,
  policy: TrustPolicy | undefined,
  options: VerdictOptions = {},
): Promise<Verdict> {
  const claimedSender = nonEmpty(claimsOf(bytes).annotations[Annotation.Sender]);
  const claim = claimedSender !== undefined ? { claimedSender } : {};
  if (policy === undefined) return { status: 'unchecked', verified: false, reason: 'no trust policy was given', ...claim };
  try {
    // The verifier (Sigstore) is loaded only when there is a policy to verify against.
    const { verifyMessage } = await import('./verify-message.ts');
    const signer = await verifyMessage(repo, descriptor, bytes, { policy, sender: claimedSender, snapshot: options.snapshot, signal: options.signal });
    const senderVerified = claimedSender !== undefined && (signer.bound || senderMatches(signer, claimedSender));
    return { status: 'verified', verified: true, identity: signer.identity, senderVerified, signer, ...claim };
  } catch (err) {
    if (err instanceof VerificationError) {
      if (err.code === 'BUNDLE_NOT_FOUND') return { status: 'unsigned', verified: false, reason: 'unsigned', ...claim };
      return { status: 'invalid', verified: false, reason: err.message, code: err.code, ...claim };
    }
    // A manifest or bundle that is gone or malformed is no evidence of anything: not verified.
    if (err instanceof NotFoundError || err instanceof ProtocolError) {
      return { status: 'invalid', verified: false, reason: err.message, code: err.code, ...claim };
    }
    throw err;
  }
}

/** The message an artifact is judged against: its digest and who it was addressed to. */
export interface MessageContext {
  digest: string;
  /** The message's `dockercomms.recipient`. */
  recipient?: string;
}

/**
 * The verdict on an artifact found as a referrer of `message`, after the checks that depend on
 * the message: it must refer to the message (its `subject`, and a receipt's `receipt.for`: an
 * artifact listed under a message it does not name was re-pointed), and a receipt counts only when
 * signed by the message's recipient.
 */
export function judgeReferrer(verdict: Verdict, bytes: Uint8Array, message: MessageContext): Verdict {
  const claims = claimsOf(bytes);
  if (claims.subject !== undefined && claims.subject !== message.digest) {
    return invalid(verdict, 'REPOINTED', `it refers to ${claims.subject}, not to ${message.digest}`);
  }
  if (claims.artifactType !== ArtifactType.Receipt) return verdict;
  const receiptFor = claims.annotations[Annotation.ReceiptFor];
  if (receiptFor !== message.digest) {
    return invalid(verdict, 'REPOINTED', `the receipt is for ${receiptFor ?? '(nothing)'}, not for ${message.digest}`);
  }
  if (!verdict.verified || verdict.signer === undefined) return verdict;
  const recipient = message.recipient;
  if (recipient === undefined || recipient === '') return invalid(verdict, 'RECEIPT_SIGNER', 'the message names no recipient whose receipt this could be');
  const byRecipient = verdict.signer.bound ? verdict.identity === recipient : senderMatches(verdict.signer, recipient);
  if (!byRecipient) {
    return invalid(verdict, 'RECEIPT_SIGNER', `the receipt is signed by ${verdict.identity}, not by the message's recipient ${recipient}`);
  }
  return verdict;
}

/** A short human description: `verified as bob`, `unverified (unsigned)`, `INVALID (reason)`. */
export function describeVerdict(v: Verdict): string {
  if (v.status === 'verified') {
    const claim = !v.senderVerified && v.claimedSender !== undefined ? `, claims to be ${v.claimedSender}` : '';
    return `verified as ${v.identity ?? '?'}${claim}`;
  }
  if (v.status === 'invalid') return `INVALID (${v.reason ?? 'not verified'})`;
  return `unverified (${v.reason ?? v.status})`;
}

function invalid(v: Verdict, code: string, reason: string): Verdict {
  const { identity: _identity, senderVerified: _sv, ...rest } = v;
  return { ...rest, status: 'invalid', verified: false, code, reason };
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}
