/** OCI and Docker media types the client knows. The comms protocol's own types live in src/protocol. */
export const MediaType = {
  ImageManifest: 'application/vnd.oci.image.manifest.v1+json',
  ImageIndex: 'application/vnd.oci.image.index.v1+json',
  EmptyJSON: 'application/vnd.oci.empty.v1+json',
  ImageConfig: 'application/vnd.oci.image.config.v1+json',
  ImageLayerTarGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

/** Media types that are manifests (pushed to /manifests/, not /blobs/). */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [MediaType.ImageManifest, MediaType.ImageIndex, MediaType.DockerManifest, MediaType.DockerManifestList];

export function isManifestMediaType(mediaType: string): boolean {
  return MANIFEST_MEDIA_TYPES.includes(mediaType);
}

/** The OCI empty descriptor: the two bytes `{}`. */
export const EMPTY_JSON_BYTES = new TextEncoder().encode('{}');
export const EMPTY_JSON_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

/** Manifests read from anywhere are refused above this size (the distribution spec's 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The annotation an OCI image layout uses for a tag in index.json. */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
