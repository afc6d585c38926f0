/**
 * waitForReply / waitForReceipt: what an agent calls after sending a request. Polls discovery
 * (Referrers API or tag schema, union the v1.0 tags and the sender's inbox) until an artifact of
 * the wanted type refers to the message, or the timeout passes.
 */
import type { Descriptor } from '../oci/descriptor.ts';
import type { Repository } from '../oci/target.ts';
import { Annotation, ArtifactType } from '../protocol/constants.ts';
import { parseMessageManifest } from '../protocol/validate.ts';
import { annotationsExpired } from '../protocol/expiry.ts';
import { CommsError } from '../errors.ts';
import { findReferrers } from './discover.ts';
import { checkAborted, sleep } from '../util/abort.ts';

export class TimeoutError extends CommsError {
  constructor(message: string) {
    super(message, { code: 'TIMEOUT' });
  }
}

export interface WaitOptions {
  /** Give up after this many milliseconds (default 5 minutes). */
  timeoutMs?: number;
  /** Poll interval (default 2 s). */
  intervalMs?: number;
  signal?: AbortSignal;
}

export interface WaitedArtifact {
  descriptor: Descriptor;
  annotations: Record<string, string>;
}

export async function waitForReply(repo: Repository, messageDigest: string, options: WaitOptions = {}): Promise<WaitedArtifact> {
  const original = await repo.fetchManifest(messageDigest, { signal: options.signal });
  const sender = parseMessageManifest(original.bytes).sender;
  return waitFor(repo, original.descriptor, ArtifactType.Message, [sender], 'reply', options);
}

export async function waitForReceipt(repo: Repository, messageDigest: string, options: WaitOptions = {}): Promise<WaitedArtifact> {
  const original = await repo.fetchManifest(messageDigest, { signal: options.signal });
  return waitFor(repo, original.descriptor, ArtifactType.Receipt, [], 'receipt', options);
}

async function waitFor(repo: Repository, subject: Descriptor, artifactType: string, replyRecipients: string[], what: string, options: WaitOptions): Promise<WaitedArtifact> {
  const timeoutMs = options.timeoutMs ?? 300_000;
  const interval = options.intervalMs ?? 2000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    checkAborted(options.signal);
    // An expired reply or receipt (created_at + ttl_seconds, plus 5 minutes of skew) is not an answer.
    const now = new Date();
    const found = (await findReferrers(repo, subject, { artifactType, replyRecipients, signal: options.signal })).filter((d) => !annotationsExpired(d.annotations, now));
    if (found.length > 0) {
      const oldest = found.sort((a, b) => (a.annotations?.[Annotation.CreatedAt] ?? '').localeCompare(b.annotations?.[Annotation.CreatedAt] ?? ''))[0]!;
      return { descriptor: oldest, annotations: oldest.annotations ?? {} };
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new TimeoutError(`no ${what} to ${subject.digest} in ${repo.name} within ${Math.round(timeoutMs / 1000)} s`);
    await sleep(Math.min(interval, left), options.signal);
  }
}

