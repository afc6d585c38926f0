/** Options shared by commands: registry connection, signing and verification policy. */
import { readFile } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { defaultCredentialStore } from '../oci/auth/credentials.ts';
import { openRepository, openTarget, type OpenedTarget, type OpenOptions } from '../oci/open.ts';
import { DEFAULT_RETRY, DEFAULT_TIMEOUT_MS } from '../oci/remote/retry.ts';
import { parseDuration } from './parse.ts';
import type { Repository } from '../oci/target.ts';
import { identityTokenSource } from '../trust/identity-token.ts';
import type { MessageSigner } from '../trust/signer.ts';
import { findTrustFile, type TrustFile } from '../trust/trust-file.ts';
import { parseTrustedKey } from '../trust/public-key.ts';
import type { TrustPolicy } from '../trust/verify.ts';
import { UsageError } from '../errors.ts';
import { prepareAuditDir } from '../comms/audit.ts';
import type { OnStep } from '../comms/steps.ts';
import type { Output } from './output.ts';

export interface GlobalArgs {
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  'plain-http': boolean;
  insecure: boolean;
  'ca-file'?: string;
  username?: string;
  'password-stdin': boolean;
  retries?: number;
  'retry-delay'?: string;
  timeout?: string;
}

export function withGlobalOptions<T>(y: Argv<T>) {
  return y
    .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object per result on stdout' })
    .option('verbose', { type: 'boolean', default: false, alias: 'v', describe: 'Print diagnostics (never secrets) on stderr' })
    .option('quiet', { type: 'boolean', default: false, alias: 'q', describe: 'Print no progress and no notes (results and errors still)' })
    .option('plain-http', { type: 'boolean', default: false, describe: 'Use HTTP instead of HTTPS (always allowed for loopback hosts)' })
    .option('insecure', { type: 'boolean', default: false, describe: 'Skip TLS certificate verification' })
    .option('ca-file', { type: 'string', describe: 'PEM file of extra certificate authorities to trust' })
    .option('username', { type: 'string', describe: 'Registry user name (else COMMS_REGISTRY_USERNAME, else docker config)' })
    .option('password-stdin', { type: 'boolean', default: false, describe: 'Read the registry password or token from stdin' })
    .option('retries', {
      type: 'number',
      describe: `Retries of a request that failed transiently (429, 5xx, dropped connection) (default ${DEFAULT_RETRY.maxAttempts - 1})`,
    })
    .option('retry-delay', {
      type: 'string',
      describe: `First back-off delay, doubled each retry with jitter, e.g. 500ms, 2s (default ${DEFAULT_RETRY.baseDelayMs}ms)`,
    })
    .option('timeout', {
      type: 'string',
      describe: `How long one request may stay silent (connecting, awaiting the answer, between body bytes) before it is tried again once, then given up (exit 1), e.g. 10s, 2m (default ${DEFAULT_TIMEOUT_MS / 1000}s)`,
    })
    .group(['json', 'verbose', 'quiet'], 'Output:')
    .group(['plain-http', 'insecure', 'ca-file', 'username', 'password-stdin', 'retries', 'retry-delay', 'timeout'], 'Registry:');
}

/** Opens `--repo` (a registry repository or `oci:<path>`) with the connection flags applied. */
export async function openRepo(repo: string, args: GlobalArgs, extra: { stdinPassword?: string; create?: boolean } = {}): Promise<Repository> {
  return openRepository(repo, await connectionOptions(args, extra));
}

/**
 * Opens a reference that may name a tag or a digest (`oci:<path>[:tag|@digest]`,
 * `host/name[:tag|@digest]`) with the connection flags applied.
 */
export async function openTargetArg(input: string, args: GlobalArgs, extra: { stdinPassword?: string; create?: boolean } = {}): Promise<OpenedTarget> {
  return openTarget(input, await connectionOptions(args, extra));
}

