/** `GET /v2/<name>/tags/list?n=&last=`: tags in lexical order, paginated with a `Link` header. */
import { RegistryHttpError } from './errors.ts';
import { MAX_PAGE, type RequestContext } from './context.ts';
import { nextLink, pageSize, sendJson } from './http.ts';

export async function handleTags(ctx: RequestContext, name: string): Promise<void> {
  if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') throw new RegistryHttpError('UNSUPPORTED', `${ctx.req.method} is not supported on the tag list`);
  const n = pageSize(ctx.query.get('n'), MAX_PAGE);
  const last = ctx.query.get('last') ?? undefined;
  const layout = await ctx.repos.get(name);
  // One more than the page, to know whether a next page exists.
  const found: string[] = [];
  if (n > 0) {
    await layout.tags(
      (page) => {
        found.push(...page);
        return found.length <= n;
      },
      { pageSize: n + 1, signal: ctx.signal, ...(last !== undefined ? { last } : {}) },
    );
  }
  const tags = found.slice(0, n);
  const headers: Record<string, string> = {};
  if (found.length > n) headers['link'] = nextLink(`/v2/${name}/tags/list`, { n: String(n), last: tags.at(-1) });
  sendJson(ctx.req, ctx.res, 200, { name, tags }, headers);
}
