/**
 * waitForReply / waitForReceipt: what an agent calls after sending a request. Polls discovery
 * (Referrers API or tag schema, union the v1.0 tags and the sender's inbox) until a VERIFIED
 * artifact of the wanted type refers to the message, or the timeout passes.
 *
 * Anyone who can push to the mailbox can add a referrer, and say anything in its annotations
 * (sender, created_at). So the choice is made by verification, never by self-declared time: an
 * unsigned or invalid artifact is skipped (and reported once through `onUnverified`), a receipt
 * counts only when signed by the message's recipient, and a reply or receipt listed under a
 * message it does not refer to is invalid. `allowUnverified: true` also accepts unsigned ones
 * (never invalid ones), after any verified one.
 */
import type { Descriptor } from '../oci/descriptor.ts';
import type { Repository } from '../oci/target.ts';
import { Annotation, ArtifactType } from '../protocol/constants.ts';
import type { TrustPolicy } from '../trust/verify.ts';
import { annotationsExpired } from '../protocol/expiry.ts';
import { CommsError, NotFoundError, ProtocolError, UsageError } from '../errors.ts';
import { findReferrers } from './discover.ts';
import { claimsOf, judgeReferrer, verifyArtifact, type MessageContext, type Verdict } from './verdict.ts';
import { checkAborted, sleep } from '../util/abort.ts';

export class TimeoutError extends CommsError {
  constructor(message: string) {
    super(message, { code: 'TIMEOUT' });
  }
}

/** An artifact a wait skipped (or, with allowUnverified, may accept) because it is not verified. */
export interface UnverifiedArtifact {
  descriptor: Descriptor;
  annotations: Record<string, string>;
  verdict: Verdict;
}

export interface WaitOptions {
  /** Who may sign: the trust policy (a trust file, keys, keyless identities). Required unless allowUnverified. */
  policy?: TrustPolicy;
  /** Also accept unsigned artifacts (after any verified one); invalid ones are never accepted. */
  allowUnverified?: boolean;
  /** Called once per artifact (and per verdict) that the wait skipped or could not verify. */
  onUnverified?: (artifact: UnverifiedArtifact) => void;
  /** Give up after this many milliseconds (default 5 minutes). */
  timeoutMs?: number;
  /** Poll interval (default 2 s). */
  intervalMs?: number;
  signal?: AbortSignal;
}

export interface WaitedArtifact {
  descriptor: Descriptor;
  annotations: Record<string, string>;
  /** The verdict: `verified` unless allowUnverified accepted an unsigned (or unchecked) one. */
  verdict: Verdict;
  /** The verified identity (the verdict's), undefined when not verified. */
  identity: string | undefined;
}

export async function waitForReply(repo: Repository, messageDigest: string, options: WaitOptions = {}): Promise<WaitedArtifact> {
  checkWaitOptions('waitForReply', options);
  const original = await repo.fetchManifest(messageDigest, { signal: options.signal });
  const a = claimsOf(original.bytes).annotations;
  const people = [a[Annotation.Sender], a[Annotation.Recipient]].filter((p): p is string => p !== undefined && p !== '');
  const message: MessageContext = {
    digest: original.descriptor.digest,
    ...(a[Annotation.Recipient] !== undefined ? { recipient: a[Annotation.Recipient] } : {}),
  };
  return waitFor(repo, original.descriptor, message, ArtifactType.Message, [...new Set(people)], 'reply', options);
}

export async function waitForReceipt(repo: Repository, messageDigest: string, options: WaitOptions = {}): Promise<WaitedArtifact> {
  checkWaitOptions('waitForReceipt', options);
  const original = await repo.fetchManifest(messageDigest, { signal: options.signal });
  const a = claimsOf(original.bytes).annotations;
  const message: MessageContext = {
    digest: original.descriptor.digest,
    ...(a[Annotation.Recipient] !== undefined ? { recipient: a[Annotation.Recipient] } : {}),
  };
  return waitFor(repo, original.descriptor, message, ArtifactType.Receipt, [], 'receipt', options);
}

