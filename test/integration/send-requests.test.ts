/**
 * A small message costs a handful of requests. Counted with the client's request hook (every HTTP
 * exchange, as `--verbose` prints it) against docker-registry (tag-schema fallback) and comms
 * serve (Referrers API), for a mailbox's first message and for a later one:
 *   unsigned: HEAD of the empty config; POST + PUT of the layer (no HEAD first: for a few bytes
 *             the question costs as much as the upload); the manifest PUT under its tag      = 4
 *   signed:   the same 3, POST + PUT of the bundle blob, the bundle manifest under its tag, on
 *             docker-registry its subject's tag-schema index written once without being read
 *             (the message is not stored yet, so no index of it can exist), then the message
 *             manifest under its inbox tag                                                   = 8
 * The first message of a repository adds the empty config's POST + PUT: 6 and 10. Each message is
 * then received (and verified), so none of it was skipped.
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

    async function receiveAll(ref: string, verified: boolean, count: number): Promise<void> {
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
        assert.equal(result.messages.length, count);
        if (verified) for (const m of result.messages) assert.notEqual(m.verified, null);
      } finally {
        await client.close();
        await out.cleanup();
      }
    }

    /** The requests of one small send into `ref`. */
    async function counted(ref: string, signed: boolean): Promise<ReturnType<typeof countingRepo>> {
      const c = countingRepo(ref);
      await send({
        repository: c.repo,
        recipient: 'bob',
        sender: 'alice',
        input: { text: 'hello' },
        ...(signed ? { signer: await loadKeySigner(TEST_KEY) } : { unsigned: true }),
      });
      await c.close();
      return c;
    }

    it('unsigned: 4 requests (6 for the first message of a repository), no HEAD of its own layer', async () => {
      const ref = backend.freshRepo('small');
      const first = await counted(ref, false);
      assert.ok(first.requests.length <= 6, `first message: ${first.requests.length} requests:\n${describeRequests(first.requests)}`);
      const c = await counted(ref, false);
      assert.ok(c.requests.length <= 4, `${c.requests.length} requests:\n${describeRequests(c.requests)}`);
      assert.equal(c.count('HEAD', /./), 1, 'only the shared empty config is asked for');
      assert.equal(c.count('PUT', /\/manifests\//), 1, 'the manifest is pushed once, under its tag');
      await receiveAll(ref, false, 2);
    });

    it('signed: 8 requests (10 for the first message), the bundle index written once without a read, the tag last', async () => {
      const ref = backend.freshRepo('small');
      const first = await counted(ref, true);
      assert.ok(first.requests.length <= 10, `first message: ${first.requests.length} requests:\n${describeRequests(first.requests)}`);
      const c = await counted(ref, true);
      assert.ok(c.requests.length <= 8, `${c.requests.length} requests:\n${describeRequests(c.requests)}`);
      const indexReads = c.count('GET', /\/manifests\/sha256-[0-9a-f]{64}$/);
      assert.equal(indexReads, 0, `the tag-schema index is read ${indexReads} times`);
      assert.equal(c.tagSchemaWrites(), backend.referrersApi ? 0 : 1);
      const last = c.requests.at(-1);
      assert.match(new URL(last?.url ?? 'http://x/').pathname, /\/manifests\/inbox-/, 'the inbox tag is pushed last');
      await receiveAll(ref, true, 2);
    });
  });
}
