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
