/**
 * The library speaks of options (`max`, `outDir`); a person at a terminal typed flags (`--max`,
 * `--out`). Errors carry the option they concern (CommsError.option) and a code; here the CLI names
 * the flag instead, and adds the flags that fix an error whose remedy is a setting.
 */
import { CommsError, type ErrorCode } from '../errors.ts';

/** Library option → the flag that sets it, where the names differ or the option has a flag. */
const FLAG_OF_OPTION: Readonly<Record<string, string>> = {
  addr: '--addr',
  all: '--all',
  chunkBytes: '--chunk-bytes',
  compression: '--compress',
  expectedDigest: '--digest',
  level: '--level',
  max: '--max',
  me: '--me',
  onConflict: '--no-clobber',
  outDir: '--out',
  parallel: '--parallel',
  repository: '--repo',
  sender: '--sender',
  inReplyTo: '--in-reply-to',
  sessionId: '--session',
  stateFile: '--state-file',
  timeoutMs: '--timeout',
  status: '--status',
  ttlSeconds: '--ttl-seconds',
};

/** Codes whose remedy is a setting: the flags that give it. */
const FLAG_HINTS: Partial<Readonly<Record<ErrorCode, string>>> = {
  TLS_CERTIFICATE: '--ca-file FILE trusts a CA; --insecure skips the check',
  IDLE_TIMEOUT: '--timeout DURATION sets how long a request may stay silent',
  INSECURE_LISTEN: '--tls-cert/--tls-key and --htpasswd, or --allow-insecure-public',
  TRUSTED_ROOT_UNAVAILABLE: '--trusted-root FILE',
  POLICY_EMPTY: '--trust FILE, --trusted-key FILE, or --certificate-identity (or --certificate-identity-regexp) with --certificate-oidc-issuer',
  POLICY_INCOMPLETE: '--certificate-oidc-issuer',
  NO_AGE_RECIPIENT: '--encrypt-to RECIPIENT, or --no-encrypt',
  NO_SENDER: '--sender ID, or COMMS_SENDER, or bind your key in the trust file (comms trust add NAME KEY.pub)',
  SENDER_AMBIGUOUS: '--sender ID',
};

/** The flag of a library option, when it has one. */
export function flagOf(option: string): string | undefined {
  return Object.hasOwn(FLAG_OF_OPTION, option) ? FLAG_OF_OPTION[option] : undefined;
}

/**
 * An error's message as the CLI shows it: the option it names at the start is shown as its flag,
 * and a code whose remedy is a setting gets the flags that give it.
 */
export function cliMessage(err: unknown): string {
  if (!(err instanceof CommsError)) return err instanceof Error ? err.message : String(err);
  let message = err.message;
  const flag = err.option === undefined ? undefined : flagOf(err.option);
  if (flag !== undefined && err.option !== undefined) {
    message = message.startsWith(`${err.option} `) ? `${flag}${message.slice(err.option.length)}` : `${flag}: ${message}`;
  }
  const hint = FLAG_HINTS[err.code];
  return hint === undefined ? message : `${message} (flags: ${hint})`;
}
