/**
 * Writes configuration files for CNCF distribution 2.8 (`docker-registry serve config.yml`):
 * the YAML config and the htpasswd file. Kept apart from process management so a test can build
 * its own variant (different storage, extra middleware, a second server on the same storage).
 */
import { writeFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';

export interface RegistryConfigOptions {
  /** Listen address is always 127.0.0.1:<port>. */
  port: number;
  /** Filesystem driver root. */
  storageDir: string;
  /** `http.tls`: PEM certificate and key files. */
  tls?: { certificate: string; key: string };
  /** `auth.htpasswd`: realm and a bcrypt htpasswd file. */
  htpasswd?: { realm: string; path: string };
  /** `auth.token`: the issuer the registry sends clients to, and the bundle it trusts. */
  token?: { realm: string; service: string; issuer: string; rootcertbundle: string };
  /**
   * `http.secret` signs upload-session state. Keep it fixed across restarts or every upload in
   * progress becomes invalid when the server restarts (distribution picks a random one if unset).
   */
  secret?: string;
  /** Default 'warn'. */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** Access log lines (one per request) in the server log; default off to keep logs short. */
  accessLog?: boolean;
  /** Merged last, deeply, over the generated config (objects merge, other values replace). */
  extra?: Record<string, unknown>;
}

export type ConfigObject = Record<string, unknown>;

function isPlainObject(v: unknown): v is ConfigObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge for config objects: nested objects merge, everything else is replaced. */
export function mergeConfig(base: ConfigObject, extra: ConfigObject): ConfigObject {
  const out: ConfigObject = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? mergeConfig(current, value) : value;
  }
  return out;
}

/** The config as a plain object (YAML-ready). */
export function registryConfig(options: RegistryConfigOptions): ConfigObject {
  const http: ConfigObject = { addr: `127.0.0.1:${options.port}` };
  if (options.secret !== undefined) http.secret = options.secret;
  if (options.tls) http.tls = { certificate: options.tls.certificate, key: options.tls.key };
  const config: ConfigObject = {
    version: '0.1',
    log: { level: options.logLevel ?? 'warn', accesslog: { disabled: !options.accessLog } },
    storage: {
      filesystem: { rootdirectory: options.storageDir },
      delete: { enabled: true },
      // Upload purging would delete a killed server's half-finished uploads on restart.
      maintenance: { uploadpurging: { enabled: false } },
    },
    http,
  };
  if (options.htpasswd && options.token) throw new Error('registry config: htpasswd and token auth are exclusive');
  if (options.htpasswd) config.auth = { htpasswd: { realm: options.htpasswd.realm, path: options.htpasswd.path } };
  if (options.token) config.auth = { token: { ...options.token } };
  return options.extra ? mergeConfig(config, options.extra) : config;
}

function yamlScalar(value: unknown): string {
  if (typeof value === 'boolean' || typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value); // a JSON string is a YAML double-quoted scalar
  if (value === null || value === undefined) return 'null';
  throw new Error(`registry config: cannot write ${typeof value} as YAML`);
}

/** Minimal YAML writer for nested maps, lists and scalars (all the registry config needs). */
export function toYaml(value: unknown, indent = 0): string {
  const pad = ' '.repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return `${pad}[]\n`;
    return value
      .map((item) => (isPlainObject(item) || Array.isArray(item) ? `${pad}-\n${toYaml(item, indent + 2)}` : `${pad}- ${yamlScalar(item)}\n`))
      .join('');
  }
  if (isPlainObject(value)) {
    return Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => {
        const key = /^[A-Za-z0-9_.-]+$/.test(k) ? k : JSON.stringify(k);
        if (isPlainObject(v)) return Object.keys(v).length === 0 ? `${pad}${key}: {}\n` : `${pad}${key}:\n${toYaml(v, indent + 2)}`;
        if (Array.isArray(v)) return v.length === 0 ? `${pad}${key}: []\n` : `${pad}${key}:\n${toYaml(v, indent + 2)}`;
        return `${pad}${key}: ${yamlScalar(v)}\n`;
      })
      .join('');
  }
  return `${pad}${yamlScalar(value)}\n`;
}

/** Writes the config YAML to `path` and returns the object written. */
export async function writeRegistryConfig(path: string, options: RegistryConfigOptions): Promise<ConfigObject> {
  const config = registryConfig(options);
  await writeFile(path, toYaml(config), { mode: 0o600 });
  return config;
}

/** Writes an htpasswd file with bcrypt entries (the only hash distribution accepts). */
export async function writeHtpasswd(path: string, users: Record<string, string>, cost = 6): Promise<void> {
  const lines = Object.entries(users).map(([user, password]) => {
    if (user.includes(':') || user.includes('\n')) throw new Error(`htpasswd: invalid user name ${JSON.stringify(user)}`);
    return `${user}:${bcrypt.hashSync(password, cost)}\n`;
  });
  await writeFile(path, lines.join(''), { mode: 0o600 });
}
