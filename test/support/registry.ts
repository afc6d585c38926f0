/**
 * Starts and stops real CNCF distribution 2.8 registries (Debian's /usr/bin/docker-registry) on
 * loopback for integration tests, in four modes: plain HTTP, TLS with a test CA, htpasswd Basic
 * auth, and Bearer token auth with our token issuer. Config writing lives in registry-config.ts.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, appendFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { testPki } from './certs.ts';
import { writeHtpasswd, writeRegistryConfig } from './registry-config.ts';
import type { RegistryConfigOptions } from './registry-config.ts';
import { startTokenIssuer } from './token-issuer.ts';
import type { TokenIssuer, TokenIssuerOptions } from './token-issuer.ts';
import { freePort, tempDir, whichTool } from './tools.ts';

export type RegistryMode = 'plain' | 'tls' | 'basic' | 'token';

export interface StartRegistryOptions {
  mode: RegistryMode;
  /** Storage root; default a fresh folder of this server's own. Pass another server's to share. */
  storageDir?: string;
  /** Default: a free port. */
  port?: number;
  /** Extra config merged over the generated one (see RegistryConfigOptions.extra). */
  extraConfig?: Record<string, unknown>;
  /** `http.secret`; default a random one kept for the server's lifetime (restarts included). */
  httpSecret?: string;
  /** Log every request in logs() (default off). */
  accessLog?: boolean;
  logLevel?: RegistryConfigOptions['logLevel'];
  /** basic and token modes: username → password (default one random user). */
  users?: Record<string, string>;
  /** token mode: options for the issuer started with the registry. */
  issuer?: Omit<TokenIssuerOptions, 'users'>;
  /** Readiness wait bound in ms (default 15000). */
  readyTimeoutMs?: number;
  /** Binary to run (default: docker-registry on PATH). */
  binary?: string;
}

export interface RegistryServer {
  mode: RegistryMode;
  /** '127.0.0.1:PORT' */
  host: string;
  port: number;
  /** 'http://127.0.0.1:PORT' or 'https://127.0.0.1:PORT' */
  url: string;
  storageDir: string;
  /** The config file the server runs with. */
  configFile: string;
  /** tls mode: PEM file of the test CA that signed the server certificate. */
  caFile?: string;
  /** basic and token modes: a valid user. */
  username?: string;
  password?: string;
  /** token mode: the issuer (realm, request counts, expiresIn). */
  issuer?: TokenIssuer;
  /** Pid of the current registry process (changes on restart). */
  pid: number;
  /** False after stop() or kill() until restart(). */
  readonly running: boolean;
  /** SIGTERM, wait for exit (SIGKILL after a grace period). Also closes the token issuer. */
  stop(): Promise<void>;
  /** SIGKILL now and wait for the process to be gone (fault tests). The issuer keeps running. */
  kill(): Promise<void>;
  /**
   * Starts again on the same port, storage and config (stops first if running). Uploads begun
   * before keep working, because http.secret stays; pass a new `httpSecret` to model a registry
   * whose secret changes on restart (registry:2 without one): their upload URLs then answer 404.
   */
  restart(options?: { httpSecret?: string }): Promise<void>;
  /** Everything the server wrote to stdout/stderr so far, across restarts. */
  logs(): string;
  [Symbol.asyncDispose](): Promise<void>;
}

const STOP_GRACE_MS = 5000;

// Registries still alive when the test process exits are killed then, so a test that forgot
// stop() (or crashed) leaves no server behind.
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of liveChildren) {
        try {
          c.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
}

export interface LaunchOptions {
  binary: string;
  configFile: string;
  logFile: string;
  /** URL whose GET must answer one of readyStatuses. */
  readyUrl: string;
  readyStatuses: number[];
  ca?: string;
  timeoutMs: number;
}

export interface LaunchedRegistry {
  child: ChildProcess;
  pid: number;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
}

function probe(url: string, ca: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = request(url, { method: 'GET', ca, timeout: 2000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('probe timed out')));
    req.on('error', reject);
    req.end();
  });
}

