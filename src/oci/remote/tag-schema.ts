/**
 * The referrers tag schema's write half, beside its read half (referrers.ts: the tag, and reading
 * an index safely; RemoteRepository.referrers falls back to it). For a registry without the
 * Referrers API the client maintains the image index under tag `<alg>-<hex>` of the subject: it
 * gains each new referrer's descriptor. That read-modify-write can race with another writer; how
 * a writer makes sure its entry (and every other tagged referrer's) survives is addToReferrersIndex.
 * Discovery also unions what the v1.0-style tags name, so an entry missing from the index is still
 * found.
 */
import { randomInt } from 'node:crypto';
import { AbortError, CommsError, NotFoundError, ProtocolError } from '../../errors.ts';
import { checkAborted, sleep } from '../../util/abort.ts';
import { referrerDescriptor, type Descriptor, type ImageIndex, type ImageManifest } from '../descriptor.ts';
import { digestOf } from '../digest.ts';
import { MediaType } from '../mediatypes.ts';
import { ManifestFormatError, readImageManifest } from '../manifest-json.ts';
import type { OperationOptions, ReferrerPushOptions, ReferrerPushResult, ReferrerTagPrefix, Repository } from '../target.ts';
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
    await addToReferrersIndex(repo, subject.digest, referrerEntry(descriptor, bytes), { ...options, ownTag: options.ownTag ?? tag });
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
  return manifestReferrerEntry(descriptor, JSON.parse(new TextDecoder().decode(bytes)) as ImageManifest);
}

function manifestReferrerEntry(descriptor: Descriptor, m: ImageManifest): Descriptor {
  const annotations = m.annotations !== undefined && Object.keys(m.annotations).length > 0 ? m.annotations : undefined;
  return referrerDescriptor(descriptor, { artifactType: m.artifactType ?? m.config?.mediaType, annotations });
}

/**
 * Adds `entry` to the tag-schema index of `subjectDigest`, and makes sure it is not lost to a
 * racing writer. The registry offers no conditional write, so the read-modify-write cannot be made
 * atomic; it is checked afterwards instead, in one of three ways:
 *
 * - The subject is not published yet (`subjectUnpublished`): nobody else knows its digest, so
 *   no index of it exists and nobody else writes one: one write, holding this entry, done. (Only
 *   a second push of the very same subject bytes could find one; the bundle that write replaces
 *   is still found through its own tag.)
 * - The referrer has its own tag (`ownTag`, already pushed) under one of `referrerTags`
 *   (receipts `receipt-<hex12>-…`, bundles `bundle-<hex12>-…`, replies `reply-<hex12>-…`): after
 *   writing, the writer lists those tags and reads the index again; a tagged referrer of this
 *   subject missing from it is resolved and merged in, and the write repeats. No wait on that
 *   path. Why nothing tagged is lost: take the last index write W of all; its writer lists the
 *   tags after W, and every such referrer's tag was pushed before its own writer's index write, so
 *   before W: the listing names them all. Had W lacked one, its writer would have written again,
 *   and W would not be the last. To avoid a HEAD per tag on every update, tags are resolved only
 *   when there are more of them than index entries of their artifactType, newest first, until that
 *   surplus is accounted for, at most MAX_TAG_RESOLVES per update (junk tags count against it and
 *   are otherwise ignored). A registry that will not list the tags (refused, endless, malformed)
 *   gets the read-back below instead.
 * - Any other referrer (a copy, pushed untagged): nothing names it but the index, so the writer
 *   reads the index back after a wait at least as long as its own read-modify-write took (a stale
 *   writer that read before our write needs about that long to push its copy), confirms once more
 *   after twice that, and re-applies its entry on a miss. Probabilistic: a late enough stale write
 *   can still drop it.
 *
 * A miss backs off with full jitter, growing with each miss, so a crowd of writers spreads out.
 */
export async function addToReferrersIndex(repo: Repository, subjectDigest: string, entry: Descriptor, options: ReferrerPushOptions = {}): Promise<void> {
  const tag = referrersTag(subjectDigest);
  if (options.subjectUnpublished === true) {
    await writeIndex(repo, tag, [entry], 1, options);
    return;
  }
  const ownTag = options.ownTag ?? '';
  const covering = (options.referrerTags ?? []).filter((p) => p.prefix.length > 0);
  if (covering.some((p) => ownTag.startsWith(p.prefix))) return addCheckedAgainstTags(repo, tag, subjectDigest, entry, ownTag, covering, options);
  return addWithReadBack(repo, tag, entry, options);
}

/** Reads the index, adds what of `entries` it lacks, and writes it back when anything was added. */
async function mergeAndWrite(repo: Repository, tag: string, entries: Descriptor[], attempt: number, options: ReferrerPushOptions): Promise<void> {
  const current = await readReferrersIndex(repo, tag, options);
  const present = new Set(current.manifests.map((d) => d.digest));
  const missing = entries.filter((d) => !present.has(d.digest));
  if (missing.length > 0) await writeIndex(repo, tag, [...current.manifests, ...missing], attempt, options);
}

