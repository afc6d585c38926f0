/**
 * The two registries the referrers acceptance suite runs against, behind one shape: a real CNCF
 * distribution 2.8 (docker-registry, no Referrers API: the tag-schema fallback) and `comms serve`
 * (the Referrers API). Plus a request-counting client; the CLI runs through cli.ts.
 */
import { join } from 'node:path';
import { after, before } from 'node:test';
import { OciLayout } from '../../src/oci/layout/index.ts';
import type { Repository } from '../../src/oci/target.ts';
import { randomBytes } from 'node:crypto';
import { RegistryClient, type ClientOptions, type RequestEvent } from '../../src/oci/remote/index.ts';
import type { RemoteRepository } from '../../src/oci/remote/repository.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { startRegistry, type RegistryServer } from './registry.ts';
import { requireTool, tempDir, type TempDir } from './tools.ts';

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
  const fresh =
    (host: string) =>
    (prefix = 'refs') =>
      `${host}/${prefix}/r${randomBytes(5).toString('hex')}`;
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

/**
 * For a describe block over one kind of mailbox (a backend, or an `oci:` folder): registers the
 * before/after hooks that start and stop it and a scratch folder, and returns `freshRepo`, which
 * opens a new, empty repository on it (counted through countingRepo on a backend), and `scratch`,
 * the scratch folder's path.
 */
export function mailboxFixture(
  kind: BackendKind | 'oci',
  name: string,
): { freshRepo: () => Promise<{ repo: Repository; ref: string }>; scratch: () => string } {
  let backend: Backend | undefined;
  let folder: TempDir | undefined;
  const closers: (() => Promise<void>)[] = [];
  before(async () => {
    folder = await tempDir(`comms-${name}-`);
    if (kind !== 'oci') backend = await startBackend(kind);
  });
  after(async () => {
    for (const c of closers) await c();
    await backend?.stop();
    await folder?.cleanup();
  });
  const scratch = () => folder!.path;
  const freshRepo = async () => {
    if (kind === 'oci') {
      const dir = join(scratch(), `m${Math.random().toString(16).slice(2)}`);
      return { repo: (await OciLayout.open(dir, { create: true })) as Repository, ref: `oci:${dir}` };
    }
    const ref = backend!.freshRepo(name);
    const c = countingRepo(ref);
    closers.push(() => c.close());
    return { repo: c.repo as Repository, ref };
  };
  return { freshRepo, scratch };
}
