/**
 * A Docker/OCI token server ("auth.token.realm") for tests, speaking the protocol GHCR, Docker Hub
 * and Harbor speak: `GET <realm>?service=S&scope=repository:NAME:pull,push` (Basic credentials
 * optional) answers `{"token","access_token","expires_in","issued_at"}` with an ES256 JWT that
 * CNCF distribution verifies against its `rootcertbundle`. Also the OAuth2 form
 * (`POST <realm>`, grant_type=password|refresh_token) that clients with an identity token use.
 * Only the issuer is ours; the registry that checks the token is the real one.
 */
import { createHash, createPrivateKey, randomBytes, randomUUID, sign, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tokenSigningKey } from './certs.ts';

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

/** One parsed `scope` parameter, e.g. repository:team/app:pull,push. */
export interface RequestedScope {
  type: string;
  name: string;
  actions: string[];
}

/** What the issuer saw and answered, one entry per request (for token-caching assertions). */
export interface IssuerRequest {
  method: string;
  service: string | undefined;
  scopes: RequestedScope[];
  /** The authenticated user; undefined for anonymous requests and failed logins. */
  user: string | undefined;
  grantType: 'anonymous' | 'basic' | 'password' | 'refresh_token';
  status: number;
}

/** Decides which actions a user gets on a scope; undefined user means anonymous. */
export type GrantPolicy = (user: string | undefined, scope: RequestedScope) => string[];

export interface TokenIssuerOptions {
  /** The `service` the registry is configured with (default 'comms-test-registry'). */
  service?: string;
  /** The `iss` claim; must equal the registry's `auth.token.issuer` (default 'comms-test-issuer'). */
  issuer?: string;
  /** username → password. Default: one user 'tester' with a random password. */
  users?: Record<string, string>;
  /** Seconds a token lives (JWT exp and the `expires_in` field). Default 300. */
  expiresIn?: number;
  /**
   * Seconds until the JWT's `exp` when it should differ from the advertised `expires_in`.
   * distribution 2.8 allows 60 s of clock skew on exp and nbf, so a token the registry rejects as
   * expired needs a lifetime of -61 or less.
   */
  tokenLifetime?: number;
  /** Default: a valid user gets every action it asks for; anonymous gets none. */
  policy?: GrantPolicy;
}

export interface TokenIssuer {
  /** The realm URL, e.g. http://127.0.0.1:PORT/token. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM file for the registry's `auth.token.rootcertbundle`. */
  rootCertBundle: string;
  /** The default valid user (the first in `users`). */
  username: string;
  password: string;
  users: Record<string, string>;
  /** Seconds a newly issued token lives (`expires_in` and exp); tests may change it between requests. */
  expiresIn: number;
  /** When set, the JWT exp is now + tokenLifetime instead of now + expiresIn. */
  tokenLifetime: number | undefined;
  /** Token requests answered so far (any status). */
  readonly requestCount: number;
  readonly requests: readonly IssuerRequest[];
  /** Forgets the request log (e.g. after a warm-up). */
  resetRequests(): void;
  /** An OAuth2 refresh token ("identitytoken" in docker config.json) for a user. */
  refreshTokenFor(user: string): string;
  /** Signs a token directly, bypassing HTTP (for tests that need a crafted or expired token). */
  issueToken(user: string | undefined, access: AccessEntry[], options?: { expiresIn?: number; audience?: string }): string;
  close(): Promise<void>;
}

const KNOWN_ACTIONS = new Set(['pull', 'push', 'delete', '*']);

