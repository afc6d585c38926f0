/** Results to stdout (human text, or one JSON object per line with --json); diagnostics to stderr. */
import { CommsError, exitCodeOf } from '../errors.ts';

export interface Output {
  readonly json: boolean;
  readonly verbose: boolean;
  /** A result: the JSON object with --json, else the human line(s). */
  result(obj: object, human: string): void;
  /** A diagnostic on stderr (warnings, notes). */
  note(message: string): void;
  /** Verbose-only diagnostic. */
  debug(message: string): void;
  /** Reports an error on stderr; returns its exit code. */
  error(err: unknown): number;
}

export function createOutput(opts: { json: boolean; verbose: boolean; stdout?: NodeJS.WritableStream; stderr?: NodeJS.WritableStream }): Output {
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  return {
    json: opts.json,
    verbose: opts.verbose,
    result(obj, human) {
      stdout.write(opts.json ? `${JSON.stringify(obj)}\n` : `${human}\n`);
    },
    // With --json, stderr stays machine-readable too: each diagnostic is a JSON line.
    note(message) {
      stderr.write(opts.json ? `${JSON.stringify({ note: message })}\n` : `comms: ${message}\n`);
    },
    debug(message) {
      if (opts.verbose) stderr.write(opts.json ? `${JSON.stringify({ debug: message })}\n` : `comms: ${message}\n`);
    },
    error(err) {
      const code = exitCodeOf(err);
      if (opts.json) {
        stderr.write(`${JSON.stringify({ error: errorJson(err) })}\n`);
      } else {
        stderr.write(`comms: error: ${messageOf(err)}\n`);
        if (opts.verbose) {
          let cause = (err as { cause?: unknown }).cause;
          while (cause !== undefined && cause !== null) {
            stderr.write(`  caused by: ${messageOf(cause)}\n`);
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
    const o: Record<string, unknown> = { code: err.code, message: err.message, exitCode: err.exitCode };
    if (err.registry !== undefined) o['registry'] = err.registry;
    if (err.status !== undefined) o['status'] = err.status;
    if (err.registryErrors.length > 0) o['registryErrors'] = err.registryErrors.map((e) => ({ code: e.code, message: e.message }));
    return o;
  }
  return { code: 'FAILURE', message: messageOf(err), exitCode: exitCodeOf(err) };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
