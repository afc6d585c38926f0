/**
 * The blob upload endpoints: `POST /v2/<name>/blobs/uploads/` (start a session, a monolithic
 * upload with `?digest=`, or a cross-repository mount with `?mount=&from=`), and on the session
 * URL `PATCH` (a chunk, with or without Content-Range), `PUT ?digest=` (optional last chunk, then
 * commit), `GET` (status) and `DELETE` (cancel).
 *
 * Commit order: the digest is computed over everything received and compared with the one the
 * client claims BEFORE anything enters the repository; only then is the file handed to the layout
 * store, which links it into its temp folder, verifies it again and renames it into place.
 */
import { parseDigest } from '../oci/digest.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import { RegistryHttpError, toRegistryError } from './errors.ts';
import type { RequestContext } from './context.ts';
import { bodyChunks, bodyTimeout, drainBody, sendEmpty, type Headers } from './http.ts';
import { blobSize } from './repositories.ts';
import { checkDigest, checkRepositoryName } from './routes.ts';
import type { UploadSession } from './uploads.ts';

const OCTET = 'application/octet-stream';

function uploadUrl(name: string, id: string): string {
  return `/v2/${name}/blobs/uploads/${id}`;
}

/** The Range an upload reports: inclusive `0-<last byte>`, and `0-0` for nothing yet (as distribution does). */
function rangeOf(size: number): string {
  return `0-${Math.max(0, size - 1)}`;
}

function sessionHeaders(session: UploadSession, size: number): Headers {
  return {
    location: uploadUrl(session.name, session.id),
    range: rangeOf(size),
    'docker-upload-uuid': session.id,
    'blob-upload-session-id': session.id,
  };
}

function blobCreatedHeaders(name: string, digest: string): Headers {
  return { location: `/v2/${name}/blobs/${digest}`, 'docker-content-digest': digest };
}

/**
 * `Content-Range: <start>-<end>` (inclusive; `bytes ` / `bytes=` prefixes and a `/<total>`
 * suffix tolerated). Undefined when absent; 416 with the session's Range when malformed or when
 * it does not start where the upload stands.
 */
function chunkRange(ctx: RequestContext, session: UploadSession, size: number): { length: number } | undefined {
  const header = ctx.req.headers['content-range'];
  if (header === undefined) return undefined;
  const m = /^\s*(?:bytes[ =])?\s*(\d{1,15})-(\d{1,15})(?:\/(?:\d+|\*))?\s*$/i.exec(header);
  const start = m === null ? NaN : Number(m[1]);
  const end = m === null ? NaN : Number(m[2]);
  if (m === null || end < start || start !== size) {
    const why =
      m === null || end < start
        ? `malformed Content-Range ${JSON.stringify(header.slice(0, 100))}`
        : `the chunk starts at ${start} but the upload holds ${size} bytes`;
    throw new RegistryHttpError('BLOB_UPLOAD_INVALID', why, { status: 416, headers: sessionHeaders(session, size) as Record<string, string> });
  }
  const length = end - start + 1;
  const declared = ctx.req.headers['content-length'];
  if (declared !== undefined && Number(declared) !== length) {
    throw new RegistryHttpError('SIZE_INVALID', `Content-Length ${declared} differs from the Content-Range length ${length}`);
  }
  return { length };
}

/** Whether the request carries a body at all (Content-Length > 0, or chunked). */
function hasBody(ctx: RequestContext): boolean {
  const len = ctx.req.headers['content-length'];
  if (len !== undefined) return Number(len) > 0;
  return ctx.req.headers['transfer-encoding'] !== undefined;
}

async function appendChunk(ctx: RequestContext, session: UploadSession): Promise<number> {
  const size = await ctx.uploads.size(session);
  const range = chunkRange(ctx, session, size);
  if (!hasBody(ctx) && range === undefined) return size;
  // Refused before a byte is read when the announced length already crosses the limit.
  const declared = range?.length ?? Number(ctx.req.headers['content-length'] ?? 0);
  if (Number.isFinite(declared)) ctx.uploads.checkSize(size + declared);
  return ctx.uploads.append(session, bodyChunks(ctx.req, ctx.bodyIdleMs, bodyTimeout('BLOB_UPLOAD_INVALID', ctx.bodyIdleMs)), range?.length);
}

/**
 * Verifies the session's content against `digest` and moves it into repository `name`. On a
 * mismatch the session is dropped (the spec treats a 4xx as the end of the upload) and nothing
 * reaches the repository.
 */