async function writeIndex(repo: Repository, tag: string, manifests: Descriptor[], attempt: number, options: ReferrerPushOptions): Promise<void> {
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests };
  const bytes = new TextEncoder().encode(JSON.stringify(index));
  const desc: Descriptor = { mediaType: MediaType.ImageIndex, digest: digestOf(bytes), size: bytes.length };
  options.onIndexWrite?.(attempt);
  await repo.pushManifest(desc, bytes, tag, options);
}

/** The tag-checked update (see addToReferrersIndex). */
async function addCheckedAgainstTags(
  repo: Repository,
  tag: string,
  subjectDigest: string,
  entry: Descriptor,
  ownTag: string,
  covering: readonly ReferrerTagPrefix[],
  options: ReferrerPushOptions,
): Promise<void> {
  // What this writer puts in the index: its own entry, and the tagged referrers it found missing.
  const wanted = new Map<string, Descriptor>([[entry.digest, entry]]);
  // Tags resolved so far (tag → digest, null when gone), and digests that are not referrers of this subject.
  const resolved = new Map<string, string | null>([[ownTag, entry.digest]]);
  const junk = new Set<string>();
  const budget = { resolves: MAX_TAG_RESOLVES };
  await inRounds(repo, tag, entry, MIN_BACKOFF_MS, options, async (write) => {
    await write([...wanted.values()]);
    // Both after our write: the listing names every tagged referrer whose writer wrote before us.
    const tags = await listTagsWithPrefixes(repo, covering, options).catch((err: unknown) => {
      // A listing this registry will not give (refused, endless, malformed) cannot be retried
      // into shape: check the way untagged referrers are checked instead.
      if (err instanceof CommsError && !(err instanceof AbortError) && !isTransientRegistryError(err)) return undefined;
      throw err;
    });
    if (tags === undefined) {
      await addWithReadBack(repo, tag, entry, options);
      return true;
    }
    const after = await readReferrersIndex(repo, tag, options);
    return reconcile({ repo, subjectDigest, covering, tags, after, wanted, resolved, junk, budget, options });
  });
}

interface ReconcileInput {
  repo: Repository;
  subjectDigest: string;
  covering: readonly ReferrerTagPrefix[];
  tags: string[];
  after: ImageIndex;
  wanted: Map<string, Descriptor>;
  resolved: Map<string, string | null>;
  junk: Set<string>;
  budget: { resolves: number };
  options: OperationOptions;
}

/**
 * Whether `after` holds everything this writer wants in it and every tagged referrer the tags
 * reveal; the referrers found missing are added to `wanted` for the next write.
 */
async function reconcile(x: ReconcileInput): Promise<boolean> {
  const inIndex = new Set(x.after.manifests.map((d) => d.digest));
  let complete = [...x.wanted.keys()].every((d) => inIndex.has(d));
  for (const kind of x.covering) {
    const kindTags = x.tags.filter((t) => t.startsWith(kind.prefix));
    let surplus = kindTags.length - x.after.manifests.filter((d) => d.artifactType === kind.artifactType).length;
    // Newest first (the tags name their unix time): a referrer a racing writer dropped is a recent one.
    kindTags.sort().reverse();
    for (const t of kindTags) {
      if (surplus <= 0) break;
      let digest = x.resolved.get(t);
      if (digest === undefined) {
        if (x.budget.resolves <= 0) break;
        x.budget.resolves--;
        digest = await resolveTag(x.repo, t, x.options);
        x.resolved.set(t, digest);
      }
      if (digest !== null && inIndex.has(digest)) continue;
      surplus--;
      if (digest === null || x.junk.has(digest)) continue;
      if (!x.wanted.has(digest)) {
        const found = await referrerOf(x.repo, digest, x.subjectDigest, x.options);
        if (found === undefined) {
          x.junk.add(digest);
          continue;
        }
        x.wanted.set(digest, found);
      }
      complete = false;
    }
  }
  return complete;
}

/** The tags that start with one of the prefixes, in one listing that starts at the first of them. */
async function listTagsWithPrefixes(repo: Repository, covering: readonly ReferrerTagPrefix[], options: OperationOptions): Promise<string[]> {
  const prefixes = covering.map((p) => p.prefix).sort();
  const first = prefixes[0]!;
  const lastPrefix = prefixes.at(-1)!;
  const out: string[] = [];
  await repo.tags(
    (page) => {
      for (const t of page) {
        if (prefixes.some((p) => t.startsWith(p))) out.push(t);
        else if (t > lastPrefix) return false; // past every prefix: nothing of ours follows
      }
      return true;
    },
    { signal: options.signal, pageSize: 1000, last: first },
  );
  return out;
}

