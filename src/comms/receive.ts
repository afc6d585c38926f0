/**
 * recv: list the inbox tags once (page by page, keeping this recipient's prefix), fetch the
 * matching manifests with bounded concurrency, validate each, dedupe by message id and digest,
 * apply --since / --max, verify each message's signature before a byte of it is written, and
 * materialise it atomically into the output folder. Optionally push a receipt.
 */
import type { Descriptor } from '../oci/descriptor.ts';
import type { Repository } from '../oci/target.ts';
import { TagPrefix } from '../protocol/constants.ts';
import { inboxPrefix, utcDate8 } from '../protocol/tags.ts';
import { CLOCK_SKEW_MS, isExpiredAt } from '../protocol/expiry.ts';
import { parseMessageManifest, type MessageInfo } from '../protocol/validate.ts';
import type { MessageSigner } from '../trust/signer.ts';
import type { TrustPolicy } from '../trust/policy.ts';
import { CommsError, NotFoundError, ProtocolError, UsageError, VerificationError } from '../errors.ts';
import { mapLimit } from '../util/pool.ts';
import { ack, type AckResult } from './ack.ts';
import { materialize, openScratch, type ConflictPolicy } from './materialize.ts';
import { prepareOutDir } from './out-dir.ts';
import { TagSnapshot } from './tag-snapshot.ts';
import { readReceiptOf, type ReadReceipts } from './read-state.ts';
import { runStep, type OnStep } from './steps.ts';
import type { VerifiedMessage } from './verify-message.ts';
import { isVerdictOnArtifact } from './refusal.ts';
import { checkAborted } from '../util/abort.ts';
import { ENCRYPTION_AGE } from '../protocol/constants.ts';
import { receivedFilename } from '../protocol/filename.ts';
import type { AgeIdentities } from '../trust/age.ts';
import { DecryptionError } from '../trust/errors.ts';

/** v1.0's clock-skew allowance for --since (and for expiry). */
export const SINCE_SKEW_MS = CLOCK_SKEW_MS;

export interface ReceiveOptions {
  repository: Repository;
  me: string;
  outDir: string;
  /** Verify before materialising (the default): a policy, or `false` for the explicit --no-verify. */
  verify: TrustPolicy | false;
  since?: Date;
  max?: number;
  /**
   * Also deliver expired messages (created_at + ttl_seconds more than 5 minutes of clock skew in
   * the past). Default false: an expired message is passed over silently, as if already gone.
   */
  includeExpired?: boolean;
  /** The clock expiry is judged by (default: the system clock). */
  now?: () => Date;
  /**
   * List only inbox tags dated (UTC) from this day on, where the registry can be asked for a range
   * of tags (it has the Referrers API, so no other tag is needed). `since` (less the skew) sets it
   * too; the later of the two applies. watch() passes the day before the newest tag it delivered.
   */
  listFrom?: Date;
  /**
   * Pass over messages already read on any machine: those with an `accepted` receipt from `me`
   * whose signature verifies as mine (read-state.ts). Costs one referrers lookup per message.
   */
  readReceipts?: ReadReceipts;
  writeReceipt?: boolean;
  /** Signs receipts when given. */
  signer?: MessageSigner;
  /**
   * age identities (`AGE-SECRET-KEY-1…`): an encrypted message is decrypted with them, and
   * refused (DecryptionError, exit 2, nothing written) when none is its recipient. Without them an
   * encrypted message is delivered as it travels: an age file named `<message id>.age`.
   */
  identities?: AgeIdentities;
  onConflict?: ConflictPolicy;
  parallel?: number;
  /** Manifests fetched at once. */
  concurrency?: number;
  maxTotalBytes?: number;
  /** Skip these message ids / digests (watch mode's memory of what was delivered). */
  skip?: { tags?: Set<string>; messageIds: Set<string>; digests: Set<string> };
  signal?: AbortSignal;
  onProgress?: (p: { digest: string; bytesWritten: number; totalBytes: number }) => void;
  /** Called as each stage starts and ends: fetch-manifest, verify, download (and a receipt's push-manifest, index, sign, push-bundle). */
  onStep?: OnStep;
  /**
   * Asked when a message fails verification (no signature bundle yet, or none that verifies):
   * true leaves it for a later run — no receipt, nothing yielded. watch() uses it to wait for a
   * bundle pushed after the inbox tag, as dockercomms v1.0 pushes them.
   */
  retryUnverified?: (message: { tag: string; digest: string; error: VerificationError }) => boolean;
  /** Called for each message that fails a check; the run goes on with the others. */
  onError?: (failure: ReceiveFailure) => void;
}

