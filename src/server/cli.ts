/**
 * `comms serve [--root DIR] [--addr HOST:PORT] [--tls-cert F --tls-key F] [--htpasswd F]
 * [--allow-insecure-public]`: runs the local registry until the AbortSignal fires (SIGINT/SIGTERM),
 * then closes it cleanly.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import { UsageError } from '../errors.ts';
import type { Output } from '../cli/output.ts';
import { DEFAULT_HOST, DEFAULT_PORT, startServer } from './server.ts';

export interface ServeArgs {
  json: boolean;
  verbose: boolean;
  root: string;
  addr: string;
  'tls-cert'?: string;
  'tls-key'?: string;
  htpasswd?: string;
  'allow-insecure-public': boolean;
}

/** `$XDG_DATA_HOME/comms/registry`, else `~/.local/share/comms/registry`: the same store from any folder. */
export function defaultRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_DATA_HOME'] || join(homedir(), '.local', 'share');
  return join(base, 'comms', 'registry');
}

export function serveBuilder(y: Argv) {
  return y
    .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object per result on stdout' })
    .option('verbose', { type: 'boolean', default: false, alias: 'v', describe: 'Log every request on stderr' })
    .option('root', { type: 'string', default: defaultRoot(), describe: 'Folder holding one OCI image layout per repository' })
    .option('addr', { type: 'string', default: `${DEFAULT_HOST}:${DEFAULT_PORT}`, describe: 'Address to listen on, HOST:PORT ([v6]:PORT); port 0 picks one' })
    .option('tls-cert', { type: 'string', describe: 'Serve HTTPS with this PEM certificate (chain)' })
    .option('tls-key', { type: 'string', describe: 'The PEM private key of --tls-cert' })
    .option('htpasswd', { type: 'string', describe: 'Require HTTP Basic auth against this htpasswd file (bcrypt entries, htpasswd -B)' })
    .option('allow-insecure-public', {
      type: 'boolean',
      default: false,
      describe: 'Allow a non-loopback --addr without both TLS and --htpasswd (anyone who reaches it can write)',
    });
}

/** `host:port`, `[v6]:port`, or a host alone (port 5000). */
export function parseAddr(addr: string): { host: string; port: number } {
  let host: string;
  let port: string | undefined;
  if (addr.startsWith('[')) {
    const end = addr.indexOf(']');
    if (end < 0) throw new UsageError(`--addr ${JSON.stringify(addr)}: an IPv6 address opened with '[' is not closed`);
    host = addr.slice(1, end);
    const rest = addr.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) throw new UsageError(`--addr ${JSON.stringify(addr)}: expected [ADDRESS]:PORT`);
    port = rest === '' ? undefined : rest.slice(1);
  } else {
    const colon = addr.lastIndexOf(':');
    if (colon >= 0 && addr.indexOf(':') !== colon) throw new UsageError(`--addr ${JSON.stringify(addr)}: write an IPv6 address as [ADDRESS]:PORT`);
    host = colon < 0 ? addr : addr.slice(0, colon);
    port = colon < 0 ? undefined : addr.slice(colon + 1);
  }
  if (host === '') throw new UsageError(`--addr ${JSON.stringify(addr)}: name the address to listen on (127.0.0.1 for this machine only)`);
  const n = port === undefined ? DEFAULT_PORT : /^[0-9]{1,5}$/.test(port) ? Number(port) : NaN;
  if (!Number.isInteger(n) || n > 65535) throw new UsageError(`--addr ${JSON.stringify(addr)}: the port must be 0-65535`);
  return { host, port: n };
}

export async function runServe(args: ServeArgs, out: Output, signal: AbortSignal): Promise<number> {
  const { host, port } = parseAddr(args.addr);
  if ((args['tls-cert'] === undefined) !== (args['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  const server = await startServer({
    root: args.root,
    host,
    port,
    ...(args['tls-cert'] !== undefined && args['tls-key'] !== undefined ? { tls: { cert: args['tls-cert'], key: args['tls-key'] } } : {}),
    ...(args.htpasswd !== undefined ? { htpasswd: args.htpasswd } : {}),
    allowInsecurePublic: args['allow-insecure-public'],
    log: (line) => out.debug(line),
  });
  out.result({ url: server.url, host: server.host, port: server.port, root: args.root }, `serving ${server.url} (root ${args.root}); Ctrl-C stops`);
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await server.close();
  out.note('registry stopped');
  return 0;
}