/** The digest a tag names now, or null when it is gone. */
async function resolveTag(repo: Repository, tag: string, options: OperationOptions): Promise<string | null> {
  try {
    return (await repo.resolve(tag, options)).digest;
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    throw err;
  }
}

/** The referrer descriptor of manifest `digest` when its `subject` is `subjectDigest`; undefined for anything else (junk). */
async function referrerOf(repo: Repository, digest: string, subjectDigest: string, options: OperationOptions): Promise<Descriptor | undefined> {
  let fetched;
  try {
    fetched = await repo.fetchManifest(digest, options);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
  let m: ImageManifest;
  try {
    m = readImageManifest(fetched.bytes);
  } catch (err) {
    if (err instanceof ManifestFormatError) return undefined;
    throw err;
  }
  if (m.subject?.digest !== subjectDigest) return undefined;
  return manifestReferrerEntry(fetched.descriptor, m);
}

/** The read-back update, for referrers no tag of theirs names (see addToReferrersIndex). */
async function addWithReadBack(repo: Repository, tag: string, entry: Descriptor, options: ReferrerPushOptions): Promise<void> {
  const has = (index: ImageIndex) => index.manifests.some((d) => d.digest === entry.digest);
  await inRounds(repo, tag, entry, MIN_SETTLE_MS, options, async (write, rmwMs) => {
    await write([entry]);
    // Read back once a racing writer that read before our write has had time to push its
    // copy; it replaces our index with one that lacks our entry, and the next round puts it back.
    await wait(jitter(rmwMs()), options);
    if (!has(await readReferrersIndex(repo, tag, options))) return false;
    // A single sighting can precede a late clobber (a chain of stale writers): confirm later.
    await wait(jitter(2 * rmwMs()), options);
    return has(await readReferrersIndex(repo, tag, options));
  });
}

/**
 * One round of an index update: it writes through `write` (which merges the given entries into
 * the index and times that read-modify-write) and says whether the entry is now safe. `rmwMs` is the
 * slowest read-modify-write seen so far: loopback registries take a few milliseconds, a busy
 * machine or a distant registry far longer.
 */
type Round = (write: (entries: Descriptor[]) => Promise<void>, rmwMs: () => number) => Promise<boolean>;

/**
 * Runs `round` until it reports the entry safe, at most `maxAttempts` times (default 16). A miss, or
 * a transient registry failure, backs off with full jitter sized by the slowest read-modify-write
 * seen (at least `minMs`); after the last attempt the update is REFERRERS_INDEX_CONTENDED.
 */
async function inRounds(repo: Repository, tag: string, entry: Descriptor, minMs: number, options: ReferrerPushOptions, round: Round): Promise<void> {
  const maxAttempts = options.maxAttempts ?? 16;
  let rmwMs = minMs;
  let lastTransient: unknown;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    checkAborted(options.signal);
    const write = async (entries: Descriptor[]) => {
      const started = Date.now();
      await mergeAndWrite(repo, tag, entries, attempt, options);
      rmwMs = Math.max(rmwMs, Date.now() - started);
    };
    try {
      if (await round(write, () => rmwMs)) return;
    } catch (err) {
      // docker-registry's filesystem store rewrites a tag's link file in place, so a read racing
      // another writer's tag push can get a 500; that is the same collision, so back off and retry.
      if (!isTransientRegistryError(err)) throw err;
      lastTransient = err;
    }
    if (attempt === maxAttempts) break;
    await backoff(rmwMs, attempt, options);
  }
  throw contended(entry, tag, maxAttempts, lastTransient);
}

function contended(entry: Descriptor, tag: string, maxAttempts: number, cause: unknown): CommsError {
  return new CommsError(`could not add ${entry.digest} to the referrers index ${tag} after ${maxAttempts} attempts (other writers kept replacing it)`, {
    code: 'REFERRERS_INDEX_CONTENDED',
    cause,
  });
}

/** The shortest read-back wait (referrers without a tag of their own). */
const MIN_SETTLE_MS = 50;
/** The smallest base of the back-off after a miss. */
const MIN_BACKOFF_MS = 20;
/** The ceiling of the back-off after a miss. */
const MAX_BACKOFF_MS = 5000;
/** The most tags one index update resolves (HEAD, and GET when missing from the index). */
export const MAX_TAG_RESOLVES = 64;

async function wait(ms: number, options: ReferrerPushOptions): Promise<void> {
  options.onBackoff?.(ms);
  await sleep(ms, options.signal);
}

/** After a miss: full jitter, growing with each miss, so a crowd spreads out. */
function backoff(rmwMs: number, attempt: number, options: ReferrerPushOptions): Promise<void> {
  return wait(randomInt(0, Math.min(MAX_BACKOFF_MS, rmwMs * 2 ** Math.min(attempt, 6)) + 1), options);
}

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
