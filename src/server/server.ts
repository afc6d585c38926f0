/**
 * `comms serve`: an OCI Distribution Spec v1.1 registry (with the Referrers API) over one OCI
 * image-layout folder per repository under `root`. node:http / node:https, no framework.
 *
 * Safety by default: it listens on loopback unless told otherwise, and refuses a non-loopback
 * address unless both TLS and Basic auth are configured (or `allowInsecurePublic` says to). Every
 * byte that becomes visible in a repository went through the layout store's temp+rename, and
 * uploads in progress live in `<root>/_uploads/`, so killing the server never exposes a partial
 * blob, manifest or index.
 */
import { readFile, mkdir } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIPv6 } from 'node:net';
import { resolve } from 'node:path';
import { CommsError, UsageError } from '../errors.ts';
import { MAX_MANIFEST_BYTES } from '../oci/mediatypes.ts';
import { isLoopbackHost } from '../oci/reference.ts';
import { loadHtpasswd, type BasicAuthenticator } from './auth.ts';
import { handleBlob } from './blobs.ts';
import type { RequestContext } from './context.ts';
import { RegistryHttpError } from './errors.ts';
import { queryOf, sendJson, sendRegistryError } from './http.ts';
import { handleManifest } from './manifests.ts';
import { handleReferrers } from './referrers.ts';
import { RepositoryStore } from './repositories.ts';
import { parseRoute, type Route } from './routes.ts';
import { handleTags } from './tags.ts';
import { handleUpload, handleUploadStart } from './upload-handlers.ts';
import { UploadStore } from './uploads.ts';

export interface ServerOptions {
  /** Folder holding one image layout per repository (`<root>/<name>/`); created when absent. */
  root: string;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default 5000; 0 picks a free one). */
  port?: number;
  /** PEM file paths of the server certificate (chain) and its private key: serve HTTPS. */
  tls?: { cert: string; key: string };
  /** An htpasswd file of bcrypt entries: require HTTP Basic auth for every request. */
  htpasswd?: string;
  /** Listen on a non-loopback address without both TLS and auth. */
  allowInsecurePublic?: boolean;
  /** Largest manifest accepted, in bytes (default and maximum 4 MiB, the layout store's limit). */
  maxManifestBytes?: number;
  /** Upload sessions idle for longer than this are removed (default 24 h). */
  uploadTtlMs?: number;
  /**
   * Blobs nothing refers to any more (after a manifest DELETE) are removed by the periodic sweep
   * once older than this (default one hour: a client uploads blobs before their manifest).
   */
  blobGraceMs?: number;
  /** Open upload sessions one repository may have (default 64); more are refused with 429 TOOMANYREQUESTS. */
  maxUploadSessions?: number;
  /** Open upload sessions of all repositories together (default 1024); 429 beyond. */
  maxUploadSessionsTotal?: number;
  /** Largest blob accepted, in bytes (default 10 GiB); larger uploads are refused with 413 SIZE_INVALID. */
  maxBlobBytes?: number;
  /** A request body on which no byte arrives for this long is cut off with 408 (default 60 s). */
  bodyIdleTimeoutMs?: number;
  /** Receives one line per request and server event; never credentials. */
  log?: (line: string) => void;
}

export interface RunningServer {
  /** `http://127.0.0.1:5000` or `https://…`. */
  url: string;
  host: string;
  port: number;
  /** Stops accepting, lets requests in flight finish for a moment, then closes everything. */
  close(): Promise<void>;
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 5000;
export const DEFAULT_UPLOAD_TTL_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 60 * 1000;
/** How long close() waits for requests in flight before cutting their connections. */
const CLOSE_GRACE_MS = 2000;
const API_VERSION = 'registry/2.0';

function checkOptions(options: ServerOptions): void {
  if (typeof options.root !== 'string' || options.root === '') throw new UsageError('the registry root folder must be given');
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`port ${port} is outside 0-65535`);
  const max = options.maxManifestBytes ?? MAX_MANIFEST_BYTES;
  if (!Number.isInteger(max) || max < 1 || max > MAX_MANIFEST_BYTES) {
    throw new UsageError(`maxManifestBytes must be 1 to ${MAX_MANIFEST_BYTES} (the layout store's limit), got ${max}`);
  }
  const ttl = options.uploadTtlMs ?? DEFAULT_UPLOAD_TTL_MS;
  if (!Number.isFinite(ttl) || ttl <= 0) throw new UsageError(`uploadTtlMs must be positive, got ${ttl}`);
  if ((options.tls?.cert === undefined) !== (options.tls?.key === undefined)) throw new UsageError('TLS needs both a certificate and a key');
  for (const key of ['maxUploadSessions', 'maxUploadSessionsTotal', 'maxBlobBytes', 'bodyIdleTimeoutMs'] as const) {
    const v = options[key];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) throw new UsageError(`${key} must be a positive integer, got ${v}`);
  }
}

