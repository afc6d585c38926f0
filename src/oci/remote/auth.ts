/**
 * The auth layer, one per registry. A request goes out pre-authorized when the registry's
 * scheme is known (Basic credentials, or a cached Bearer token for the request's scopes). On a
 * 401 it reads WWW-Authenticate: Basic → credentials; Bearer → a token from the realm
 * (GET with Basic credentials, or POST grant_type=refresh_token for an identity token, as the
 * distribution token spec says), cached per scope set; then the request is sent again ONCE.
 * A second 401 is handed back for the error mapping to turn into AuthError. Secrets never go
 * into an error message, and never to another origin or a plain-HTTP realm on the network.
 */
import { AuthError, ProtocolError } from '../../errors.ts';
import { raceAbort } from '../../util/abort.ts';
import type { Credential, CredentialStore } from '../auth/credentials.ts';
import { parseWWWAuthenticate } from '../auth/challenge.ts';
import { errorFor, parseErrorBody } from './error-map.ts';
import { discard, header, isReplayable, readLimited, type HttpRequest, type Layer, type Send } from './http.ts';
import { mergeScopes, scopeKey } from './scopes.ts';
import type { IssuedToken, TokenCache } from './token-cache.ts';

export interface AuthLayerOptions {
  /** The registry name credentials are looked up by (`docker.io`, `host:port`). */
  registry: string;
  /** Only requests to this origin are authorized; other origins never see credentials. */
  origin: string;
  credentials?: CredentialStore | undefined;
  tokens: TokenCache;
  /** How token requests are sent (retries and redirects, no auth). */
  tokenSend: Send;
  /** Whether a plain-HTTP realm may be used (loopback, or plain HTTP asked for). */
  allowHttpRealm: (realm: URL) => boolean;
}

type KnownScheme = { scheme: 'basic' } | { scheme: 'bearer'; realm: string; service: string | undefined };

/** The default lifetime of a token whose issuer did not say (distribution token spec). */
export const DEFAULT_TOKEN_LIFETIME_S = 60;
const MAX_TOKEN_RESPONSE = 1024 * 1024;
/** A token request shared by several operations is bounded by time, not by one caller's signal. */
const TOKEN_TIMEOUT_MS = 60_000;
const CLIENT_ID = 'comms';

