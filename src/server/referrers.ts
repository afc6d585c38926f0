/**
 * `GET /v2/<name>/referrers/<digest>[?artifactType=&n=&last=]`: an image index of the
 * descriptors of every manifest whose `subject` is `<digest>` (from the layout's referrers
 * index), sorted by digest. Pages are cut at `n` (capped by the server); the cursor of the next
 * page is the last digest returned (`last=`), carried in the `Link` header. An unknown subject,
 * or a repository that does not exist yet, answers 200 with an empty index, as the spec says.
 */
import { referrerDescriptor, type Descriptor } from '../oci/descriptor.ts';
import { MediaType } from '../oci/mediatypes.ts';
import { RegistryHttpError } from './errors.ts';
import { MAX_PAGE, type RequestContext } from './context.ts';
import { nextLink, pageSize, sendBytes } from './http.ts';

export async function handleReferrers(ctx: RequestContext, name: string, digest: string): Promise<void> {
  if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') throw new RegistryHttpError('UNSUPPORTED', `${ctx.req.method} is not supported on referrers`);
  const n = pageSize(ctx.query.get('n'), MAX_PAGE);
  const last = ctx.query.get('last') ?? undefined;
  const artifactType = ctx.query.get('artifactType') || undefined;

  const all: Descriptor[] = [];
  const layout = await ctx.repos.find(name);
  if (layout !== undefined) {
    await layout.referrers(
      { mediaType: MediaType.ImageManifest, digest, size: 0 },
      (page) => {
        all.push(...page);
      },
      { signal: ctx.signal, ...(artifactType !== undefined ? { artifactType } : {}) },
    );
  }
  all.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  const after = last === undefined ? all : all.filter((d) => d.digest > last);
  const page = after.slice(0, n);

  const headers: Record<string, string> = { 'content-type': MediaType.ImageIndex };
  if (artifactType !== undefined) headers['oci-filters-applied'] = 'artifactType';
  if (after.length > page.length && page.length > 0) {
    headers['link'] = nextLink(`/v2/${name}/referrers/${digest}`, { n: String(n), last: page.at(-1)?.digest, artifactType });
  }
  const index = { schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: page.map((d) => referrerDescriptor(d, d)) };
  sendBytes(ctx.req, ctx.res, 200, JSON.stringify(index), headers);
}