function checkWaitOptions(what: string, options: WaitOptions): void {
  if (options.policy === undefined && options.allowUnverified !== true) {
    throw new UsageError(
      `${what}: options.policy is required (who may sign a reply or receipt), or accept unverified artifacts explicitly with options.allowUnverified: true`,
      { code: 'NO_TRUST_POLICY' },
    );
  }
}

async function waitFor(
  repo: Repository,
  subject: Descriptor,
  message: MessageContext,
  artifactType: string,
  replyRecipients: string[],
  what: string,
  options: WaitOptions,
): Promise<WaitedArtifact> {
  const timeoutMs = options.timeoutMs ?? 300_000;
  const interval = options.intervalMs ?? 2000;
  const deadline = Date.now() + timeoutMs;
  // A verified artifact stays verified; others are looked at again each poll (a bundle may land
  // after its artifact), and reported once per verdict.
  const verifiedCache = new Map<string, WaitedArtifact>();
  const reported = new Set<string>();
  for (;;) {
    checkAborted(options.signal);
    const found = await findReferrers(repo, subject, { artifactType, replies: artifactType === ArtifactType.Message, replyRecipients, signal: options.signal });
    const verified: WaitedArtifact[] = [];
    const unverified: WaitedArtifact[] = [];
    // An expired reply or receipt (created_at + ttl_seconds, plus 5 minutes of skew) is not an answer.
    const now = new Date();
    for (const d of found) {
      const cached = verifiedCache.get(d.digest);
      if (cached !== undefined) {
        if (!annotationsExpired(cached.annotations, now)) verified.push(cached);
        continue;
      }
      let fetched;
      try {
        fetched = await repo.fetchManifest(d.digest, { signal: options.signal });
      } catch (err) {
        // Listed but gone (TTL clean-up, or never pushed whole): nothing to judge.
        if (err instanceof NotFoundError || err instanceof ProtocolError) continue;
        throw err;
      }
      const annotations = claimsOf(fetched.bytes).annotations;
      if (annotationsExpired(annotations, now)) continue;
      const verdict = judgeReferrer(
        await verifyArtifact(repo, fetched.descriptor, fetched.bytes, options.policy, { signal: options.signal }),
        fetched.bytes,
        message,
      );
      const item: WaitedArtifact = { descriptor: { ...d, annotations }, annotations, verdict, identity: verdict.verified ? verdict.identity : undefined };
      if (verdict.verified) {
        verifiedCache.set(d.digest, item);
        verified.push(item);
        continue;
      }
      const key = `${d.digest} ${verdict.status} ${verdict.reason ?? ''}`;
      if (!reported.has(key)) {
        reported.add(key);
        options.onUnverified?.({ descriptor: item.descriptor, annotations, verdict });
      }
      if (verdict.status !== 'invalid') unverified.push(item);
    }
    const chosen = choose(verified, message) ?? (options.allowUnverified ? choose(unverified, message) : undefined);
    if (chosen !== undefined) return chosen;
    const left = deadline - Date.now();
    if (left <= 0)
      throw new TimeoutError(
        `no ${options.allowUnverified ? '' : 'verified '}${what} to ${subject.digest} in ${repo.name} within ${Math.round(timeoutMs / 1000)} s`,
      );
    await sleep(Math.min(interval, left), options.signal);
  }
}

/**
 * Among artifacts of equal standing: one from the message's recipient first (verified as such),
 * then the earliest by its own created_at (a claim, but only among artifacts of one standing),
 * then by digest, so the choice is stable.
 */
function choose(items: WaitedArtifact[], message: MessageContext): WaitedArtifact | undefined {
  const fromRecipient = (w: WaitedArtifact) => (w.identity !== undefined && w.identity === message.recipient ? 0 : 1);
  return [...items].sort(
    (a, b) =>
      fromRecipient(a) - fromRecipient(b) ||
      (a.annotations[Annotation.CreatedAt] ?? '').localeCompare(b.annotations[Annotation.CreatedAt] ?? '') ||
      a.descriptor.digest.localeCompare(b.descriptor.digest),
  )[0];
}
