/**
 * One repository on an OCI Distribution registry, behind the Repository interface. Blob
 * transfer lives in blob-download.ts and blob-upload.ts; HTTP concerns (auth, retry, redirects)
 * in the client's layers. Every name, tag and digest is checked before any request is made.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { DigestMismatchError, NotFoundError, ProtocolError, type CommsError } from '../../errors.ts';
import { scopeFor } from '../auth/challenge.ts';
import type { Descriptor } from '../descriptor.ts';
import { hasherFor, isDigest, parseDigest } from '../digest.ts';
import { EMPTY_JSON_DIGEST, MAX_MANIFEST_BYTES, MediaType, isManifestMediaType } from '../mediatypes.ts';
import { validateTag, type Reference } from '../reference.ts';
import type {
  FetchOptions,
  FetchedManifest,
  OperationOptions,
  PageVisitor,
  PushOptions,
  PushResult,
  ReferrerPushOptions,
  ReferrerPushResult,
  ReferrersOptions,
  Repository,
  TagListOptions,
} from '../target.ts';
import { downloadBlob } from './blob-download.ts';
import { blobExists, uploadBlob } from './blob-upload.ts';
import type { RepositoryClient } from './repository-client.ts';
import { networkError, parseErrorBody, responseError } from './error-map.ts';
import { discard, header, headerValues, readLimited, type HttpResponse } from './http.ts';
import { nextLink } from './link.ts';
import { pushWithTagSchema } from './tag-schema.ts';
import { ListBudget } from './list-limits.ts';
import { filterByArtifactType, indexManifests, referrersTag } from './referrers.ts';
import type { RepoIO } from './repo-io.ts';

/** The manifest media types asked for on every manifest GET/HEAD. */
export const MANIFEST_ACCEPT: readonly string[] = [MediaType.ImageManifest, MediaType.ImageIndex, MediaType.DockerManifest, MediaType.DockerManifestList];

/** A tag list page larger than this is refused (2,500 tags take about 40 KiB). */
const MAX_TAG_PAGE_BYTES = 32 * 1024 * 1024;

function acceptFor(extra?: string): string {
  const types = extra !== undefined && !MANIFEST_ACCEPT.includes(extra) ? [...MANIFEST_ACCEPT, extra] : MANIFEST_ACCEPT;
  return types.join(', ');
}

/** Checks a descriptor's digest and size before it is put in a URL. */
function checkDescriptor(desc: Descriptor): void {
  parseDigest(desc.digest);
  if (!Number.isSafeInteger(desc.size) || desc.size < 0) {
    throw new ProtocolError(`descriptor ${desc.digest} has an invalid size ${String(desc.size)}`, { code: 'INVALID_DESCRIPTOR' });
  }
}

/** A tag or a digest, checked against its grammar; returns which one it is. */
function checkReference(reference: string): 'tag' | 'digest' {
  if (typeof reference === 'string' && reference.includes(':')) {
    parseDigest(reference);
    return 'digest';
  }
  validateTag(reference);
  return 'tag';
}

function mediaTypeOf(res: HttpResponse): string | undefined {
  const ct = header(res, 'content-type');
  return ct?.split(';')[0]?.trim() || undefined;
}

export class RemoteRepository implements Repository {
  readonly name: string;
  readonly reference: Reference;
  readonly client: RepositoryClient;
  private readonly io: RepoIO;

  constructor(client: RepositoryClient, reference: Reference) {
    this.client = client;
    this.reference = { registry: reference.registry, repository: reference.repository };
    this.name = `${reference.registry}/${reference.repository}`;
    const { registry, repository } = reference;
    this.io = {
      registry,
      repository,
      retry: client.retry,
      timeoutMs: client.timeoutMs,
      chunkSize: client.chunkSize,
      monolithicMaxBytes: client.monolithicMaxBytes,
      url: async (path, signal) => new URL(`/v2/${repository}/${path}`, await client.endpoint(registry, signal)),
      send: (req, operation) => client.send(registry, { ...req, repository }, operation),
      fail: (res, operation) => responseError(res, { registry, repository, operation }),
      read: async (res, limit, operation, signal) => {
        try {
          return await readLimited(res.body, limit);
        } catch (err) {
          throw networkError(err, { registry, repository, operation, timeoutMs: client.timeoutMs }, signal);
        }
      },
      scopes: (...actions) => [scopeFor(repository, actions)],
    };
  }

