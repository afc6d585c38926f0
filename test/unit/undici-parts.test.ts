/**
 * The registry client loads undici's Agent and `request` by themselves, not undici's whole index
 * (src/oci/remote/undici-parts.ts). They are the very ones undici exports, and in a process that
 * never loads the index (as the CLI's) they carry a real request; opening a remote repository
 * loads no part of the index, nor the layout store, nor child_process.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import * as undici from 'undici';
import { Agent, request } from '../../src/oci/remote/undici-parts.ts';

const HOOK = pathToFileURL(join(import.meta.dirname, '..', 'support', 'module-log.ts')).href;
const src = (...p: string[]) => pathToFileURL(join(import.meta.dirname, '..', '..', 'src', ...p)).href;

// Run in a fresh process: a loopback HTTP server answers one GET made through the client's
// transport on the Agent alone, after a remote repository has been opened.
const CHILD = `
import http from 'node:http';
import { once } from 'node:events';
const { Agent } = await import(${JSON.stringify(src('oci', 'remote', 'undici-parts.ts'))});
const { undiciTransport } = await import(${JSON.stringify(src('oci', 'remote', 'transport.ts'))});
const { openRepository } = await import(${JSON.stringify(src('oci', 'open.ts'))});
const { defaultCredentialStore } = await import(${JSON.stringify(src('oci', 'auth', 'credentials.ts'))});
await openRepository('127.0.0.1:9/some/mailbox', { credentials: defaultCredentialStore() });
const server = http.createServer((req, res) => res.end('pong ' + req.url)).listen(0, '127.0.0.1');
await once(server, 'listening');
const agent = new Agent({ connections: 1 });
const res = await undiciTransport(agent)({ method: 'GET', url: new URL('http://127.0.0.1:' + server.address().port + '/ping?x=1') });
console.log(res.status, await res.body.text());
await agent.close();
server.close();
`;

describe("undici's Agent and request, loaded by themselves", () => {
  it('are the ones undici exports', () => {
    assert.equal(Agent, undici.Agent);
    assert.equal(typeof request, 'function');
  });

  it("carry a real request in a process that opened a remote repository without loading undici's index, the layout store or child_process", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'comms-undici-'));
    try {
      const log = join(dir, 'modules.log');
      const { stdout } = await promisify(execFile)(process.execPath, [`--import=${HOOK}`, '--input-type=module', '-e', CHILD], {
        env: { ...process.env, COMMS_TEST_MODULE_LOG: log },
      });
      assert.equal(stdout.trim(), '200 pong /ping?x=1');
      const urls = (await readFile(log, 'utf8')).split('\n').filter((l) => l !== '');
      for (const part of ['lib/dispatcher/agent.js', 'lib/api/api-request.js']) {
        assert.ok(
          urls.some((u) => u.endsWith(`/node_modules/undici/${part}`)),
          `undici's ${part} was not loaded`,
        );
      }
      assert.deepEqual(
        urls.filter((u) => /\/node_modules\/undici\/(index\.js|lib\/web\/)/.test(u)),
        [],
        "undici's index or its fetch/WebSocket modules were loaded",
      );
      // Nor what a remote repository does not use: the layout store, or child_process (only a
      // docker credential helper needs it).
      assert.deepEqual(
        urls.filter((u) => /\/src\/oci\/layout\//.test(u) || u === 'node:child_process'),
        [],
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
