/**
 * One way to push an artifact manifest, in the order SPEC §8 requires: its signature bundle
 * before any tag or referrers index names it. A signed artifact is pushed as: the bundle (which
 * stores the empty config), then the artifact under its tag — listed as a referrer of its subject
 * by the same push, so its own tag exists before its tag-schema entry (SPEC §9.1). A signed
 * artifact without a tag is pushed by digest first, then its bundle. An unsigned artifact has
 * nothing to wait for: its manifest goes in under its tag in one request. Layer blobs are the
 * caller's, pushed before.
 */
import type { Descriptor } from '../oci/descriptor.ts';
import type { MessageSigner } from '../trust/signer.ts';
import { pushBundle, type PushedBundle } from './bundle.ts';
import { pushArtifactManifest, type IndexedBy, type PushManifestOptions } from './push-manifest.ts';
import type { Repository } from '../oci/target.ts';
import { runStep } from './steps.ts';

export interface PushArtifactOptions extends PushManifestOptions {
  /** Signs the manifest; the bundle is pushed before the tag. */
  signer?: MessageSigner | undefined;
  /** The time the bundle's tag names (default now). */
  now?: Date | undefined;
}

export interface PushedArtifact {
  indexedBy: IndexedBy;
  bundle: PushedBundle | undefined;
}

export async function pushArtifact(
  repo: Repository,
  manifest: { descriptor: Descriptor; bytes: Uint8Array },
  options: PushArtifactOptions = {},
): Promise<PushedArtifact> {
  const { signer, tag, ...rest } = options;
  if (signer === undefined) return { indexedBy: await pushArtifactManifest(repo, manifest, options), bundle: undefined };
  const { descriptor, bytes } = manifest;
  // Without a tag nothing else would store it, and a bundle needs nothing before it (a referrer
  // may arrive before its subject): so only an untagged artifact is pushed ahead of its bundle.
  const early = tag === undefined ? await pushArtifactManifest(repo, manifest, rest) : undefined;
  const bundle = await pushBundle(repo, descriptor, bytes, signer, {
    signal: options.signal,
    now: options.now,
    configPresent: tag === undefined || options.configPresent === true,
    onStep: options.onStep,
  });
  if (tag === undefined) return { indexedBy: early, bundle };
  if (options.subject !== undefined) return { indexedBy: await pushArtifactManifest(repo, manifest, { ...options, configPresent: true }), bundle };
  await runStep(options.onStep, 'tag', { digest: descriptor.digest, tag }, () => repo.pushManifest(descriptor, bytes, tag, { signal: options.signal }));
  return { indexedBy: undefined, bundle };
}
