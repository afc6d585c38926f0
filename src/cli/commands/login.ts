/**
 * `comms login REGISTRY -u USER --password-stdin` and `comms logout REGISTRY`: docker's config.json
 * (and its credential helpers), so that comms, docker, oras and skopeo share one login. The secret
 * is read from stdin only (never from argv, where `ps` shows it) and never printed.
 */
import type { Argv } from 'yargs';
import { UsageError } from '../../errors.ts';
import { dockerLogin, dockerLogout } from '../../oci/auth/docker-login.ts';
import { readStdin } from '../common.ts';
import type { Output } from '../output.ts';

export interface LoginArgs {
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  registry: string;
  username?: string;
  'password-stdin': boolean;
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
  const r = await dockerLogin(args.registry, args.username, password, { signal });
  const where = r.helper !== undefined ? `credential helper docker-credential-${r.helper}` : r.configFile;
  out.result({ registry: r.serverAddress, username: args.username, configFile: r.configFile, ...(r.helper !== undefined ? { credentialHelper: r.helper } : {}) }, `logged in to ${r.serverAddress} as ${args.username} (stored in ${where})`);
  if (r.helper === undefined) out.note(`the password is stored unencrypted (base64) in ${r.configFile}; configure a credential helper (credsStore) to keep it in a keychain`);
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
