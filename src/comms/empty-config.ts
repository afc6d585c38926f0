import { EMPTY_JSON_BYTES, EMPTY_JSON_DIGEST, MediaType } from '../oci/mediatypes.ts';
import type { OperationOptions, Repository } from '../oci/target.ts';

/**
 * Every comms artifact's config is the OCI empty blob `{}`; it must exist before a manifest names it.
 * Two bytes: uploading them (POST + PUT) costs less than asking first whether they are there.
 */
export async function pushEmptyConfig(repo: Repository, options: OperationOptions = {}): Promise<void> {
  await repo.push({ mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: EMPTY_JSON_BYTES.length }, EMPTY_JSON_BYTES, { signal: options.signal, skipExistsCheck: true });
}
