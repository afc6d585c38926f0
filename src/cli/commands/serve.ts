/**
 * `comms serve [--root DIR] [--addr HOST:PORT] [--tls-cert F --tls-key F] [--htpasswd F]
 * [--allow-insecure-public] [--max-uploads N] [--max-uploads-total N] [--max-blob-size SIZE]
 * [--body-timeout DURATION]`: runs the local registry until the AbortSignal fires (SIGINT/SIGTERM),
 * then closes it cleanly.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import { UsageError } from '../../errors.ts';
import { parseAddr } from '../../server/address.ts';
import { DEFAULT_HOST, DEFAULT_PORT, startServer } from '../../server/index.ts';
import type { Output } from '../output.ts';
import { parseDuration, parsePositiveInt, parseSize } from '../parse.ts';

export interface ServeArgs {
  json: boolean;
  verbose: boolean;
  root: string;
  addr: string;
  'tls-cert'?: string;
  'tls-key'?: string;
  htpasswd?: string;
  'allow-insecure-public': boolean;
  'max-uploads'?: number;
  'max-uploads-total'?: number;
  'max-blob-size'?: string;
  'body-timeout'?: string;
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
    .option('quiet', { type: 'boolean', default: false, alias: 'q', describe: 'Print no notes on stderr' })
    .option('root', { type: 'string', default: defaultRoot(), describe: 'Folder holding one OCI image layout per repository' })
    .option('addr', { type: 'string', default: `${DEFAULT_HOST}:${DEFAULT_PORT}`, describe: 'Address to listen on, HOST:PORT ([v6]:PORT); port 0 picks one' })
    .option('tls-cert', { type: 'string', describe: 'Serve HTTPS with this PEM certificate (chain)' })
    .option('tls-key', { type: 'string', describe: 'The PEM private key of --tls-cert' })
    .option('htpasswd', { type: 'string', describe: 'Require HTTP Basic auth against this htpasswd file (bcrypt entries, htpasswd -B)' })
    .option('allow-insecure-public', {
      type: 'boolean',
      default: false,
      describe: 'Allow a non-loopback --addr without both TLS and --htpasswd (anyone who reaches it can write)',
    })
    .option('max-uploads', { type: 'number', describe: 'Upload sessions one repository may have open at once (default 64); more get 429' })
    .option('max-uploads-total', { type: 'number', describe: 'Upload sessions of all repositories together (default 1024); more get 429' })
    .option('max-blob-size', { type: 'string', describe: 'Largest blob accepted, e.g. 2GiB (default 10GiB); larger uploads get 413' })
    .option('body-timeout', { type: 'string', describe: 'Cut off a request body on which nothing arrives for this long, e.g. 30s (default 60s); 408' });
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
    ...(args['max-uploads'] !== undefined ? { maxUploadSessions: parsePositiveInt('--max-uploads', args['max-uploads']) } : {}),
    ...(args['max-uploads-total'] !== undefined ? { maxUploadSessionsTotal: parsePositiveInt('--max-uploads-total', args['max-uploads-total']) } : {}),
    ...(args['max-blob-size'] !== undefined ? { maxBlobBytes: parseSize('--max-blob-size', args['max-blob-size']) } : {}),
    ...(args['body-timeout'] !== undefined ? { bodyIdleTimeoutMs: parseDuration('--body-timeout', args['body-timeout']) } : {}),
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
