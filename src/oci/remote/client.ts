/**
 * RegistryClient: what several repositories on the same registries share — the undici Agent
 * (keep-alive pools, a bounded number of connections per origin, TLS trust), the scheme chosen
 * per registry, the credential store, the token cache and the referrers-support cache — and the
 * layered Send each request goes through: retry → auth → redirect → transport.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../../errors.ts';
import type { CredentialStore } from '../auth/credentials.ts';
import { isLoopbackHost, parseReference, registryEndpointHost, type Reference } from '../reference.ts';
import { authLayer } from './auth.ts';
import { isCertificateError, networkError } from './error-map.ts';
import { compose, discard, type HttpRequest, type HttpResponse, type Send } from './http.ts';
import { DEFAULT_LIST_LIMITS, type ListLimits } from './list-limits.ts';
import { redirectLayer } from './redirect.ts';
import { DEFAULT_RETRY, DEFAULT_TIMEOUT_MS, retryLayer, type RetryPolicy } from './retry.ts';
import { findErrorCode } from '../../util/error-code.ts';
import { RemoteRepository } from './repository.ts';
import type { RepositoryClient } from './repository-client.ts';
import { TokenCache } from './token-cache.ts';
import { Agent } from './undici-parts.ts';
import { undiciTransport, type RequestEvent } from './transport.ts';

export type { RequestEvent } from './transport.ts';

export interface ClientOptions {
  /** Where credentials come from; default none (anonymous, plus whatever a token realm grants). */
  credentials?: CredentialStore;
  /**
   * true: plain HTTP. false: HTTPS. Unset: HTTPS, except for a loopback registry, where the
   * client tries HTTPS first and falls back to plain HTTP when the server does not speak TLS.
   */
  plainHttp?: boolean;
  /** Skip TLS certificate verification (only when asked). */
  insecure?: boolean;
  /** A PEM file of CA certificates trusted in addition to the system's. */
  caFile?: string;
  userAgent?: string;
  /** Parallel connections per registry origin (default 8). */
  maxConcurrency?: number;
  /**
   * Retries of transient failures (429, 502-504, 500 on reads, dropped connections): attempts in
   * all, the first back-off delay and its ceiling. Defaults: DEFAULT_RETRY (5 attempts, 200 ms
   * doubling with full jitter, at most 10 s). `maxAttempts: 1` disables retries.
   */
  retry?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  /** Called once per HTTP exchange (tests count requests with it; `--verbose` prints it). */
  onRequest?: (e: RequestEvent) => void;
  /** Bytes per PATCH of a chunked blob upload (default 8 MiB; raised to the registry's minimum). */
  chunkSize?: number;
  /** Blobs up to this size are uploaded in one PUT from memory (default 4 MiB). */
  monolithicMaxBytes?: number;
  /** Bounds on tag and referrers listings (defaults: DEFAULT_LIST_LIMITS). */
  listLimits?: Partial<ListLimits>;
  /**
   * The idle timeout of one request, in ms (default 30 s): connecting, waiting for the answer's
   * headers, and between two pieces of its body. A request that stays silent that long is tried
   * again once (downloads resume), then fails (IDLE_TIMEOUT); a transfer that keeps moving is
   * never cut, however long it takes.
   */
  timeoutMs?: number;
}

export const DEFAULT_MAX_CONCURRENCY = 8;
export { DEFAULT_TIMEOUT_MS };
export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;
export const DEFAULT_MONOLITHIC_MAX_BYTES = 4 * 1024 * 1024;
const DEFAULT_USER_AGENT = 'comms (+https://github.com/opencontainers/distribution-spec)';

/** Error codes meaning "the server answered the TLS hello with something that is not TLS". */
const NOT_TLS_CODES: ReadonlySet<string> = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_HTTP_REQUEST',
  'EPROTO',
  'ECONNRESET',
  'UND_ERR_SOCKET',
]);

interface RegistryState {
  ready: Promise<{ base: URL; send: Send }>;
}

export class RegistryClient implements RepositoryClient {
  readonly options: Readonly<ClientOptions>;
  readonly tokens = new TokenCache();
  readonly retry: RetryPolicy;
  readonly chunkSize: number;
  readonly monolithicMaxBytes: number;
  readonly listLimits: Readonly<ListLimits>;
  readonly timeoutMs: number;
  private readonly agent: Agent;
  private readonly transport: Send;
  private readonly tokenSend: Send;
  private readonly registries = new Map<string, RegistryState>();
  private readonly referrersSupport = new Map<string, boolean>();

