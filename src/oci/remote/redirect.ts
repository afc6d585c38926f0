/**
 * The redirect layer: registries send blob GETs to object storage (S3, GCS, a CDN) with a
 * 307/302 to a presigned URL. It follows them by hand for GET and HEAD, and drops the
 * Authorization header whenever the next hop is another origin: the registry's token must never
 * reach a third party (and a presigned URL refuses a second credential anyway).
 */
import { ProtocolError } from '../../errors.ts';
import { discard, header, type HttpRequest, type Layer } from './http.ts';

const REDIRECT_STATUS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
export const MAX_REDIRECTS = 5;

export function redirectLayer(maxRedirects = MAX_REDIRECTS): Layer {
  return (next) => async (req) => {
    let current: HttpRequest = req;
    for (let hops = 0; ; hops++) {
      const res = await next(current);
      const location = header(res, 'location');
      const follow = current.followRedirects === true && (current.method === 'GET' || current.method === 'HEAD');
      if (!follow || !REDIRECT_STATUS.has(res.status) || location === undefined) return res;
      await discard(res);
      if (hops >= maxRedirects) {
        throw new ProtocolError(`more than ${maxRedirects} redirects from ${req.url.host}`, { code: 'TOO_MANY_REDIRECTS', status: res.status });
      }
      let target: URL;
      try {
        target = new URL(location, current.url);
      } catch (cause) {
        throw new ProtocolError(`${req.url.host} redirected to an invalid location`, { code: 'INVALID_REDIRECT', cause });
      }
      if (target.protocol !== 'https:' && target.protocol !== 'http:') {
        throw new ProtocolError(`${req.url.host} redirected to a ${target.protocol} URL`, { code: 'INVALID_REDIRECT' });
      }
      // An HTTPS registry must not be walked down to plain HTTP by a redirect.
      if (current.url.protocol === 'https:' && target.protocol === 'http:') {
        throw new ProtocolError(`${req.url.host} redirected from HTTPS to plain HTTP`, { code: 'INVALID_REDIRECT' });
      }
      const headers = { ...current.headers };
      if (target.origin !== current.url.origin) delete headers.authorization;
      current = { ...current, url: target, headers };
    }
  };
}