async function commit(ctx: RequestContext, session: UploadSession, digest: string): Promise<void> {
  const { algorithm } = parseDigest(digest);
  const got = await ctx.uploads.digest(session, algorithm);
  if (got.digest !== digest) {
    await ctx.uploads.remove(session);
    throw new RegistryHttpError('DIGEST_INVALID', `the uploaded content (${got.size} bytes) has digest ${got.digest}, not ${digest}`, { detail: { digest } });
  }
  const layout = await ctx.repos.getOrCreate(session.name);
  const desc: Descriptor = { mediaType: OCTET, digest, size: got.size };
  try {
    // Hard-linked into the store when possible (no copy); the session file is never written again.
    await layout.pushFile(desc, session.dataPath, { signal: ctx.signal });
  } catch (err) {
    throw toRegistryError(err, 'BLOB_UPLOAD_INVALID');
  }
  await ctx.uploads.remove(session);
}

/** `POST /v2/<name>/blobs/uploads/[?digest=|?mount=&from=]` */
export async function handleUploadStart(ctx: RequestContext, name: string): Promise<void> {
  const mount = ctx.query.get('mount');
  const from = ctx.query.get('from');
  if (mount !== null && from !== null && (await tryMount(ctx, name, mount, from))) {
    await drainBody(ctx.req, ctx.bodyIdleMs);
    sendEmpty(ctx.res, 201, blobCreatedHeaders(name, mount));
    return;
  }
  const digest = ctx.query.get('digest');
  if (digest !== null) checkDigest(digest);
  const session = await ctx.uploads.create(name);
  if (digest === null) {
    await drainBody(ctx.req, ctx.bodyIdleMs);
    sendEmpty(ctx.res, 202, sessionHeaders(session, 0));
    return;
  }
  // Monolithic: the body is the whole blob.
  try {
    await ctx.uploads.exclusive(session, async () => {
      await appendChunk(ctx, session);
      await commit(ctx, session, digest);
    });
  } catch (err) {
    await ctx.uploads.remove(session);
    throw err;
  }
  sendEmpty(ctx.res, 201, blobCreatedHeaders(name, digest));
}

/**
 * A mount succeeds when `from` is a valid, existing repository holding `digest`; the blob is then
 * copied into `name` through the layout store (verified on the way). Any invalid argument or
 * absent blob means "no mount": the caller falls back to a normal upload session, as the spec says.
 */
async function tryMount(ctx: RequestContext, name: string, digest: string, from: string): Promise<boolean> {
  try {
    checkDigest(digest);
    checkRepositoryName(from);
  } catch (err) {
    if (err instanceof RegistryHttpError) return false;
    throw err;
  }
  const source = await ctx.repos.find(from);
  if (source === undefined) return false;
  const size = await blobSize(source, digest);
  if (size === undefined) return false;
  const desc: Descriptor = { mediaType: OCTET, digest, size };
  const target = await ctx.repos.getOrCreate(name);
  if (from === name || (await blobSize(target, digest)) === size) return true;
  try {
    await target.push(desc, await source.fetch(desc, { signal: ctx.signal }), { signal: ctx.signal });
  } catch (err) {
    throw toRegistryError(err, 'BLOB_UNKNOWN');
  }
  return true;
}

/** `PATCH|PUT|GET|DELETE /v2/<name>/blobs/uploads/<id>` */
export async function handleUpload(ctx: RequestContext, name: string, id: string): Promise<void> {
  const session = await ctx.uploads.get(name, id);
  switch (ctx.req.method) {
    case 'GET': {
      const size = await ctx.uploads.exclusive(session, () => ctx.uploads.size(session));
      sendEmpty(ctx.res, 204, sessionHeaders(session, size));
      return;
    }
    case 'DELETE':
      await ctx.uploads.exclusive(session, () => ctx.uploads.remove(session));
      sendEmpty(ctx.res, 204);
      return;
    case 'PATCH': {
      const size = await ctx.uploads.exclusive(session, () => appendChunk(ctx, session));
      sendEmpty(ctx.res, 202, sessionHeaders(session, size));
      return;
    }
    case 'PUT': {
      const digest = ctx.query.get('digest');
      if (digest === null) throw new RegistryHttpError('DIGEST_INVALID', 'completing an upload needs ?digest=<digest>');
      checkDigest(digest);
      await ctx.uploads.exclusive(session, async () => {
        await appendChunk(ctx, session);
        await commit(ctx, session, digest);
      });
      sendEmpty(ctx.res, 201, blobCreatedHeaders(name, digest));
      return;
    }
    default:
      throw new RegistryHttpError('UNSUPPORTED', `${ctx.req.method} is not supported on an upload session`);
  }
}
