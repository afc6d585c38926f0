/**
 * Verifying a message (or receipt, or reply) before anything of it is used: find its signature
 * bundles (one lookup path for recv and verify alike), fetch each, and accept the first that
 * verifies under the trust policy. No bundle, or none that verifies, is a VerificationError (2).
 *
 * Anyone who can push can add bundles that refer to a message, thousands of them. So at most
 * MAX_BUNDLES_TRIED candidates are fetched per message, in an order junk cannot easily jump:
 * first the v1.0-style `bundle-<hex12>-` tags, those whose time is closest to the message's own
 * `created_at` first (a sender signs when it sends), newest first when that is unknown; then, only
 * when none of those verifies, the referrers (Referrers API or tag-schema index), newest first.
 */
import type { Descriptor, ImageManifest } from '../oci/descriptor.ts';
import { ManifestFormatError, readImageManifest } from '../oci/manifest-json.ts';
import type { OperationOptions, Repository } from '../oci/target.ts';
import { Annotation, ArtifactType, MAX_BUNDLE_BYTES } from '../protocol/constants.ts';
import { bundleTagPrefix, parseArtifactTag } from '../protocol/tags.ts';
import { verifyMessageBundle, type TrustPolicy, type VerifiedSigner } from '../trust/verify.ts';
import { NotFoundError, ProtocolError, VerificationError } from '../errors.ts';
import { readCapped } from '../util/read-capped.ts';
import { TagSnapshot } from './tag-snapshot.ts';

/** Candidate bundles fetched per message (each costs about two requests). */
export const MAX_BUNDLES_TRIED = 8;

export interface VerifyMessageOptions extends OperationOptions {
  policy: TrustPolicy;
  /** The message's `dockercomms.sender`, checked against the verified identity when the policy asks. */
  sender?: string;
  snapshot?: TagSnapshot;
  /** Where to look: `auto` (tags, then referrers), `referrers` only, or `tag` only. */
  source?: 'auto' | 'referrers' | 'tag';
}

export interface VerifiedMessage extends VerifiedSigner {
  bundleDigest: string;
}

/** A bundle to try: by its v1.0 tag (its manifest still to be checked) or by a referrer descriptor. */
type Candidate = { tag: string } | { descriptor: Descriptor };

export async function verifyMessage(repo: Repository, message: Descriptor, messageBytes: Uint8Array, options: VerifyMessageOptions): Promise<VerifiedMessage> {
  const source = options.source ?? 'auto';
  const tried = new Set<string>();
  const reasons: string[] = [];
  let attempts = 0;
  let referring = 0;
  let listed = 0;

  const attempt = async (c: Candidate): Promise<VerifiedMessage | undefined> => {
    if ('descriptor' in c && tried.has(c.descriptor.digest)) return undefined;
    attempts++;
    const name = 'tag' in c ? c.tag : c.descriptor.digest;
    try {
      const fetched = await repo.fetchManifest(name, options);
      const digest = fetched.descriptor.digest;
      if (tried.has(digest)) return undefined;
      tried.add(digest);
      const manifest = parseManifest(fetched.bytes);
      // A tag only names a candidate: its manifest must say it is a bundle of this message.
      if ('tag' in c && (manifest?.subject?.digest !== message.digest || manifest.artifactType !== ArtifactType.Bundle)) return undefined;
      referring++;
      if (manifest === undefined) throw new VerificationError(`bundle manifest ${digest} is not an image manifest`, { code: 'BUNDLE_INVALID' });
      const bundleBytes = await fetchBundleBytes(repo, manifest, digest, options);
      const verified = await verifyMessageBundle(bundleBytes, messageBytes, message.digest, options.policy, { sender: options.sender });
      return { ...verified, bundleDigest: digest };
    } catch (err) {
      // Verification and format problems, and a bundle whose manifest or blob is gone (anyone who
      // can push can leave one), move on to the next bundle; a transport or auth failure is not
      // evidence about the signature and ends the attempt.
      if (!(err instanceof VerificationError) && !(err instanceof NotFoundError) && !(err instanceof ProtocolError)) throw err;
      if (reasons.length < MAX_BUNDLES_TRIED) reasons.push(`${name.slice(0, 19)}…: ${(err as Error).message}`);
      return undefined;
    }
  };

  if (source !== 'referrers') {
    const prefix = bundleTagPrefix(message.digest);
    // Without a shared listing, one ranged listing of this message's bundle tags (a registry that
    // honours `last` answers with those only).
    const snapshot = options.snapshot ?? (await TagSnapshot.loadRange(repo, prefix, { signal: options.signal }));
    const tags = orderBundleTags(snapshot.withPrefix(prefix), createdAtSeconds(messageBytes));
    listed += tags.length;
    for (const tag of tags) {
      if (attempts >= MAX_BUNDLES_TRIED) break;
      const v = await attempt({ tag });
      if (v !== undefined) return v;
    }
  }
  if (source !== 'tag' && attempts < MAX_BUNDLES_TRIED) {
    const referrers: Descriptor[] = [];
    await repo.referrers(message, (page) => void referrers.push(...page), { artifactType: ArtifactType.Bundle, signal: options.signal });
    listed += referrers.length;
    referring += referrers.length;
    // Newest first: a tag-schema index appends, so its last entries were added last.
    for (const descriptor of referrers.reverse()) {
      if (attempts >= MAX_BUNDLES_TRIED) break;
      const v = await attempt({ descriptor });
      if (v !== undefined) return v;
    }
  }
  if (referring === 0) {
    throw new VerificationError(`no signature bundle refers to ${message.digest} in ${repo.name}`, { code: 'BUNDLE_NOT_FOUND' });
  }
  const bound = attempts >= MAX_BUNDLES_TRIED ? ` (tried ${attempts} of ${listed} candidates: the limit per message is ${MAX_BUNDLES_TRIED})` : '';
  throw new VerificationError(`no signature bundle for ${message.digest} verifies${bound}: ${reasons.join('; ')}`, { code: 'VERIFICATION_FAILED' });
}