/** Refuses to expose an unauthenticated or unencrypted registry beyond this machine by accident. */
export function checkExposure(host: string, options: Pick<ServerOptions, 'tls' | 'htpasswd' | 'allowInsecurePublic'>): void {
  if (isLoopbackHost(host) || options.allowInsecurePublic === true) return;
  const missing = [options.tls === undefined ? 'TLS (tls)' : undefined, options.htpasswd === undefined ? 'authentication (htpasswd)' : undefined].filter(
    (x): x is string => x !== undefined,
  );
  if (missing.length === 0) return;
  throw new UsageError(
    `refusing to listen on ${host}, which is not a loopback address, without ${missing.join(' and ')}: ` +
      'anyone who can reach it could read or overwrite the registry; add them, or set allowInsecurePublic',
    { code: 'INSECURE_LISTEN' },
  );
}

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new UsageError(`cannot read the TLS ${what} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * libuv's thread pool runs every file operation and fsync; with its default 4 threads, a few
 * concurrent pushes waiting on fsync stall every other request's small file operations. It is
 * sized when first used, so this takes effect when the server starts before any other file I/O
 * of the process (the CLI and the standalone entry); an explicit setting is left alone.
 */
export const SERVER_THREADPOOL_SIZE = 16;

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  process.env['UV_THREADPOOL_SIZE'] ??= String(SERVER_THREADPOOL_SIZE);
  checkOptions(options);
  const host = options.host ?? DEFAULT_HOST;
  checkExposure(host, options);
  const log = options.log ?? (() => undefined);
  const auth = options.htpasswd !== undefined ? await loadHtpasswd(options.htpasswd) : undefined;
  const tls = options.tls !== undefined ? { cert: await readPem(options.tls.cert, 'certificate'), key: await readPem(options.tls.key, 'key') } : undefined;

  const root = resolve(options.root);
  await mkdir(root, { recursive: true });
  const uploadTtlMs = options.uploadTtlMs ?? DEFAULT_UPLOAD_TTL_MS;
  const uploads = new UploadStore(root, uploadTtlMs, {
    ...(options.maxUploadSessions !== undefined ? { maxPerRepository: options.maxUploadSessions } : {}),
    ...(options.maxUploadSessionsTotal !== undefined ? { maxTotal: options.maxUploadSessionsTotal } : {}),
    ...(options.maxBlobBytes !== undefined ? { maxBlobBytes: options.maxBlobBytes } : {}),
  });
  await uploads.init();
  await uploads.sweep();
  const repos = new RepositoryStore(root);
  const shutdown = new AbortController();
  const maxManifestBytes = options.maxManifestBytes ?? MAX_MANIFEST_BYTES;
  const bodyIdleMs = options.bodyIdleTimeoutMs ?? DEFAULT_BODY_IDLE_TIMEOUT_MS;

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    serve({ req, res, auth, repos, uploads, maxManifestBytes, bodyIdleMs, shutdown: shutdown.signal, log }).catch((err: unknown) => {
      // Only a failure while answering an error lands here; the connection is all that is left to close.
      log(`failed to answer ${req.method ?? '?'} ${req.url ?? ''}: ${(err as Error)?.message ?? String(err)}`);
      res.destroy();
    });
  };
  const server: Server = tls !== undefined ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler) : createHttpServer(handler);
  // Large blobs take as long as they take; a connection on which nothing moves for 5 minutes is dropped.
  server.requestTimeout = 0;
  server.setTimeout(5 * 60 * 1000);

  await new Promise<void>((resolveListen, rejectListen) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      rejectListen(new CommsError(`cannot listen on ${host}:${options.port ?? DEFAULT_PORT}: ${err.message}`, { code: 'LISTEN_FAILED', cause: err }));
    };
    server.once('error', onError);
    server.listen(options.port ?? DEFAULT_PORT, host, () => {
      server.off('error', onError);
      resolveListen();
    });
  });
  server.on('error', (err) => log(`server error: ${err.message}`));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : (options.port ?? DEFAULT_PORT);
  const url = `${tls !== undefined ? 'https' : 'http'}://${isIPv6(host) ? `[${host}]` : host}:${port}`;

  const sweepEvery = Math.max(1000, Math.min(uploadTtlMs / 2, 15 * 60 * 1000));
  const sweeper = setInterval(() => {
    uploads.sweep().then(
      (n) => n > 0 && log(`removed ${n} file(s) of abandoned uploads`),
      (err: Error) => log(`upload sweep failed: ${err.message}`),
    );
    repos.sweepUnreferencedBlobs(options.blobGraceMs ?? 3_600_000).then(
      (n) => n > 0 && log(`removed ${n} blob(s) nothing refers to any more`),
      (err: Error) => log(`blob sweep failed: ${err.message}`),
    );
  }, sweepEvery);
  sweeper.unref();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((done) => {
      clearInterval(sweeper);
      const timer = setTimeout(() => {
        shutdown.abort();
        server.closeAllConnections();
      }, CLOSE_GRACE_MS);
      timer.unref();
      server.close(() => {
        clearTimeout(timer);
        // Every index journal folded into its index.json: the root is a plain set of OCI layouts again.
        repos.compactAll().then(done, (err: Error) => {
          log(`folding the index journals into index.json failed: ${err.message}`);
          done();
        });
      });
      server.closeIdleConnections();
    });
    return closing;
  };
  log(`listening on ${url}, root ${root}${auth !== undefined ? ', Basic auth' : ''}`);
  return { url, host, port, close };
}

