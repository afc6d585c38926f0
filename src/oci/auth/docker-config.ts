/**
 * Credentials from docker's `config.json` (`$DOCKER_CONFIG` or `~/.docker`): `auths` entries,
 * `credHelpers[host]` and `credsStore`, read the way the docker CLI reads them. Nothing read
 * from the file is ever put in an error: they name the file and the key, never a value.
 */
import { open } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AbortError, CommsError, ProtocolError } from '../../errors.ts';
import { checkAborted } from '../../util/abort.ts';
import { runCredentialHelper } from './credential-helper.ts';
import type { Credential, CredentialStore } from './credential.ts';
import { normalizeRegistryHost } from './registry-host.ts';

/** The key docker uses for Docker Hub in `auths` and `credHelpers`, and sends to helpers. */
export const DOCKER_HUB_SERVER_ADDRESS = 'https://index.docker.io/v1/';
/** config.json is a few KiB; a larger file is refused rather than read into memory. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export interface DockerConfigOptions {
  /** The directory holding config.json; default `$DOCKER_CONFIG`, else `~/.docker`. */
  configDir?: string;
  /** Environment for DOCKER_CONFIG/HOME and for the helpers (their PATH). Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Timeout for one credential-helper run, default 30 s. */
  helperTimeoutMs?: number;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

interface DockerConfig {
  auths: Map<string, AuthEntry>;
  credHelpers: Map<string, string>;
  credsStore?: string;
}

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export class DockerConfigCredentialStore implements CredentialStore {
  readonly configFile: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly helperTimeoutMs: number | undefined;

  constructor(options: DockerConfigOptions = {}) {
    this.env = options.env ?? process.env;
    const dir = options.configDir ?? nonEmpty(this.env.DOCKER_CONFIG) ?? join(nonEmpty(this.env.HOME) ?? homedir(), '.docker');
    this.configFile = join(dir, 'config.json');
    this.helperTimeoutMs = options.helperTimeoutMs;
  }

  async get(registry: string, options: { signal?: AbortSignal } = {}): Promise<Credential | undefined> {
    checkAborted(options.signal);
    const config = await this.read(options.signal);
    if (config === undefined) return undefined;
    const host = normalizeRegistryHost(registry);
    const serverAddress = host === 'docker.io' ? DOCKER_HUB_SERVER_ADDRESS : registry;

    // As docker: a per-registry helper first, else the default store. When the helper has
    // nothing, an `auths` entry written by hand or by CI is still used.
    const helper = lookup(config.credHelpers, host, serverAddress) ?? config.credsStore;
    if (helper !== undefined) {
      const found = await runCredentialHelper(helper, serverAddress, {
        registry,
        env: this.env,
        ...(options.signal ? { signal: options.signal } : {}),
        ...(this.helperTimeoutMs !== undefined ? { timeoutMs: this.helperTimeoutMs } : {}),
      });
      if (found !== undefined) return found;
    }
    const key = lookupKey(config.auths, host, serverAddress);
    return key === undefined ? undefined : this.decode(key, config.auths.get(key) as AuthEntry);
  }

  /** Undefined when there is no config file; ProtocolError naming the file when it is malformed. */
  private async read(signal?: AbortSignal): Promise<DockerConfig | undefined> {
    let text: string;
    try {
      const fh = await open(this.configFile, 'r');
      try {
        const { size } = await fh.stat();
        if (size > MAX_CONFIG_BYTES) throw this.malformed(`larger than ${MAX_CONFIG_BYTES} bytes`);
        text = await fh.readFile({ encoding: 'utf8', ...(signal ? { signal } : {}) });
      } finally {
        await fh.close();
      }
    } catch (err) {
      if (err instanceof CommsError) throw err;
      const code = (err as { code?: unknown }).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      if ((err as { name?: unknown }).name === 'AbortError') throw new AbortError();
      // fs errors carry only the path and errno, never the content.
      throw new CommsError(`cannot read docker config ${this.configFile}: ${String(code ?? 'error')}`, { code: 'DOCKER_CONFIG_UNREADABLE', cause: err });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      // No cause: JSON.parse messages can quote the text around the error, i.e. a secret.
      throw this.malformed('not valid JSON');
    }
    if (!isObject(raw)) throw this.malformed('the top level is not a JSON object');

    const config: DockerConfig = { auths: new Map(), credHelpers: new Map() };
    if (raw.auths !== undefined && raw.auths !== null) {
      if (!isObject(raw.auths)) throw this.malformed('"auths" is not an object');
      for (const [key, entry] of Object.entries(raw.auths)) {
        if (!isObject(entry)) throw this.malformed(`auths[${JSON.stringify(key)}] is not an object`);
        const out: AuthEntry = {};
        for (const field of ['auth', 'username', 'password', 'identitytoken', 'registrytoken'] as const) {
          const v = entry[field];
          if (v === undefined || v === null) continue;
          if (typeof v !== 'string') throw this.malformed(`auths[${JSON.stringify(key)}].${field} is not a string`);
          if (v !== '') out[field] = v;
        }
        config.auths.set(key, out);
      }
    }
    if (raw.credHelpers !== undefined && raw.credHelpers !== null) {
      if (!isObject(raw.credHelpers)) throw this.malformed('"credHelpers" is not an object');
      for (const [key, name] of Object.entries(raw.credHelpers)) {
        if (typeof name !== 'string') throw this.malformed(`credHelpers[${JSON.stringify(key)}] is not a string`);
        if (name !== '') config.credHelpers.set(key, name);
      }
    }
    if (raw.credsStore !== undefined && raw.credsStore !== null) {
      if (typeof raw.credsStore !== 'string') throw this.malformed('"credsStore" is not a string');
      if (raw.credsStore !== '') config.credsStore = raw.credsStore;
    }
    return config;
  }

  private decode(key: string, entry: AuthEntry): Credential | undefined {
    const cred: Credential = {};
    if (entry.auth !== undefined) {
      const b64 = entry.auth.replace(/\s+/g, '');
      const decoded = /^[A-Za-z0-9+/]+={0,2}$/.test(b64) ? Buffer.from(b64, 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      if (colon < 0) throw this.malformed(`auths[${JSON.stringify(key)}].auth is not base64 of "username:password"`);
      cred.username = decoded.slice(0, colon);
      cred.password = decoded.slice(colon + 1);
    } else {
      if (entry.username !== undefined) cred.username = entry.username;
      if (entry.password !== undefined) cred.password = entry.password;
    }
    if (entry.identitytoken !== undefined) cred.identityToken = entry.identitytoken;
    if (entry.registrytoken !== undefined) cred.registryToken = entry.registrytoken;
    return Object.keys(cred).length === 0 ? undefined : cred;
  }

  private malformed(why: string): ProtocolError {
    return new ProtocolError(`malformed docker config ${this.configFile}: ${why}`, { code: 'DOCKER_CONFIG_INVALID' });
  }
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

/**
 * The key of `map` for a registry: the exact server address first, then any key that names
 * the same host (`ghcr.io`, `https://ghcr.io`, `http://ghcr.io/v2/` …), as docker's legacy lookup.
 */
function lookupKey<T>(map: Map<string, T>, host: string, serverAddress: string): string | undefined {
  if (map.has(serverAddress)) return serverAddress;
  for (const key of map.keys()) {
    if (normalizeRegistryHost(key) === host) return key;
  }
  return undefined;
}

function lookup<T>(map: Map<string, T>, host: string, serverAddress: string): T | undefined {
  const key = lookupKey(map, host, serverAddress);
  return key === undefined ? undefined : map.get(key);
}
