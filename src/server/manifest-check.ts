/**
 * What a manifest PUT must be before anything is stored: JSON of the media type it is pushed as,
 * schemaVersion 2, well-formed descriptors; and the content it references, which the caller checks
 * exists (config and layers for an image manifest, child manifests for an index). The `subject`
 * is only checked for form: the spec lets a referrer arrive before its subject.
 */
import type { Descriptor } from '../oci/descriptor.ts';
import { ManifestFormatError, readDescriptor, readJsonObject, readStringMap } from '../oci/manifest-json.ts';
import { MediaType } from '../oci/mediatypes.ts';
import { RegistryHttpError } from './errors.ts';

export interface CheckedManifest {
  isIndex: boolean;
  /** Blobs that must exist: config and layers (non-distributable layers with `urls` excepted). */
  blobs: Descriptor[];
  /** Manifests that must exist: an index's children. */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** The manifest's own artifactType field. */
  artifactType?: string;
}

function invalid(message: string): RegistryHttpError {
  return new RegistryHttpError('MANIFEST_INVALID', message);
}

/** The OCI reader's verdict (manifest-json.ts) as this registry's 400 MANIFEST_INVALID. */
function read<T>(what: () => T): T {
  try {
    return what();
  } catch (err) {
    if (err instanceof ManifestFormatError) throw invalid(err.field === undefined ? `the manifest ${err.message}` : err.message);
    throw err;
  }
}

function descriptor(v: unknown, where: string): Descriptor {
  return read(() => readDescriptor(v, where));
}

function annotations(v: unknown, where: string): void {
  read(() => readStringMap(v, where));
}

/** Parses and checks `bytes` pushed with Content-Type `mediaType` (already known to be a manifest type). */
export function checkManifest(bytes: Uint8Array, mediaType: string): CheckedManifest {
  const doc = read(() => readJsonObject(bytes));
  if (doc.schemaVersion !== 2) throw invalid('schemaVersion must be 2');
  if (doc.mediaType !== undefined && doc.mediaType !== mediaType) {
    throw invalid(`the manifest's mediaType ${JSON.stringify(doc.mediaType)} differs from its Content-Type ${mediaType}`);
  }
  if ((mediaType === MediaType.DockerManifest || mediaType === MediaType.DockerManifestList) && doc.mediaType === undefined) {
    throw invalid(`a ${mediaType} must carry its mediaType field`);
  }
  if (doc.artifactType !== undefined && (typeof doc.artifactType !== 'string' || doc.artifactType === '')) throw invalid('artifactType is not a string');
  if (doc.annotations !== undefined) annotations(doc.annotations, 'annotations');
  const isIndex = mediaType === MediaType.ImageIndex || mediaType === MediaType.DockerManifestList;
  const out: CheckedManifest = { isIndex, blobs: [], manifests: [] };
  if (isIndex) {
    if (!Array.isArray(doc.manifests)) throw invalid('an image index needs a manifests list');
    out.manifests = doc.manifests.map((m, i) => descriptor(m, `manifests[${i}]`));
  } else {
    if (doc.manifests !== undefined) throw invalid('an image manifest has no manifests list (push it as an image index)');
    const config = descriptor(doc.config, 'config');
    if (!Array.isArray(doc.layers)) throw invalid('an image manifest needs a layers list');
    const layers = doc.layers.map((l, i) => descriptor(l, `layers[${i}]`));
    out.blobs = [config, ...layers.filter((l) => l.urls === undefined || l.urls.length === 0)];
  }
  if (doc.subject !== undefined) out.subject = descriptor(doc.subject, 'subject');
  if (typeof doc.artifactType === 'string') out.artifactType = doc.artifactType;
  return out;
}
