/**
 * The one reader of untrusted OCI JSON: descriptors, image manifests' and indexes' outer shape, as
 * a registry, a layout folder or a client sent them. It checks what the OCI image spec requires of
 * each field and copies only those fields; what is wrong is a ManifestFormatError naming the field
 * (a JSON path such as `layers[2].digest`), which each caller turns into its own error (a protocol
 * refusal, an HTTP 400, an invalid index).
 */
import { ProtocolError, type CommsErrorOptions } from '../errors.ts';
import type { Descriptor, ImageManifest } from './descriptor.ts';
import { isDigest } from './digest.ts';

/** Exit 4: a document that is not the OCI JSON it should be; `field` says where, `problem` what. */
export class ManifestFormatError extends ProtocolError {
  readonly field: string | undefined;
  readonly problem: string;
  constructor(problem: string, field?: string, options: CommsErrorOptions = {}) {
    super(field === undefined ? problem : `${field} ${problem}`, { code: 'MANIFEST_INVALID', ...options });
    this.field = field;
    this.problem = problem;
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The bytes as a JSON object (strict UTF-8). */
export function readJsonObject(bytes: Uint8Array): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new ManifestFormatError('is not valid UTF-8 JSON', undefined, { cause });
  }
  if (!isObject(doc)) throw new ManifestFormatError('is not a JSON object');
  return doc;
}

/** A map of strings (annotations), or undefined when absent or null. */
export function readStringMap(v: unknown, field: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new ManifestFormatError('is not an object of strings', field);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw new ManifestFormatError('is not a string', `${field}.${k}`);
    out[k] = val;
  }
  return out;
}

/**
 * A descriptor as the image spec defines it: mediaType, a valid digest, a non-negative integer
 * size, and, when present (null reads as absent, as Go writes it), a string artifactType, a map of
 * string annotations, a list of string urls, string data and an object platform.
 */
export function readDescriptor(v: unknown, field: string): Descriptor {
  if (!isObject(v)) throw new ManifestFormatError('is not a descriptor object', field);
  const { mediaType, digest, size, artifactType, urls, data, platform } = v;
  if (typeof mediaType !== 'string' || mediaType === '' || mediaType.length > 255) throw new ManifestFormatError('is missing or invalid', `${field}.mediaType`);
  if (typeof digest !== 'string' || !isDigest(digest)) throw new ManifestFormatError(`${JSON.stringify(digest)} is not a valid digest`, `${field}.digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new ManifestFormatError('is not a non-negative integer', `${field}.size`);
  const d: Descriptor = { mediaType, digest, size };
  if (artifactType !== undefined && artifactType !== null) {
    if (typeof artifactType !== 'string') throw new ManifestFormatError('is not a string', `${field}.artifactType`);
    d.artifactType = artifactType;
  }
  const annotations = readStringMap(v['annotations'], `${field}.annotations`);
  if (annotations !== undefined) d.annotations = annotations;
  if (urls !== undefined && urls !== null) {
    if (!Array.isArray(urls) || !urls.every((u) => typeof u === 'string')) throw new ManifestFormatError('is not a list of strings', `${field}.urls`);
    d.urls = urls as string[];
  }
  if (data !== undefined && data !== null) {
    if (typeof data !== 'string') throw new ManifestFormatError('is not a string', `${field}.data`);
    d.data = data;
  }
  if (platform !== undefined && platform !== null) {
    if (!isObject(platform)) throw new ManifestFormatError('is not an object', `${field}.platform`);
    d.platform = platform;
  }
  return d;
}

/**
 * An image manifest's fields (schemaVersion 2, a config descriptor, layer descriptors — null or
 * absent read as none, as Go writes a nil slice — and, when present, a string mediaType and
 * artifactType, a subject descriptor and string annotations). Whether the mediaType is the image
 * manifest's is the caller's to decide.
 */
export function readImageManifest(bytes: Uint8Array): ImageManifest {
  const doc = readJsonObject(bytes);
  if (doc['schemaVersion'] !== 2) throw new ManifestFormatError('is not 2', 'schemaVersion');
  const m: ImageManifest = { schemaVersion: 2, config: readDescriptor(doc['config'], 'config'), layers: [] };
  const { mediaType, artifactType, layers, subject } = doc;
  if (mediaType !== undefined && mediaType !== null) {
    if (typeof mediaType !== 'string') throw new ManifestFormatError('is not a string', 'mediaType');
    m.mediaType = mediaType;
  }
  if (artifactType !== undefined && artifactType !== null) {
    if (typeof artifactType !== 'string') throw new ManifestFormatError('is not a string', 'artifactType');
    m.artifactType = artifactType;
  }
  if (layers !== undefined && layers !== null) {
    if (!Array.isArray(layers)) throw new ManifestFormatError('is not a list', 'layers');
    m.layers = layers.map((l: unknown, i: number) => readDescriptor(l, `layers[${i}]`));
  }
  if (subject !== undefined && subject !== null) m.subject = readDescriptor(subject, 'subject');
  const annotations = readStringMap(doc['annotations'], 'annotations');
  if (annotations !== undefined) m.annotations = annotations;
  return m;
}

/** The `manifests` of an image index (schemaVersion 2), each read as a descriptor. */
export function readIndexManifests(bytes: Uint8Array): Descriptor[] {
  const doc = readJsonObject(bytes);
  if (doc['schemaVersion'] !== 2 || !Array.isArray(doc['manifests']))
    throw new ManifestFormatError('is not an image index (schemaVersion 2 with a manifests array)');
  return doc['manifests'].map((m: unknown, i: number) => readDescriptor(m, `manifests[${i}]`));
}