function basicHeader(cred: Credential): string | undefined {
  if (cred.username === undefined || cred.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${cred.username}:${cred.password}`, 'utf8').toString('base64')}`;
}

export function authLayer(options: AuthLayerOptions): Layer {
  const { registry, origin, tokens } = options;
  let known: KnownScheme | undefined;
  let credential: Promise<Credential | undefined> | undefined;

  const getCredential = (signal?: AbortSignal): Promise<Credential | undefined> => {
    if (options.credentials === undefined) return Promise.resolve(undefined);
    // One lookup (maybe a credential-helper run) serves every request; each caller may stop waiting.
    credential ??= options.credentials.get(registry).catch((err: unknown) => {
      credential = undefined;
      throw err;
    });
    return raceAbort(credential, signal);
  };

  const cacheKey = (scopes: string[]): string => `${registry}|${scopeKey(scopes)}`;

  const where = (repository: string | undefined): string =>
    repository === undefined ? `registry ${registry}` : `registry ${registry}, repository ${repository}`;

  async function fetchToken(realmText: string, service: string | undefined, scopes: string[], req: HttpRequest): Promise<IssuedToken> {
    const signal = AbortSignal.timeout(TOKEN_TIMEOUT_MS);
    const cred = await getCredential();
    if (cred?.registryToken !== undefined) return { token: cred.registryToken, expiresIn: DEFAULT_TOKEN_LIFETIME_S };
    let realm: URL;
    try {
      realm = new URL(realmText);
    } catch (cause) {
      throw new ProtocolError(`${where(req.repository)}: the token realm in its challenge is not a URL`, { code: 'INVALID_CHALLENGE', cause, registry });
    }
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && options.allowHttpRealm(realm))) {
      throw new ProtocolError(`${where(req.repository)}: refusing a token realm over ${realm.protocol} (${realm.host})`, {
        code: 'INSECURE_REALM',
        registry,
      });
    }
    let tokenReq: HttpRequest;
    if (cred?.identityToken !== undefined) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken, client_id: CLIENT_ID });
      if (service !== undefined) form.set('service', service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      tokenReq = {
        method: 'POST',
        url: realm,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        // Asking for a token twice has no effect beyond the first ask.
        idempotent: true,
        signal,
      };
    } else {
      const url = new URL(realm.href);
      if (service !== undefined) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: Record<string, string> = { accept: 'application/json' };
      const basic = cred === undefined ? undefined : basicHeader(cred);
      if (basic !== undefined && cred?.username !== undefined) {
        headers.authorization = basic;
        url.searchParams.set('account', cred.username);
      }
      tokenReq = { method: 'GET', url, headers, signal };
    }
    const res = await options.tokenSend(tokenReq);
    const body = await readLimited(res.body, MAX_TOKEN_RESPONSE);
    if (res.status === 401 || res.status === 403) {
      const who = cred === undefined ? 'anonymous access (no credentials found)' : 'the credentials';
      throw new AuthError(`${where(req.repository)}: the token service refused ${who} (HTTP ${res.status})`, {
        registry,
        status: res.status,
        registryErrors: parseErrorBody(body),
      });
    }
    if (res.status !== 200) throw errorFor(res.status, parseErrorBody(body), { registry, repository: req.repository, operation: 'fetch a token' });
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown } | undefined;
    try {
      parsed = body === undefined ? undefined : (JSON.parse(body.toString('utf8')) as typeof parsed);
    } catch {
      parsed = undefined;
    }
    const token = typeof parsed?.token === 'string' && parsed.token !== '' ? parsed.token : parsed?.access_token;
    if (typeof token !== 'string' || token === '') {
      throw new ProtocolError(`${where(req.repository)}: the token service answered without a token`, { code: 'INVALID_TOKEN_RESPONSE', registry });
    }
    const expiresIn = typeof parsed?.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : DEFAULT_TOKEN_LIFETIME_S;
    return { token, expiresIn };
  }

  const bearer = (scheme: Extract<KnownScheme, { scheme: 'bearer' }>, scopes: string[], req: HttpRequest): Promise<string> =>
    raceAbort(
      tokens.get(cacheKey(scopes), () => fetchToken(scheme.realm, scheme.service, scopes, req)),
      req.signal,
    );

  /** The Authorization header to send before any challenge, when the scheme is known. */
  async function preauthorize(scopes: string[], req: HttpRequest): Promise<string | undefined> {
    if (known?.scheme === 'basic') {
      const cred = await getCredential(req.signal);
      return cred === undefined ? undefined : basicHeader(cred);
    }
    if (known?.scheme === 'bearer') {
      const cached = tokens.peek(cacheKey(scopes));
      if (cached !== undefined) return `Bearer ${cached}`;
      // Fetching first saves the 401 round trip and spares bodies that cannot be sent twice.
      if (scopes.length > 0) return `Bearer ${await bearer(known, scopes, req)}`;
    }
    return undefined;
  }

  return (next) => async (req) => {
    if (req.url.origin !== origin || req.headers?.authorization !== undefined) return next(req);
    const scopes = mergeScopes(req.scopes ?? []);
    const sent = await preauthorize(scopes, req);
    const first = await next(sent === undefined ? req : { ...req, headers: { ...req.headers, authorization: sent } });
    if (first.status !== 401 || first.url.origin !== origin || !isReplayable(req.body)) return first;

    const wwwAuth = header(first, 'www-authenticate');
    if (wwwAuth === undefined) return first;
    let challenges;
    try {
      challenges = parseWWWAuthenticate(wwwAuth);
    } catch (err) {
      await discard(first);
      throw err;
    }
    const bearerChallenge = challenges.find((c) => c.scheme === 'bearer' && c.params.realm !== undefined);
    const basicChallenge = challenges.find((c) => c.scheme === 'basic');

    let authorization: string | undefined;
    if (bearerChallenge !== undefined) {
      const scheme: KnownScheme = { scheme: 'bearer', realm: bearerChallenge.params.realm as string, service: bearerChallenge.params.service };
      known = scheme;
      const merged = mergeScopes([...(bearerChallenge.params.scope?.split(' ') ?? []), ...scopes]);
      if (sent?.startsWith('Bearer ')) {
        tokens.invalidate(cacheKey(scopes), sent.slice('Bearer '.length));
        tokens.invalidate(cacheKey(merged), sent.slice('Bearer '.length));
      }
      await discard(first);
      const token = await bearer(scheme, merged, req);
      tokens.alias(cacheKey(scopes), cacheKey(merged));
      authorization = `Bearer ${token}`;
    } else if (basicChallenge !== undefined) {
      const cred = await getCredential(req.signal);
      const basic = cred === undefined ? undefined : basicHeader(cred);
      // Without credentials, or when these very credentials were just refused, the 401 stands.
      if (basic === undefined || sent === basic) {
        known = { scheme: 'basic' };
        return first;
      }
      known = { scheme: 'basic' };
      await discard(first);
      authorization = basic;
    } else {
      return first;
    }
    return next({ ...req, headers: { ...req.headers, authorization } });
  };
}
