/**
 * ls: what is waiting for me, without downloading it. One tag listing (this inbox's prefix), then
 * per message its manifest, and — when asked — its signature (the bundle lookup recv does) and
 * whether a receipt of mine marks it read: a bounded number of requests per message.
 */
import type { Repository } from '../oci/target.ts';
import { TagPrefix } from '../protocol/constants.ts';
import { CLOCK_SKEW_MS, isExpiredAt } from '../protocol/expiry.ts';
import { inboxPrefix, utcDate8 } from '../protocol/tags.ts';
import { parseMessageManifest } from '../protocol/validate.ts';
import type { TrustPolicy } from '../trust/verify.ts';
import { NotFoundError, UsageError, VerificationError, type CommsError } from '../errors.ts';
import { mapLimit } from '../util/pool.ts';
import { readReceiptOf, type ReadReceipts } from './read-state.ts';
import { isVerdictOnArtifact } from './refusal.ts';
import { TagSnapshot } from './tag-snapshot.ts';
import type { VerifiedMessage } from './verify-message.ts';

export interface ListOptions {
  repository: Repository;
  me: string;
  /** Verify each message's signature under this policy; without it nothing is checked (`verified: null`). */
  policy?: TrustPolicy;
  /** Tell read from unread by my signed receipts; without it `read` is null (unknown). */
  readReceipts?: ReadReceipts;
  /** Only messages created since then (less 5 minutes of clock skew). */
  since?: Date;
  /** Also list expired messages (default: hidden). */
  includeExpired?: boolean;
  now?: () => Date;
  /** Messages looked at in parallel (default 8). */
  concurrency?: number;
  signal?: AbortSignal;
}

export interface ListedMessage {
  digest: string;
  tag: string;
  messageId: string;
  sender: string;
  recipient: string;
  createdAt: string;
  expiresAt: string;
  expired: boolean;
  /** The payload's size in bytes (`dockercomms.total_bytes`). */
  size: number;
  /** The filename it would be written as (an encrypted message's is opaque until decrypted). */
  filename: string;
  encrypted: boolean;
  /** The verified signer; false when verification failed (see `verifyError`); null when not checked. */
  verified: VerifiedMessage | false | null;
  verifyError?: CommsError;
  /** A verified receipt of mine marks it read; null when that cannot be told (no readReceipts). */
  read: boolean | null;
  /** The receipt that marks it read. */
  readReceipt?: string;
}

/** An inbox tag whose manifest is not a valid message. */
export interface ListFailure {
  tag: string;
  digest?: string;
  error: CommsError;
}

/** Lists my messages, oldest first. */
export async function listMessages(options: ListOptions): Promise<(ListedMessage | ListFailure)[]> {
  const repo = options.repository;
  if (options.me === '') throw new UsageError('me must not be empty', { option: 'me' });
  const prefix = inboxPrefix(options.me);
  const sinceMs = options.since === undefined ? undefined : options.since.getTime() - CLOCK_SKEW_MS;
  // As recv: with the Referrers API only this inbox's range is listed (from the --since day).
  const prefixes = [
    prefix,
    ...(options.policy === undefined ? [] : [TagPrefix.Bundle]),
    ...(options.readReceipts === undefined ? [] : [TagPrefix.Receipt, TagPrefix.Bundle]),
  ];
  const ranged = await repo.referrersApiSupported({ signal: options.signal });
  const snapshot = ranged
    ? await TagSnapshot.loadRange(repo, prefix, {
        signal: options.signal,
        ...(sinceMs === undefined ? {} : { from: `${prefix}${utcDate8(new Date(sinceMs))}` }),
      })
    : await TagSnapshot.load(repo, { signal: options.signal, prefixes });
  // A ranged listing holds no bundle tags: each message's are then listed by range when verified.
  const bundleSnapshot = ranged ? undefined : snapshot;
  const now = (options.now ?? (() => new Date()))();
  const seen = new Set<string>();
  const results = await mapLimit(
    snapshot.withPrefix(prefix),
    options.concurrency ?? 8,
    async (tag): Promise<ListedMessage | ListFailure | undefined> => {
      let fetched;
      try {
        fetched = await repo.fetchManifest(tag, { signal: options.signal });
      } catch (err) {
        if (err instanceof NotFoundError) return undefined; // deleted since listing
        if (isVerdictOnArtifact(err)) return { tag, error: err };
        throw err;
      }
      let info;
      try {
        info = parseMessageManifest(fetched.bytes);
      } catch (err) {
        if (isVerdictOnArtifact(err)) return { tag, digest: fetched.descriptor.digest, error: err };
        throw err;
      }
      if (info.recipient !== options.me) return undefined;
      if (sinceMs !== undefined && info.createdAt.getTime() < sinceMs) return undefined;
      const expired = isExpiredAt(info.expiresAt, now);
      if (expired && !options.includeExpired) return undefined;
      if (seen.has(fetched.descriptor.digest)) return undefined;
      seen.add(fetched.descriptor.digest);
      const listed: ListedMessage = {
        digest: fetched.descriptor.digest,
        tag,
        messageId: info.messageId,
        sender: info.sender,
        recipient: info.recipient,
        createdAt: info.createdAt.toISOString(),
        expiresAt: info.expiresAt.toISOString(),
        expired,
        size: info.totalBytes,
        filename: info.filename,
        encrypted: info.encryption !== undefined,
        verified: null,
        read: null,
      };
      if (options.policy !== undefined) {
        try {
          // The verifier (Sigstore) is loaded only when there is a policy to verify against.
          const { verifyMessage } = await import('./verify-message.ts');
          listed.verified = await verifyMessage(repo, fetched.descriptor, fetched.bytes, {
            policy: options.policy,
            sender: info.sender,
            ...(bundleSnapshot === undefined ? {} : { snapshot: bundleSnapshot }),
            signal: options.signal,
          });
        } catch (err) {
          if (!(err instanceof VerificationError)) throw err;
          listed.verified = false;
          listed.verifyError = err;
        }
      }
      if (options.readReceipts !== undefined) {
        const receipt = await readReceiptOf(repo, fetched.descriptor, options.me, options.readReceipts, { snapshot, signal: options.signal });
        listed.read = receipt !== undefined;
        if (receipt !== undefined) listed.readReceipt = receipt;
      }
      return listed;
    },
    options.signal,
  );
  const out = results.filter((r): r is ListedMessage | ListFailure => r !== undefined);
  const at = (r: ListedMessage | ListFailure) => ('createdAt' in r ? Date.parse(r.createdAt) : 0);
  return out.sort((a, b) => at(a) - at(b) || (a.tag < b.tag ? -1 : 1));
}
