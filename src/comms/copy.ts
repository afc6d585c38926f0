/**
 * copy: manifests and their blobs from one Target to another (registry ↔ registry, registry ↔
 * oci: folder), byte for byte. A manifest is pushed with the exact bytes the source served, so
 * its digest is the same at the destination; nothing is ever re-serialised.
 *
 * One message travels with its signature bundle and receipts (and, with `recursive`, its replies
 * and theirs); `all` copies every tagged manifest of a mailbox with its referrers. The order of
 * writes is send's: a manifest by digest, then what refers to it, then its tags, so a watcher at
 * the destination never sees a message before its bundle. Blobs the destination has are skipped
 * (a re-run finishes an interrupted copy); between two repositories of one registry they are
 * mounted instead of sent. Every loop is bounded: manifests copied, graph depth, and each
 * manifest's size (MAX_MANIFEST_BYTES, refused by the Repository).
 */
import { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.ts';
import { isDigest } from '../oci/digest.ts';
import { isManifestMediaType } from '../oci/mediatypes.ts';
import { RemoteRepository } from '../oci/remote/repository.ts';
import type { OperationOptions, ReferrerPushResult, Repository } from '../oci/target.ts';
import { Annotation, ArtifactType } from '../protocol/constants.ts';
import { bundleTagPrefix, id8, inboxPrefix, receiptTagPrefix, replyTagPrefix } from '../protocol/tags.ts';
import { DigestMismatchError, NotFoundError, ProtocolError, UsageError } from '../errors.ts';
import { checkAborted } from '../util/abort.ts';
import { forEachLimit, mapLimit } from '../util/pool.ts';
import { findReferrers, replyRecipientsOf } from './discover.ts';
import { report, runStep, type OnStep } from './steps.ts';
import { AUDIT_SCHEMA, clientInfo, prepareAuditDir, writeAuditReceipt, type AuditReceipt } from './audit.ts';
import { TagSnapshot } from './tag-snapshot.ts';

/** Manifests one copy may write; a source that leads further is refused (exit 4). */
export const DEFAULT_MAX_MANIFESTS = 10_000;
/** How deep referrers of referrers (and index children) may go. */
export const MAX_COPY_DEPTH = 32;

export interface CopyProgress {
  manifests: number;
  blobsCopied: number;
  blobsSkipped: number;
  blobsMounted: number;
  /** Blob bytes sent to the destination so far. */
  bytesCopied: number;
}

export interface CopyOptions extends OperationOptions {
  source: Repository;
  destination: Repository;
  /** A tag or digest in the source (one message or artifact); omit with `all`. */
  reference?: string;
  /** Tag the copied root with this at the destination (besides the tags it carries from the source). */
  tag?: string;
  /** Copy every tagged manifest of the source, with its referrers, under the same tags. */
  all?: boolean;
  /** Also copy replies (messages whose subject is a copied message), and theirs. */
  recursive?: boolean;
  /**
   * The digest the root must have: the copy is refused before anything is pushed when the source
   * serves another, and fails when the destination then serves another.
   */
  expectedDigest?: string;
  /** Blobs copied at once (default 4). */
  concurrency?: number;
  /** Manifests a copy may write (default DEFAULT_MAX_MANIFESTS). */
  maxManifests?: number;
  onProgress?: (p: CopyProgress) => void;
  onStep?: OnStep;
  /** Write an audit receipt (a JSON file) for this copy into this folder (see audit.ts). */
  auditDir?: string;
}

export interface CopiedManifest {
  digest: string;
  mediaType: string;
  size: number;
  artifactType?: string;
  /** Tags pointed at it at the destination. */
  tags: string[];
  /** For a manifest with a subject: how the destination finds it as a referrer. */
  indexedBy?: ReferrerPushResult['indexedBy'];
}

export interface CopyResult {
  source: string;
  destination: string;
  /** The root's digest (one-message copies). */
  digest?: string;
  manifests: CopiedManifest[];
  blobsCopied: number;
  blobsSkipped: number;
  blobsMounted: number;
  bytesCopied: number;
  /** Referrers the source listed that do not point at the manifest they were listed for (not copied). */
  referrersIgnored: number;
}

interface ParsedManifest {
  artifactType?: string;
  subject?: Descriptor;
  blobs: Descriptor[];
  children: Descriptor[];
  annotations: Record<string, string>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function descriptorField(v: unknown, where: string): Descriptor {
  if (
    !isObject(v) ||
    typeof v['mediaType'] !== 'string' ||
    typeof v['digest'] !== 'string' ||
    !isDigest(v['digest']) ||
    !Number.isSafeInteger(v['size']) ||
    (v['size'] as number) < 0
  ) {
    throw new ProtocolError(`${where} is not a valid descriptor`, { code: 'MANIFEST_INVALID' });
  }
  return { mediaType: v['mediaType'], digest: v['digest'], size: v['size'] as number };
}

/** The references a manifest holds (blobs, index children, subject), checked before any is followed. */
export function parseForCopy(bytes: Uint8Array, digest: string): ParsedManifest {
  let m: unknown;
  try {
    m = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new ProtocolError(`manifest ${digest} is not JSON`, { code: 'MANIFEST_INVALID', cause });
  }
  if (!isObject(m)) throw new ProtocolError(`manifest ${digest} is not a JSON object`, { code: 'MANIFEST_INVALID' });
  const out: ParsedManifest = { blobs: [], children: [], annotations: {} };
  if (typeof m['artifactType'] === 'string') out.artifactType = m['artifactType'];
  if (m['subject'] !== undefined) out.subject = descriptorField(m['subject'], `manifest ${digest}: subject`);
  if (isObject(m['annotations'])) for (const [k, v] of Object.entries(m['annotations'])) if (typeof v === 'string') out.annotations[k] = v;
  if (Array.isArray(m['manifests'])) {
    out.children = m['manifests'].map((d, i) => descriptorField(d, `manifest ${digest}: manifests[${i}]`));
    for (const c of out.children) {
      if (!isManifestMediaType(c.mediaType))
        throw new ProtocolError(`manifest ${digest}: index entry ${c.digest} is not a manifest (${c.mediaType})`, { code: 'MANIFEST_INVALID' });
    }
  } else {
    if (m['config'] === undefined || !Array.isArray(m['layers']))
      throw new ProtocolError(`manifest ${digest} has neither config and layers nor manifests`, { code: 'MANIFEST_INVALID' });
    const config = descriptorField(m['config'], `manifest ${digest}: config`);
    out.artifactType ??= config.mediaType;
    const blobs = [config, ...m['layers'].map((d, i) => descriptorField(d, `manifest ${digest}: layers[${i}]`))];
    // A blob listed twice is copied once (two concurrent uploads of one digest gain nothing).
    out.blobs = [...new Map(blobs.map((b) => [b.digest, b])).values()];
  }
  return out;
}

/** `<alg>-<hex>`: a referrers tag-schema index, rebuilt at the destination rather than copied. */
const REFERRERS_TAG_RE = /^[a-z0-9]{1,32}-[a-f0-9]{32,128}$/;

export async function copy(options: CopyOptions): Promise<CopyResult> {
  const startedAt = new Date();
  const result = await copyGraph(options);
  if (options.auditDir !== undefined) {
    const finishedAt = new Date();
    const root = result.manifests.find((m) => m.digest === result.digest);
    const receipt: AuditReceipt = {
      schema: AUDIT_SCHEMA,
      operation: 'copy',
      repository: result.destination,
      source: result.source,
      sizes: { manifests: result.manifests.length, blobBytes: result.bytesCopied },
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime(),
      signer: null,
      related: result.manifests.map((m) => m.digest).filter((d) => d !== result.digest),
      client: clientInfo(),
    };
    if (result.digest !== undefined) {
      receipt.digest = result.digest;
      receipt.reference = `${result.destination}@${result.digest}`;
    }
    if (root !== undefined) {
      receipt.mediaType = root.mediaType;
      if (root.artifactType !== undefined) receipt.artifactType = root.artifactType;
      if (root.tags[0] !== undefined) receipt.tag = root.tags[0];
      receipt.sizes.manifest = root.size;
    }
    await writeAuditReceipt(options.auditDir, receipt, options.onStep);
  }
  return result;
}

async function copyGraph(options: CopyOptions): Promise<CopyResult> {
  const { source: src, destination: dst, signal, onStep } = options;
  // A bad audit folder is refused before anything is pushed.
  if (options.auditDir !== undefined) await prepareAuditDir(options.auditDir);
  const all = options.all ?? false;
  if (all && (options.reference !== undefined || options.tag !== undefined || options.expectedDigest !== undefined)) {
    throw new UsageError('all copies a whole mailbox: it takes no source tag or digest, destination tag, or expectedDigest', { option: 'all' });
  }
  if (!all && (options.reference === undefined || options.reference === '')) {
    throw new UsageError('copy needs a tag or digest in the source (or all, for every tagged manifest)');
  }
  if (options.expectedDigest !== undefined && !isDigest(options.expectedDigest)) {
    throw new UsageError(`expectedDigest must be a digest (sha256:<64 hex>), got ${JSON.stringify(options.expectedDigest)}`, { option: 'expectedDigest' });
  }
  const maxManifests = options.maxManifests ?? DEFAULT_MAX_MANIFESTS;
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError(`concurrency must be a positive integer, got ${concurrency}`);
  // One registry, two repositories: the destination can mount blobs instead of receiving them.
  const mountFrom =
    src instanceof RemoteRepository &&
    dst instanceof RemoteRepository &&
    src.reference.registry === dst.reference.registry &&
    src.reference.repository !== dst.reference.repository
      ? src.reference.repository
      : undefined;

  const result: CopyResult = {
    source: src.name,
    destination: dst.name,
    manifests: [],
    blobsCopied: 0,
    blobsSkipped: 0,
    blobsMounted: 0,
    bytesCopied: 0,
    referrersIgnored: 0,
  };
  const progress = (): void => {
    options.onProgress?.({
      manifests: result.manifests.length,
      blobsCopied: result.blobsCopied,
      blobsSkipped: result.blobsSkipped,
      blobsMounted: result.blobsMounted,
      bytesCopied: result.bytesCopied,
    });
  };
  const visited = new Set<string>();
  let snapshot: TagSnapshot | undefined;
  const tagsOfSource = async (): Promise<TagSnapshot> => (snapshot ??= await TagSnapshot.load(src, { signal }));
  /** --all: digest → the source tags that point at it. */
  let tagMap: Map<string, string[]> | undefined;

  const copyBlob = async (blob: Descriptor): Promise<void> => {
    if (await dst.exists(blob, { signal })) {
      result.blobsSkipped++;
      return;
    }
    // Opened only when read: a mount that succeeds never starts the download.
    const lazy = Readable.from(
      (async function* () {
        yield* await src.fetch(blob, { signal });
      })(),
    );
    let sent = 0;
    const pushed = await dst.push(blob, lazy, {
      signal,
      ...(mountFrom === undefined ? {} : { mountFrom }),
      onProgress: (n) => {
        result.bytesCopied += n - sent;
        sent = n;
        progress();
      },
    });
    if (pushed.skipped) result.blobsMounted++;
    else result.blobsCopied++;
    progress();
  };

  /** Tags in the source that name this manifest: v1.0-style inbox, receipt and bundle tags. */
  const carriedTags = async (digest: string, parsed: ParsedManifest): Promise<string[]> => {
    if (tagMap !== undefined) return tagMap.get(digest) ?? [];
    const candidates: string[] = [];
    const snap = await tagsOfSource();
    if (parsed.artifactType === ArtifactType.Message) {
      const recipient = parsed.annotations[Annotation.Recipient];
      const messageId = parsed.annotations[Annotation.MessageId];
      if (recipient !== undefined && messageId !== undefined) {
        const suffix = `-${id8(messageId)}`;
        candidates.push(...snap.withPrefix(inboxPrefix(recipient)).filter((t) => t.endsWith(suffix)));
      }
    }
    const about = parsed.subject?.digest ?? parsed.annotations[Annotation.ReceiptFor];
    if (about !== undefined && isDigest(about)) {
      if (parsed.artifactType === ArtifactType.Receipt) candidates.push(...snap.withPrefix(receiptTagPrefix(about)));
      if (parsed.artifactType === ArtifactType.Bundle) candidates.push(...snap.withPrefix(bundleTagPrefix(about)));
      // A reply: its `reply-<hex12>-…` tag names the message it answers.
      if (parsed.artifactType === ArtifactType.Message && parsed.subject !== undefined) candidates.push(...snap.withPrefix(replyTagPrefix(about)));
    }
    const resolved = await mapLimit(
      candidates,
      concurrency,
      async (t) => {
        try {
          return (await src.resolve(t, { signal })).digest === digest ? t : undefined;
        } catch (err) {
          if (err instanceof NotFoundError) return undefined;
          throw err;
        }
      },
      signal,
    );
    return resolved.filter((t): t is string => t !== undefined);
  };

  /**
   * Copies one manifest (by digest) and everything under it, then its referrers, then its tags.
   * `referrerOf`: the manifest it was listed as a referrer of; one that does not point there is
   * ignored (a source can list anything as a referrer). Returns false when ignored.
   */
  const copyManifest = async (digest: string, depth: number, rootTags: string[], referrerOf?: string): Promise<boolean> => {
    checkAborted(signal);
    if (visited.has(digest)) return true;
    if (depth > MAX_COPY_DEPTH)
      throw new ProtocolError(`copy: referrers and index entries nest deeper than ${MAX_COPY_DEPTH} levels below the root`, { code: 'COPY_TOO_DEEP' });
    if (visited.size >= maxManifests)
      throw new ProtocolError(`copy: the source leads to more than ${maxManifests} manifests`, { code: 'COPY_TOO_MANY_MANIFESTS' });
    const fetched = await runStep(onStep, 'fetch-manifest', { digest }, () => src.fetchManifest(digest, { signal }));
    const desc = fetched.descriptor;
    if (!isManifestMediaType(desc.mediaType)) {
      throw new ProtocolError(`manifest ${digest} has media type ${JSON.stringify(desc.mediaType)}, not a manifest's`, { code: 'MANIFEST_INVALID' });
    }
    const parsed = parseForCopy(fetched.bytes, digest);
    if (referrerOf !== undefined) {
      const pointsAt = parsed.subject?.digest ?? (parsed.artifactType === ArtifactType.Receipt ? parsed.annotations[Annotation.ReceiptFor] : undefined);
      if (pointsAt !== referrerOf) {
        result.referrersIgnored++;
        return false;
      }
    }
    visited.add(digest);

    for (const child of parsed.children) await copyManifest(child.digest, depth + 1, []);
    if (parsed.blobs.length > 0) {
      await runStep(onStep, 'upload', { digest }, () => forEachLimit(parsed.blobs, concurrency, copyBlob, signal));
    }
    const copied: CopiedManifest = { digest, mediaType: desc.mediaType, size: desc.size, tags: [] };
    if (parsed.artifactType !== undefined) copied.artifactType = parsed.artifactType;
    if (parsed.subject !== undefined) {
      const subject = parsed.subject;
      const pushed = await runStep(onStep, 'push-manifest', { digest }, () =>
        runStep(onStep, 'index', { digest }, () => dst.pushReferrer(desc, fetched.bytes, subject, undefined, { signal })),
      );
      copied.indexedBy = pushed.indexedBy;
    } else {
      await runStep(onStep, 'push-manifest', { digest }, () => dst.pushManifest(desc, fetched.bytes, undefined, { signal }));
    }
    result.manifests.push(copied);
    progress();

    // What refers to it: bundles and receipts always (they vouch for it); replies when recursive.
    if (all || depth === 0 || referrerOf !== undefined) {
      const recipients = options.recursive ? replyRecipientsOf(fetched.bytes) : [];
      const referrers = await findReferrers(src, desc, {
        signal,
        snapshot: await tagsOfSource(),
        replies: options.recursive === true,
        replyRecipients: recipients,
        concurrency,
      });
      for (const r of referrers) {
        if (r.artifactType === ArtifactType.Message && !options.recursive) continue;
        await copyManifest(r.digest, depth + 1, [], digest);
      }
    }

    const tags = [...new Set([...rootTags, ...(await carriedTags(digest, parsed))])];
    for (const t of tags) {
      await runStep(onStep, 'tag', { digest, tag: t }, () => dst.pushManifest(desc, fetched.bytes, t, { signal }));
      copied.tags.push(t);
    }
    return true;
  };

  if (all) {
    const tags = (await tagsOfSource()).withPrefix('').filter((t) => !REFERRERS_TAG_RE.test(t));
    if (tags.length > maxManifests)
      throw new ProtocolError(`copy of all tags: the source has ${tags.length} tags, more than the ${maxManifests} manifests allowed`, {
        code: 'COPY_TOO_MANY_MANIFESTS',
      });
    tagMap = new Map();
    const resolved = await mapLimit(
      tags,
      concurrency,
      async (t) => {
        try {
          return [t, (await src.resolve(t, { signal })).digest] as const;
        } catch (err) {
          // A tag removed between the listing and now (TTL clean-up) is simply gone.
          if (err instanceof NotFoundError) return undefined;
          throw err;
        }
      },
      signal,
    );
    for (const entry of resolved) {
      if (entry === undefined) continue;
      const [t, d] = entry;
      tagMap.set(d, [...(tagMap.get(d) ?? []), t]);
    }
    for (const d of tagMap.keys()) await copyManifest(d, 0, []);
    return result;
  }

  // One root: its digest is checked before anything is pushed.
  const reference = options.reference!;
  const root = await src.fetchManifest(reference, { signal });
  if (options.expectedDigest !== undefined && root.descriptor.digest !== options.expectedDigest) {
    throw new DigestMismatchError(
      `${src.name} serves ${root.descriptor.digest} for ${reference}, not the expected ${options.expectedDigest}: nothing was copied`,
      {
        code: 'SOURCE_DIGEST_MISMATCH',
      },
    );
  }
  const rootTags: string[] = [];
  if (options.tag !== undefined) rootTags.push(options.tag);
  else if (!isDigest(reference)) rootTags.push(reference);
  await copyManifest(root.descriptor.digest, 0, rootTags);
  result.digest = root.descriptor.digest;

  // What the destination now serves under the root's name must be what was copied.
  const served = rootTags[0] ?? root.descriptor.digest;
  report(onStep, 'fetch-manifest', 'started', { tag: served });
  const check = await dst.resolve(served, { signal });
  report(onStep, 'fetch-manifest', 'done', { tag: served });
  const want = options.expectedDigest ?? root.descriptor.digest;
  if (check.digest !== want) {
    throw new DigestMismatchError(`${dst.name} serves ${check.digest} for ${served} after the copy, not ${want}`, { code: 'DESTINATION_DIGEST_MISMATCH' });
  }
  return result;
}
