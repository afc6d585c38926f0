/**
 * The `Link: <url>; rel="next"` header (RFC 8288) that paginates tag and referrer lists. The
 * URL is usually relative to the registry (`/v2/<name>/tags/list?last=…&n=…`).
 */
import { ProtocolError } from '../../errors.ts';

/** The `rel="next"` target among `values`, resolved against `base`; undefined when there is none. */
export function nextLink(values: string[], base: URL): URL | undefined {
  for (const value of values) {
    // Several links may share one header; a URL cannot contain '>' so splitting on it is safe.
    for (const m of value.matchAll(/<([^>]*)>\s*((?:;\s*[^;,]*)*)/g)) {
      const params = m[2] ?? '';
      const rels = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(params);
      const rel = (rels?.[1] ?? rels?.[2] ?? '').toLowerCase().split(/\s+/);
      if (!rel.includes('next')) continue;
      let url: URL;
      try {
        url = new URL(m[1] ?? '', base);
      } catch (cause) {
        throw new ProtocolError(`${base.host} sent an invalid Link header`, { code: 'INVALID_LINK', cause });
      }
      if (url.origin !== base.origin) {
        throw new ProtocolError(`${base.host} sent a next-page link to another origin (${url.host})`, { code: 'INVALID_LINK' });
      }
      return url;
    }
  }
  return undefined;
}
