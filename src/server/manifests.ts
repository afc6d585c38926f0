/**
 * `PUT|GET|HEAD|DELETE /v2/<name>/manifests/<tag|digest>`.
 *
 * PUT checks everything before the layout store sees the manifest: a manifest Content-Type, the
 * size cap (413), JSON and descriptor form (MANIFEST_INVALID), the body's digest against a digest
 * reference (DIGEST_INVALID), and that every referenced blob or child manifest is in the
 * repository (MANIFEST_BLOB_UNKNOWN). A `subject` may be absent; the answer carries `OCI-Subject`
 * because the layout store indexes every referrer it stores.
 */
import { createHash } from 'node:crypto';
import { parseDigest } from '../oci/digest.ts';
import type { Descriptor } from '../oci/descriptor.ts';
import { isManifestMediaType } from '../oci/mediatypes.ts';
import { RegistryHttpError, toRegistryError } from './errors.ts';
import type { RequestContext } from './context.ts';
import { readBody, sendBytes, sendEmpty } from './http.ts';
import { checkManifest } from './manifest-check.ts';

export async function handleManifest(ctx: RequestContext, name: string, reference: string, isDigest: boolean): Promise<void> {
  switch (ctx.req.method) {
    case 'GET':
    case 'HEAD':
      return getManifest(ctx, name, reference);
    case 'PUT':
      return putManifest(ctx, name, reference, isDigest);
    case 'DELETE':
      return deleteManifest(ctx, name, reference, isDigest);
    default:
      throw new RegistryHttpError('UNSUPPORTED', `${ctx.req.method} is not supported on a manifest`);
  }
}

async function getManifest(ctx: RequestContext, name: string, reference: string): Promise<void> {
  const layout = await ctx.repos.get(name);
  let fetched;
  try {
    fetched = await layout.fetchManifest(reference, { signal: ctx.signal });
  } catch (err) {
    throw toRegistryError(err, 'MANIFEST_UNKNOWN');
  }
  sendBytes(ctx.req, ctx.res, 200, fetched.bytes, {
    'content-type': fetched.descriptor.mediaType,
    'docker-content-digest': fetched.descriptor.digest,
    etag: `"${fetched.descriptor.digest}"`,
  });
}

function contentType(ctx: RequestContext): string {
  const raw = ctx.req.headers['content-type'];
  const type = (raw ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (!isManifestMediaType(type)) {
    throw new RegistryHttpError('MANIFEST_INVALID', `Content-Type ${JSON.stringify(raw ?? '')} is not a manifest media type`);
  }
  return type;
}

async function putManifest(ctx: RequestContext, name: string, reference: string, isDigest: boolean): Promise<void> {
  const mediaType = contentType(ctx);
  const bytes = await readBody(ctx.req, ctx.maxManifestBytes, ctx.bodyIdleMs);
  const checked = checkManifest(bytes, mediaType);
  const algorithm = isDigest ? parseDigest(reference).algorithm : 'sha256';
  const digest = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
  if (isDigest && digest !== reference) {
    throw new RegistryHttpError('DIGEST_INVALID', `the manifest's digest is ${digest}, not ${reference}`, { detail: { digest: reference } });
  }

  // Nothing is created for a manifest that fails its checks: a missing repository has no blobs.
  const layout = await ctx.repos.find(name);
  const missing: RegistryHttpError[] = [];
  for (const d of [...checked.blobs, ...checked.manifests]) {
    if (layout === undefined || !(await layout.exists(d, { signal: ctx.signal }))) {
      missing.push(
        new RegistryHttpError('MANIFEST_BLOB_UNKNOWN', `the manifest references ${d.digest}, which is not in ${name}`, { detail: { digest: d.digest } }),
      );
    }
  }
  if (missing.length > 0) throw RegistryHttpError.combine(missing);
  // Only a manifest that references nothing (an empty index) can reach here without a repository.
  const target = layout ?? (await ctx.repos.getOrCreate(name));
  const desc: Descriptor = { mediaType, digest, size: bytes.length };
  if (checked.artifactType !== undefined) desc.artifactType = checked.artifactType;
  let ociSubject: string | undefined;
  try {
    const result = await target.pushManifest(desc, bytes, isDigest ? undefined : reference, { signal: ctx.signal });
    ociSubject = result.ociSubject ?? checked.subject?.digest;
  } catch (err) {
    throw toRegistryError(err, 'MANIFEST_INVALID');
  }
  const headers: Record<string, string> = { location: `/v2/${name}/manifests/${digest}`, 'docker-content-digest': digest };
  if (ociSubject !== undefined) headers['oci-subject'] = ociSubject;
  sendEmpty(ctx.res, 201, headers);
}

async function deleteManifest(ctx: RequestContext, name: string, reference: string, isDigest: boolean): Promise<void> {
  const layout = await ctx.repos.get(name);
  try {
    if (isDigest) {
      const desc = await layout.resolve(reference, { signal: ctx.signal });
      await layout.delete(desc, { signal: ctx.signal });
      ctx.repos.markDeleted(name);
    } else {
      await layout.untag(reference, { signal: ctx.signal });
    }
  } catch (err) {
    throw toRegistryError(err, 'MANIFEST_UNKNOWN');
  }
  sendEmpty(ctx.res, 202);
}
