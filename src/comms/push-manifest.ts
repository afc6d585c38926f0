/**
 * Pushes an artifact manifest that waits for nothing (unsigned): the empty config unless already
 * stored, then the manifest under its tag in one request, listed as a referrer of its subject.
 * The signed path, where the tag waits for the bundle, is push-artifact.ts.
 */
import type { Descriptor } from '../oci/descriptor.ts';
import type { OperationOptions, ReferrerPushResult, ReferrerTagPrefix, Repository } from '../oci/target.ts';
import { ArtifactType } from '../protocol/constants.ts';
import { bundleTagPrefix, receiptTagPrefix, replyTagPrefix } from '../protocol/tags.ts';
import { pushEmptyConfig } from './empty-config.ts';
import { runStep, type OnStep } from './steps.ts';

export interface PushManifestOptions extends OperationOptions {
  /** The manifest this one points at: it is listed as a referrer of it. */
  subject?: Descriptor | undefined;
  /** The tag it is found by (an inbox, receipt or bundle tag). */
  tag?: string | undefined;
  /**
   * A reply's second tag, naming its subject (`reply-<hex12>-…`, SPEC §5): pushed before the index
   * update, which is then checked against such tags instead of read back after waits (SPEC §9.1).
   */
  replyTag?: string | undefined;
  /** The empty config is already stored (pushed earlier in the same operation). */
  configPresent?: boolean;
  /** The subject is not published yet: its tag-schema index has no other writers (ReferrerPushOptions). */
  subjectUnpublished?: boolean;
  /** Called once per tag-schema write. */
  onIndexWrite?: ((attempt: number) => void) | undefined;
  /** Reports the push-manifest and index steps. */
  onStep?: OnStep | undefined;
}

/** How the manifest was made discoverable from its subject (undefined without a subject). */
export type IndexedBy = ReferrerPushResult['indexedBy'] | undefined;

export async function pushArtifactManifest(
  repo: Repository,
  manifest: { descriptor: Descriptor; bytes: Uint8Array },
  options: PushManifestOptions = {},
): Promise<IndexedBy> {
  const { descriptor, bytes } = manifest;
  const { signal, onStep, subject, tag } = options;
  const digest = descriptor.digest;
  if (options.configPresent !== true) await pushEmptyConfig(repo, { signal });
  return runStep(onStep, 'push-manifest', tag === undefined ? { digest } : { digest, tag }, async () => {
    if (subject === undefined) {
      await repo.pushManifest(descriptor, bytes, tag, { signal });
      return undefined;
    }
    const { replyTag } = options;
    // The reply's own tag first: the index update that follows is checked against it (SPEC §9.1).
    if (replyTag !== undefined) await repo.pushManifest(descriptor, bytes, replyTag, { signal });
    const pushed = await runStep(onStep, 'index', { digest }, () =>
      repo.pushReferrer(descriptor, bytes, subject, tag, {
        signal,
        onIndexWrite: options.onIndexWrite,
        subjectUnpublished: options.subjectUnpublished,
        referrerTags: referrerTagsOf(subject.digest),
        ownTag: replyTag,
      }),
    );
    return pushed.indexedBy;
  });
}

/** The tags every receipt, bundle and reply of `subjectDigest` is pushed under (SPEC §5), before its index update. */
export function referrerTagsOf(subjectDigest: string): ReferrerTagPrefix[] {
  return [
    { prefix: receiptTagPrefix(subjectDigest), artifactType: ArtifactType.Receipt },
    { prefix: bundleTagPrefix(subjectDigest), artifactType: ArtifactType.Bundle },
    { prefix: replyTagPrefix(subjectDigest), artifactType: ArtifactType.Message },
  ];
}
