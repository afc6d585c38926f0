/**
 * Pieces of the referrers model shared by the Referrers API path and the tag-schema fallback:
 * the `<alg>-<hex>` tag, and reading an image index of referrer descriptors safely.
 */
import { ProtocolError } from '../../errors.ts';
import { referrerDescriptor, type Descriptor } from '../descriptor.ts';
import { parseDigest } from '../digest.ts';
import { ManifestFormatError, readIndexManifests } from '../manifest-json.ts';

/** The referrers tag schema's tag for a subject: `<alg>-<hex>`, truncated to 32 and 64 characters as the spec says. */
export function referrersTag(subjectDigest: string): string {
  const { algorithm, hex } = parseDigest(subjectDigest);
  return `${algorithm.slice(0, 32)}-${hex.slice(0, 64)}`;
}

/** The `manifests` of an image index, each checked to be a well-formed descriptor (manifest-json.ts). */
export function indexManifests(bytes: Uint8Array, what: string): Descriptor[] {
  try {
    return readIndexManifests(bytes).map((d) => referrerDescriptor(d, d));
  } catch (err) {
    if (err instanceof ManifestFormatError) throw new ProtocolError(`${what}: ${err.message}`, { code: 'INVALID_INDEX', cause: err });
    throw err;
  }
}

export function filterByArtifactType(list: Descriptor[], artifactType: string | undefined): Descriptor[] {
  return artifactType === undefined ? list : list.filter((d) => d.artifactType === artifactType);
}
