/**
 * Runs the comms CLI from source (src/cli/run.ts) as a child process, the way a user does, for
 * the message acceptance tests: exit code, stdout, stderr, and stdout's `--json` lines parsed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TEST_KEY = fileURLToPath(new URL('../../fixtures/keys/test-only-p256.key', import.meta.url));
export const TEST_PUB = fileURLToPath(new URL('../../fixtures/keys/test-only-p256.pub', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout's lines parsed as JSON (with --json, one object per result). */
  json: Record<string, unknown>[];
}

export interface CliOptions {
  /** Bytes written to the child's stdin, which is then closed (default: stdin closed at once). */
  stdin?: Uint8Array | string;
  env?: NodeJS.ProcessEnv;
}

/** Starts `comms <args>`; the caller owns the process (for tests that kill it). */
export function spawnComms(args: string[], options: CliOptions = {}): ChildProcess {
  // The host's docker logins and signing settings must not leak into a test.
  const env = { ...process.env, DOCKER_CONFIG: '/nonexistent-comms-test', COMMS_KEY: '', SIGSTORE_ID_TOKEN: '', ...options.env };
  const child = spawn(process.execPath, ['src/cli/run.ts', ...args], { cwd: PROJECT_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin!.end(options.stdin ?? '');
  return child;
}

/** Collects a spawned comms process's output until it exits. */
export function collect(child: ChildProcess): Promise<CliResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      const json = stdout
        .split('\n')
        .filter((l) => l.trim().startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, signal, stdout, stderr: Buffer.concat(err).toString('utf8'), json });
    });
  });
}

/** Runs `comms <args>` to completion. */
export function runComms(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return collect(spawnComms(args, options));
}
