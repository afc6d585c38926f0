/**
 * Maps a raw request path onto a registry endpoint. The path is never percent-decoded or
 * normalised: a name, digest, tag or upload id never contains '%' or '..', so anything that
 * needs decoding is simply invalid — which is what keeps `../` and `%2e%2e` out of the store.
 */
import { InvalidReferenceError } from '../errors.ts';
import { parseDigest } from '../oci/digest.ts';
import { validateRepositoryName, validateTag } from '../oci/reference.ts';
import { RegistryHttpError } from './errors.ts';

export type Route =
  | { kind: 'ping' }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'manifest'; name: string; reference: string; isDigest: boolean }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string };

/**
 * Path components a nested repository may not use, because a repository `a` is the image-layout
 * folder `<root>/a/` and these are the layout's own entries in it: `a/blobs` would otherwise be
 * a repository living inside `a`'s blob store. (The layout's `.tmp` cannot be a name component.)
 */
export const RESERVED_COMPONENTS: ReadonlySet<string> = new Set([
  'blobs',
  'referrers',
  'index.json',
  'index.json.journal',
  'index.json.lock',
  'index.json.lock.break',
  'oci-layout',
]);

/** Session ids are the UUIDs this server hands out; anything else cannot name a session. */
const UPLOAD_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const PATTERNS: { re: RegExp; make: (name: string, arg: string) => Route }[] = [
  { re: /^(.+)\/blobs\/uploads\/?$/, make: (name) => ({ kind: 'uploads', name }) },
  { re: /^(.+)\/blobs\/uploads\/([^/]+)$/, make: (name, id) => ({ kind: 'upload', name, id }) },
  { re: /^(.+)\/blobs\/([^/]+)$/, make: (name, digest) => ({ kind: 'blob', name, digest }) },
  { re: /^(.+)\/manifests\/([^/]+)$/, make: (name, reference) => ({ kind: 'manifest', name, reference, isDigest: reference.includes(':') }) },
  { re: /^(.+)\/tags\/list$/, make: (name) => ({ kind: 'tags', name }) },
  { re: /^(.+)\/referrers\/([^/]+)$/, make: (name, digest) => ({ kind: 'referrers', name, digest }) },
];

/** Throws NAME_INVALID unless `name` is a valid repository name that maps onto its own folder. */
export function checkRepositoryName(name: string): void {
  try {
    validateRepositoryName(name);
  } catch (err) {
    if (err instanceof InvalidReferenceError) throw new RegistryHttpError('NAME_INVALID', err.message, { detail: { name: name.slice(0, 300) }, cause: err });
    throw err;
  }
  const components = name.split('/');
  for (const c of components.slice(1)) {
    if (RESERVED_COMPONENTS.has(c)) {
      throw new RegistryHttpError('NAME_INVALID', `invalid repository name ${JSON.stringify(name)}: a nested path component may not be ${JSON.stringify(c)}`, {
        detail: { name },
      });
    }
  }
}

/** Throws DIGEST_INVALID unless `digest` is a well-formed digest of a supported algorithm. */
export function checkDigest(digest: string): void {
  try {
    parseDigest(digest);
  } catch (err) {
    if (err instanceof InvalidReferenceError)
      throw new RegistryHttpError('DIGEST_INVALID', err.message, { detail: { digest: digest.slice(0, 300) }, cause: err });
    throw err;
  }
}

/**
 * Throws unless `tag` matches the tag grammar: MANIFEST_INVALID when a manifest is being pushed
 * under it (PUT), else MANIFEST_UNKNOWN (404) — no manifest can be known by a name that cannot be
 * a tag, and MANIFEST_INVALID is the code for a bad manifest body, not a bad reference.
 */
export function checkTag(tag: string, method: string): void {
  try {
    validateTag(tag);
  } catch (err) {
    if (!(err instanceof InvalidReferenceError)) throw err;
    const detail = { tag: tag.slice(0, 300) };
    if (method === 'PUT') throw new RegistryHttpError('MANIFEST_INVALID', err.message, { detail, cause: err });
    throw new RegistryHttpError('MANIFEST_UNKNOWN', `manifest unknown: ${err.message}`, { detail, cause: err });
  }
}

/**
 * The endpoint of `rawPath` (the request target before `?`) for a request of `method`, with its
 * name, digest, tag or upload id already validated; undefined when no endpoint has this shape (→ 404).
 */
export function parseRoute(rawPath: string, method: string): Route | undefined {
  if (rawPath === '/v2/' || rawPath === '/v2') return { kind: 'ping' };
  if (!rawPath.startsWith('/v2/')) return undefined;
  const tail = rawPath.slice(4);
  for (const { re, make } of PATTERNS) {
    const m = re.exec(tail);
    if (m === null) continue;
    const name = m[1] as string;
    checkRepositoryName(name);
    const route = make(name, m[2] ?? '');
    switch (route.kind) {
      case 'blob':
      case 'referrers':
        checkDigest(route.digest);
        break;
      case 'manifest':
        if (route.isDigest) checkDigest(route.reference);
        else checkTag(route.reference, method);
        break;
      case 'upload':
        if (!UPLOAD_ID_RE.test(route.id)) throw new RegistryHttpError('BLOB_UPLOAD_UNKNOWN', 'no such upload session');
        break;
      default:
        break;
    }
    return route;
  }
  return undefined;
}
