/**
 * The referrers tag schema's write half, beside its read half (referrers.ts: the tag, and reading
 * an index safely; RemoteRepository.referrers falls back to it). For a registry without the
 * Referrers API the client maintains the image index under tag `<alg>-<hex>` of the subject: it
 * gains each new referrer's descriptor. That read-modify-write can race with another writer, so
 * after writing, the client reads the index back and re-applies its entry until it is present
 * (bounded). Discovery also unions what the v1.0-style tags name, so an entry clobbered in the
 * index is still found.
 */
import { randomInt } from 'node:crypto';
import { CommsError, NotFoundError, ProtocolError } from '../../errors.ts';
import { checkAborted, sleep } from '../../util/abort.ts';
import { referrerDescriptor, type Descriptor, type ImageIndex, type ImageManifest } from '../descriptor.ts';
import { digestOf } from '../digest.ts';
import { MediaType } from '../mediatypes.ts';
import type { OperationOptions, ReferrerPushOptions, ReferrerPushResult, Repository } from '../target.ts';
import { referrersTag } from './referrers.ts';

/**
 * Pushes a manifest that has a `subject`, under `tag` when given, and makes sure it is listed as
 * a referrer of that subject: by the registry when it answers with `OCI-Subject`, else by adding it
 * to the subject's tag-schema index. What RemoteRepository.pushReferrer does.
 */
export async function pushWithTagSchema(
  repo: Repository,
  descriptor: Descriptor,
  bytes: Uint8Array,
  subject: Descriptor,
  tag: string | undefined,
  options: ReferrerPushOptions = {},
): Promise<ReferrerPushResult> {
  const pushed = await repo.pushManifest(descriptor, bytes, tag, options);
  if (pushed.ociSubject !== undefined) {
    if (pushed.ociSubject !== subject.digest) {
      throw new ProtocolError(`registry indexed the referrer under subject ${pushed.ociSubject}, expected ${subject.digest}`, { code: 'OCI_SUBJECT_MISMATCH' });
    }
    return { ...pushed, indexedBy: 'registry' };
  }
  try {
    await addToReferrersIndex(repo, subject.digest, referrerEntry(descriptor, bytes), options);
  } catch (err) {
    // The artifact and its own tag are stored, and discovery finds it through that tag (SPEC §9.3):
    // failing here would make a caller push it again. Report that only the tag records it.
    if (err instanceof CommsError && err.code === 'REFERRERS_INDEX_CONTENDED') return { ...pushed, indexedBy: 'tag-only' };
    throw err;
  }
  return { ...pushed, indexedBy: 'tag-schema' };
}

/**
 * The descriptor a referrers list holds for a manifest: mediaType, digest, size, the manifest's
 * artifactType (else its config media type) and its annotations, as the Referrers API returns.
 */
export function referrerEntry(descriptor: Descriptor, bytes: Uint8Array): Descriptor {
  const m = JSON.parse(new TextDecoder().decode(bytes)) as ImageManifest;
  const annotations = m.annotations !== undefined && Object.keys(m.annotations).length > 0 ? m.annotations : undefined;
  return referrerDescriptor(descriptor, { artifactType: m.artifactType ?? m.config?.mediaType, annotations });
}

/**
 * Adds `entry` to the tag-schema index of `subjectDigest`, re-applying until it sticks.
 *
 * Without a conditional write there is no way to make the read-modify-write atomic, so the
 * waits are sized by how long a read-modify-write takes here (measured, not guessed): a writer
 * that read the index before our write needs about that long to push its (stale) copy, so the
 * read-back waits at least that long, and the final confirmation twice that. A miss backs off
 * with full jitter so that a crowd of writers spreads out instead of colliding again.
 * A subject that is not published yet has no other writers: its index is read and written once.
 */
