/**
 * --retries and --retry-delay reach the client's retry layer: a registry that answers every tag
 * list with 503 is asked exactly retries + 1 times, the default policy asks DEFAULT_RETRY's
 * attempts, and bad values are refused before any request. A 503-forever server is something no
 * real registry does on demand, so it is a small server of the suite's own.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_RETRY } from '../../src/oci/remote/retry.ts';
import { openRemoteRepository } from '../../src/index.ts';
import { retryOptions } from '../../src/cli/common.ts';
import { runComms } from '../support/cli.ts';
import { describeRun } from '../support/cli.ts';

describe('settable retries', () => {
  let server: Server;
  let host: string;
  let tagLists = 0;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/v2/') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
        return;
      }
      if (req.url?.startsWith('/v2/busy/tags/list')) tagLists++;
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('--retries 2 --retry-delay 1ms: the failing request is sent 3 times, then the command fails', async () => {
    tagLists = 0;
    const r = await runComms(['tags', '--repo', `${host}/busy`, '--retries', '2', '--retry-delay', '1ms']);
    assert.notEqual(r.code, 0, describeRun(r));
    assert.equal(tagLists, 3);
  });

  it('--retries 0 sends the request once', async () => {
    tagLists = 0;
    const r = await runComms(['tags', '--repo', `${host}/busy`, '--retries', '0']);
    assert.notEqual(r.code, 0, describeRun(r));
    assert.equal(tagLists, 1);
  });

  it('the library option retry.maxAttempts is the number of attempts; the default is DEFAULT_RETRY', async () => {
    tagLists = 0;
    const repo = openRemoteRepository(`${host}/busy`, { plainHttp: true, retry: { maxAttempts: 4, baseDelayMs: 1 } });
    await assert.rejects(repo.tags(() => undefined));
    assert.equal(tagLists, 4);
    tagLists = 0;
    const dflt = openRemoteRepository(`${host}/busy`, { plainHttp: true, retry: { baseDelayMs: 1 } });
    await assert.rejects(dflt.tags(() => undefined));
    assert.equal(tagLists, DEFAULT_RETRY.maxAttempts);
  });

  it('bad values are refused with exit 4 before any request', async () => {
    tagLists = 0;
    for (const args of [
      ['--retries', '-1'],
      ['--retries', '1.5'],
      ['--retry-delay', 'soon'],
    ]) {
      const r = await runComms(['tags', '--repo', `${host}/busy`, ...args]);
      assert.equal(r.code, 4, describeRun(r));
    }
    assert.equal(tagLists, 0);
    assert.throws(() => openRemoteRepository(`${host}/busy`, { retry: { maxAttempts: 0 } }), /maxAttempts/);
    assert.throws(() => openRemoteRepository(`${host}/busy`, { retry: { baseDelayMs: -1 } }), /baseDelayMs/);
    assert.deepEqual(retryOptions({ retries: 3, 'retry-delay': '2s' }), { maxAttempts: 4, baseDelayMs: 2000, maxDelayMs: DEFAULT_RETRY.maxDelayMs });
    assert.deepEqual(retryOptions({ 'retry-delay': '30s' }), { baseDelayMs: 30_000, maxDelayMs: 30_000 });
  });
});
