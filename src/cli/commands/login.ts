/**
 * `comms login REGISTRY -u USER --password-stdin` and `comms logout REGISTRY`: docker's config.json
 * (and its credential helpers), so that comms, docker, oras and skopeo share one login. The secret
 * is read from stdin only (never from argv, where `ps` shows it) and never printed.
 */
import type { Argv } from 'yargs';
import { AuthError, ProtocolError, UsageError } from '../../errors.ts';
import { FixedCredentialStore } from '../../oci/auth/credentials.ts';
import { dockerLogin, dockerLogout, readDockerConfigForLogin, serverAddressOf } from '../../oci/auth/docker-login.ts';
import { discard } from '../../oci/remote/http.ts';
import { RegistryClient } from '../../oci/remote/index.ts';
import { readStdin } from '../common.ts';
import type { Output } from '../output.ts';

export interface LoginArgs {
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  registry: string;
  username?: string;
  'password-stdin': boolean;
  check: boolean;
  'plain-http': boolean;
  insecure: boolean;
  'ca-file'?: string;
}

function outputOptions<T>(y: Argv<T>) {
  return y
    .positional('registry', { type: 'string', demandOption: true, describe: 'Registry host, e.g. ghcr.io or localhost:5000' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the result as one JSON object' })
    .option('verbose', { type: 'boolean', default: false, alias: 'v', describe: 'Print diagnostics (never secrets) on stderr' })
    .option('quiet', { type: 'boolean', default: false, alias: 'q', describe: 'Print no notes on stderr' });
}

export function loginBuilder(y: Argv) {
  return outputOptions(y)
    .option('username', { type: 'string', alias: 'u', describe: 'Registry user name' })
    .option('password-stdin', { type: 'boolean', default: false, describe: 'Read the password or token from stdin (the only way to give it)' })
    .option('check', {
      type: 'boolean',
      default: true,
      describe: 'Try the credentials against the registry (GET /v2/) before storing them; --no-check stores them untried',
    })
    .option('plain-http', { type: 'boolean', default: false, describe: 'Check over HTTP instead of HTTPS (always allowed for loopback hosts)' })
    .option('insecure', { type: 'boolean', default: false, describe: 'Skip TLS certificate verification for the check' })
    .option('ca-file', { type: 'string', describe: 'PEM file of extra certificate authorities to trust for the check' })
    .example('echo "$GITHUB_TOKEN" | $0 login ghcr.io -u octocat --password-stdin', 'log in to GitHub Container Registry');
}

export function logoutBuilder(y: Argv) {
  return outputOptions(y);
}

export async function runLogin(args: LoginArgs, out: Output, signal: AbortSignal): Promise<number> {
  if (args.username === undefined || args.username === '') throw new UsageError('comms login needs -u USER');
  if (!args['password-stdin']) throw new UsageError('comms login reads the password from stdin: pipe it in and pass --password-stdin');
  const password = (await readStdin()).replace(/\r?\n$/, '');
  if (password === '') throw new UsageError('--password-stdin: nothing was read from stdin');
  serverAddressOf(args.registry);
  // A config.json that cannot be updated is reported before the registry is contacted.
  await readDockerConfigForLogin();
  if (args.check) await checkCredentials(args, args.username, password, signal);
  const r = await dockerLogin(args.registry, args.username, password, { signal });
  const where = r.helper !== undefined ? `credential helper docker-credential-${r.helper}` : r.configFile;
  out.result(
    { registry: r.serverAddress, username: args.username, configFile: r.configFile, ...(r.helper !== undefined ? { credentialHelper: r.helper } : {}) },
    `logged in to ${r.serverAddress} as ${args.username} (stored in ${where})`,
  );
  if (r.helper === undefined)
    out.note(`the password is stored unencrypted (base64) in ${r.configFile}; configure a credential helper (credsStore) to keep it in a keychain`);
  return 0;
}

export async function runLogout(args: LoginArgs, out: Output, signal: AbortSignal): Promise<number> {
  const r = await dockerLogout(args.registry, { signal });
  out.result(
    { registry: r.serverAddress, configFile: r.configFile, removed: r.removed, ...(r.helper !== undefined ? { credentialHelper: r.helper } : {}) },
    r.removed ? `logged out of ${r.serverAddress}` : `not logged in to ${r.serverAddress} (nothing in ${r.configFile})`,
  );
  return 0;
}

/**
 * As `docker login` does: GET /v2/ with the credentials (Basic, or a token from the registry's
 * realm without a repository scope). Refused credentials are an AuthError (exit 3) and nothing
 * is stored.
 */
async function checkCredentials(args: LoginArgs, username: string, password: string, signal: AbortSignal): Promise<void> {
  const registry = args.registry.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  const client = new RegistryClient({
    credentials: new FixedCredentialStore({ username, password }),
    ...(args['plain-http'] ? { plainHttp: true } : {}),
    insecure: args.insecure,
    ...(args['ca-file'] !== undefined ? { caFile: args['ca-file'] } : {}),
  });
  try {
    const base = await client.endpoint(registry, signal);
    const res = await client.send(registry, { method: 'GET', url: new URL('/v2/', base), signal, scopes: [] }, 'log in');
    await discard(res);
    if (res.status === 200) return;
    if (res.status === 401 || res.status === 403) {
      throw new AuthError(`${registry} refused the credentials of ${username} (HTTP ${res.status}); nothing was stored`, {
        registry,
        status: res.status,
        code: 'LOGIN_REFUSED',
      });
    }
    throw new ProtocolError(`${registry} answered GET /v2/ with HTTP ${res.status}: is it an OCI registry? (--no-check stores the credentials untried)`, {
      registry,
      status: res.status,
    });
  } finally {
    await client.close();
  }
}
