/**
 * The one interface every use case is written against (modelled on oras-go v2):
 * Storage (fetch, push, exists) → Target (+ resolve, tag) → Repository (+ tags, referrers,
 * delete, manifest helpers). Implementations: the remote registry client (src/oci/remote) and
 * the OCI image-layout folder (src/oci/layout). The message protocol never sees a URL.
 */
import type { Readable } from 'node:stream';
import type { Descriptor } from './descriptor.ts';

export interface OperationOptions {
  signal?: AbortSignal;
}

export interface FetchOptions extends OperationOptions {
  /** Called with the running count of bytes delivered so far. */
  onProgress?: (bytes: number) => void;
}

export interface PushOptions extends OperationOptions {
  /** Called with the running count of bytes sent so far. */
  onProgress?: (bytes: number) => void;
  /**
   * For blobs: a repository (same registry) that already holds the blob; the implementation
   * tries a cross-repository mount before uploading.
   */
  mountFrom?: string;
  /**
   * For a small blob (at most SMALL_BLOB_MAX_BYTES): upload it without first asking whether the
   * registry has it. Asking costs a round trip, as much as sending a few bytes again; the answer
   * then reports `skipped: false`. Only for a blob no one else is writing (an artifact's own
   * layer or signature): docker-registry rewrites a blob's link in place on every upload, so a
   * blind upload of a shared blob can fail another writer's manifest PUT naming it.
   */
  skipExistsCheck?: boolean;
}

/** Blobs up to this size may be uploaded without an existence check (PushOptions.skipExistsCheck). */
export const SMALL_BLOB_MAX_BYTES = 64 * 1024;

export interface PushResult {
  /** The descriptor pushed (as given). */
  descriptor: Descriptor;
  /** True when the content already existed and no bytes were sent. */
  skipped: boolean;
  /**
   * For manifests with a `subject`: the `OCI-Subject` the registry answered with, meaning it
   * indexed the referrer itself. Undefined when it did not (the caller then maintains the
   * referrers tag schema). The layout store always indexes referrers and reports the subject.
   */
  ociSubject?: string;
}

export interface ReferrerPushOptions extends OperationOptions {
  /** Attempts to get the descriptor into a tag-schema index when other writers race us. */
  maxAttempts?: number;
  /** Called once per tag-schema write, so tests (and --verbose) can count them. */
  onIndexWrite?: ((attempt: number) => void) | undefined;
  /**
   * The subject is not published yet (no tag names it; its digest is known to this writer only),
   * so no tag-schema index of it exists and no other writer can be updating one: one write, with
   * no read before and no check after.
   */
  subjectUnpublished?: boolean | undefined;
  /**
   * Where every referrer of the subject of a given artifactType has its own tag, pushed before its
   * index update (SPEC §9.1: `receipt-<hex12>-`, `bundle-<hex12>-`, `reply-<hex12>-`). When the referrer's own tag
   * starts with one of these prefixes, the index update is checked against those tags instead of
   * being read back after waits.
   */
  referrerTags?: readonly ReferrerTagPrefix[] | undefined;
  /**
   * The referrer's own tag under one of `referrerTags`, when it is not the `tag` it is pushed
   * under (a reply: found by its inbox tag, checked by its `reply-<hex12>-` tag). The caller has
   * pushed it already, before this call.
   */
  ownTag?: string | undefined;
  /** Called with each wait (ms) before another try, so tests (and --verbose) can count them. */
  onBackoff?: ((ms: number) => void) | undefined;
}

/** A tag prefix under which each referrer of one artifactType is tagged (ReferrerPushOptions.referrerTags). */
export interface ReferrerTagPrefix {
  prefix: string;
  artifactType: string;
}

export interface ReferrerPushResult extends PushResult {
  /**
   * How the referrer was made discoverable: by the registry's Referrers API (or the layout store,
   * which indexes subjects itself), the tag-schema index, or (when other writers kept replacing
   * the index past the bound) only its own tag.
   */
  indexedBy: 'registry' | 'tag-schema' | 'tag-only';
}