export interface ReceivedMessage {
  digest: string;
  tag: string;
  messageId: string;
  filename: string;
  path: string;
  bytes: number;
  sender: string;
  recipient: string;
  createdAt: string;
  verified: VerifiedMessage | null;
  /** The payload travelled encrypted (`age`). */
  encrypted: boolean;
  /** It was decrypted with one of `identities`; false: the file written is the age file itself. */
  decrypted: boolean;
  receipt?: AckResult;
  /** Set when --write-receipt could not push the receipt; the message itself was delivered. */
  receiptError?: CommsError;
}

export interface ReceiveFailure {
  digest?: string;
  tag: string;
  error: CommsError;
  receipt?: AckResult;
  /** Set when the rejected receipt could not be pushed. */
  receiptError?: CommsError;
}

export interface ReceiveResult {
  messages: ReceivedMessage[];
  failures: ReceiveFailure[];
}

interface Candidate {
  tag: string;
  descriptor: Descriptor;
  bytes: Uint8Array;
  info: MessageInfo;
}

export async function receive(options: ReceiveOptions): Promise<ReceiveResult> {
  const messages: ReceivedMessage[] = [];
  const failures: ReceiveFailure[] = [];
  for await (const item of receiveEach(options)) {
    if ('error' in item) failures.push(item);
    else messages.push(item);
  }
  return { messages, failures };
}

/** The same as receive(), one result (or failure) at a time, as each message is done. */
export async function* receiveEach(options: ReceiveOptions): AsyncGenerator<ReceivedMessage | ReceiveFailure> {
  const _repo = options.repository;
  if (options.me === '') throw new UsageError('me must not be empty', { option: 'me' });
  if (options.max !== undefined && (!Number.isInteger(options.max) || options.max < 1))
    throw new UsageError(`max must be a positive integer, got ${options.max}`, { option: 'max' });
  if (options.parallel !== undefined && (!Number.isInteger(options.parallel) || options.parallel < 1))
    throw new UsageError(`parallel must be a positive integer, got ${options.parallel}`, { option: 'parallel' });
  // A policy that cannot verify anything, or an --out that is not a folder, ends the run here,
  // before any request: never a refusal (and a rejected receipt) for every genuine message.
  // The verifier (Sigstore) is loaded only when messages are verified.
  if (options.verify !== false) (await import('../trust/verify.ts')).checkTrustPolicy(options.verify);
  await prepareOutDir(options.outDir);

  const scratch = await openScratch(options.outDir);
  try {
    yield* receiveInto(options, scratch.dir);
  } finally {
    await scratch.release();
  }
}