/** `--retries N` and `--retry-delay D` as the client's retry policy (N retries = N + 1 attempts). */
export function retryOptions(args: Pick<GlobalArgs, 'retries' | 'retry-delay'>): OpenOptions['retry'] {
  const retry: NonNullable<OpenOptions['retry']> = {};
  if (args.retries !== undefined) {
    if (!Number.isInteger(args.retries) || args.retries < 0 || args.retries > MAX_RETRIES) {
      throw new UsageError(`--retries must be an integer from 0 to ${MAX_RETRIES}, got ${String(args.retries)}`);
    }
    retry.maxAttempts = args.retries + 1;
  }
  if (args['retry-delay'] !== undefined) {
    const ms = parseDuration('--retry-delay', String(args['retry-delay']));
    if (ms > MAX_RETRY_DELAY_MS) throw new UsageError(`--retry-delay must be at most ${MAX_RETRY_DELAY_MS / 1000}s, got ${String(args['retry-delay'])}`);
    retry.baseDelayMs = ms;
    // The ceiling of the doubling back-off never sits below the first delay asked for.
    retry.maxDelayMs = Math.max(DEFAULT_RETRY.maxDelayMs, ms);
  }
  return retry;
}

/** Beyond these a retry policy is a mistake (a run that never ends), not a choice. */
const MAX_RETRIES = 100;
const MAX_TIMEOUT_MS = 60 * 60_000;

/** `--timeout D`: an idle timeout from 1 ms to an hour. */
function parseTimeout(value: string): number {
  const ms = parseDuration('--timeout', String(value));
  if (ms > MAX_TIMEOUT_MS) throw new UsageError(`--timeout must be at most ${MAX_TIMEOUT_MS / 60_000}m, got ${String(value)}`);
  return ms;
}
const MAX_RETRY_DELAY_MS = 10 * 60_000;

async function connectionOptions(args: GlobalArgs, extra: { stdinPassword?: string; create?: boolean }): Promise<OpenOptions> {
  const retry = retryOptions(args);
  const password = args['password-stdin'] ? (extra.stdinPassword ?? (await readStdin()).replace(/\r?\n$/, '')) : undefined;
  if (args['password-stdin'] && !password) throw new UsageError('--password-stdin: nothing was read from stdin');
  const credentials = defaultCredentialStore({ username: args.username, password });
  return {
    credentials,
    // Unset unless --plain-http is given: a loopback registry is then probed (TLS, else plain HTTP).
    plainHttp: args['plain-http'] ? true : undefined,
    insecure: args.insecure,
    caFile: args['ca-file'],
    create: extra.create,
    retry,
    ...(args.timeout !== undefined ? { timeoutMs: parseTimeout(args.timeout) } : {}),
    // --verbose traces each HTTP exchange; the client redacts query secrets from the URL and
    // never exposes headers, so no credential reaches this line.
    ...(args.verbose
      ? {
          onRequest: (e: { method: string; url: string; status?: number; attempt: number }) => {
            process.stderr.write(`comms: ${e.method} ${e.url} → ${e.status ?? 'no response'}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}\n`);
          },
        }
      : {}),
  };
}

export async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

export interface SignArgs {
  key?: string;
  sign: boolean;
  trust?: string;
  'fulcio-url'?: string;
  'rekor-url'?: string;
}

export function withSignOptions<T>(y: Argv<T>) {
  return y
    .option('key', { type: 'string', describe: 'Sign with this ECDSA P-256 private key (PEM; passphrase from COMMS_KEY_PASSPHRASE)' })
    .option('sign', { type: 'boolean', default: true, describe: 'Sign (default); --no-sign sends unsigned, explicitly' })
    .option('fulcio-url', { type: 'string', describe: 'Fulcio URL for keyless signing (default: public-good instance)' })
    .option('rekor-url', { type: 'string', describe: 'Rekor URL for keyless signing (default: public-good instance)' })
    .option('trust', {
      type: 'string',
      describe: 'Trust file: your default --sender is the identity your key is bound to (default: COMMS_TRUST, else ~/.config/comms/trust)',
    })
    .group(['key', 'sign', 'fulcio-url', 'rekor-url', 'trust'], 'Signing:');
}

