/**
 * `docker login` / `docker logout` for docker's `config.json`, written the way the docker CLI and
 * oras write it: a registry's credential helper (`credHelpers[host]`, else `credsStore`) keeps the
 * secret when one is configured, else `auths[host].auth` holds base64 of `user:password`. Every
 * other field of the file is kept as it was; the file is replaced atomically with mode 0600.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ProtocolError, UsageError } from '../../errors.ts';
import { runCredentialHelperAction } from './credential-helper.ts';
import { DOCKER_HUB_SERVER_ADDRESS, DockerConfigCredentialStore } from './docker-config.ts';
import { normalizeRegistryHost } from './registry-host.ts';

export interface DockerLoginOptions {
  /** The directory holding config.json; default `$DOCKER_CONFIG`, else `~/.docker`. */
  configDir?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export interface DockerLoginResult {
  /** The key used in config.json and sent to the helper (`ghcr.io`, or Docker Hub's URL). */
  serverAddress: string;
  configFile: string;
  /** The credential helper that holds the secret, when one does. */
  helper?: string;
}

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The config.json key of a registry, as docker spells it. */
export function serverAddressOf(registry: string): string {
  const host = normalizeRegistryHost(registry);
  if (host === '') throw new UsageError(`${JSON.stringify(registry)} is not a registry host`);
  return host === 'docker.io' ? DOCKER_HUB_SERVER_ADDRESS : host;
}

export async function dockerLogin(registry: string, username: string, password: string, options: DockerLoginOptions = {}): Promise<DockerLoginResult> {
  if (username === '') throw new UsageError('a username is needed (-u USER)');
  if (password === '') throw new UsageError('a password or token is needed (--password-stdin)');
  if (username.includes(':')) throw new UsageError('a username cannot contain ":"');
  const serverAddress = serverAddressOf(registry);
  const file = configFileOf(options);
  const config = await readConfig(file);
  const helper = helperFor(config, serverAddress);
  const auths = isObject(config['auths']) ? config['auths'] : {};
  for (const key of keysFor(auths, serverAddress)) delete auths[key];
  if (helper !== undefined) {
    await runCredentialHelperAction(
      helper,
      'store',
      JSON.stringify({ ServerURL: serverAddress, Username: username, Secret: password }),
      helperOptions(registry, options),
    );
    // As docker does for a credential store: an empty entry records the login, not the secret.
    if (config['credsStore'] === helper) auths[serverAddress] = {};
  } else {
    auths[serverAddress] = { auth: Buffer.from(`${username}:${password}`, 'utf8').toString('base64') };
  }
  config['auths'] = auths;
  await writeConfig(file, config);
  return { serverAddress, configFile: file, ...(helper !== undefined ? { helper } : {}) };
}

/** Removes the registry's entry (and asks its helper to erase it). Returns whether config.json had one. */
export async function dockerLogout(registry: string, options: DockerLoginOptions = {}): Promise<DockerLoginResult & { removed: boolean }> {
  const serverAddress = serverAddressOf(registry);
  const file = configFileOf(options);
  const config = await readConfig(file);
  const helper = helperFor(config, serverAddress);
  if (helper !== undefined) await runCredentialHelperAction(helper, 'erase', serverAddress, helperOptions(registry, options));
  const auths = isObject(config['auths']) ? config['auths'] : undefined;
  const keys = auths ? keysFor(auths, serverAddress) : [];
  if (auths && keys.length > 0) {
    for (const key of keys) delete auths[key];
    await writeConfig(file, config);
  }
  return { serverAddress, configFile: file, removed: keys.length > 0 || helper !== undefined, ...(helper !== undefined ? { helper } : {}) };
}

/** Reads config.json as login would (a malformed file is a ProtocolError naming it); nothing is written. */
export async function readDockerConfigForLogin(options: DockerLoginOptions = {}): Promise<void> {
  await readConfig(configFileOf(options));
}

function configFileOf(options: DockerLoginOptions): string {
  return new DockerConfigCredentialStore({ env: options.env ?? process.env, ...(options.configDir !== undefined ? { configDir: options.configDir } : {}) })
    .configFile;
}

function helperOptions(registry: string, options: DockerLoginOptions) {
  return { registry, env: options.env ?? process.env, ...(options.signal ? { signal: options.signal } : {}) };
}

function helperFor(config: Obj, serverAddress: string): string | undefined {
  const helpers = isObject(config['credHelpers']) ? config['credHelpers'] : {};
  const host = normalizeRegistryHost(serverAddress);
  for (const [key, name] of Object.entries(helpers)) {
    if (normalizeRegistryHost(key) === host && typeof name === 'string' && name !== '') return name;
  }
  const store = config['credsStore'];
  return typeof store === 'string' && store !== '' ? store : undefined;
}

/** Every `auths` key naming this registry (`ghcr.io`, `https://ghcr.io`, …). */
function keysFor(auths: Obj, serverAddress: string): string[] {
  const host = normalizeRegistryHost(serverAddress);
  return Object.keys(auths).filter((k) => normalizeRegistryHost(k) === host);
}

async function readConfig(file: string): Promise<Obj> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  if (text.trim() === '') return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // No cause: JSON.parse messages can quote the text around the error, i.e. a secret.
    throw new ProtocolError(`docker config ${file} is not valid JSON; fix or remove it`, { code: 'DOCKER_CONFIG_INVALID' });
  }
  if (!isObject(raw)) throw new ProtocolError(`docker config ${file}: the top level is not a JSON object`, { code: 'DOCKER_CONFIG_INVALID' });
  return raw;
}

async function writeConfig(file: string, config: Obj): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(tmp, 0o600);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
