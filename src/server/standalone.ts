/**
 * Runs the registry as a process of its own, without the comms CLI around it:
 *   node src/server/standalone.ts --root DIR [--addr 127.0.0.1:0] [--upload-ttl-ms N]
 * Prints one JSON line `{"url","port"}` on stdout once listening; SIGINT/SIGTERM close it cleanly.
 * Tests start it as a child to kill it mid-request; it is also handy when debugging a client.
 */
import { parseArgs } from 'node:util';
import { parseAddr } from './address.ts';
import { startServer } from './server.ts';

const { values } = parseArgs({
  options: {
    root: { type: 'string' },
    addr: { type: 'string', default: '127.0.0.1:0' },
    'upload-ttl-ms': { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});
if (values.root === undefined) {
  process.stderr.write('usage: standalone.ts --root DIR [--addr HOST:PORT] [--upload-ttl-ms N] [--verbose]\n');
  process.exit(2);
}
const { host, port } = parseAddr(values.addr);
const server = await startServer({
  root: values.root,
  host,
  port,
  ...(values['upload-ttl-ms'] !== undefined ? { uploadTtlMs: Number(values['upload-ttl-ms']) } : {}),
  ...(values.verbose ? { log: (line: string) => process.stderr.write(`${line}\n`) } : {}),
});
process.stdout.write(`${JSON.stringify({ url: server.url, port: server.port })}\n`);
const stop = (): void => {
  void server.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
