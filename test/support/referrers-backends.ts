/**
 * The two registries the referrers acceptance suite runs against, behind one shape: a real CNCF
 * distribution 2.8 (docker-registry, no Referrers API: the tag-schema fallback) and `comms serve`
 * (the Referrers API). Plus a request-counting client and a runner for the CLI from source.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RegistryClient, type ClientOptions, type RequestEvent } from '../../src/oci/remote/index.ts';
import type { RemoteRepository } from '../../src/oci/remote/repository.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { startRegistry, type RegistryServer } from './registry.ts';
import { requireTool, tempDir, type TempDir } from './tools.ts';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TEST_KEY = fileURLToPath(new URL('../../fixtures/keys/test-only-p256.key', import.meta.url));
export const TEST_PUB = fileURLToPath(new URL('../../fixtures/keys/test-only-p256.pub', import.meta.url));

export type BackendKind = 'docker-registry' | 'comms-serve';

export interface Backend {
  kind: BackendKind;
  /** Whether the server answers the Referrers API (and `OCI-Subject`). */
  referrersApi: boolean;
  /** `127.0.0.1:PORT` */
  host: string;
  /** A repository reference no other test uses: `host/<prefix>/<random>`. */
  freshRepo(prefix?: string): string;
  /** docker-registry only: the harness handle (kill, restart). */
  registry?: RegistryServer;
  /** comms serve only: its storage root (one OCI image layout per repository). */
  serveRoot?: string;
  stop(): Promise<void>;
}

/**
 * The backends this machine can run: comms serve always; docker-registry when installed (in CI
 * its absence throws, so the fallback path is never skipped silently).
 */
export function backendKinds(): BackendKind[] {
  return requireTool('docker-registry') ? ['docker-registry', 'comms-serve'] : ['comms-serve'];
}

export async function startBackend(kind: BackendKind): Promise<Backend> {
  const fresh = (host: string) => (prefix = 'refs') => `${host}/${prefix}/r${randomBytes(5).toString('hex')}`;
  if (kind === 'docker-registry') {
    const registry = await startRegistry({ mode: 'plain' });
    return { kind, referrersApi: false, host: registry.host, freshRepo: fresh(registry.host), registry, stop: () => registry.stop() };
  }
  const dir: TempDir = await tempDir('comms-serve-refs-');
  const server: RunningServer = await startServer({ root: dir.path, port: 0 });
  const host = `127.0.0.1:${server.port}`;
  return {
    kind,
    referrersApi: true,
    host,
    freshRepo: fresh(host),
    serveRoot: dir.path,
    stop: async () => {
      await server.close();
      await dir.cleanup();
    },
  };
}

/** A client of its own whose every HTTP exchange is recorded (what `--verbose` would print). */
export interface CountingRepo {
  repo: RemoteRepository;
  client: RegistryClient;
  requests: RequestEvent[];
  /** Requests whose method matches and whose URL path matches `path`. */
  count(method: string, path: RegExp): number;
  /** PUTs of a referrers tag-schema index (`/manifests/sha256-<hex>`). */
  tagSchemaWrites(): number;
  close(): Promise<void>;
}

export function countingRepo(reference: string, options: Omit<ClientOptions, 'onRequest'> = {}): CountingRepo {
  const requests: RequestEvent[] = [];
  const client = new RegistryClient({ plainHttp: true, ...options, onRequest: (e) => requests.push(e) });
  const count = (method: string, path: RegExp) => requests.filter((r) => r.method === method && path.test(new URL(r.url).pathname)).length;
  return {
    repo: client.repository(reference),
    client,
    requests,
    count,
    tagSchemaWrites: () => count('PUT', /\/manifests\/sha256-[0-9a-f]{64}$/),
    close: () => client.close(),
  };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout's `--json` lines, parsed. */
  json: Record<string, unknown>[];
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

/** The environment a CLI child gets: no docker logins, no signing key, no OIDC token of the host's. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_CONFIG: '/nonexistent-comms-test', COMMS_KEY: '', SIGSTORE_ID_TOKEN: '', NODE_COMPILE_CACHE: childCompileCache(), ...extra };
}

/** Starts `comms <args>` from source; the caller owns the process. */
export function spawnComms(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ['src/cli/run.ts', ...args], { cwd: PROJECT_ROOT, env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Waits for a spawned comms to exit and returns what it printed. */
export function collect(child: ChildProcess): Promise<CliResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      resolve({ code, signal, stdout, stderr: Buffer.concat(err).toString('utf8'), json: jsonLines(stdout) });
    });
  });
}

export function runComms(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return collect(spawnComms(args, env));
}

export function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A compact account of a CLI run for assertion messages. */
export function describeRun(r: CliResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 2000)}`;
}
