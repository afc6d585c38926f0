/** What every endpoint handler is given: the request, the response, and the server's stores. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RepositoryStore } from './repositories.ts';
import type { UploadStore } from './uploads.ts';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  query: URLSearchParams;
  repos: RepositoryStore;
  uploads: UploadStore;
  maxManifestBytes: number;
  /** A request body on which no byte arrives for this long is cut off with 408. */
  bodyIdleMs: number;
  /** Aborted when the client goes away or the server shuts down. */
  signal: AbortSignal;
}

/** Largest page the tag list and referrers endpoints return, whatever `n` asks for. */
export const MAX_PAGE = 1000;
