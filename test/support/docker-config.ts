/**
 * Temp DOCKER_CONFIG folders for auth tests: a config.json with `auths` (base64 `auth` or
 * `identitytoken`), `credsStore` and `credHelpers`, plus the data file of our credential helper
 * fixture (fixtures/bin/docker-credential-test) and the env that puts it on PATH.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './tools.ts';

/** Absolute path of fixtures/bin (holds docker-credential-test). */
export const FIXTURES_BIN = fileURLToPath(new URL('../../fixtures/bin', import.meta.url));

/** The helper name to use in credsStore / credHelpers for our fixture ("docker-credential-test"). */
export const TEST_CRED_HELPER = 'test';

/** One `auths` entry: a user and password (written as base64 `auth`), an identity token, or raw fields. */
export type AuthEntry =
  | { username: string; password: string }
  | { identitytoken: string; username?: string }
  | { auth?: string; identitytoken?: string; registrytoken?: string };

export interface DockerConfigOptions {
  /** server → credentials, as `docker login` writes them. */
  auths?: Record<string, AuthEntry>;
  /** Default helper for every server without an `auths` secret ("test" = our fixture). */
  credsStore?: string;
  /** server → helper name. */
  credHelpers?: Record<string, string>;
  /** Credentials our fixture helper knows: server → { Username, Secret }. */
  helperCredentials?: Record<string, { Username: string; Secret: string }>;
  /** Extra top-level config.json fields. */
  extra?: Record<string, unknown>;
}

export interface DockerConfigDir {
  /** The DOCKER_CONFIG folder. */
  dir: string;
  configFile: string;
  /** JSON data file of the fixture credential helper (COMMS_TEST_CRED_FILE). */
  credFile: string;
  /** Where the fixture helper logs each call as "<action> <server>" (COMMS_TEST_CRED_LOG). */
  credLog: string;
  /** Only the variables this config sets: DOCKER_CONFIG, PATH, COMMS_TEST_CRED_FILE, COMMS_TEST_CRED_LOG. */
  vars: Record<string, string>;
  /** process.env with `vars` applied (for child processes). */
  env: NodeJS.ProcessEnv;
  /** The helper calls made so far, e.g. [{ action: 'get', server: '127.0.0.1:5000' }]. */
  helperCalls(): Array<{ action: string; server: string }>;
  cleanup(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function authsEntry(entry: AuthEntry): Record<string, string> {
  if ('password' in entry && 'username' in entry && typeof entry.password === 'string') {
    return { auth: Buffer.from(`${entry.username}:${entry.password}`).toString('base64') };
  }
  if ('identitytoken' in entry && typeof entry.identitytoken === 'string' && !('auth' in entry)) {
    // docker login writes the user with an empty password next to the identity token.
    const user = 'username' in entry && typeof entry.username === 'string' ? entry.username : '<token>';
    return { auth: Buffer.from(`${user}:`).toString('base64'), identitytoken: entry.identitytoken };
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** The config.json object for these options. */
export function dockerConfigJson(options: DockerConfigOptions): Record<string, unknown> {
  const json: Record<string, unknown> = { ...options.extra };
  if (options.auths) {
    json.auths = Object.fromEntries(Object.entries(options.auths).map(([server, e]) => [server, authsEntry(e)]));
  }
  if (options.credsStore !== undefined) json.credsStore = options.credsStore;
  if (options.credHelpers) json.credHelpers = options.credHelpers;
  return json;
}

/** Writes a DOCKER_CONFIG folder in a fresh temp dir. */
export async function writeDockerConfig(options: DockerConfigOptions = {}): Promise<DockerConfigDir> {
  const tmp = await tempDir('comms-dockercfg-');
  const dir = tmp.path;
  const configFile = join(dir, 'config.json');
  const credFile = join(dir, 'helper-credentials.json');
  const credLog = join(dir, 'helper-calls.log');
  await writeFile(configFile, JSON.stringify(dockerConfigJson(options), null, 2), { mode: 0o600 });
  await writeFile(credFile, JSON.stringify(options.helperCredentials ?? {}, null, 2), { mode: 0o600 });
  const vars = {
    DOCKER_CONFIG: dir,
    PATH: `${FIXTURES_BIN}${delimiter}${process.env.PATH ?? ''}`,
    COMMS_TEST_CRED_FILE: credFile,
    COMMS_TEST_CRED_LOG: credLog,
  };
  return {
    dir,
    configFile,
    credFile,
    credLog,
    vars,
    env: { ...process.env, ...vars },
    helperCalls() {
      if (!existsSync(credLog)) return [];
      return readFileSync(credLog, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const space = line.indexOf(' ');
          return { action: line.slice(0, space), server: line.slice(space + 1) };
        });
    },
    cleanup: tmp.cleanup,
    [Symbol.asyncDispose]: tmp.cleanup,
  };
}

/**
 * Applies `vars` to this process's env (for in-process code that reads DOCKER_CONFIG) and
 * returns a function that restores the previous values.
 */
export function applyEnv(vars: Record<string, string>): () => void {
  const saved = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(vars)) {
    saved.set(k, process.env[k]);
    process.env[k] = v;
  }
  return () => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}
