/**
 * A small message costs a handful of requests. Counted with the client's request hook (every HTTP
 * exchange, as `--verbose` prints it) against docker-registry (tag-schema fallback) and comms
 * serve (Referrers API), each send into a fresh repository:
 *   unsigned: POST + PUT for the empty config and for the layer (no HEAD first: for a few bytes
 *             the question costs as much as the upload), the manifest PUT under its tag     = 5
 *   signed:   the same three blobs (config, layer, bundle) 6, the bundle manifest under its tag,
 *             on docker-registry its subject's tag-schema index read once and written once
 *             (the message is not tagged yet, so no one else can be writing it: no read-back),
 *             then the message manifest under its inbox tag                                  <= 10
 * and the message is then received and verified, so none of it was skipped.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { loadKeySigner, receive, send } from '../../src/index.ts';
import { RegistryClient, type RequestEvent } from '../../src/oci/remote/index.ts';
import { backendKinds, countingRepo, startBackend, type Backend } from '../support/referrers-backends.ts';
import { TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { tempDir } from '../support/tools.ts';

function describeRequests(requests: RequestEvent[]): string {
  return requests.map((r) => `${r.method} ${new URL(r.url).pathname} ${r.status ?? '-'}`).join('\n');
}

for (const kind of backendKinds()) {
  describe(`a small send to ${kind}`, () => {
    let backend: Backend;
    before(async () => {
      backend = await startBackend(kind);
    });
    after(async () => {
      await backend?.stop();
    });

    async function receiveOne(ref: string, verified: boolean): Promise<void> {
      const out = await tempDir('comms-send-requests-');
      const client = new RegistryClient({ plainHttp: true });
      try {
        const result = await receive({
          repository: client.repository(ref),
          me: 'bob',
          outDir: out.path,
          ...(verified ? { verify: { trustedKeys: [await readFile(TEST_PUB, 'utf8')] } } : { verify: false }),
        });
        assert.deepEqual(result.failures, []);
        assert.equal(result.messages.length, 1);
        if (verified) assert.notEqual(result.messages[0]?.verified, null);
      } finally {
        await client.close();
        await out.cleanup();
      }
    }

    it('unsigned: 5 requests (POST + PUT per blob, one manifest PUT under its tag)', async () => {
      const ref = backend.freshRepo('small');
      const c = countingRepo(ref);
      try {
        await send({ repository: c.repo, recipient: 'bob', sender: 'alice', input: { text: 'hello' } });
        assert.ok(c.requests.length <= 5, `${c.requests.length} requests:\n${describeRequests(c.requests)}`);
        assert.equal(c.count('HEAD', /./), 0, 'no existence check for small blobs');
        assert.equal(c.count('PUT', /\/manifests\//), 1, 'the manifest is pushed once, under its tag');
      } finally {
        await c.close();
      }
      await receiveOne(ref, false);
    });

    it('signed: at most 10 requests, the bundle index written once without a read-back, the tag last', async () => {
      const ref = backend.freshRepo('small');
      const c = countingRepo(ref);
      try {
        await send({ repository: c.repo, recipient: 'bob', sender: 'alice', input: { text: 'hello' }, signer: await loadKeySigner(TEST_KEY) });
        assert.ok(c.requests.length <= 10, `${c.requests.length} requests:\n${describeRequests(c.requests)}`);
        const indexReads = c.count('GET', /\/manifests\/sha256-[0-9a-f]{64}$/);
        assert.equal(indexReads, backend.referrersApi ? 0 : 1, `the tag-schema index is read ${indexReads} times`);
        assert.equal(c.tagSchemaWrites(), backend.referrersApi ? 0 : 1);
        const last = c.requests.at(-1);
        assert.match(new URL(last?.url ?? 'http://x/').pathname, /\/manifests\/inbox-/, 'the inbox tag is pushed last');
      } finally {
        await c.close();
      }
      await receiveOne(ref, true);
    });
  });
}
