/**
 * Where registry credentials come from: explicit options, the environment, docker's config
 * (with credential helpers). A store answers for one registry host at a time; a chain asks
 * each in turn. Secrets never reach an error message, an error property or a log line.
 */
import { UsageError } from '../../errors.ts';
import { checkAborted } from '../../util/abort.ts';
import type { Credential, CredentialStore } from './credential.ts';
import { DockerConfigCredentialStore } from './docker-config.ts';
import { normalizeRegistryHost } from './registry-host.ts';

export { DockerConfigCredentialStore } from './docker-config.ts';
export type { DockerConfigOptions } from './docker-config.ts';
export { normalizeRegistryHost } from './registry-host.ts';

export type { Credential, CredentialStore } from './credential.ts';

/** Credentials given in code, keyed by registry host (`docker.io` and its aliases are one key). */
export class StaticCredentialStore implements CredentialStore {
  private readonly map = new Map<string, Credential>();

  constructor(map: Record<string, Credential>) {
    for (const [registry, cred] of Object.entries(map)) this.map.set(normalizeRegistryHost(registry), { ...cred });
  }

  async get(registry: string, options: { signal?: AbortSignal } = {}): Promise<Credential | undefined> {
    checkAborted(options.signal);
    const cred = this.map.get(normalizeRegistryHost(registry));
    return cred === undefined ? undefined : { ...cred };
  }
}

/** One credential for every registry (explicit `--username/--password` or `--token`). */
export class FixedCredentialStore implements CredentialStore {
  private readonly cred: Credential;

  constructor(cred: Credential) {
    this.cred = { ...cred };
  }

  async get(_registry: string, options: { signal?: AbortSignal } = {}): Promise<Credential | undefined> {
    checkAborted(options.signal);
    return { ...this.cred };
  }
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

/**
 * The pair rule shared by options and environment: a username needs a password and vice
 * versa. Returns the credential, or undefined when nothing is set. Errors name the setting only.
 */
function credentialFrom(
  username: string | undefined,
  password: string | undefined,
  registryToken: string | undefined,
  names: { username: string; password: string },
): Credential | undefined {
  if (username !== undefined && password === undefined) throw new UsageError(`${names.username} is set but ${names.password} is not`);
  if (password !== undefined && username === undefined) throw new UsageError(`${names.password} is set but ${names.username} is not`);
  const cred: Credential = {};
  if (username !== undefined) cred.username = username;
  if (password !== undefined) cred.password = password;
  if (registryToken !== undefined) cred.registryToken = registryToken;
  return Object.keys(cred).length === 0 ? undefined : cred;
}

/**
 * COMMS_REGISTRY_USERNAME + COMMS_REGISTRY_PASSWORD, and/or COMMS_REGISTRY_TOKEN (a bearer
 * token used as-is). COMMS_REGISTRY_HOST, when set, limits them to that one registry. Read at
 * each `get`, so the store follows the environment object it was given.
 */
export class EnvCredentialStore implements CredentialStore {
  private readonly env: NodeJS.ProcessEnv;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.env = env;
  }

  async get(registry: string, options: { signal?: AbortSignal } = {}): Promise<Credential | undefined> {
    checkAborted(options.signal);
    const only = nonEmpty(this.env.COMMS_REGISTRY_HOST);
    if (only !== undefined && normalizeRegistryHost(only) !== normalizeRegistryHost(registry)) return undefined;
    return credentialFrom(nonEmpty(this.env.COMMS_REGISTRY_USERNAME), nonEmpty(this.env.COMMS_REGISTRY_PASSWORD), nonEmpty(this.env.COMMS_REGISTRY_TOKEN), {
      username: 'COMMS_REGISTRY_USERNAME',
      password: 'COMMS_REGISTRY_PASSWORD',
    });
  }
}

/** Asks each store in order; the first credential found wins. A store's error is not skipped. */
export class ChainCredentialStore implements CredentialStore {
  private readonly stores: CredentialStore[];

  constructor(stores: CredentialStore[]) {
    this.stores = [...stores];
  }

  async get(registry: string, options: { signal?: AbortSignal } = {}): Promise<Credential | undefined> {
    for (const store of this.stores) {
      checkAborted(options.signal);
      const cred = await store.get(registry, options);
      if (cred !== undefined) return cred;
    }
    return undefined;
  }
}

export interface DefaultCredentialStoreOptions {
  username?: string;
  password?: string;
  registryToken?: string;
  env?: NodeJS.ProcessEnv;
  configDir?: string;
}

/**
 * Explicit options (for every registry) > environment (COMMS_REGISTRY_*) > docker config.
 * Throws UsageError at once when a username is given without a password or the reverse.
 */
export function defaultCredentialStore(options: DefaultCredentialStoreOptions = {}): CredentialStore {
  const env = options.env ?? process.env;
  const stores: CredentialStore[] = [];
  const explicit = credentialFrom(nonEmpty(options.username), nonEmpty(options.password), nonEmpty(options.registryToken), {
    username: 'a username',
    password: 'a password',
  });
  if (explicit !== undefined) stores.push(new FixedCredentialStore(explicit));
  stores.push(new EnvCredentialStore(env));
  stores.push(new DockerConfigCredentialStore({ env, ...(options.configDir !== undefined ? { configDir: options.configDir } : {}) }));
  return new ChainCredentialStore(stores);
}