/**
 * The signer: --key, else COMMS_KEY (a key file named in the environment), else keyless when an
 * OIDC token is available (SIGSTORE_ID_TOKEN, GitHub Actions). With none, and without --no-sign,
 * stop: never an unsigned message by surprise. Each signer's modules (Sigstore's among them) are
 * loaded only when that signer is the one chosen.
 */
export async function resolveSigner(args: SignArgs, env: NodeJS.ProcessEnv = process.env): Promise<MessageSigner | undefined> {
  if (!args.sign) return undefined;
  const passphrase = env['COMMS_KEY_PASSPHRASE'];
  const keyPath = args.key ?? env['COMMS_KEY'];
  if (keyPath) {
    const { loadKeySigner } = await import('../trust/key-signer.ts');
    return loadKeySigner(keyPath, passphrase ? { passphrase } : {});
  }
  const tokenSource = identityTokenSource({ env });
  if (tokenSource !== undefined) {
    const { createKeylessSigner } = await import('../trust/keyless-signer.ts');
    return createKeylessSigner(tokenSource, { fulcioURL: args['fulcio-url'], rekorURL: args['rekor-url'] });
  }
  throw new UsageError(
    'no signer available: sign with a key (--key FILE or COMMS_KEY; make one with `comms keygen`), ' +
      'sign keylessly in CI (SIGSTORE_ID_TOKEN, or GitHub Actions with `id-token: write`), ' +
      'or send unsigned on purpose with --no-sign',
    { code: 'NO_SIGNER' },
  );
}

export interface VerifyArgs {
  verify: boolean;
  trust?: string;
  'trusted-key'?: string[];
  'certificate-identity'?: string;
  'certificate-identity-regexp'?: string;
  'certificate-oidc-issuer'?: string;
  'trusted-root'?: string;
  'require-sender-match': boolean;
}

export function withVerifyOptions<T>(y: Argv<T>) {
  return y
    .option('verify', { type: 'boolean', default: true, describe: 'Verify signatures before writing anything (default); --no-verify skips it, loudly' })
    .option('trust', { type: 'string', describe: 'Trust file binding identities to signers (default: COMMS_TRUST, else ~/.config/comms/trust when present)' })
    .option('trusted-key', { type: 'string', array: true, describe: 'Trust messages signed by this public key (PEM file; repeatable)' })
    .option('certificate-identity', { type: 'string', describe: 'Keyless: the exact signer identity (email or URI) to trust' })
    .option('certificate-identity-regexp', { type: 'string', describe: 'Keyless: a regular expression the signer identity must match' })
    .option('certificate-oidc-issuer', { type: 'string', describe: 'Keyless: the OIDC issuer that must have vouched for the identity' })
    .option('trusted-root', { type: 'string', describe: 'Sigstore trusted_root.json (default: the public-good TUF root, cached)' })
    .option('require-sender-match', {
      type: 'boolean',
      default: false,
      describe: "Refuse a message whose dockercomms.sender differs from the verified signer's identity",
    })
    .group(
      [
        'verify',
        'trust',
        'trusted-key',
        'certificate-identity',
        'certificate-identity-regexp',
        'certificate-oidc-issuer',
        'trusted-root',
        'require-sender-match',
      ],
      'Verification:',
    );
}

/** The trust file of --trust, COMMS_TRUST or the default location (undefined when there is none). */
export async function resolveTrustFile(args: { trust?: string | undefined }, env: NodeJS.ProcessEnv = process.env): Promise<TrustFile | undefined> {
  return findTrustFile({ explicit: args.trust, env });
}

