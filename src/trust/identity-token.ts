/**
 * Where a keyless signer gets its OIDC identity token, in order: an explicit token, the
 * `SIGSTORE_ID_TOKEN` variable, or GitHub Actions' ambient OIDC endpoint
 * (`ACTIONS_ID_TOKEN_REQUEST_URL` + `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, audience `sigstore`).
 * Tokens are bearer credentials: no message here ever contains one.
 */
import { SigningError } from './errors.ts';

export type Env = Record<string, string | undefined>;

export interface IdentityTokenSource {
  /** Which source it is, for messages: `explicit`, `SIGSTORE_ID_TOKEN` or `github-actions`. */
  readonly name: 'explicit' | 'SIGSTORE_ID_TOKEN' | 'github-actions';
  getToken(signal?: AbortSignal): Promise<string>;
}

export interface TokenClaims {
  issuer: string;
  /** What Fulcio binds into the certificate: the verified email, else `sub`. */
  subject: string;
}

/** The first available token source, or undefined when the environment offers none. */
export function identityTokenSource(options: { identityToken?: string; env?: Env; audience?: string } = {}): IdentityTokenSource | undefined {
  const env = options.env ?? process.env;
  const explicit = options.identityToken;
  if (explicit !== undefined && explicit !== '') {
    return { name: 'explicit', getToken: async () => explicit };
  }
  const fromEnv = env['SIGSTORE_ID_TOKEN'];
  if (fromEnv !== undefined && fromEnv !== '') {
    return { name: 'SIGSTORE_ID_TOKEN', getToken: async () => fromEnv };
  }
  const url = env['ACTIONS_ID_TOKEN_REQUEST_URL'];
  const requestToken = env['ACTIONS_ID_TOKEN_REQUEST_TOKEN'];
  if (url && requestToken) {
    const audience = options.audience ?? 'sigstore';
    return { name: 'github-actions', getToken: (signal) => fetchGitHubActionsToken(url, requestToken, audience, signal) };
  }
  return undefined;
}

async function fetchGitHubActionsToken(requestURL: string, requestToken: string, audience: string, signal?: AbortSignal): Promise<string> {
  let url: URL;
  try {
    url = new URL(requestURL);
  } catch {
    throw new SigningError('ACTIONS_ID_TOKEN_REQUEST_URL is not a URL', { code: 'IDENTITY_TOKEN_FETCH' });
  }
  url.searchParams.set('audience', audience);
  // The endpoint's own query string is opaque to us; report only where we asked.
  const where = `${url.origin}${url.pathname}`;
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { Accept: 'application/json', Authorization: `Bearer ${requestToken}` },
      ...(signal ? { signal } : {}),
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new SigningError(`requesting the GitHub Actions OIDC token from ${where} failed`, { code: 'IDENTITY_TOKEN_FETCH', cause: err });
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new SigningError(`the GitHub Actions OIDC endpoint ${where} answered HTTP ${response.status}; does the job have "permissions: id-token: write"?`, {
      code: 'IDENTITY_TOKEN_FETCH',
      status: response.status,
    });
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  const value = (body as { value?: unknown } | undefined)?.value;
  if (typeof value !== 'string' || value === '') {
    throw new SigningError(`the GitHub Actions OIDC endpoint ${where} returned no token`, { code: 'IDENTITY_TOKEN_FETCH' });
  }
  return value;
}

/**
 * Reads (does not verify — Fulcio does) the claims Fulcio will use, so a malformed token fails
 * here with a clear message instead of inside @sigstore/sign, whose error text embeds the token.
 */
export function tokenClaims(token: string): TokenClaims {
  const parts = token.split('.');
  let payload: Record<string, unknown> | undefined;
  if (parts.length === 3 && parts[1]) {
    try {
      const parsed: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) payload = parsed as Record<string, unknown>;
    } catch {
      payload = undefined;
    }
  }
  if (payload === undefined) {
    throw new SigningError('the identity token is not a JWT', { code: 'IDENTITY_TOKEN_INVALID' });
  }
  const issuer = payload['iss'];
  if (typeof issuer !== 'string' || issuer === '') {
    throw new SigningError('the identity token has no "iss" claim', { code: 'IDENTITY_TOKEN_INVALID' });
  }
  const email = payload['email'];
  if (typeof email === 'string' && email !== '') {
    if (!payload['email_verified']) {
      throw new SigningError(`the identity token's email is not verified by ${issuer}`, { code: 'IDENTITY_TOKEN_INVALID' });
    }
    return { issuer, subject: email };
  }
  const sub = payload['sub'];
  if (typeof sub !== 'string' || sub === '') {
    throw new SigningError('the identity token has neither "email" nor "sub"', { code: 'IDENTITY_TOKEN_INVALID' });
  }
  return { issuer, subject: sub };
}
