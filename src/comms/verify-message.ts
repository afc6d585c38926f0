/**
 * Verifying a message (or receipt, or reply) before anything of it is used: find its signature
 * bundles (one lookup path for recv and verify alike), fetch each, and accept the first that
 * verifies under the trust policy. No bundle, or none that verifies, is a VerificationError (2).
 */
import type { Descriptor, ImageManifest } from '../oci/descriptor.ts';
import type { OperationOptions, Repository } from '../oci/target.ts';
import { ArtifactType } from '../protocol/constants.ts';
import { verifyMessageBundle, type TrustPolicy, type VerifiedSigner } from '../trust/verify.ts';
import { CommsError, NotFoundError, ProtocolError, VerificationError } from '../errors.ts';
import { findReferrers } from './discover.ts';
import type { TagSnapshot } from './tag-snapshot.ts';

/** Bundles are small JSON documents; anything larger is refused before it is read. */
const MAX_BUNDLE_BYTES = 1024 * 1024;

export interface VerifyMessageOptions extends OperationOptions {
  policy: TrustPolicy;
  /** The message's `dockercomms.sender`, checked against the verified identity when the policy asks. */
  sender?: string;
  snapshot?: TagSnapshot;
  source?: 'auto' | 'referrers' | 'tag';
}

export interface VerifiedMessage extends VerifiedSigner {
  bundleDigest: string;
}

export async function verifyMessage(
  repo: Repository,
  message: Descriptor,
  messageBytes: Uint8Array,
  options: VerifyMessageOptions,
): Promise<VerifiedMessage> {
  const bundles = await findReferrers(repo, message, {
    artifactType: ArtifactType.Bundle,
    snapshot: options.snapshot,
    source: options.source,
    signal: options.signal,
  });
  if (bundles.length === 0) {
    throw new VerificationError(`no signature bundle refers to ${message.digest} in ${repo.name}`, { code: 'BUNDLE_NOT_FOUND' });
  }
  const reasons: string[] = [];
  for (const b of bundles) {
    try {
      const bundleBytes = await fetchBundleBytes(repo, b, options);
      const verified = await verifyMessageBundle(bundleBytes, messageBytes, message.digest, options.policy, { sender: options.sender });
      return { ...verified, bundleDigest: b.digest };
    } catch (err) {
      // Verification and format problems, and a bundle whose manifest or blob is gone (anyone who
      // can push can leave one), move on to the next bundle; a transport or auth failure is not
      // evidence about the signature and ends the attempt.
      if (!(err instanceof VerificationError) && !(err instanceof NotFoundError) && !(err instanceof ProtocolError)) throw err;
      reasons.push(`${b.digest.slice(0, 19)}…: ${(err as Error).message}`);
    }
  }
  throw new VerificationError(`no signature bundle for ${message.digest} verifies: ${reasons.join('; ')}`, { code: 'VERIFICATION_FAILED' });
}

async function fetchBundleBytes(repo: Repository, bundle: Descriptor, options: OperationOptions): Promise<Uint8Array> {
  const { bytes } = await repo.fetchManifest(bundle.digest, options);
  let manifest: ImageManifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(bytes)) as ImageManifest;
  } catch (cause) {
    throw new VerificationError(`bundle manifest ${bundle.digest} is not JSON`, { cause, code: 'BUNDLE_INVALID' });
  }
  const layer = Array.isArray(manifest.layers) ? manifest.layers.find((l) => l.mediaType === ArtifactType.Bundle) : undefined;
  if (layer === undefined) throw new VerificationError(`bundle manifest ${bundle.digest} has no ${ArtifactType.Bundle} layer`, { code: 'BUNDLE_INVALID' });
  if (typeof layer.size !== 'number' || layer.size > MAX_BUNDLE_BYTES) {
    throw new VerificationError(`bundle layer of ${bundle.digest} is ${layer.size} bytes, over the ${MAX_BUNDLE_BYTES}-byte cap`, { code: 'BUNDLE_INVALID' });
  }
  const stream = await repo.fetch(layer, options);
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}