  constructor(options: ClientOptions = {}) {
    this.options = { ...options };
    this.retry = checkRetryPolicy({ ...DEFAULT_RETRY, ...stripUndefined(options.retry ?? {}) });
    this.chunkSize = positiveInt(options.chunkSize, DEFAULT_CHUNK_SIZE, 'chunkSize');
    this.monolithicMaxBytes = positiveInt(options.monolithicMaxBytes, DEFAULT_MONOLITHIC_MAX_BYTES, 'monolithicMaxBytes');
    const limits = options.listLimits ?? {};
    this.listLimits = {
      maxTagPages: positiveInt(limits.maxTagPages, DEFAULT_LIST_LIMITS.maxTagPages, 'maxTagPages'),
      maxTags: positiveInt(limits.maxTags, DEFAULT_LIST_LIMITS.maxTags, 'maxTags'),
      maxReferrerPages: positiveInt(limits.maxReferrerPages, DEFAULT_LIST_LIMITS.maxReferrerPages, 'maxReferrerPages'),
      maxReferrers: positiveInt(limits.maxReferrers, DEFAULT_LIST_LIMITS.maxReferrers, 'maxReferrers'),
    };
    const connections = positiveInt(options.maxConcurrency, DEFAULT_MAX_CONCURRENCY, 'maxConcurrency');
    this.timeoutMs = positiveInt(options.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs');
    let ca: string[] | undefined;
    if (options.caFile !== undefined) {
      let pem: string;
      try {
        pem = readFileSync(options.caFile, 'utf8');
      } catch (cause) {
        throw new UsageError(`cannot read the CA file ${options.caFile}`, { cause });
      }
      // `ca` replaces Node's trust store, so the public roots are kept beside the extra CA.
      // (node:tls is loaded here, not up front: a plain-HTTP registry never needs it.)
      ca = [...process.getBuiltinModule('node:tls').rootCertificates, pem];
    }
    this.agent = new Agent({
      connections,
      keepAliveTimeout: 30_000,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connect: {
        timeout: this.timeoutMs,
        ...(ca !== undefined ? { ca } : {}),
        rejectUnauthorized: options.insecure !== true,
      },
    });
    this.transport = undiciTransport(this.agent, { userAgent: options.userAgent ?? DEFAULT_USER_AGENT, onRequest: options.onRequest });
    this.tokenSend = compose(this.transport, retryLayer(this.retry), redirectLayer());
  }

  /** Opens a repository on this client (shares its connections, tokens and caches). */
  repository(reference: string | Reference): RemoteRepository {
    return new RemoteRepository(this, typeof reference === 'string' ? parseReference(reference) : reference);
  }

  /** The base URL (`scheme://host[:port]`) requests to `registry` go to. */
  async endpoint(registry: string, signal?: AbortSignal): Promise<URL> {
    return (await this.state(registry, signal)).base;
  }

  /**
   * Sends `req` to `registry` through retry, auth and redirect; a failed connection becomes a
   * CommsError naming the registry (never a raw socket error).
   */
  async send(registry: string, req: HttpRequest, operation: string): Promise<HttpResponse> {
    const { send } = await this.state(registry, req.signal);
    try {
      return await send(req);
    } catch (err) {
      throw networkError(err, { registry, repository: req.repository, operation, timeoutMs: this.timeoutMs }, req.signal);
    }
  }

  /** The remembered Referrers API support of `registry/repository` (undefined: not yet known). */
  referrersApiSupport(registry: string, repository: string): boolean | undefined {
    return this.referrersSupport.get(`${registry}/${repository}`);
  }

  rememberReferrersApiSupport(registry: string, repository: string, supported: boolean): void {
    this.referrersSupport.set(`${registry}/${repository}`, supported);
  }

  /** Closes the pooled connections. */
  async close(): Promise<void> {
    await this.agent.close();
  }

  private state(registry: string, signal?: AbortSignal): Promise<{ base: URL; send: Send }> {
    let s = this.registries.get(registry);
    if (s === undefined) {
      const ready = this.prepare(registry, signal);
      s = { ready };
      this.registries.set(registry, s);
      // A failed preparation (registry down during the probe) is tried again next time.
      ready.catch(() => {
        if (this.registries.get(registry) === s) this.registries.delete(registry);
      });
    }
    return s.ready;
  }

  private async prepare(registry: string, signal?: AbortSignal): Promise<{ base: URL; send: Send }> {
    const host = registryEndpointHost(registry);
    const scheme = await this.chooseScheme(registry, host, signal);
    const base = new URL(`${scheme}://${host}`);
    const plain = this.options.plainHttp === true;
    const send = compose(
      this.transport,
      retryLayer(this.retry),
      authLayer({
        registry,
        origin: base.origin,
        credentials: this.options.credentials,
        tokens: this.tokens,
        tokenSend: this.tokenSend,
        // A cleartext token realm gets our credentials in clear: only when the registry itself is
        // on loopback (and so is the realm), or on the very host the user already chose to talk
        // plain HTTP to. A remote registry naming a loopback realm would send them to a local port
        // any local user may hold.
        allowHttpRealm: (realm) => (isLoopbackHost(base.host) && isLoopbackHost(realm.host)) || (plain && realm.host === base.host),
      }),
      redirectLayer(),
    );
    return { base, send };
  }

  private async chooseScheme(registry: string, host: string, signal?: AbortSignal): Promise<'http' | 'https'> {
    if (this.options.plainHttp === true) return 'http';
    if (this.options.plainHttp === false || !isLoopbackHost(host)) return 'https';
    // A loopback registry: probe HTTPS once; a server that answers the TLS hello with plain
    // HTTP is spoken to over HTTP from then on. A certificate problem is not a reason to fall
    // back — that registry does speak TLS, and the real request reports the certificate error.
    try {
      const res = await this.transport({ method: 'GET', url: new URL(`https://${host}/v2/`), signal });
      await discard(res);
      return 'https';
    } catch (err) {
      if (isCertificateError(err)) return 'https';
      const code = findErrorCode(err);
      if (code !== undefined && NOT_TLS_CODES.has(code)) return 'http';
      throw networkError(err, { registry, operation: 'connect', timeoutMs: this.timeoutMs }, signal);
    }
  }
}

/** Opens a remote repository from `registry/name` (a tag or digest in the string is ignored). */
export function openRemoteRepository(reference: string | Reference, options?: ClientOptions | RegistryClient): RemoteRepository {
  const client = options instanceof RegistryClient ? options : new RegistryClient(options);
  return client.repository(reference);
}

function checkRetryPolicy(policy: RetryPolicy): RetryPolicy {
  positiveInt(policy.maxAttempts, 1, 'retry.maxAttempts');
  for (const name of ['baseDelayMs', 'maxDelayMs'] as const) {
    const v = policy[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new UsageError(`retry.${name} must be a non-negative number of milliseconds, got ${String(v)}`);
  }
  return policy;
}

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`${name} must be a positive integer, got ${value}`);
  return value;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