async function* receiveInto(options: ReceiveOptions, scratchDir: string): AsyncGenerator<ReceivedMessage | ReceiveFailure> {
  const repo = options.repository;
  // Only this inbox and the v1.0-style bundle tags are looked up later: nothing else is kept.
  const { snapshot, ranged } = await inboxSnapshot(options);
  // A ranged listing holds no bundle tags: each message's are then listed by range when verified.
  const bundleSnapshot = ranged ? undefined : snapshot;
  const tags = snapshot.withPrefix(inboxPrefix(options.me)).filter((t) => !options.skip?.tags?.has(t));
  const fetched = await mapLimit(
    tags,
    options.concurrency ?? 8,
    async (tag): Promise<Candidate | ReceiveFailure | undefined> => {
      try {
        const m = await runStep(options.onStep, 'fetch-manifest', { tag }, () => repo.fetchManifest(tag, { signal: options.signal }));
        if (options.skip?.digests.has(m.descriptor.digest)) return undefined;
        const info = parseMessageManifest(m.bytes, { maxTotalBytes: options.maxTotalBytes });
        return { tag, descriptor: m.descriptor, bytes: m.bytes, info };
      } catch (err) {
        if (err instanceof NotFoundError) return undefined; // deleted since listing (TTL clean-up)
        if (isVerdictOnArtifact(err)) return { tag, error: err };
        throw err;
      }
    },
    options.signal,
  );

  // Copies sharing a message id are all kept until one of them is delivered: dropping them by id
  // before verification would let a forged copy (same id, listed first) suppress the genuine one.
  const deliveredIds = new Set<string>(options.skip?.messageIds ?? []);
  const seenDigests = new Set<string>();
  const sinceMs = options.since === undefined ? undefined : options.since.getTime() - SINCE_SKEW_MS;
  const now = (options.now ?? (() => new Date()))();
  const candidates: Candidate[] = [];
  for (const c of fetched) {
    if (c === undefined) continue;
    if ('error' in c) {
      options.onError?.(c);
      yield c;
      continue;
    }
    if (c.info.recipient !== options.me) continue;
    if (sinceMs !== undefined && c.info.createdAt.getTime() < sinceMs) continue;
    if (!options.includeExpired && isExpiredAt(c.info.expiresAt, now)) continue;
    if (seenDigests.has(c.descriptor.digest) || deliveredIds.has(c.info.messageId)) continue;
    seenDigests.add(c.descriptor.digest);
    candidates.push(c);
  }
  candidates.sort((a, b) => a.info.createdAt.getTime() - b.info.createdAt.getTime() || (a.tag < b.tag ? -1 : 1));
  const unread = await withoutRead(candidates, options, snapshot);
  const chosen = options.max === undefined ? unread : firstMessages(unread, options.max);

  const pushReceipt = (c: Candidate, status: 'accepted' | 'rejected', verified: boolean, reason: string | undefined) =>
    ack({
      repository: repo,
      forDigest: c.descriptor.digest,
      status,
      verified,
      reason,
      sender: options.me,
      recipient: c.info.sender,
      signer: options.signer,
      // recv's receipts are signed when it has a signer; without one they go out unsigned, as asked.
      unsigned: options.signer === undefined,
      message: { descriptor: c.descriptor, bytes: c.bytes },
      signal: options.signal,
      ...(options.onStep === undefined ? {} : { onStep: options.onStep }),
    });
  for (const c of chosen) {
    checkAborted(options.signal);
    if (deliveredIds.has(c.info.messageId)) continue; // another copy of it was delivered
    let verified: VerifiedMessage | null = null;
    try {
      if (options.verify !== false) {
        const policy = options.verify;
        const { verifyMessage } = await import('./verify-message.ts');
        verified = await runStep(options.onStep, 'verify', { digest: c.descriptor.digest }, () =>
          verifyMessage(repo, c.descriptor, c.bytes, {
            policy,
            sender: c.info.sender,
            ...(bundleSnapshot === undefined ? {} : { snapshot: bundleSnapshot }),
            signal: options.signal,
          }),
        );
      }
      const decrypt = await decryptionOf(c.info, options.identities);
      const written = await runStep(options.onStep, 'download', { digest: c.descriptor.digest }, () =>
        materialize(repo, c.info, {
          decrypt,
          outDir: options.outDir,
          parallel: options.parallel,
          onConflict: options.onConflict,
          scratchDir,
          signal: options.signal,
          onProgress: (n) => options.onProgress?.({ digest: c.descriptor.digest, bytesWritten: n, totalBytes: c.info.totalBytes }),
        }),
      );
      const received: ReceivedMessage = {
        digest: c.descriptor.digest,
        tag: c.tag,
        messageId: c.info.messageId,
        filename: decrypt?.filename ?? c.info.filename,
        path: written.path,
        bytes: written.bytes,
        sender: c.info.sender,
        recipient: c.info.recipient,
        createdAt: c.info.createdAt.toISOString(),
        verified,
        encrypted: c.info.encryption !== undefined,
        decrypted: decrypt !== undefined,
      };
      deliveredIds.add(c.info.messageId);
      if (options.writeReceipt) {
        // The file is delivered whatever happens to its receipt: a failed receipt push is
        // reported on the result, never turned into a refusal or an aborted run.
        await pushReceipt(c, 'accepted', verified !== null, undefined).then(
          (r) => void (received.receipt = r),
          (e: unknown) => void (received.receiptError = asCommsError(e)),
        );
      }
      yield received;
    } catch (err) {
      // A message that fails a check, or whose chunk is gone from the store (deleted, or never
      // pushed by whoever wrote it), is refused alone; the other messages are still received.
      if (!isVerdictOnArtifact(err) && !(err instanceof NotFoundError)) throw err;
      if (
        err instanceof VerificationError &&
        options.verify !== false &&
        verified === null &&
        options.retryUnverified?.({ tag: c.tag, digest: c.descriptor.digest, error: err })
      )
        continue;
      const failure: ReceiveFailure = { digest: c.descriptor.digest, tag: c.tag, error: err };
      if (options.writeReceipt) {
        const reason =
          err instanceof VerificationError
            ? `verification failed: ${err.message}`
            : err instanceof DecryptionError
              ? `not decrypted: ${err.message}`
              : `invalid message: ${err.message}`;
        await pushReceipt(c, 'rejected', false, reason).then(
          (r) => void (failure.receipt = r),
          (e: unknown) => void (failure.receiptError = asCommsError(e)),
        );
      }
      options.onError?.(failure);
      yield failure;
    }
  }
}

