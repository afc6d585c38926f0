/**
 * Discovery of the artifacts that refer to a message: the Referrers API (or the tag-schema index
 * the Repository falls back to), UNION the v1.0-style tags (`receipt-<hex12>-…`, `bundle-<hex12>-…`)
 * and, when asked for replies, their `reply-<hex12>-…` tags and the inbox tags of the people a
 * reply would be addressed to. The union is what
 * makes the tag-schema fallback lose nothing: an entry clobbered in the index by a racing writer
 * is still named by its own tag. Results are deduplicated by digest.
 */
import type { Descriptor, ImageManifest } from '../oci/descriptor.ts';
import { MediaType } from '../oci/mediatypes.ts';
import { ManifestFormatError, readImageManifest } from '../oci/manifest-json.ts';
import type { OperationOptions, Repository } from '../oci/target.ts';
import { Annotation, ArtifactType } from '../protocol/constants.ts';
import { bundleTagPrefix, inboxPrefix, receiptTagPrefix, replyTagPrefix } from '../protocol/tags.ts';
import { NotFoundError, ProtocolError } from '../errors.ts';
import { mapLimit } from '../util/pool.ts';
import { TagSnapshot } from './tag-snapshot.ts';

export interface FindReferrersOptions extends OperationOptions {
  artifactType?: string;
  /** A tag listing shared across lookups; taken once here when absent and tags are needed. */
  snapshot?: TagSnapshot;
  /**
   * Also look for replies through their own tags (`reply-<hex12>-…`): the union then holds every
   * reply comms wrote, whoever it is addressed to (SPEC §9.2).
   */
  replies?: boolean;
  /** Also look through these recipients' inbox tags for replies whose subject is the message (replies without a `reply-` tag). */
  replyRecipients?: string[];
  /**
   * Where to look: `auto` (default) unions the Referrers API / tag-schema index with the v1.0-style
   * tags; `referrers` uses the API or index only; `tag` uses the v1.0-style tags only.
   */
  source?: 'auto' | 'referrers' | 'tag';
  concurrency?: number;
}

export async function findReferrers(repo: Repository, subject: Descriptor, options: FindReferrersOptions = {}): Promise<Descriptor[]> {
  const found = new Map<string, Descriptor>();
  const source = options.source ?? 'auto';
  if (source !== 'tag') {
    // A 5xx on these reads (docker-registry's answer to a read racing a tag write) is retried by
    // the client's retry layer, like every idempotent request.
    await repo.referrers(
      subject,
      (page) => {
        for (const d of page) if (!found.has(d.digest)) found.set(d.digest, d);
      },
      { artifactType: options.artifactType, signal: options.signal },
    );
  }
  if (source === 'referrers') return [...found.values()];

  const wanted = (t: string) => options.artifactType === undefined || options.artifactType === t;
  const prefixes: string[] = [];
  if (wanted(ArtifactType.Receipt)) prefixes.push(receiptTagPrefix(subject.digest));
  if (wanted(ArtifactType.Bundle)) prefixes.push(bundleTagPrefix(subject.digest));
  if (wanted(ArtifactType.Message) && options.replies === true) prefixes.push(replyTagPrefix(subject.digest));
  if (wanted(ArtifactType.Message)) for (const r of options.replyRecipients ?? []) prefixes.push(inboxPrefix(r));
  if (prefixes.length === 0) return [...found.values()];

  const snapshot = options.snapshot ?? (await TagSnapshot.load(repo, { signal: options.signal, prefixes }));
  const candidates = prefixes.flatMap((p) => snapshot.withPrefix(p));
  const known = new Set(found.keys());
  const extra = await mapLimit(
    candidates,
    options.concurrency ?? 8,
    async (tag) => {
      let fetched;
      try {
        fetched = await repo.fetchManifest(tag, { signal: options.signal });
      } catch (err) {
        // A tag deleted between listing and fetching (TTL clean-up) is simply gone. Anyone who can
        // push can put junk under a `bundle-<hex12>-` tag (not JSON, over 4 MiB, corrupt): it refers
        // to nothing, and must not stop the genuine referrers from being found.
        if (err instanceof NotFoundError || err instanceof ProtocolError) return undefined;
        throw err;
      }
      if (known.has(fetched.descriptor.digest)) return undefined;
      const manifest = parseManifestLoose(fetched.bytes);
      if (manifest === undefined) return undefined;
      const refersToSubject =
        manifest.subject?.digest === subject.digest ||
        // v1.0 receipts carry no subject: they name the message in an annotation.
        (manifest.artifactType === ArtifactType.Receipt && manifest.annotations?.[Annotation.ReceiptFor] === subject.digest);
      if (!refersToSubject) return undefined;
      const artifactType = manifest.artifactType ?? manifest.config.mediaType;
      if (!wanted(artifactType)) return undefined;
      const d: Descriptor = {
        mediaType: fetched.descriptor.mediaType,
        digest: fetched.descriptor.digest,
        size: fetched.descriptor.size,
        artifactType,
      };
      if (manifest.annotations !== undefined) d.annotations = manifest.annotations;
      return d;
    },
    options.signal,
  );
  for (const d of extra) if (d !== undefined && !found.has(d.digest)) found.set(d.digest, d);
  return [...found.values()];
}

/**
 * Whose inboxes a reply to this manifest can land in: its sender's (the default recipient of a
 * reply) and its recipient's. Empty for a manifest that names neither (not a message).
 */
export function replyRecipientsOf(manifestBytes: Uint8Array): string[] {
  let annotations: Record<string, string> | undefined;
  try {
    annotations = readImageManifest(manifestBytes).annotations;
  } catch (err) {
    if (err instanceof ManifestFormatError) return [];
    throw err;
  }
  const people = [annotations?.[Annotation.Sender], annotations?.[Annotation.Recipient]];
  return [...new Set(people.filter((p): p is string => typeof p === 'string' && p !== ''))];
}

/** The manifest when it is an image manifest; undefined for anything else (not JSON included). */
function parseManifestLoose(bytes: Uint8Array): ImageManifest | undefined {
  let m: ImageManifest;
  try {
    m = readImageManifest(bytes);
  } catch (err) {
    if (err instanceof ManifestFormatError) return undefined;
    throw err;
  }
  if (m.mediaType !== undefined && m.mediaType !== MediaType.ImageManifest) return undefined;
  return m;
}
