import { EMPTY_JSON_BYTES, EMPTY_JSON_DIGEST, MediaType } from '../oci/mediatypes.ts';
import type { OperationOptions, Repository } from '../oci/target.ts';

/**
 * Every comms artifact's config is the OCI empty blob `{}`; it must exist before a manifest names it.
 * Unlike an artifact's own small blobs it is asked for first (HEAD), never uploaded again blindly:
 * every artifact of a repository shares it, and docker-registry's filesystem store rewrites a
 * blob's link in place on each upload, so a blind re-upload racing another writer's manifest PUT
 * makes that PUT fail (measured: 20 concurrent ackers).
 */
export async function pushEmptyConfig(repo: Repository, options: OperationOptions = {}): Promise<void> {
  await repo.push({ mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: EMPTY_JSON_BYTES.length }, EMPTY_JSON_BYTES, { signal: options.signal });
}
