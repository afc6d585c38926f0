/**
 * The one way tests run the comms CLI: from source (src/cli/run.ts) as a child process, the way a
 * user does, with an environment that cannot pick up the host's docker logins, signing key or OIDC
 * token. Collects exit code, signal, stdout, stderr and stdout's `--json` lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TEST_KEY = fileURLToPath(new URL('../../fixtures/keys/test-only-p256.key', import.meta.url));
export const TEST_PUB = fileURLToPath(new URL('../../fixtures/keys/test-only-p256.pub', import.meta.url));

/** A run that outlives this is killed, so a hang fails the test instead of stalling the suite. */
const DEFAULT_TIMEOUT_MS = 300_000;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout's lines that are JSON objects, parsed (with --json, one per result). */
  json: Record<string, unknown>[];
  pid: number;
}

export interface CliOptions {
  /** Variables over the base environment. */
  env?: NodeJS.ProcessEnv;
  /**
   * The whole base environment instead of this process's own (scrubbed by cliEnv); see
   * hostile-cli.ts's cleanEnv. Its TMPDIR is created when missing.
   */
  baseEnv?: NodeJS.ProcessEnv;
  /** Bytes written to the child's stdin, which is then closed (default: closed at once). */
  stdin?: Uint8Array | string;
  /** Kill the child after this long (default 300 s): a hang is a failure, never a pass. */
  timeoutMs?: number;
}

let compileCache: string | undefined;
/**
 * A V8 compile cache shared by the children this test process starts (removed at exit): each
 * child otherwise strips and compiles the whole CLI again, seconds apiece on a busy machine.
 */
export function childCompileCache(): string {
  if (compileCache === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'comms-test-ccache-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    compileCache = dir;
  }
  return compileCache;
}

let stateHome: string | undefined;
/** A state folder (XDG_STATE_HOME) for the children, removed at exit: recv's records stay out of the user's home. */
function childStateHome(): string {
  if (stateHome === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'comms-test-state-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    stateHome = dir;
  }
  return stateHome;
}

/** This process's environment without the host's docker logins, signing key or OIDC token. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  // No trust file of the host's (the default one lives under XDG_CONFIG_HOME), and a sender for
  // the commands that push: without one they refuse (no made-up user@host).
  return {
    ...process.env,
    DOCKER_CONFIG: '/nonexistent-comms-test',
    XDG_CONFIG_HOME: '/nonexistent-comms-test',
    COMMS_TRUST: '',
    COMMS_SENDER: 'tester',
    COMMS_KEY: '',
    SIGSTORE_ID_TOKEN: '',
    NODE_COMPILE_CACHE: childCompileCache(),
    XDG_STATE_HOME: childStateHome(),
    ...extra,
  };
}

function envFor(options: CliOptions): NodeJS.ProcessEnv {
  return options.baseEnv === undefined ? cliEnv(options.env) : { NODE_COMPILE_CACHE: childCompileCache(), ...options.baseEnv, ...options.env };
}

/** Starts `comms <args>`; the caller owns the process (for tests that signal or kill it). */
export function spawnComms(args: string[], options: CliOptions = {}): ChildProcess {
  const child = spawn(process.execPath, ['src/cli/run.ts', ...args], { cwd: PROJECT_ROOT, env: envFor(options), stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin!.end(options.stdin ?? '');
  return child;
}

/** Collects a spawned comms process's output until it exits (killing it after `timeoutMs`). */
export function collect(child: ChildProcess, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CliResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const json = stdout
        .split('\n')
        .filter((l) => l.trim().startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, signal, stdout, stderr: Buffer.concat(err).toString('utf8'), json, pid: child.pid ?? -1 });
    });
  });
}

/** Runs `comms <args>` to completion. */
export async function runComms(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const tmp = options.baseEnv?.['TMPDIR'];
  if (tmp !== undefined) await mkdir(tmp, { recursive: true });
  return collect(spawnComms(args, options), options.timeoutMs);
}

/**
 * Every non-empty line of `text` parsed as a JSON object; throws (failing the test) on any other
 * line, since --json promises machine-readable output.
 */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      let v: unknown;
      try {
        v = JSON.parse(l);
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`not a JSON object: ${l}`);
      return v as Record<string, unknown>;
    });
}

/** A compact account of a CLI run for assertion messages. */
export function describeRun(r: CliResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 2000)}`;
}
