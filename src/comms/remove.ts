/**
 * rm and gc: delete messages with what exists only because of them — the message manifest (and
 * with it its inbox tag), the receipts and signature bundles that refer to it (and the bundles of
 * those receipts), and their entries in the referrers tag-schema index — and nothing else: not a
 * reply (a message of its own), not an artifact that is not comms'. gc picks the expired messages.
 *
 * Order: referrers first, the message last, so an interrupted or refused run leaves the message
 * findable and a re-run finishes the job; a message whose referrers could not all be deleted is
 * kept. Blobs (chunks, configs) are left to the store: a registry's own garbage collection, or
 * OciLayout.removeUnreferencedBlobs for a folder.
 */
import type { Descriptor, ImageIndex } from '../oci/descriptor.ts';
import { digestOf, parseDigest } from '../oci/digest.ts';
import { MediaType } from '../oci/mediatypes.ts';
import type { Repository } from '../oci/target.ts';
import { ArtifactType, TagPrefix } from '../protocol/constants.ts';
import { isExpiredAt } from '../protocol/expiry.ts';
import { parseMessageManifest } from '../protocol/validate.ts';
import { CommsError, NotFoundError, ProtocolError, UsageError } from '../errors.ts';
import { checkAborted } from '../util/abort.ts';
import { findReferrers } from './discover.ts';
import { isVerdictOnArtifact } from './refusal.ts';
import { TagSnapshot } from './tag-snapshot.ts';

export type RemovedKind = 'message' | 'receipt' | 'bundle' | 'referrers-index';

export interface RemovalStep {
  kind: RemovedKind;
  digest: string;
  /** The message this deletion is for. */
  message: string;
  /** For a referrers-index step: the entries taken out (the index is deleted when none is left). */
  entries?: string[];
  /** Done (or, with dryRun, would be done). */
  deleted: boolean;
  /** Why it was not: the registry refused, or a referrer of the message could not be deleted. */
  error?: CommsError;
}

export interface RemoveOptions {
  repository: Repository;
  /** Print the plan, delete nothing. */
  dryRun?: boolean;
  signal?: AbortSignal;
  /** Called as each step is done (or refused). */
  onStep?: (step: RemovalStep) => void;
}

export interface RemoveResult {
  steps: RemovalStep[];
  /** Steps that failed. */
  failed: number;
}

/** Deletes the messages `digests` (sha256:…) with their receipts and bundles. */
export async function removeMessages(options: RemoveOptions & { digests: string[] }): Promise<RemoveResult> {
  if (options.digests.length === 0) throw new UsageError('name at least one message digest', { option: 'digests' });
  for (const d of options.digests) parseDigest(d);
  const snapshot = await TagSnapshot.load(options.repository, { signal: options.signal, prefixes: [TagPrefix.Receipt, TagPrefix.Bundle, 'sha256-'] });
  const steps: RemovalStep[] = [];
  for (const digest of new Set(options.digests)) {
    checkAborted(options.signal);
    const fetched = await options.repository.fetchManifest(digest, { signal: options.signal });
    // Only a comms message is removed: anything else under that digest is refused.
    try {
      parseMessageManifest(fetched.bytes);
    } catch (err) {
      if (!isVerdictOnArtifact(err)) throw err;
      throw new UsageError(`${digest} is not a comms message (${(err as Error).message}); nothing deleted`, { code: 'NOT_A_MESSAGE', cause: err });
    }
    steps.push(...(await removeOne(options, fetched.descriptor, snapshot)));
  }
  return { steps, failed: steps.filter((s) => s.error !== undefined).length };
}

export interface GcOptions extends RemoveOptions {
  now?: () => Date;
  /** Inbox tags whose manifests are looked at in parallel (default 8). */
  concurrency?: number;
}

/** Deletes every expired message (created_at + ttl_seconds more than 5 minutes ago) with its receipts and bundles. */
export async function gc(options: GcOptions): Promise<RemoveResult & { messages: string[] }> {
  const repo = options.repository;
  const snapshot = await TagSnapshot.load(repo, { signal: options.signal, prefixes: [TagPrefix.Inbox, TagPrefix.Receipt, TagPrefix.Bundle, 'sha256-'] });
  const now = (options.now ?? (() => new Date()))();
  const expired = new Map<string, Descriptor>();
  for (const tag of snapshot.withPrefix(TagPrefix.Inbox)) {
    checkAborted(options.signal);
    let fetched;
    try {
      fetched = await repo.fetchManifest(tag, { signal: options.signal });
    } catch (err) {
      if (err instanceof NotFoundError || err instanceof ProtocolError) continue; // gone, or not a manifest comms reads
      throw err;
    }
    let info;
    try {
      info = parseMessageManifest(fetched.bytes);
    } catch (err) {
      if (isVerdictOnArtifact(err)) continue; // not a comms message: never gc's to delete
      throw err;
    }
    if (isExpiredAt(info.expiresAt, now)) expired.set(fetched.descriptor.digest, fetched.descriptor);
  }
  const steps: RemovalStep[] = [];
  for (const desc of expired.values()) steps.push(...(await removeOne(options, desc, snapshot)));
  return { steps, failed: steps.filter((s) => s.error !== undefined).length, messages: [...expired.keys()] };
}

