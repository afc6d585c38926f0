/**
 * Runs the real `comms` CLI (src/cli/run.ts, from source) as a child process, with an environment
 * stripped of anything that would change what it does (signing keys, OIDC tokens, docker
 * credentials, a shared temp folder), and collects exit code, stdout and stderr.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
}

export interface CliOptions {
  /** Extra variables, over the clean base (see cleanEnv). */
  env?: Record<string, string>;
  /** Written to stdin, then closed (stdin is closed empty otherwise). */
  stdin?: string;
  /** Kill the child after this long (a hang is a failure, never a pass); default 120 s. */
  timeoutMs?: number;
}

/**
 * PATH and HOME only, plus `tmpDir` as TMPDIR (where recv keeps its partial files when that is on
 * the same filesystem as --out) and an empty DOCKER_CONFIG folder: no COMMS_KEY, no
 * SIGSTORE_ID_TOKEN, no ACTIONS_ID_TOKEN_REQUEST_URL leak in from the machine running the tests.
 */
export function cleanEnv(tmpDir: string, dockerConfigDir: string): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? '/root',
    TMPDIR: tmpDir,
    DOCKER_CONFIG: dockerConfigDir,
    // The default trust file lives under the config folder: the user's own must not leak in.
    XDG_CONFIG_HOME: `${tmpDir}/config`,
    NO_COLOR: '1',
  };
}

export async function runCli(args: string[], base: Record<string, string>, options: CliOptions = {}): Promise<CliResult> {
  await mkdir(base['TMPDIR'] ?? PROJECT_ROOT, { recursive: true });
  const child = spawn(process.execPath, ['src/cli/run.ts', ...args], {
    cwd: PROJECT_ROOT,
    env: { ...base, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.end(options.stdin ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolve([c, s]));
  });
  clearTimeout(timer);
  return { code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), pid: child.pid ?? -1 };
}

/** Every entry under `dir`, hidden ones included, as relative paths; [] when it does not exist. */
export async function listAll(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const e of entries) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      found.push(r);
      if (e.isDirectory()) await walk(path.join(d, e.name), r);
    }
  };
  await walk(dir, '');
  return found.sort();
}

/**
 * The lines of a `--json` run's stderr, each parsed; throws (failing the test) on a line that is
 * not a JSON object, since --json promises machine-readable output.
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