export async function addToReferrersIndex(repo: Repository, subjectDigest: string, entry: Descriptor, options: ReferrerPushOptions = {}): Promise<void> {
  const tag = referrersTag(subjectDigest);
  const maxAttempts = options.maxAttempts ?? 16;
  const has = (index: ImageIndex) => index.manifests.some((d) => d.digest === entry.digest);
  // The slowest read-modify-write seen so far; loopback registries take a few milliseconds, a
  // busy machine or a distant registry far longer.
  let rmwMs = MIN_SETTLE_MS;
  let lastTransient: unknown;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    checkAborted(options.signal);
    try {
      const started = Date.now();
      const current = await readReferrersIndex(repo, tag, options);
      if (!has(current)) {
        const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [...current.manifests, entry] };
        const bytes = new TextEncoder().encode(JSON.stringify(index));
        const desc: Descriptor = { mediaType: MediaType.ImageIndex, digest: digestOf(bytes), size: bytes.length };
        options.onIndexWrite?.(attempt);
        await repo.pushManifest(desc, bytes, tag, options);
      }
      // Nobody else knows the subject yet: nothing can replace our write, so nothing to wait for.
      if (options.subjectUnpublished === true) return;
      rmwMs = Math.max(rmwMs, Date.now() - started);
      // Read back once a racing writer that read before our write has had time to push its
      // copy; it replaces our index with one that lacks our entry, and the next round puts it back.
      await sleep(jitter(rmwMs), options.signal);
      if (has(await readReferrersIndex(repo, tag, options))) {
        // A single sighting can precede a late clobber (a chain of stale writers): confirm later.
        await sleep(jitter(2 * rmwMs), options.signal);
        if (has(await readReferrersIndex(repo, tag, options))) return;
      }
    } catch (err) {
      // docker-registry's filesystem store rewrites a tag's link file in place, so a read racing
      // another writer's tag push can get a 500; that is the same collision, so back off and retry.
      if (!isTransientRegistryError(err)) throw err;
      lastTransient = err;
    }
    if (attempt === maxAttempts) break;
    // Missed: back off with full jitter, growing with each miss, so a crowd spreads out.
    await sleep(randomInt(0, Math.min(MAX_BACKOFF_MS, rmwMs * 2 ** Math.min(attempt, 6)) + 1), options.signal);
  }
  throw new CommsError(`could not add ${entry.digest} to the referrers index ${tag} after ${maxAttempts} attempts (other writers kept replacing it)`, {
    code: 'REFERRERS_INDEX_CONTENDED',
    cause: lastTransient,
  });
}

/** The shortest read-back wait. */
const MIN_SETTLE_MS = 50;
/** The ceiling of the back-off after a miss. */
const MAX_BACKOFF_MS = 5000;

/** Uniform in [ms, 2·ms]: never shorter than the measured window, and desynchronised. */
function jitter(ms: number): number {
  return ms + randomInt(0, Math.max(1, Math.round(ms)) + 1);
}

/** A registry-side failure (HTTP 5xx) that another try may not meet. */
function isTransientRegistryError(err: unknown): boolean {
  return err instanceof CommsError && err.status !== undefined && err.status >= 500 && err.status <= 599;
}

/** Reads the tag-schema index (an absent tag is an empty index). */
export async function readReferrersIndex(repo: Repository, tag: string, options: OperationOptions = {}): Promise<ImageIndex> {
  let fetched;
  try {
    fetched = await repo.fetchManifest(tag, options);
  } catch (err) {
    if (err instanceof NotFoundError) return { schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [] };
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(fetched.bytes));
  } catch (cause) {
    throw new ProtocolError(`referrers index ${tag} is not JSON`, { cause, code: 'REFERRERS_INDEX_INVALID' });
  }
  const manifests = (parsed as { manifests?: unknown }).manifests;
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray(manifests)) {
    throw new ProtocolError(`referrers index ${tag} is not an image index`, { code: 'REFERRERS_INDEX_INVALID' });
  }
  return { schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: manifests.filter(isDescriptorLike) };
}

function isDescriptorLike(d: unknown): d is Descriptor {
  const x = d as Descriptor;
  return typeof x === 'object' && x !== null && typeof x.digest === 'string' && typeof x.mediaType === 'string' && typeof x.size === 'number';
}