/** Parses `type:name:actions`; the name may itself contain ':' (e.g. a port), actions never do. */
export function parseScope(raw: string): RequestedScope | undefined {
  const first = raw.indexOf(':');
  const last = raw.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  return {
    type: raw.slice(0, first),
    name: raw.slice(first + 1, last),
    actions: raw
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

export const defaultPolicy: GrantPolicy = (user, scope) => (user === undefined ? [] : scope.actions.filter((a) => KNOWN_ACTIONS.has(a)));

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * The key ID distribution 2.8 (libtrust) computes for a public key: SHA-256 of the DER
 * SubjectPublicKeyInfo, first 240 bits, base32, in colon-separated groups of four.
 */
export function libtrustKeyId(spkiDer: Buffer): string {
  const digest = createHash('sha256').update(spkiDer).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)!.join(':');
}

function signJwt(key: KeyObject, header: object, claims: object): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  // JWS ES256 wants the raw r||s signature, not DER.
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(signature)}`;
}

function parseBasic(header: string | undefined): { user: string; pass: string } | undefined {
  if (!header?.toLowerCase().startsWith('basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) throw new Error('token request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Starts a token issuer on 127.0.0.1 (random port). */
export async function startTokenIssuer(options: TokenIssuerOptions = {}): Promise<TokenIssuer> {
  const signing = await tokenSigningKey();
  const key = createPrivateKey(signing.keyPem);
  const cert = new X509Certificate(signing.certPem);
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  // distribution 2.8 accepts either the certificate chain (x5c) or a key ID it derives from the
  // rootcertbundle; both are sent, as real issuers such as Harbor's do.
  const header = { typ: 'JWT', alg: 'ES256', kid: libtrustKeyId(spki), x5c: [cert.raw.toString('base64')] };

  const service = options.service ?? 'comms-test-registry';
  const issuerName = options.issuer ?? 'comms-test-issuer';
  const users = options.users ?? { tester: randomBytes(12).toString('base64url') };
  const firstUser = Object.entries(users)[0];
  if (firstUser === undefined) throw new Error('token issuer needs at least one user');
  const policy = options.policy ?? defaultPolicy;
  const refreshTokens = new Map<string, string>(); // token → user
  const requests: IssuerRequest[] = [];

  const issueToken: TokenIssuer['issueToken'] = (user, access, opts = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return signJwt(key, header, {
      iss: issuerName,
      sub: user ?? '',
      aud: opts.audience ?? service,
      exp: now + (opts.expiresIn ?? api.tokenLifetime ?? api.expiresIn),
      nbf: now - 1,
      iat: now,
      jti: randomUUID(),
      access,
    });
  };

  const refreshTokenFor = (user: string): string => {
    for (const [token, owner] of refreshTokens) if (owner === user) return token;
    const token = `refresh-${randomBytes(18).toString('base64url')}`;
    refreshTokens.set(token, user);
    return token;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://issuer');
    const entry: IssuerRequest = {
      method: req.method ?? 'GET',
      service: undefined,
      scopes: [],
      user: undefined,
      grantType: 'anonymous',
      status: 0,
    };
    requests.push(entry);
    const reply = (status: number, body: unknown, headers?: Record<string, string>): void => {
      entry.status = status;
      sendJson(res, status, body, headers);
    };
    if (url.pathname !== '/token') return reply(404, { errors: [{ code: 'NOT_FOUND', message: 'no such endpoint' }] });

    let params: URLSearchParams;
    if (req.method === 'GET') {
      params = url.searchParams;
    } else if (req.method === 'POST') {
      params = new URLSearchParams(await readBody(req));
    } else {
      return reply(405, { errors: [{ code: 'UNSUPPORTED', message: 'GET or POST only' }] });
    }
    entry.service = params.get('service') ?? undefined;
    entry.scopes = params
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .map(parseScope)
      .filter((s): s is RequestedScope => s !== undefined);

    let user: string | undefined;
    let refreshToken: string | undefined;
    if (req.method === 'POST') {
      const grant = params.get('grant_type');
      if (grant === 'password') {
        entry.grantType = 'password';
        const name = params.get('username') ?? '';
        if (users[name] === undefined || users[name] !== params.get('password')) {
          return reply(401, { error: 'invalid_grant', error_description: 'incorrect username or password' });
        }
        user = name;
        refreshToken = refreshTokenFor(name);
      } else if (grant === 'refresh_token') {
        entry.grantType = 'refresh_token';
        user = refreshTokens.get(params.get('refresh_token') ?? '');
        if (user === undefined) return reply(401, { error: 'invalid_grant', error_description: 'unknown refresh token' });
        refreshToken = params.get('refresh_token') ?? undefined;
      } else {
        return reply(400, { error: 'unsupported_grant_type' });
      }
    } else {
      const basic = parseBasic(req.headers.authorization);
      if (basic !== undefined) {
        entry.grantType = 'basic';
        if (users[basic.user] === undefined || users[basic.user] !== basic.pass) {
          return reply(401, { details: 'incorrect username or password' }, { 'www-authenticate': `Basic realm="${api.realm}"` });
        }
        user = basic.user;
        if (params.get('offline_token') === 'true') refreshToken = refreshTokenFor(user);
      }
    }
    entry.user = user;

    const access: AccessEntry[] = entry.scopes.map((scope) => ({
      type: scope.type,
      name: scope.name,
      actions: policy(user, scope),
    }));
    // The audience is the service asked for, so a client that sends the wrong service gets a
    // token the registry rejects, as with real issuers.
    const token = issueToken(user, access, entry.service !== undefined ? { audience: entry.service } : {});
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: api.expiresIn,
      issued_at: new Date().toISOString(),
    };
    if (refreshToken !== undefined) body.refresh_token = refreshToken;
    reply(200, body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: String(err) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  // A forgotten close() must not keep the test process alive; in-flight requests still do.
  server.unref();
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('token issuer has no TCP address');

  const api: TokenIssuer = {
    realm: `http://127.0.0.1:${address.port}/token`,
    service,
    issuer: issuerName,
    rootCertBundle: signing.certFile,
    username: firstUser[0],
    password: firstUser[1],
    users,
    expiresIn: options.expiresIn ?? 300,
    tokenLifetime: options.tokenLifetime,
    get requestCount() {
      return requests.length;
    },
    get requests() {
      return requests;
    },
    resetRequests() {
      requests.length = 0;
    },
    refreshTokenFor,
    issueToken,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return api;
}
