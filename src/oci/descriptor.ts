/** OCI content descriptor and the manifest shapes comms reads and writes. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
  /** Base64 of the content, when embedded. */
  data?: string;
  platform?: Record<string, unknown>;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** A copy of a descriptor holding only the fields OCI defines, in a fixed order. */
export function plainDescriptor(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.artifactType !== undefined) out.artifactType = d.artifactType;
  if (d.annotations !== undefined) out.annotations = { ...d.annotations };
  if (d.urls !== undefined) out.urls = [...d.urls];
  if (d.data !== undefined) out.data = d.data;
  if (d.platform !== undefined) out.platform = d.platform;
  return out;
}

/**
 * A manifest as a referrers list names it (the Referrers API, the referrers tag schema, an index
 * entry): mediaType, digest, size, then the artifactType and annotations given, in that order.
 */
export function referrerDescriptor(
  d: Descriptor,
  fields: { artifactType?: string | undefined; annotations?: Record<string, string> | undefined } = {},
): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (fields.artifactType !== undefined) out.artifactType = fields.artifactType;
  if (fields.annotations !== undefined) out.annotations = { ...fields.annotations };
  return out;
}