export interface ReadOnlyStorage {
  /**
   * A stream of the content. The stream is verified while it flows: it errors with
   * DigestMismatchError (exit 4) when the bytes exceed `desc.size`, or at the end when the
   * size or digest differ. NotFoundError (exit 5) when absent.
   */
  fetch(desc: Descriptor, options?: FetchOptions): Promise<Readable>;
  exists(desc: Descriptor, options?: OperationOptions): Promise<boolean>;
}

export interface Storage extends ReadOnlyStorage {
  /**
   * Stores content under `desc`. A manifest media type (see isManifestMediaType) goes to the
   * manifest store, anything else to the blob store. The content must hash to `desc.digest`
   * and have `desc.size` bytes, or the push fails with DigestMismatchError and nothing is kept.
   * A blob that already exists is not sent again (`skipped: true`).
   */
  push(desc: Descriptor, content: Readable | Uint8Array, options?: PushOptions): Promise<PushResult>;
}

export interface Target extends Storage {
  /** A tag or a digest → the manifest's descriptor. NotFoundError when absent. */
  resolve(reference: string, options?: OperationOptions): Promise<Descriptor>;
  /** Points `tag` at the (already pushed) manifest `desc`. */
  tag(desc: Descriptor, tag: string, options?: OperationOptions): Promise<void>;
}

export interface TagListOptions extends OperationOptions {
  /** Page size hint (`n`). */
  pageSize?: number;
  /** Start after this tag (`last`). */
  last?: string;
}

export interface ReferrersOptions extends OperationOptions {
  /** Only referrers with this artifactType. Filtered client-side when the server did not. */
  artifactType?: string;
}

export interface FetchedManifest {
  descriptor: Descriptor;
  bytes: Uint8Array;
}

/**
 * What a page visitor returns: `false` stops the listing and no further request is sent;
 * anything else continues.
 */
export type PageVisitor<T> = (page: T[]) => void | boolean | Promise<void | boolean>;

export interface Repository extends Target {
  /** A human-readable name: `host/name` or `oci:<path>`. Never contains credentials. */
  readonly name: string;

  /** Lists tags page by page (lexical order), until exhausted or the visitor returns false. */
  tags(visit: PageVisitor<string>, options?: TagListOptions): Promise<void>;

  /**
   * Lists the manifests whose `subject` is `subject`, page by page. Through the Referrers API
   * when the repository has it; otherwise through the referrers tag schema
   * (`<alg>-<hex>` tag holding an image index). Each descriptor carries artifactType and
   * annotations.
   */
  referrers(subject: Descriptor, visit: PageVisitor<Descriptor>, options?: ReferrersOptions): Promise<void>;

  /**
   * Whether the Referrers API is available (remote: detected by 200 vs 404 and remembered per
   * repository; layout: always true, it indexes subjects itself).
   */
  referrersApiSupported(options?: OperationOptions): Promise<boolean>;

  /** Deletes a manifest or blob by descriptor (a manifest media type deletes the manifest). */
  delete(desc: Descriptor, options?: OperationOptions): Promise<void>;

  /**
   * Fetches a manifest by tag or digest, as exact bytes, refused above MAX_MANIFEST_BYTES
   * and verified against its digest (exit 4 on mismatch).
   */
  fetchManifest(reference: string, options?: OperationOptions): Promise<FetchedManifest>;

  /**
   * Pushes exact manifest bytes (`desc.mediaType` as Content-Type), optionally under a tag.
   * A registry-reported digest different from `desc.digest` fails the push (exit 4).
   */
  pushManifest(desc: Descriptor, bytes: Uint8Array, tag?: string, options?: OperationOptions): Promise<PushResult>;

  /**
   * Pushes a manifest whose `subject` is `subject` (under `tag` when given) and makes sure it is
   * listed as a referrer of it — by the registry or store itself, else through the referrers tag
   * schema — and says which.
   */
  pushReferrer(desc: Descriptor, bytes: Uint8Array, subject: Descriptor, tag?: string, options?: ReferrerPushOptions): Promise<ReferrerPushResult>;
}
