/**
 * One way to push an artifact manifest, in the order SPEC §8 requires: the empty config blob, the
 * manifest by digest when it has a subject (so it is listed as a referrer of it), its signature
 * bundle, and only then its tag — so a reader that finds the tag never finds a signed artifact whose
 * bundle does not exist yet. An unsigned artifact has nothing to wait for: its manifest goes in
 * under its tag in one request. Layer blobs are the caller's, pushed before.
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
  // With a subject, the push by digest lists the artifact as a referrer before anyone can find it
  // by its tag. Without one, nothing needs it stored before its bundle (a referrer may arrive before
  // its subject): the tag push below stores it, after the bundle.
  const early = options.subject !== undefined || tag === undefined;
  const indexedBy = early ? await pushArtifactManifest(repo, manifest, rest) : undefined;
  const bundle = await pushBundle(repo, descriptor, bytes, signer, {
    signal: options.signal,
    now: options.now,
    configPresent: early || options.configPresent === true,
    onStep: options.onStep,
  });
  if (tag !== undefined)
    await runStep(options.onStep, 'tag', { digest: descriptor.digest, tag }, () => repo.pushManifest(descriptor, bytes, tag, { signal: options.signal }));
  return { indexedBy, bundle };
}
