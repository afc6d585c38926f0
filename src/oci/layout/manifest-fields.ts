/**
 * The few fields of a manifest the layout store needs (subject, artifactType, annotations),
 * read from its exact bytes after checking they are JSON of the declared media type. The bytes
 * themselves are stored untouched.
 */
import { ProtocolError } from '../../errors.ts';
import type { Descriptor } from '../descriptor.ts';
import { isObject, ManifestFormatError, readDescriptor } from '../manifest-json.ts';
import { MediaType } from '../mediatypes.ts';

export interface ManifestFields {
  /** The manifest's artifactType, else its config's media type (as the Referrers API reports). */
  artifactType?: string;
  /** Only the manifest's own artifactType field (what index.json records). */
  declaredArtifactType?: string;
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** A descriptor read by the one OCI reader (manifest-json.ts); its verdict is the store's refusal. */
function checkDescriptor(v: unknown, what: string): Descriptor {
  try {
    return readDescriptor(v, what);
  } catch (err) {
    if (err instanceof ManifestFormatError) throw new ProtocolError(`manifest ${err.message}`, { code: 'MANIFEST_INVALID', cause: err });
    throw err;
  }
}

export function parseManifestFields(bytes: Uint8Array, mediaType: string): ManifestFields {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new ProtocolError(`manifest is not valid JSON`, { code: 'MANIFEST_INVALID', cause: err });
  }
  if (!isObject(doc) || doc.schemaVersion !== 2) {
    throw new ProtocolError('manifest is not a JSON object with schemaVersion 2', { code: 'MANIFEST_INVALID' });
  }
  if (doc.mediaType !== undefined && doc.mediaType !== mediaType) {
    throw new ProtocolError(`manifest says mediaType ${JSON.stringify(doc.mediaType)} but was pushed as ${mediaType}`, {
      code: 'MANIFEST_INVALID',
    });
  }
  const isIndex = mediaType === MediaType.ImageIndex || mediaType === MediaType.DockerManifestList;
  let configMediaType: string | undefined;
  if (isIndex) {
    if (!Array.isArray(doc.manifests)) throw new ProtocolError('image index has no manifests[]', { code: 'MANIFEST_INVALID' });
    doc.manifests.forEach((m, i) => checkDescriptor(m, `manifests[${i}]`));
  } else {
    configMediaType = checkDescriptor(doc.config, 'config').mediaType;
    if (!Array.isArray(doc.layers)) throw new ProtocolError('image manifest has no layers[]', { code: 'MANIFEST_INVALID' });
    doc.layers.forEach((l, i) => checkDescriptor(l, `layers[${i}]`));
  }
  const out: ManifestFields = {};
  if (doc.artifactType !== undefined) {
    if (typeof doc.artifactType !== 'string') throw new ProtocolError('manifest artifactType is not a string', { code: 'MANIFEST_INVALID' });
    out.declaredArtifactType = doc.artifactType;
  }
  const artifactType = out.declaredArtifactType ?? configMediaType;
  if (artifactType !== undefined) out.artifactType = artifactType;
  if (doc.subject !== undefined) out.subject = checkDescriptor(doc.subject, 'subject');
  if (doc.annotations !== undefined) {
    if (!isObject(doc.annotations) || !Object.values(doc.annotations).every((v) => typeof v === 'string')) {
      throw new ProtocolError('manifest annotations are not a string map', { code: 'MANIFEST_INVALID' });
    }
    out.annotations = doc.annotations as Record<string, string>;
  }
  return out;
}
