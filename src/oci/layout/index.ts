/** The OCI image-layout folder store: a Repository on the local filesystem. */
export { OciLayout, type OciLayoutOptions } from './oci-layout.ts';
export type { LockOptions } from './lock.ts';
