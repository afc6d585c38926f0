/**
 * What the blob, manifest, tag and referrer operations of one remote repository need from the
 * client: URLs under `/v2/<name>/`, a Send with errors already typed, and the tuning knobs.
 */
import type { CommsError } from '../../errors.ts';
import type { HttpRequest, HttpResponse } from './http.ts';
import type { RetryPolicy } from './retry.ts';

export interface RepoIO {
  readonly registry: string;
  readonly repository: string;
  /** `<scheme>://<host>/v2/<repository>/<path>`. */
  url(path: string, signal?: AbortSignal): Promise<URL>;
  /** Sends through retry/auth/redirect; connection failures come back as typed CommsErrors. */
  send(req: Omit<HttpRequest, 'repository'>, operation: string): Promise<HttpResponse>;
  /** Reads a response body up to `limit` bytes (undefined beyond); a dropped connection becomes a typed error. */
  read(res: HttpResponse, limit: number, operation: string, signal?: AbortSignal): Promise<Buffer | undefined>;
  /** The typed error for an unexpected response (its body is read and released). */
  fail(res: HttpResponse, operation: string): Promise<CommsError>;
  /** Token scopes for this repository (`repository:<name>:<actions>`). */
  scopes(...actions: ('pull' | 'push' | 'delete')[]): string[];
  readonly retry: RetryPolicy;
  /** The idle timeout of one request (ms). */
  readonly timeoutMs: number;
  readonly chunkSize: number;
  readonly monolithicMaxBytes: number;
}