  // ---- Storage ----

  async fetch(desc: Descriptor, options: FetchOptions = {}): Promise<Readable> {
    checkDescriptor(desc);
    if (!isManifestMediaType(desc.mediaType)) return downloadBlob(this.io, desc, options);
    const { bytes } = await this.getManifest(desc.digest, desc.mediaType, options.signal);
    if (bytes.length !== desc.size) {
      throw new DigestMismatchError(`manifest ${desc.digest} has ${bytes.length} bytes, its descriptor says ${desc.size}`, { registry: this.io.registry });
    }
    options.onProgress?.(bytes.length);
    return Readable.from([Buffer.from(bytes)], { objectMode: false });
  }

  async exists(desc: Descriptor, options: OperationOptions = {}): Promise<boolean> {
    checkDescriptor(desc);
    if (!isManifestMediaType(desc.mediaType)) return blobExists(this.io, desc, options.signal);
    try {
      await this.headManifest(desc.digest, desc.mediaType, options.signal);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  async push(desc: Descriptor, content: Readable | Uint8Array, options: PushOptions = {}): Promise<PushResult> {
    checkDescriptor(desc);
    if (!isManifestMediaType(desc.mediaType)) return uploadBlob(this.io, desc, content, options);
    if (desc.size > MAX_MANIFEST_BYTES) {
      throw new ProtocolError(`manifest ${desc.digest} is ${desc.size} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`, { code: 'MANIFEST_TOO_LARGE' });
    }
    let bytes: Uint8Array;
    if (content instanceof Readable) {
      const read = await readLimited(content, desc.size);
      if (read === undefined) throw new DigestMismatchError(`manifest ${desc.digest}: the content is larger than its descriptor's size ${desc.size}`);
      bytes = read;
    } else {
      bytes = content;
    }
    const result = await this.pushManifest(desc, bytes, undefined, options);
    options.onProgress?.(bytes.length);
    return result;
  }

  // ---- Target ----

  async resolve(reference: string, options: OperationOptions = {}): Promise<Descriptor> {
    checkReference(reference);
    const head = await this.headManifest(reference, undefined, options.signal);
    if (head !== undefined) return head;
    // The HEAD lacked a digest, size or type: read the manifest itself.
    return (await this.getManifest(reference, undefined, options.signal)).descriptor;
  }

  async tag(desc: Descriptor, tag: string, options: OperationOptions = {}): Promise<void> {
    validateTag(tag);
    checkDescriptor(desc);
    const fetched = await this.getManifest(desc.digest, desc.mediaType, options.signal);
    const mediaType = isManifestMediaType(desc.mediaType) ? desc.mediaType : fetched.descriptor.mediaType;
    await this.pushManifest({ ...fetched.descriptor, mediaType }, fetched.bytes, tag, options);
  }

  // ---- Repository ----

  async fetchManifest(reference: string, options: OperationOptions = {}): Promise<FetchedManifest> {
    checkReference(reference);
    return this.getManifest(reference, undefined, options.signal);
  }

  pushReferrer(desc: Descriptor, bytes: Uint8Array, subject: Descriptor, tag?: string, options: ReferrerPushOptions = {}): Promise<ReferrerPushResult> {
    return pushWithTagSchema(this, desc, bytes, subject, tag, options);
  }

  async pushManifest(desc: Descriptor, bytes: Uint8Array, tag?: string, options: OperationOptions = {}): Promise<PushResult> {
    checkDescriptor(desc);
    if (tag !== undefined) validateTag(tag);
    if (bytes.length !== desc.size) {
      throw new DigestMismatchError(`manifest ${desc.digest}: ${bytes.length} bytes, its descriptor says ${desc.size}`);
    }
    const actual = `${parseDigest(desc.digest).algorithm}:${hasherFor(desc.digest).update(bytes).digest('hex')}`;
    if (actual !== desc.digest) throw new DigestMismatchError(`manifest digest mismatch: expected ${desc.digest}, got ${actual}`);
    const ref = tag ?? desc.digest;
    const operation = `push manifest ${ref}`;
    const res = await this.io.send(
      {
        method: 'PUT',
        url: await this.io.url(`manifests/${ref}`, options.signal),
        headers: { 'content-type': desc.mediaType },
        body: bytes,
        // The same bytes under the same name: a repeated PUT changes nothing.
        idempotent: true,
        scopes: this.io.scopes('pull', 'push'),
        signal: options.signal,
      },
      operation,
    );
    if (res.status !== 201 && res.status !== 200 && res.status !== 204) throw await this.io.fail(res, operation);
    await discard(res);
    const reported = header(res, 'docker-content-digest');
    if (reported !== undefined && reported !== desc.digest) {
      // What was built must be exactly what is served.
      throw new ProtocolError(`${operation}: ${this.io.registry} reports digest ${reported}, the manifest pushed is ${desc.digest}`, {
        code: 'REGISTRY_DIGEST_MISMATCH',
        registry: this.io.registry,
        status: res.status,
      });
    }
    const result: PushResult = { descriptor: desc, skipped: false };
    const subject = header(res, 'oci-subject');
    if (subject !== undefined) {
      result.ociSubject = subject;
      this.client.rememberReferrersApiSupport(this.io.registry, this.io.repository, true);
    }
    return result;
  }

  async delete(desc: Descriptor, options: OperationOptions = {}): Promise<void> {
    checkDescriptor(desc);
    const kind = isManifestMediaType(desc.mediaType) ? 'manifests' : 'blobs';
    const operation = `delete ${kind === 'manifests' ? 'manifest' : 'blob'} ${desc.digest}`;
    const res = await this.io.send(
      {
        method: 'DELETE',
        url: await this.io.url(`${kind}/${desc.digest}`, options.signal),
        idempotent: true,
        scopes: this.io.scopes('delete'),
        signal: options.signal,
      },
      operation,
    );
    if (res.status !== 202 && res.status !== 200 && res.status !== 204) throw await this.io.fail(res, operation);
    await discard(res);
  }

  /**
   * Tags page by page. A registry that ignores `n` and `last` (distribution 2.8 does) gets
   * them applied here: its one unsorted list is sorted, cut after `last`, and handed over in
   * pages of `pageSize`, so the visitor sees the same thing from every registry.
   */
  async tags(visit: PageVisitor<string>, options: TagListOptions = {}): Promise<void> {
    const { pageSize, last, signal } = options;
    if (pageSize !== undefined && (!Number.isInteger(pageSize) || pageSize < 1)) {
      throw new ProtocolError(`pageSize must be a positive integer, got ${pageSize}`, { code: 'USAGE' });
    }
    let url: URL | undefined = await this.io.url('tags/list', signal);
    if (pageSize !== undefined) url.searchParams.set('n', String(pageSize));
    if (last !== undefined) url.searchParams.set('last', last);
    const seen = new Set<string>();
    const limits = this.client.listLimits;
    const budget = new ListBudget('list tags', this.io.registry, limits.maxTagPages, limits.maxTags, 'tags');
    while (url !== undefined) {
      if (seen.has(url.href)) throw new ProtocolError(`${this.io.registry} sent a tag-list link back to a page already read`, { code: 'INVALID_LINK' });
      seen.add(url.href);
      budget.page();
      const operation = 'list tags';
      const res = await this.io.send({ method: 'GET', url, scopes: this.io.scopes('pull'), signal }, operation);
      if (res.status !== 200) throw await this.io.fail(res, operation);
      const next = nextLink(headerValues(res, 'link'), url);
      const body = await this.io.read(res, MAX_TAG_PAGE_BYTES, operation, signal);
      let tags: unknown;
      try {
        tags = body === undefined ? undefined : (JSON.parse(body.toString('utf8')) as { tags?: unknown }).tags;
      } catch {
        tags = undefined;
      }
      if (body === undefined || (tags !== null && (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')))) {
        throw new ProtocolError(`${operation}: ${this.io.registry} answered something that is not a tag list`, {
          code: 'INVALID_TAG_LIST',
          registry: this.io.registry,
        });
      }
      let page = (tags ?? []) as string[];
      budget.add(page.length);
      if (next === undefined) page = [...page].sort();
      if (last !== undefined) page = page.filter((t) => t > last);
      const size = pageSize ?? Math.max(page.length, 1);
      for (let i = 0; i < page.length; i += size) {
        if ((await visit(page.slice(i, i + size))) === false) return;
      }
      url = next;
    }
  }

  async referrers(subject: Descriptor, visit: PageVisitor<Descriptor>, options: ReferrersOptions = {}): Promise<void> {
    checkDescriptor(subject);
    const { artifactType, signal } = options;
    if (this.client.referrersApiSupport(this.io.registry, this.io.repository) !== false) {
      let url: URL | undefined = await this.io.url(`referrers/${subject.digest}`, signal);
      if (artifactType !== undefined) url.searchParams.set('artifactType', artifactType);
      const seen = new Set<string>();
      const limits = this.client.listLimits;
      const budget = new ListBudget(`list referrers of ${subject.digest}`, this.io.registry, limits.maxReferrerPages, limits.maxReferrers, 'referrers');
      while (url !== undefined) {
        if (seen.has(url.href)) throw new ProtocolError(`${this.io.registry} sent a referrers link back to a page already read`, { code: 'INVALID_LINK' });
        seen.add(url.href);
        budget.page();
        const res = await this.referrersRequest(url, signal);
        if (res === 'unsupported') break;
        if (res === 'empty') return;
        const operation = `list referrers of ${subject.digest}`;
        const next = nextLink(headerValues(res, 'link'), url);
        const filtered = headerValues(res, 'oci-filters-applied')
          .flatMap((v) => v.split(','))
          .some((f) => f.trim() === 'artifactType');
        const body = await this.io.read(res, MAX_MANIFEST_BYTES, operation, signal);
        if (body === undefined) throw new ProtocolError(`${operation}: a page is larger than ${MAX_MANIFEST_BYTES} bytes`, { code: 'INDEX_TOO_LARGE' });
        const listed = indexManifests(body, operation);
        budget.add(listed.length);
        const page = filterByArtifactType(listed, filtered ? undefined : artifactType);
        if (page.length > 0 && (await visit(page)) === false) return;
        url = next;
      }
      if (url === undefined) return;
    }
    // No Referrers API: the referrers tag schema, an image index under `<alg>-<hex>`.
    let fetched: FetchedManifest;
    try {
      fetched = await this.getManifest(referrersTag(subject.digest), MediaType.ImageIndex, signal);
    } catch (err) {
      if (err instanceof NotFoundError) return;
      throw err;
    }
    const page = filterByArtifactType(indexManifests(fetched.bytes, `referrers tag of ${subject.digest}`), artifactType);
    if (page.length > 0) await visit(page);
  }

  async referrersApiSupported(options: OperationOptions = {}): Promise<boolean> {
    const known = this.client.referrersApiSupport(this.io.registry, this.io.repository);
    if (known !== undefined) return known;
    // Any digest will do: a registry with the API answers 200 (an empty index) for every subject.
    const res = await this.referrersRequest(await this.io.url(`referrers/${EMPTY_JSON_DIGEST}`, options.signal), options.signal);
    if (res === 'unsupported') return false;
    if (res !== 'empty') await discard(res);
    this.client.rememberReferrersApiSupport(this.io.registry, this.io.repository, true);
    return true;
  }

  // ---- internals ----

  /**
   * GET of a referrers URL: the 200 response, 'unsupported' (a 404 that is not the API's own
   * "unknown manifest" answer; remembered for this repository), or 'empty' (the API exists
   * but says the subject is unknown).
   */
  private async referrersRequest(url: URL, signal?: AbortSignal): Promise<HttpResponse | 'unsupported' | 'empty'> {
    const operation = 'list referrers';
    const res = await this.io.send({ method: 'GET', url, headers: { accept: MediaType.ImageIndex }, scopes: this.io.scopes('pull'), signal }, operation);
    if (res.status === 200) {
      this.client.rememberReferrersApiSupport(this.io.registry, this.io.repository, true);
      return res;
    }
    if (res.status !== 404) throw await this.io.fail(res, operation);
    const codes = parseErrorBody(await readLimited(res.body, 64 * 1024).catch(() => undefined)).map((e) => e.code);
    if (codes.includes('MANIFEST_UNKNOWN') || codes.includes('NAME_UNKNOWN')) return 'empty';
    this.client.rememberReferrersApiSupport(this.io.registry, this.io.repository, false);
    return 'unsupported';
  }

  /** HEAD of a manifest → its descriptor; undefined when the answer lacks what a descriptor needs. */
  private async headManifest(reference: string, mediaType: string | undefined, signal?: AbortSignal): Promise<Descriptor | undefined> {
    const operation = `resolve ${reference}`;
    const res = await this.io.send(
      {
        method: 'HEAD',
        url: await this.io.url(`manifests/${reference}`, signal),
        headers: { accept: acceptFor(mediaType) },
        scopes: this.io.scopes('pull'),
        signal,
      },
      operation,
    );
    if (res.status !== 200) throw await this.io.fail(res, operation);
    await discard(res);
    const reported = header(res, 'docker-content-digest');
    const length = Number(header(res, 'content-length'));
    const type = mediaTypeOf(res);
    if (isDigest(reference) && reported !== undefined && reported !== reference) {
      throw new ProtocolError(`${operation}: ${this.io.registry} reports digest ${reported} for ${reference}`, {
        code: 'REGISTRY_DIGEST_MISMATCH',
        registry: this.io.registry,
      });
    }
    const digest = isDigest(reference) ? reference : reported;
    if (digest === undefined || !isDigest(digest) || !Number.isSafeInteger(length) || length < 0 || type === undefined || !isManifestMediaType(type)) {
      return undefined;
    }
    if (length > MAX_MANIFEST_BYTES) {
      throw new ProtocolError(`${operation}: the manifest is ${length} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`, {
        code: 'MANIFEST_TOO_LARGE',
        registry: this.io.registry,
      });
    }
    return { mediaType: type, digest, size: length };
  }

  /** GET of a manifest: exact bytes, capped, and verified against the digest. */
  private async getManifest(reference: string, mediaType: string | undefined, signal?: AbortSignal): Promise<FetchedManifest> {
    const operation = `fetch manifest ${reference}`;
    const res = await this.io.send(
      {
        method: 'GET',
        url: await this.io.url(`manifests/${reference}`, signal),
        headers: { accept: acceptFor(mediaType) },
        scopes: this.io.scopes('pull'),
        signal,
      },
      operation,
    );
    if (res.status !== 200) throw await this.io.fail(res, operation);
    const tooLarge = (): CommsError =>
      new ProtocolError(`${operation}: the manifest is larger than the ${MAX_MANIFEST_BYTES} bytes allowed`, {
        code: 'MANIFEST_TOO_LARGE',
        registry: this.io.registry,
      });
    const length = Number(header(res, 'content-length'));
    if (Number.isFinite(length) && length > MAX_MANIFEST_BYTES) {
      res.body.destroy();
      throw tooLarge();
    }
    const bytes = await this.io.read(res, MAX_MANIFEST_BYTES, operation, signal);
    if (bytes === undefined) throw tooLarge();
    const reported = header(res, 'docker-content-digest');
    // Hash with the algorithm the reference (or else the registry) names; sha256 otherwise.
    const named = isDigest(reference) ? reference : reported !== undefined && isDigest(reported) ? reported : undefined;
    const algorithm = named === undefined ? 'sha256' : parseDigest(named).algorithm;
    const computed = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
    if (isDigest(reference) && computed !== reference) {
      throw new DigestMismatchError(`${operation}: ${this.io.registry} served bytes whose digest is ${computed}`, { registry: this.io.registry });
    }
    if (reported !== undefined && reported !== computed) {
      throw new DigestMismatchError(`${operation}: ${this.io.registry} says ${reported}, the bytes it served hash to ${computed}`, {
        registry: this.io.registry,
      });
    }
    let type = mediaTypeOf(res);
    if (type === undefined || !isManifestMediaType(type)) {
      try {
        const declared = (JSON.parse(new TextDecoder().decode(bytes)) as { mediaType?: unknown }).mediaType;
        if (typeof declared === 'string') type = declared;
      } catch {
        // Not JSON: the Content-Type is all there is.
      }
    }
    return { descriptor: { mediaType: type ?? 'application/octet-stream', digest: computed, size: bytes.length }, bytes };
  }
}