function tail(text: string, lines = 20): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Spawns `docker-registry serve <config>` with output appended to logFile, and waits until ready. */
export async function launchRegistry(options: LaunchOptions): Promise<LaunchedRegistry> {
  const fd = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(options.binary, ['serve', options.configFile], { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  // The server must not keep a test process alive on its own; the exit hook kills leftovers.
  child.unref();
  trackChild(child);
  let exitInfo: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = signal ? `signal ${signal}` : `code ${code}`;
      resolve();
    });
    child.once('error', (err) => {
      exitInfo = `spawn error: ${err.message}`;
      resolve();
    });
  });
  const pid = child.pid;
  const logs = (): string => {
    try {
      return readFileSync(options.logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const deadline = Date.now() + options.timeoutMs;
  let lastError = 'no answer yet';
  child.ref(); // keep the loop alive while we wait for it
  try {
    for (;;) {
      if (exitInfo !== undefined) {
        throw new Error(`docker-registry exited before it was ready (${exitInfo}):\n${tail(logs())}`);
      }
      try {
        const status = await probe(options.readyUrl, options.ca);
        if (options.readyStatuses.includes(status)) break;
        lastError = `GET /v2/ answered ${status}`;
      } catch (err) {
        lastError = (err as Error).message;
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`docker-registry not ready after ${options.timeoutMs} ms (${lastError}):\n${tail(logs())}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    child.unref();
  }
  if (pid === undefined) throw new Error('docker-registry has no pid');
  return { child, pid, exited };
}

/** Sends `signal`, waits for exit; after graceMs escalates to SIGKILL. */
export async function terminate(launched: LaunchedRegistry, signal: NodeJS.Signals, graceMs = STOP_GRACE_MS): Promise<void> {
  const { child, exited } = launched;
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.ref();
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const escalate = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, graceMs);
  });
  await Promise.race([exited, escalate]);
  clearTimeout(timer);
  await exited;
}

function isPortClash(message: string): boolean {
  return /address already in use/i.test(message);
}

/** Starts a registry in the given mode and waits until `GET /v2/` answers (200, or 401 with auth). */
export async function startRegistry(options: StartRegistryOptions): Promise<RegistryServer> {
  const binary = options.binary ?? whichTool('docker-registry');
  if (binary === undefined) {
    throw new Error('docker-registry not installed: run scripts/install-test-deps.sh');
  }
  const { path: dir } = await tempDir('comms-registry-');
  const storageDir = options.storageDir ?? join(dir, 'data');
  await mkdir(storageDir, { recursive: true });
  const configFile = join(dir, 'config.yml');
  const logFile = join(dir, 'registry.log');
  const mode = options.mode;
  const secret = options.httpSecret ?? randomBytes(24).toString('base64url');

  const users = options.users ?? { tester: randomBytes(12).toString('base64url') };
  const [firstUser] = Object.entries(users);
  let caFile: string | undefined;
  let issuer: TokenIssuer | undefined;
  const configBase: Omit<RegistryConfigOptions, 'port'> = {
    storageDir,
    secret,
    ...(options.logLevel !== undefined ? { logLevel: options.logLevel } : {}),
    ...(options.accessLog !== undefined ? { accessLog: options.accessLog } : {}),
    ...(options.extraConfig !== undefined ? { extra: options.extraConfig } : {}),
  };
  if (mode === 'tls') {
    const pki = await testPki();
    caFile = pki.caFile;
    configBase.tls = { certificate: pki.serverCertFile, key: pki.serverKeyFile };
  } else if (mode === 'basic') {
    const path = join(dir, 'htpasswd');
    await writeHtpasswd(path, users);
    configBase.htpasswd = { realm: 'comms-test', path };
  } else if (mode === 'token') {
    issuer = await startTokenIssuer({ ...options.issuer, users });
    configBase.token = { realm: issuer.realm, service: issuer.service, issuer: issuer.issuer, rootcertbundle: issuer.rootCertBundle };
  }
  const readyStatuses = mode === 'basic' || mode === 'token' ? [401] : [200];
  const scheme = mode === 'tls' ? 'https' : 'http';
  const timeoutMs = options.readyTimeoutMs ?? 15000;

  let port = options.port ?? (await freePort());
  let launched: LaunchedRegistry | undefined;
  const launch = async (): Promise<LaunchedRegistry> =>
    launchRegistry({
      binary,
      configFile,
      logFile,
      readyUrl: `${scheme}://127.0.0.1:${port}/v2/`,
      readyStatuses,
      ...(caFile !== undefined ? { ca: readFileSync(caFile, 'utf8') } : {}),
      timeoutMs,
    });

  try {
    // A free port can be taken between freePort() and the server's bind; try a few others then.
    for (let attempt = 0; ; attempt++) {
      await writeRegistryConfig(configFile, { ...configBase, port });
      try {
        launched = await launch();
        break;
      } catch (err) {
        if (options.port !== undefined || attempt >= 3 || !isPortClash((err as Error).message)) throw err;
        port = await freePort();
      }
    }
  } catch (err) {
    await issuer?.close();
    throw err;
  }

  let current: LaunchedRegistry | undefined = launched;
  let issuerClosed = false;
  const server: RegistryServer = {
    mode,
    host: `127.0.0.1:${port}`,
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    storageDir,
    configFile,
    ...(caFile !== undefined ? { caFile } : {}),
    ...(mode === 'basic' || mode === 'token' ? { username: firstUser?.[0], password: firstUser?.[1] } : {}),
    ...(issuer !== undefined ? { issuer } : {}),
    pid: launched.pid,
    get running() {
      return current !== undefined && current.child.exitCode === null && current.child.signalCode === null;
    },
    async stop() {
      if (current) await terminate(current, 'SIGTERM');
      current = undefined;
      if (issuer && !issuerClosed) {
        issuerClosed = true;
        await issuer.close();
      }
    },
    async kill() {
      if (current) await terminate(current, 'SIGKILL');
      current = undefined;
    },
    async restart(restartOptions = {}) {
      if (issuerClosed) throw new Error('registry was stopped (issuer closed); start a new one instead of restart()');
      if (current) await terminate(current, 'SIGTERM');
      current = undefined;
      if (restartOptions.httpSecret !== undefined) {
        configBase.secret = restartOptions.httpSecret;
        await writeRegistryConfig(configFile, { ...configBase, port });
      }
      appendFileSync(logFile, `--- restart ${new Date().toISOString()} ---\n`);
      current = await launch();
      server.pid = current.pid;
    },
    logs() {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
    [Symbol.asyncDispose]() {
      return server.stop();
    },
  };
  return server;
}
