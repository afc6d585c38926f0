/**
 * Pieces of the referrers model shared by the Referrers API path and the tag-schema fallback:
 * the `<alg>-<hex>` tag, and reading an image index of referrer descriptors safely.
 */
import { ProtocolError } from '../../errors.ts';
import { referrerDescriptor, type Descriptor } from '../descriptor.ts';
import { isDigest, parseDigest } from '../digest.ts';

/** The referrers tag schema's tag for a subject: `<alg>-<hex>`, truncated to 32 and 64 characters as the spec says. */
export function referrersTag(subjectDigest: string): string {
  const { algorithm, hex } = parseDigest(subjectDigest);
  return `${algorithm.slice(0, 32)}-${hex.slice(0, 64)}`;
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** The `manifests` of an image index, each checked to be a well-formed descriptor. */
export function indexManifests(bytes: Uint8Array, what: string): Descriptor[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch (cause) {
    throw new ProtocolError(`${what}: not JSON`, { code: 'INVALID_INDEX', cause });
  }
  const index = parsed as { schemaVersion?: unknown; manifests?: unknown } | null;
  if (index === null || typeof index !== 'object' || Array.isArray(index) || index.schemaVersion !== 2 || !Array.isArray(index.manifests)) {
    throw new ProtocolError(`${what}: not an image index (schemaVersion 2 with a manifests array)`, { code: 'INVALID_INDEX' });
  }
  return index.manifests.map((m: unknown, i: number): Descriptor => {
    const d = m as Partial<Record<keyof Descriptor, unknown>> | null;
    if (
      d === null ||
      typeof d !== 'object' ||
      typeof d.mediaType !== 'string' ||
      typeof d.digest !== 'string' ||
      !isDigest(d.digest) ||
      typeof d.size !== 'number' ||
      !Number.isSafeInteger(d.size) ||
      d.size < 0 ||
      (d.artifactType !== undefined && typeof d.artifactType !== 'string') ||
      (d.annotations !== undefined && !isStringRecord(d.annotations))
    ) {
      throw new ProtocolError(`${what}: manifests[${i}] is not a valid descriptor`, { code: 'INVALID_INDEX' });
    }
    return referrerDescriptor(d as Descriptor, d as Descriptor);
  });
}

export function filterByArtifactType(list: Descriptor[], artifactType: string | undefined): Descriptor[] {
  return artifactType === undefined ? list : list.filter((d) => d.artifactType === artifactType);
}
