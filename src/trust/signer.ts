/**
 * What every comms signer produces: a Sigstore bundle v0.3 whose `messageSignature` covers the
 * artifact bytes (the message manifest), with `messageDigest` = sha256 of those bytes, so the
 * signed digest is the manifest digest a verifier compares against the message's.
 */
import { bundleToJSON, type Bundle } from '@sigstore/bundle';
import { canonicalJSON } from './canonical-json.ts';

export interface SignedBundle {
  /** The serialized bundle (Sigstore protobuf-JSON form). */
  json: object;
  /** Its canonical JSON bytes (sorted keys, no whitespace): the blob to push. */
  bytes: Uint8Array;
  /** The bundle's own media type: `application/vnd.dev.sigstore.bundle.v0.3+json`. */
  mediaType: string;
}

export interface MessageSigner {
  readonly kind: 'key' | 'keyless';
  /** Signs `artifact` (the manifest bytes). Never logs; rejects with a CommsError subclass. */
  sign(artifact: Uint8Array, options?: { signal?: AbortSignal }): Promise<SignedBundle>;
}

/** Serialises a bundle into what a signer hands back. */
export function toSignedBundle(bundle: Bundle): SignedBundle {
  const json = bundleToJSON(bundle) as object;
  return {
    json,
    bytes: new TextEncoder().encode(canonicalJSON(json)),
    mediaType: bundle.mediaType,
  };
}