/** The trust policy from the flags and the trust file, `false` for --no-verify; an empty policy is refused. */
export async function resolvePolicy(args: VerifyArgs, env: NodeJS.ProcessEnv = process.env): Promise<TrustPolicy | false> {
  if (!args.verify) return false;
  const keys = await Promise.all(
    (args['trusted-key'] ?? []).map(async (f) => {
      const pem = await readFile(f, 'utf8').catch((cause: unknown) => {
        throw new UsageError(`--trusted-key ${f}: cannot read it (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, { cause });
      });
      // Refused here, before any request: a wrong file would otherwise fail every message.
      parseTrustedKey(pem, `--trusted-key ${f}`);
      return pem;
    }),
  );
  const trust = await resolveTrustFile(args, env);
  const trusted = trust?.signingEntries ?? [];
  const keyless = args['certificate-identity'] !== undefined || args['certificate-identity-regexp'] !== undefined;
  if (keys.length === 0 && !keyless && trusted.length === 0) {
    throw new UsageError(
      'signatures are verified before anything is written: bind signers to identities in a trust file ' +
        '(--trust FILE, COMMS_TRUST, or `comms trust add`), trust a key with --trusted-key PEM, or a keyless ' +
        'signer with --certificate-identity (or --certificate-identity-regexp) and --certificate-oidc-issuer; ' +
        'or skip verification on purpose with --no-verify',
      { code: 'NO_TRUST_POLICY' },
    );
  }
  if (keyless && args['certificate-oidc-issuer'] === undefined) {
    throw new UsageError('--certificate-identity needs --certificate-oidc-issuer (which issuer vouched for it)');
  }
  // With a trust file, an artifact is delivered only as the sender it claims: a signer trusted by
  // the flags alone must then be named by the claim itself (its key id or certificate identity).
  const policy: TrustPolicy = { trustedKeys: keys, requireSenderMatch: args['require-sender-match'] || trusted.length > 0 };
  if (trust !== undefined) policy.trust = trust;
  if (args['certificate-identity'] !== undefined) policy.certificateIdentity = args['certificate-identity'];
  if (args['certificate-identity-regexp'] !== undefined) policy.certificateIdentityRegexp = args['certificate-identity-regexp'];
  if (args['certificate-oidc-issuer'] !== undefined) policy.certificateOidcIssuer = args['certificate-oidc-issuer'];
  if (keyless || trusted.some((e) => e.kind === 'keyless')) {
    const { loadTrustedRoot } = await import('../trust/trusted-root.ts');
    policy.trustedRoot = await loadTrustedRoot({ path: args['trusted-root'] });
  }
  return policy;
}

export interface AuditArgs {
  'receipt-dir'?: string;
}

export function withAuditOptions<T>(y: Argv<T>) {
  return y
    .option('receipt-dir', { type: 'string', describe: 'Write an audit receipt (one JSON file) for this operation into DIR (else $COMMS_RECEIPT_DIR)' })
    .group(['receipt-dir'], 'Audit:');
}

/**
 * The audit folder (--receipt-dir, else COMMS_RECEIPT_DIR), checked and created now, before the
 * mailbox is opened, so a bad one stops the command before anything is pushed.
 */
export async function auditOptions(args: AuditArgs, env: NodeJS.ProcessEnv = process.env): Promise<{ auditDir?: string }> {
  const dir = args['receipt-dir'] ?? (env['COMMS_RECEIPT_DIR'] || undefined);
  if (dir === undefined) return {};
  return { auditDir: await prepareAuditDir(dir) };
}

/** With --verbose, each stage of the operation as it starts and ends, on stderr. */
export function stepOptions(out: Output): { onStep?: OnStep } {
  if (!out.verbose) return {};
  return {
    onStep: (step, state, info) => {
      const about = [info?.chunk !== undefined ? `chunk ${info.chunk}` : undefined, info?.digest, info?.tag, info?.path].filter((x) => x !== undefined);
      out.debug(`${step} ${state}${about.length > 0 ? `: ${about.join(' ')}` : ''}`);
    },
  };
}