/**
 * What materialize() needs to decrypt an encrypted message: the identities and the real filename,
 * decrypted first (an identity that is no recipient is refused before a chunk is fetched).
 * Undefined for a plain message, or when no identities were given.
 */
async function decryptionOf(info: MessageInfo, identities: AgeIdentities | undefined): Promise<{ identities: AgeIdentities; filename: string } | undefined> {
  if (info.encryption === undefined || identities === undefined || identities.length === 0) return undefined;
  if (info.encryption !== ENCRYPTION_AGE) {
    throw new ProtocolError(`the message is encrypted with ${JSON.stringify(info.encryption)}; comms decrypts only age`, { code: 'ENCRYPTION_UNSUPPORTED' });
  }
  if (info.encryptedFilename === undefined) return { identities, filename: info.filename.replace(/\.age$/, '') || 'file' };
  const { decryptBytes } = await import('../trust/age.ts');
  const raw = (await decryptBytes(info.encryptedFilename, identities)).toString('utf8');
  const { name, problem } = receivedFilename(raw);
  if (name === undefined) throw new ProtocolError(`the encrypted filename ${JSON.stringify(raw)} is refused: ${problem}`, { code: 'UNSAFE_FILENAME' });
  return { identities, filename: name };
}

/**
 * The tags a run looks up. Where the registry has the Referrers API (bundles and receipts are found
 * through it), only this inbox's range is listed, from the `since` / `listFrom` day on: the cost
 * follows my own mail, not the repository's. Elsewhere every tag is listed once, keeping this
 * inbox, the `bundle-` tags (and the `receipt-` tags when read receipts are looked for).
 */
async function inboxSnapshot(options: ReceiveOptions): Promise<{ snapshot: TagSnapshot; ranged: boolean }> {
  const repo = options.repository;
  const prefix = inboxPrefix(options.me);
  if (await repo.referrersApiSupported({ signal: options.signal })) {
    const starts = [options.since === undefined ? undefined : new Date(options.since.getTime() - SINCE_SKEW_MS), options.listFrom].filter(
      (d): d is Date => d !== undefined && !Number.isNaN(d.getTime()),
    );
    const start = starts.length === 0 ? undefined : new Date(Math.max(...starts.map((d) => d.getTime())));
    // Tags of that day are `<prefix><YYYYMMDD>-…`, all after `<prefix><YYYYMMDD>`.
    const snapshot = await TagSnapshot.loadRange(repo, prefix, {
      signal: options.signal,
      ...(start === undefined ? {} : { from: `${prefix}${utcDate8(start)}` }),
    });
    return { snapshot, ranged: true };
  }
  const prefixes = [prefix, TagPrefix.Bundle, ...(options.readReceipts === undefined ? [] : [TagPrefix.Receipt])];
  return { snapshot: await TagSnapshot.load(repo, { signal: options.signal, prefixes }), ranged: false };
}

/** The candidates no verified receipt of mine marks as read (all of them without readReceipts). */
async function withoutRead(candidates: Candidate[], options: ReceiveOptions, snapshot: TagSnapshot): Promise<Candidate[]> {
  const how = options.readReceipts;
  if (how === undefined) return candidates;
  const read = await mapLimit(
    candidates,
    options.concurrency ?? 8,
    (c) => readReceiptOf(options.repository, c.descriptor, options.me, how, { snapshot, signal: options.signal }),
    options.signal,
  );
  return candidates.filter((_, i) => read[i] === undefined);
}

/** The candidates of the first `max` distinct message ids (--max counts messages, not copies). */
function firstMessages(candidates: Candidate[], max: number): Candidate[] {
  const ids = new Set<string>();
  return candidates.filter((c) => {
    if (ids.has(c.info.messageId)) return true;
    if (ids.size >= max) return false;
    ids.add(c.info.messageId);
    return true;
  });
}

function asCommsError(e: unknown): CommsError {
  return e instanceof CommsError ? e : new CommsError(e instanceof Error ? e.message : String(e), { cause: e });
}