interface ServeState {
  req: IncomingMessage;
  res: ServerResponse;
  auth: BasicAuthenticator | undefined;
  repos: RepositoryStore;
  uploads: UploadStore;
  maxManifestBytes: number;
  bodyIdleMs: number;
  shutdown: AbortSignal;
  log: (line: string) => void;
}

async function serve(state: ServeState): Promise<void> {
  const { req, res, log } = state;
  const started = Date.now();
  const rawUrl = req.url ?? '/';
  const q = rawUrl.indexOf('?');
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const controller = new AbortController();
  const onShutdown = (): void => controller.abort();
  state.shutdown.addEventListener('abort', onShutdown, { once: true });
  res.once('close', () => {
    state.shutdown.removeEventListener('abort', onShutdown);
    // The client went away before the answer was complete: stop whatever works for it.
    if (!res.writableFinished) controller.abort();
    log(`${req.method ?? '?'} ${rawUrl.length > 300 ? `${rawUrl.slice(0, 300)}…` : rawUrl} ${res.statusCode} ${Date.now() - started}ms`);
  });
  res.setHeader('docker-distribution-api-version', API_VERSION);
  try {
    if (state.auth !== undefined && !(await state.auth.check(req.headers.authorization))) {
      throw new RegistryHttpError('UNAUTHORIZED', 'authentication required', { headers: { 'www-authenticate': 'Basic realm="comms"' } });
    }
    const route = parseRoute(path, req.method ?? 'GET');
    if (route === undefined) throw new RegistryHttpError('UNSUPPORTED', `no registry endpoint at ${path.slice(0, 200)}`, { status: 404 });
    const ctx: RequestContext = {
      req,
      res,
      query: queryOf(rawUrl),
      repos: state.repos,
      uploads: state.uploads,
      maxManifestBytes: state.maxManifestBytes,
      bodyIdleMs: state.bodyIdleMs,
      signal: controller.signal,
    };
    await dispatch(ctx, route);
  } catch (err) {
    if (res.headersSent) {
      // Mid-body failure (a corrupt blob, a dropped client): cutting the connection is the only honest answer.
      res.destroy(err instanceof Error ? err : undefined);
      return;
    }
    if (err instanceof RegistryHttpError) {
      sendRegistryError(req, res, err);
      return;
    }
    if (controller.signal.aborted) {
      res.destroy();
      return;
    }
    const busy = err instanceof CommsError && err.code === 'LOCK_TIMEOUT';
    log(`error on ${req.method ?? '?'} ${path.slice(0, 200)}: ${(err as Error)?.message ?? String(err)}`);
    const answer = busy
      ? new RegistryHttpError('TOOMANYREQUESTS', 'the repository is busy; retry', { status: 503, headers: { 'retry-after': '1' } })
      : new RegistryHttpError('UNSUPPORTED', 'internal server error', { status: 500 });
    sendRegistryError(req, res, answer);
  }
}

function allow(ctx: RequestContext, ...methods: string[]): void {
  if (!methods.includes(ctx.req.method ?? '')) {
    throw new RegistryHttpError('UNSUPPORTED', `${ctx.req.method} is not supported here`, { headers: { allow: methods.join(', ') } });
  }
}

async function dispatch(ctx: RequestContext, route: Route): Promise<void> {
  switch (route.kind) {
    case 'ping':
      allow(ctx, 'GET', 'HEAD');
      sendJson(ctx.req, ctx.res, 200, {});
      return;
    case 'blob':
      allow(ctx, 'GET', 'HEAD', 'DELETE');
      return handleBlob(ctx, route.name, route.digest);
    case 'uploads':
      allow(ctx, 'POST');
      return handleUploadStart(ctx, route.name);
    case 'upload':
      allow(ctx, 'GET', 'PATCH', 'PUT', 'DELETE');
      return handleUpload(ctx, route.name, route.id);
    case 'manifest':
      allow(ctx, 'GET', 'HEAD', 'PUT', 'DELETE');
      return handleManifest(ctx, route.name, route.reference, route.isDigest);
    case 'tags':
      allow(ctx, 'GET', 'HEAD');
      return handleTags(ctx, route.name);
    case 'referrers':
      allow(ctx, 'GET', 'HEAD');
      return handleReferrers(ctx, route.name, route.digest);
  }
}
