/**
 * The keyless signer: an ephemeral P-256 key, a short-lived Fulcio certificate binding it to the
 * OIDC identity of the token, and a Rekor transparency-log entry that proves the signature was made
 * while the certificate was valid (@sigstore/sign's FulcioSigner + RekorWitness). The public-good
 * instance is the default; both URLs can point at a private Sigstore deployment.
 */
import { DEFAULT_FULCIO_URL, DEFAULT_REKOR_URL, FulcioSigner, InternalError, RekorWitness } from '@sigstore/sign';
import { CommsError, UsageError } from '../errors.ts';
import { MessageBundleV03Builder } from './bundle-builder.ts';
import { SigningError } from './errors.ts';
import { identityTokenSource, tokenClaims, type Env, type IdentityTokenSource } from './identity-token.ts';
import { abortable } from '../util/abort.ts';
import { toSignedBundle, type MessageSigner, type SignedBundle } from './signer.ts';

export { DEFAULT_FULCIO_URL, DEFAULT_REKOR_URL };

export interface KeylessSignerOptions {
  /** Fulcio base URL; default https://fulcio.sigstore.dev. */
  fulcioURL?: string;
  /** Rekor base URL; default https://rekor.sigstore.dev. */
  rekorURL?: string;
  /** An OIDC token to use instead of looking in the environment. */
  identityToken?: string;
  /** The environment to look in; default process.env. */
  env?: Env;
  /** Per-request timeout for Fulcio and Rekor, milliseconds; default 30000. */
  timeoutMs?: number;
}

export interface KeylessSigner extends MessageSigner {
  readonly kind: 'keyless';
  /** Where the token comes from, for messages. */
  readonly tokenSource: IdentityTokenSource['name'];
  readonly fulcioURL: string;
  readonly rekorURL: string;
  /**
   * The identity the certificate will carry, read from the token's claims (not verified: Fulcio
   * does that): GitHub Actions' workflow URI (`https://github.com/<job_workflow_ref>`), else the
   * verified email, else `sub`; and the token's issuer.
   */
  certificateIdentity(options?: { signal?: AbortSignal }): Promise<{ identity: string; issuer: string }>;
}

/**
 * A keyless signer when a token source exists (explicit token, SIGSTORE_ID_TOKEN, or GitHub
 * Actions OIDC), else undefined. Nothing is fetched until `sign` is called.
 */
export function keylessSignerFromEnv(options: KeylessSignerOptions = {}): KeylessSigner | undefined {
  const source = identityTokenSource({
    ...(options.identityToken !== undefined ? { identityToken: options.identityToken } : {}),
    ...(options.env !== undefined ? { env: options.env } : {}),
  });
  return source === undefined ? undefined : createKeylessSigner(source, options);
}

export function createKeylessSigner(source: IdentityTokenSource, options: KeylessSignerOptions = {}): KeylessSigner {
  const fulcioURL = baseURL(options.fulcioURL ?? DEFAULT_FULCIO_URL, 'Fulcio');
  const rekorURL = baseURL(options.rekorURL ?? DEFAULT_REKOR_URL, 'Rekor');
  const fetchOptions = { timeout: options.timeoutMs ?? 30_000, retry: 2 };
  return {
    kind: 'keyless',
    tokenSource: source.name,
    fulcioURL,
    rekorURL,
    async certificateIdentity(o: { signal?: AbortSignal } = {}) {
      const token = await source.getToken(o.signal);
      const claims = tokenClaims(token);
      const workflow = claims.issuer === GITHUB_ACTIONS_ISSUER ? jobWorkflowRef(token) : undefined;
      return { identity: workflow !== undefined ? `https://github.com/${workflow}` : claims.subject, issuer: claims.issuer };
    },
    async sign(artifact: Uint8Array, signOptions: { signal?: AbortSignal } = {}): Promise<SignedBundle> {
      return abortable(
        async () => {
          const token = await source.getToken(signOptions.signal);
          tokenClaims(token);
          // A fresh signer per message: CI tokens are short-lived, and the ephemeral key should sign once.
          const signer = new FulcioSigner({ identityProvider: { getToken: async () => token }, fulcioBaseURL: fulcioURL, ...fetchOptions });
          const witness = new RekorWitness({ rekorBaseURL: rekorURL, majorApiVersion: 1, ...fetchOptions });
          const builder = new MessageBundleV03Builder({ signer, witnesses: [witness] });
          try {
            return toSignedBundle(await builder.create({ data: Buffer.from(artifact) }));
          } catch (err) {
            throw signingError(err, token, fulcioURL, rekorURL);
          }
        },
        signOptions.signal,
        'signing',
      );
    },
  };
}

const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';

/** The `job_workflow_ref` claim of a GitHub Actions token (what Fulcio puts in the certificate). */
function jobWorkflowRef(token: string): string | undefined {
  try {
    const v: unknown = (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>)['job_workflow_ref'];
    return typeof v === 'string' && v !== '' ? v : undefined;
  } catch {
    return undefined;
  }
}

function baseURL(url: string, service: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new Error('not http(s)');
  } catch {
    throw new UsageError(`the ${service} URL ${JSON.stringify(url)} is not an http(s) URL`);
  }
  return url.replace(/\/+$/, '');
}

/** Maps @sigstore/sign's failure codes onto ours; the token is scrubbed from anything kept. */
function signingError(err: unknown, token: string, fulcioURL: string, rekorURL: string): CommsError {
  if (err instanceof CommsError) return err;
  const detail = err instanceof Error ? redact(describe(err), token) : 'unknown error';
  const leaked = err instanceof Error && JSON.stringify(serialisable(err)).includes(token);
  const cause = leaked ? undefined : err;
  if (err instanceof InternalError) {
    switch (err.code) {
      case 'CA_CREATE_SIGNING_CERTIFICATE_ERROR':
        return new SigningError(`Fulcio at ${fulcioURL} did not issue a certificate: ${detail}`, { code: 'FULCIO_FAILED', cause });
      case 'TLOG_CREATE_ENTRY_ERROR':
      case 'TLOG_FETCH_ENTRY_ERROR':
        return new SigningError(`Rekor at ${rekorURL} did not record the signature: ${detail}`, { code: 'REKOR_FAILED', cause });
      case 'IDENTITY_TOKEN_PARSE_ERROR':
      case 'IDENTITY_TOKEN_READ_ERROR':
        return new SigningError('the identity token was refused', { code: 'IDENTITY_TOKEN_INVALID' });
    }
  }
  return new SigningError(`keyless signing failed: ${detail}`, { code: 'SIGNING_FAILED', cause });
}

/** The error's message, plus its cause's when that adds something; bounded, servers can be verbose. */
function describe(err: Error): string {
  const inner = err.cause instanceof Error && !err.message.includes(err.cause.message) ? ` (${err.cause.message})` : '';
  const text = `${err.message}${inner}`;
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

function redact(text: string, token: string): string {
  return token === '' ? text : text.split(token).join('<redacted token>');
}

function serialisable(err: Error): unknown {
  const chain: string[] = [];
  for (let e: unknown = err; e instanceof Error && chain.length < 8; e = e.cause) chain.push(e.message);
  return chain;
}
