/**
 * Opens a Repository from a user's string: `oci:<path>[:tag]` → the image-layout folder,
 * anything else → a remote registry repository. The one place that chooses an implementation.
 */
import { OciLayout } from './layout/index.ts';
import { parseTargetRef } from './reference.ts';
import { openRemoteRepository, type ClientOptions } from './remote/index.ts';
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
      throw new InvalidReferenceError(`--repo names a mailbox, not a tag or digest: ${JSON.stringify(input)}`);
    }
    return OciLayout.open(ref.path, { create: options.create ?? false });
  }
  if (ref.reference.tag !== undefined || ref.reference.digest !== undefined) {
    throw new InvalidReferenceError(`--repo names a repository, without a tag or digest: ${JSON.stringify(input)}`);
  }
  return openRemoteRepository(ref.reference, options);
}
