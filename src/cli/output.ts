/** Results to stdout (human text, or one JSON object per line with --json); diagnostics to stderr. */
import { AuthError, CommsError, exitCodeOf } from '../errors.ts';
import { cliMessage } from './flags.ts';
import { credentialSources } from './hints.ts';

export interface Output {
  readonly json: boolean;
  readonly verbose: boolean;
  /** --quiet: no notes and no progress; results and errors are still printed. */
  readonly quiet?: boolean;
  /** A result: the JSON object with --json, else the human line(s). */
  result(obj: object, human: string): void;
  /** A diagnostic on stderr (warnings, notes). */
  note(message: string): void;
  /** Verbose-only diagnostic. */
  debug(message: string): void;
  /** Reports an error on stderr; returns its exit code. */
  error(err: unknown): number;
}

export function createOutput(opts: {
  json: boolean;
  verbose: boolean;
  quiet?: boolean;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}): Output {
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  return {
    json: opts.json,
    verbose: opts.verbose,
    quiet: opts.quiet === true,
    result(obj, human) {
      stdout.write(opts.json ? `${jsonLine(obj)}\n` : `${visible(human)}\n`);
    },
    // With --json, stderr stays machine-readable too: each diagnostic is a JSON line.
    note(message) {
      if (opts.quiet) return;
      stderr.write(opts.json ? `${jsonLine({ note: message })}\n` : `comms: ${visible(message)}\n`);
    },
    debug(message) {
      if (opts.verbose) stderr.write(opts.json ? `${jsonLine({ debug: message })}\n` : `comms: ${visible(message)}\n`);
    },
    error(err) {
      const code = exitCodeOf(err);
      const hint = hintFor(err);
      if (opts.json) {
        stderr.write(`${jsonLine({ error: { ...errorJson(err), ...(hint ? { hint } : {}) } })}\n`);
      } else {
        stderr.write(`comms: error: ${visible(cliMessage(err))}\n`);
        if (hint) stderr.write(`comms: hint: ${visible(hint)}\n`);
        if (opts.verbose) {
          let cause = (err as { cause?: unknown }).cause;
          while (cause !== undefined && cause !== null) {
            stderr.write(`  caused by: ${visible(messageOf(cause))}\n`);
            cause = (cause as { cause?: unknown }).cause;
          }
        }
      }
      return code;
    },
  };
}

export function errorJson(err: unknown): object {
  if (err instanceof CommsError) {
    const o: Record<string, unknown> = { code: err.code, message: cliMessage(err), exitCode: err.exitCode };
    if (err.registry !== undefined) o['registry'] = err.registry;
    if (err.status !== undefined) o['status'] = err.status;
    if (err.registryErrors.length > 0) o['registryErrors'] = err.registryErrors.map((e) => ({ code: e.code, message: e.message }));
    return o;
  }
  return { code: 'FAILURE', message: messageOf(err), exitCode: exitCodeOf(err) };
}

/** What to try after an auth failure: where credentials were looked up, and how to store them. (Flag hints such as --ca-file are part of cliMessage.) */
export function hintFor(err: unknown, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (err instanceof AuthError && err.code !== 'LOGIN_REFUSED') {
    const registry = err.registry ?? 'the registry';
    return `credentials for ${registry} were looked up in ${credentialSources(err.registry, env)}; store them with \`comms login ${err.registry ?? 'REGISTRY'} -u USER --password-stdin\``;
  }
  return undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// Messages quote what a registry or a message said (filenames, error bodies); a terminal must not
// act on control characters (ESC, C1 CSI) or bidirectional overrides in them. Human text shows them
// as \uXXXX; JSON escapes them the same way (JSON.stringify leaves C1 and bidi characters raw).
const TERMINAL_UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const escapeChar = (ch: string): string => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;

function visible(text: string): string {
  return text.replace(TERMINAL_UNSAFE, escapeChar);
}

function jsonLine(obj: object): string {
  return JSON.stringify(obj).replace(TERMINAL_UNSAFE, escapeChar);
}
