/**
 * A registry that goes silent must not hang recv. A blob whose body stops after 100 bytes (headers
 * announce the whole size, the connection stays open, nothing more comes), or a request that never
 * gets an answer: with `--timeout`, each silent request is tried again once, then recv fails with
 * exit 1 and IDLE_TIMEOUT, naming the timeout, and leaves nothing in --out. No wall-clock assertion
 * beyond "it ends" (runComms would kill a hung child and the exit code would be wrong).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { send } from '../../src/comms/send.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';
import { MAX_STALLS } from '../../src/oci/remote/retry.ts';
import { parseMessageManifest } from '../../src/protocol/validate.ts';
import { listAll } from '../support/hostile-cli.ts';
import { startHostileRegistry } from '../support/hostile-registry.ts';
import { runComms } from '../support/cli.ts';
import { tempDir, type TempDir } from '../support/tools.ts';

let work: TempDir;
let message: { tag: string; bytes: Uint8Array; blobs: Record<string, Uint8Array> };

before(async () => {
  work = await tempDir('comms-stall-');
  const layout = await OciLayout.open(path.join(work.path, 'src'), { create: true });
  const file = path.join(work.path, 'data.bin');
  await writeFile(file, randomBytes(64 * 1024));
  const sent = await send({ unsigned: true, repository: layout, recipient: 'bob', sender: 'alice', input: { path: file } });
  const bytes = (await layout.fetchManifest(sent.descriptor.digest)).bytes;
  const blobs: Record<string, Uint8Array> = {};
  for (const layer of parseMessageManifest(bytes).layers) {
    const parts: Buffer[] = [];
    for await (const c of await layout.fetch(layer)) parts.push(c as Buffer);
    blobs[layer.digest] = Buffer.concat(parts);
  }
  message = { tag: sent.tag, bytes, blobs };
});
after(async () => {
  await work?.cleanup();
});

async function recv(host: string, label: string) {
  const out = path.join(work.path, label);
  await mkdir(out);
  const r = await runComms(
    ['recv', '--repo', `${host}/mbox`, '--me', 'bob', '--out', out, '--plain-http', '--no-verify', '--timeout', '1s', '--retry-delay', '10ms', '--json'],
    {
      env: { TMPDIR: work.path },
    },
  );
  const errors = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { error?: { code: string; message: string; exitCode: number } }).error);
  return { ...r, error: errors.find((e) => e !== undefined), delivered: await listAll(out) };
}

describe('a registry that goes silent', () => {
  it('a blob body that stalls after 100 bytes: recv ends with exit 1, IDLE_TIMEOUT naming --timeout, after one resume, nothing delivered', async () => {
    const stand = await startHostileRegistry({ manifests: { mbox: { [message.tag]: message.bytes } }, blobs: message.blobs, stallBlobsAfter: 100 });
    try {
      const r = await recv(stand.host, 'stalled-body');
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.error?.code, 'IDLE_TIMEOUT', r.stderr);
      assert.match(
        r.error!.message,
        /fetch blob sha256:[0-9a-f]{64}: nothing arrived from 127\.0\.0\.1:\d+ for 1s, the idle timeout \(UND_ERR_BODY_TIMEOUT\) \(flags: --timeout DURATION/,
      );
      assert.equal(stand.requests.filter((q) => q.startsWith('GET /v2/mbox/blobs/')).length, MAX_STALLS, stand.requests.join('\n'));
      assert.deepEqual(r.delivered, []);
    } finally {
      await stand.close();
    }
  });

  it('a request that never gets an answer: tried again once, then exit 1, IDLE_TIMEOUT', async () => {
    const stand = await startHostileRegistry({ silentTags: true });
    try {
      const r = await recv(stand.host, 'silent');
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.error?.code, 'IDLE_TIMEOUT', r.stderr);
      assert.equal(stand.requests.filter((q) => q.startsWith('GET /v2/mbox/tags/list')).length, MAX_STALLS, stand.requests.join('\n'));
    } finally {
      await stand.close();
    }
  });
});