/**
 * `bundle-<hex12>-<unix seconds>-<rand6>` tags, closest in time to the message's creation first
 * (newest first among equals, and when the creation time is unknown); unparseable tags last.
 */
export function orderBundleTags(tags: string[], createdAt: number | undefined): string[] {
  const keyed = tags.map((tag) => ({ tag, at: parseArtifactTag(tag)?.unixSeconds }));
  return keyed
    .sort((a, b) => {
      if (a.at === undefined || b.at === undefined) return a.at === undefined ? (b.at === undefined ? 0 : 1) : -1;
      if (createdAt !== undefined) {
        const d = Math.abs(a.at - createdAt) - Math.abs(b.at - createdAt);
        if (d !== 0) return d;
      }
      return b.at - a.at;
    })
    .map((k) => k.tag);
}

/** The message's `dockercomms.created_at` in unix seconds, when it has a readable one. */
function createdAtSeconds(messageBytes: Uint8Array): number | undefined {
  const at = parseManifest(messageBytes)?.annotations?.[Annotation.CreatedAt];
  const ms = typeof at === 'string' ? Date.parse(at) : Number.NaN;
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

function parseManifest(bytes: Uint8Array): ImageManifest | undefined {
  try {
    return readImageManifest(bytes);
  } catch (err) {
    if (err instanceof ManifestFormatError) return undefined;
    throw err;
  }
}

async function fetchBundleBytes(repo: Repository, manifest: ImageManifest, digest: string, options: OperationOptions): Promise<Uint8Array> {
  const layer = Array.isArray(manifest.layers) ? manifest.layers.find((l) => l.mediaType === ArtifactType.Bundle) : undefined;
  if (layer === undefined) throw new VerificationError(`bundle manifest ${digest} has no ${ArtifactType.Bundle} layer`, { code: 'BUNDLE_INVALID' });
  if (typeof layer.size !== 'number' || layer.size > MAX_BUNDLE_BYTES) {
    throw new VerificationError(`bundle layer of ${digest} is ${layer.size} bytes, over the ${MAX_BUNDLE_BYTES}-byte cap`, { code: 'BUNDLE_INVALID' });
  }
  const bytes = await readCapped(await repo.fetch(layer, options), MAX_BUNDLE_BYTES);
  if (bytes === undefined)
    throw new VerificationError(`bundle layer of ${digest} holds more than the ${MAX_BUNDLE_BYTES}-byte cap`, { code: 'BUNDLE_INVALID' });
  return bytes;
}