/** One message: its receipts' bundles, its receipts and bundles, the index entries, then the message. */
async function removeOne(options: RemoveOptions, message: Descriptor, snapshot: TagSnapshot): Promise<RemovalStep[]> {
  const repo = options.repository;
  const signal = options.signal;
  const steps: RemovalStep[] = [];
  const record = (s: RemovalStep) => {
    steps.push(s);
    options.onStep?.(s);
  };
  const referrers = (await findReferrers(repo, message, { snapshot, signal })).filter(
    (d) => d.artifactType === ArtifactType.Receipt || d.artifactType === ArtifactType.Bundle,
  );
  // A v1.0 receipt names the message in an annotation and may have no subject: findReferrers checks both.
  const receipts = referrers.filter((d) => d.artifactType === ArtifactType.Receipt);
  const receiptBundles: { receipt: Descriptor; bundles: Descriptor[] }[] = [];
  for (const r of receipts) {
    const bundles = (await findReferrers(repo, r, { artifactType: ArtifactType.Bundle, snapshot, signal })).filter(
      (d) => d.artifactType === ArtifactType.Bundle,
    );
    receiptBundles.push({ receipt: r, bundles });
  }
  const ordered: { kind: RemovedKind; desc: Descriptor }[] = [
    ...receiptBundles.flatMap((rb) => rb.bundles.map((desc) => ({ kind: 'bundle' as const, desc }))),
    ...receipts.map((desc) => ({ kind: 'receipt' as const, desc })),
    ...referrers.filter((d) => d.artifactType === ArtifactType.Bundle).map((desc) => ({ kind: 'bundle' as const, desc })),
  ];
  let failures = 0;
  for (const { kind, desc } of ordered) {
    const step: RemovalStep = { kind, digest: desc.digest, message: message.digest, deleted: false };
    const error = options.dryRun ? undefined : await deleteManifest(repo, desc, signal);
    if (error === undefined) step.deleted = true;
    else {
      step.error = error;
      failures++;
    }
    record(step);
  }
  // The tag-schema indexes of the message and of its receipts lose the entries deleted above.
  const gone = new Set(ordered.map((o) => o.desc.digest));
  for (const subject of [message, ...receipts]) {
    const tag = `${parseDigest(subject.digest).algorithm}-${parseDigest(subject.digest).hex}`;
    if (!snapshot.has(tag)) continue;
    const step = await pruneIndex(repo, tag, gone, message.digest, options.dryRun ?? false, signal);
    if (step === undefined) continue;
    if (step.error !== undefined) failures++;
    record(step);
  }
  const step: RemovalStep = { kind: 'message', digest: message.digest, message: message.digest, deleted: false };
  if (failures > 0) {
    step.error = new CommsError(`kept: ${failures} of its receipts, bundles or index entries could not be deleted (run again once they can)`, {
      code: 'DELETE_INCOMPLETE',
    });
  } else if (!options.dryRun) {
    const error = await deleteManifest(repo, message, signal);
    if (error !== undefined) step.error = error;
  }
  if (step.error === undefined) step.deleted = true;
  record(step);
  return steps;
}

/** Deletes a manifest; the registry's refusal is returned (a manifest already gone counts as deleted). */
async function deleteManifest(repo: Repository, desc: Descriptor, signal: AbortSignal | undefined): Promise<CommsError | undefined> {
  try {
    await repo.delete({ mediaType: desc.mediaType, digest: desc.digest, size: desc.size }, { signal });
    return undefined;
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    if (err instanceof CommsError && !(err.code === 'ABORTED')) return err;
    throw err;
  }
}

/** Takes `gone` out of the referrers index under `tag`; deletes the index when nothing else is left. */
async function pruneIndex(
  repo: Repository,
  tag: string,
  gone: Set<string>,
  message: string,
  dryRun: boolean,
  signal: AbortSignal | undefined,
): Promise<RemovalStep | undefined> {
  let fetched;
  try {
    fetched = await repo.fetchManifest(tag, { signal });
  } catch (err) {
    if (err instanceof NotFoundError || err instanceof ProtocolError) return undefined;
    throw err;
  }
  let index: ImageIndex;
  try {
    index = JSON.parse(new TextDecoder().decode(fetched.bytes)) as ImageIndex;
  } catch {
    return undefined;
  }
  if (index?.mediaType !== MediaType.ImageIndex || !Array.isArray(index.manifests)) return undefined;
  const entries = index.manifests.filter((d) => gone.has(d.digest)).map((d) => d.digest);
  const kept = index.manifests.filter((d) => !gone.has(d.digest));
  const step: RemovalStep = { kind: 'referrers-index', digest: fetched.descriptor.digest, message, entries, deleted: false };
  if (entries.length === 0 && kept.length > 0) return undefined;
  if (dryRun) {
    step.deleted = true;
    return step;
  }
  try {
    if (kept.length === 0) {
      const error = await deleteManifest(repo, fetched.descriptor, signal);
      if (error !== undefined) throw error;
    } else {
      const bytes = new TextEncoder().encode(JSON.stringify({ ...index, manifests: kept }));
      await repo.pushManifest({ mediaType: MediaType.ImageIndex, digest: digestOf(bytes), size: bytes.length }, bytes, tag, { signal });
    }
    step.deleted = true;
  } catch (err) {
    if (!(err instanceof CommsError) || err.code === 'ABORTED') throw err;
    step.error = err;
  }
  return step;
}
