/** `comms serve` as the CLI runs it: prints where it listens, serves until the signal, then closes. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { UsageError } from '../../src/errors.ts';
import type { Output } from '../../src/cli/output.ts';
import { defaultRoot, runServe, type ServeArgs } from '../../src/cli/commands/serve.ts';
import { tempDir } from '../support/tools.ts';

function capture(): Output & { results: object[]; notes: string[] } {
  const results: object[] = [];
  const notes: string[] = [];
  return {
    json: true,
    verbose: false,
    results,
    notes,
    result: (obj) => void results.push(obj),
    note: (m) => void notes.push(m),
    debug: () => undefined,
    error: () => 1,
  };
}

const base = (root: string): ServeArgs => ({ json: true, verbose: false, root, addr: '127.0.0.1:0', 'allow-insecure-public': false });

it('runServe prints the URL, serves until aborted, then stops listening and returns 0', async () => {
  await using dir = await tempDir('comms-serve-cli-');
  const out = capture();
  const controller = new AbortController();
  const running = runServe(base(join(dir.path, 'root')), out, controller.signal);
  while (out.results.length === 0) await new Promise((r) => setTimeout(r, 10));
  const { url } = out.results[0] as { url: string };
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal((await fetch(`${url}/v2/`)).status, 200);
  controller.abort();
  assert.equal(await running, 0);
  await assert.rejects(fetch(`${url}/v2/`), 'nothing listens after the signal');
});

it('runServe refuses a public --addr without TLS and auth, and a lone --tls-cert', async () => {
  await using dir = await tempDir('comms-serve-cli-');
  const signal = new AbortController().signal;
  await assert.rejects(
    runServe({ ...base(dir.path), addr: '0.0.0.0:0' }, capture(), signal),
    (e: unknown) => e instanceof UsageError && e.code === 'INSECURE_LISTEN',
  );
  await assert.rejects(runServe({ ...base(dir.path), 'tls-cert': 'x.pem' }, capture(), signal), UsageError);
});

it('the default root is per user, not per working folder', () => {
  assert.equal(defaultRoot({ XDG_DATA_HOME: '/data' }), '/data/comms/registry');
  assert.match(defaultRoot({}), /\.local\/share\/comms\/registry$/);
});

it('--max-uploads, --max-blob-size and --body-timeout reach the server; bad values are usage errors naming the flag', async () => {
  await using dir = await tempDir('comms-serve-cli-');
  const out = capture();
  const controller = new AbortController();
  const running = runServe({ ...base(join(dir.path, 'root')), 'max-uploads': 1, 'max-blob-size': '4', 'body-timeout': '5s' }, out, controller.signal);
  while (out.results.length === 0) await new Promise((r) => setTimeout(r, 10));
  const { url } = out.results[0] as { url: string };
  try {
    assert.equal((await fetch(`${url}/v2/cli/blobs/uploads/`, { method: 'POST' })).status, 202);
    assert.equal((await fetch(`${url}/v2/cli/blobs/uploads/`, { method: 'POST' })).status, 429, 'one session per repository');
    const big = await fetch(`${url}/v2/other/blobs/uploads/?digest=sha256:${'0'.repeat(64)}`, { method: 'POST', body: 'five!' });
    assert.equal(big.status, 413, 'a 5-byte blob is above 4 bytes');
  } finally {
    controller.abort();
    assert.equal(await running, 0);
  }
  const signal = new AbortController().signal;
  for (const [flag, args] of [
    ['--max-blob-size', { 'max-blob-size': 'lots' }],
    ['--body-timeout', { 'body-timeout': 'forever' }],
    ['--max-uploads', { 'max-uploads': 0 }],
  ] as const) {
    await assert.rejects(
      runServe({ ...base(dir.path), ...args }, capture(), signal),
      (e: unknown) => e instanceof UsageError && e.message.includes(flag),
      flag,
    );
  }
});
