/**
 * Opens a Repository from a user's string: `oci:<path>[:tag]` → the image-layout folder,
 * anything else → a remote registry repository. The one place that chooses an implementation.
 * Each implementation is loaded only when opened: the registry client (and its HTTP stack) for a
 * remote repository, the layout store for a folder.
 */
import { parseTargetRef } from './reference.ts';
import type { ClientOptions } from './remote/index.ts';
import type { Repository } from './target.ts';
import { InvalidReferenceError } from '../errors.ts';

export interface OpenOptions extends ClientOptions {
  /** Create the layout folder when it does not exist (send does; recv does not need to). */
  create?: boolean;
}

export async function openRepository(input: string, options: OpenOptions = {}): Promise<Repository> {
  const ref = parseTargetRef(input);
  if (ref.kind === 'layout') {
    if (ref.tag !== undefined || ref.digest !== undefined) {
      throw new InvalidReferenceError(`repository names a mailbox, not a tag or digest: ${JSON.stringify(input)}`, { option: 'repository' });
    }
    const { OciLayout } = await import('./layout/index.ts');
    return OciLayout.open(ref.path, { create: options.create ?? false });
  }
  if (ref.reference.tag !== undefined || ref.reference.digest !== undefined) {
    throw new InvalidReferenceError(`repository names a repository, without a tag or digest: ${JSON.stringify(input)}`, { option: 'repository' });
  }
  const { openRemoteRepository } = await import('./remote/index.ts');
  return openRemoteRepository(ref.reference, options);
}

/** A repository together with what the user's string named in it: a tag, a digest, or neither. */
export interface OpenedTarget {
  repository: Repository;
  tag?: string;
  digest?: string;
  /** Whether the repository is remote (`host/name`) or an image-layout folder. */
  kind: 'remote' | 'layout';
  /** For remote targets: the registry host, as written. */
  registry?: string;
  /** For remote targets: the repository name on that registry. */
  repositoryName?: string;
}

/**
 * Opens `oci:<path>[:tag][@digest]` or `host/name[:tag][@digest]` and keeps the tag and digest
 * the string names (copy, inspect), where openRepository refuses them (a mailbox has none).
 */
export async function openTarget(input: string, options: OpenOptions = {}): Promise<OpenedTarget> {
  const ref = parseTargetRef(input);
  if (ref.kind === 'layout') {
    const { OciLayout } = await import('./layout/index.ts');
    const out: OpenedTarget = { repository: await OciLayout.open(ref.path, { create: options.create ?? false }), kind: 'layout' };
    if (ref.tag !== undefined) out.tag = ref.tag;
    if (ref.digest !== undefined) out.digest = ref.digest;
    return out;
  }
  const { registry, repository, tag, digest } = ref.reference;
  const { openRemoteRepository } = await import('./remote/index.ts');
  const out: OpenedTarget = {
    repository: await openRemoteRepository({ registry, repository }, options),
    kind: 'remote',
    registry,
    repositoryName: repository,
  };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}
