/**
 * What a RemoteRepository needs from the client it was opened on: the shared HTTP stack, the
 * endpoint of its registry, transfer settings, and the remembered Referrers API support. An
 * interface of its own, so the repository does not import the client that creates it.
 */
import type { HttpRequest, HttpResponse } from './http.ts';
import type { ListLimits } from './list-limits.ts';
import type { RetryPolicy } from './retry.ts';

export interface RepositoryClient {
  readonly retry: RetryPolicy;
  readonly chunkSize: number;
  readonly monolithicMaxBytes: number;
  /** The idle timeout of one request (ms), named in timeout errors. */
  readonly timeoutMs: number;
  /** Bounds on tag and referrers listings. */
  readonly listLimits: Readonly<ListLimits>;
  /** The base URL (`scheme://host[:port]`) requests to `registry` go to. */
  endpoint(registry: string, signal?: AbortSignal): Promise<URL>;
  /** Sends `req` to `registry` through retry, auth and redirect. */
  send(registry: string, req: HttpRequest, operation: string): Promise<HttpResponse>;
  /** The remembered Referrers API support of `registry/repository` (undefined: not yet known). */
  referrersApiSupport(registry: string, repository: string): boolean | undefined;
  rememberReferrersApiSupport(registry: string, repository: string, supported: boolean): void;
}
