/**
 * recv over a busy repository — 5,000 foreign tags (build tags and other
 * people's inbox tags) and 10 signed messages for me — costs one tag listing for the whole run
 * plus a constant number of requests per message, on docker-registry (tag-schema fallback) and
 * on comms serve (Referrers API). v1.0 listed every tag once per message.
 *
 * Asserted, with P = the tags/list requests of one listing (pages of 1,000) and M = 10:
 *   tags/list requests during recv = P                (one listing, shared by every message)
 *   all requests during recv      <= P + 6·M + 1
 * On comms serve (Referrers API, honours `last`) only ranges are listed: my inbox (1 page) and each
 * message's bundle tags (1 page each), so tags/list requests = 1 + M, however many foreign tags.
 * The 6 per signed one-chunk message: its manifest by inbox tag; the bundle lookup through the
 * Referrers API or the sha256-<hex> index; the bundle-<hex12>- tag's manifest (the v1.0 union);
 * the bundle manifest by digest; the bundle layer; the chunk. The 1 per run: on a registry without
 * the API, the first /referrers/ request (404), after which the client remembers it is absent.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadKeySigner, receive, send, type SendResult } from '../../src/index.ts';
import { TagSnapshot } from '../../src/comms/tag-snapshot.ts';
import { RegistryClient } from '../../src/oci/remote/index.ts';
import { backendKinds, countingRepo, startBackend, type Backend } from '../support/referrers-backends.ts';
import { TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { foreignTags, pushForeignManifest, tagInLayout, tagOverHttp } from '../support/referrers-seed.ts';
import { tempDir } from '../support/tools.ts';

const FOREIGN_TAGS = 5000;
const MESSAGES = 10;
const PER_MESSAGE = 6;
/** The Referrers API probe a registry without it answers once per run (404, then remembered). */
const PER_RUN = 1;

for (const kind of backendKinds()) {
  describe(`recv on a busy repository on ${kind}`, () => {
    let backend: Backend;
    before(async () => {
      backend = await startBackend(kind);
    });
    after(async () => {
      await backend?.stop();
    });

    it(`${FOREIGN_TAGS} foreign tags, ${MESSAGES} messages for me: requests <= tag pages + ${PER_MESSAGE} per message + ${PER_RUN}`, async (t) => {
      const ref = backend.freshRepo('busy');
      const setup = new RegistryClient({ plainHttp: true });
      const out = await tempDir('comms-busy-recv-');
      try {
        const repo = setup.repository(ref);
        const signer = await loadKeySigner(TEST_KEY);
        const foreign = await pushForeignManifest(repo);
        const seedStart = Date.now();
        const names = foreignTags(FOREIGN_TAGS);
        if (backend.serveRoot !== undefined) await tagInLayout(join(backend.serveRoot, ref.slice(ref.indexOf('/') + 1)), foreign, names);
        else await tagOverHttp(repo, foreign, names, 16);
        const seedMs = Date.now() - seedStart;
        const sent: SendResult[] = [];
        for (let i = 0; i < MESSAGES; i++)
          sent.push(await send({ repository: repo, recipient: 'me', sender: 'alice', input: { text: `message ${i}` }, signer }));

        // P: what one listing of this repository costs, in requests.
        const probe = countingRepo(ref);
        const snapshot = await TagSnapshot.load(probe.repo);
        const pages = probe.count('GET', /\/tags\/list$/);
        await probe.close();
        assert.ok(snapshot.size >= FOREIGN_TAGS + 2 * MESSAGES, `the repository lists ${snapshot.size} tags`);

        const c = countingRepo(ref);
        try {
          const result = await receive({ repository: c.repo, me: 'me', outDir: out.path, verify: { trustedKeys: [await readFile(TEST_PUB, 'utf8')] } });
          assert.deepEqual(result.failures, []);
          assert.deepEqual(new Set(result.messages.map((m) => m.digest)), new Set(sent.map((s) => s.digest)));
          for (const m of result.messages) assert.notEqual(m.verified, null);

          const listings = c.count('GET', /\/tags\/list$/);
          const total = c.requests.length;
          const byKind = new Map<string, number>();
          for (const r of c.requests) {
            const path = new URL(r.url).pathname.replace(/^\/v2\/.+?\/(manifests|blobs|tags|referrers)\//, '$1/');
            const key = `${r.method} ${path.replace(/sha256[:-][0-9a-f]{64}/, '<digest>').replace(/^manifests\/(inbox|bundle|receipt)-.*/, 'manifests/$1-<tag>')}`;
            byKind.set(key, (byKind.get(key) ?? 0) + 1);
          }
          t.diagnostic(
            `${kind}: seeded ${FOREIGN_TAGS} tags in ${seedMs} ms; one listing = ${pages} request(s); recv made ${total} requests (${listings} tag listing requests)`,
          );
          t.diagnostic(`${kind}: ${[...byKind].map(([k, v]) => `${k} ×${v}`).join('; ')}`);
          if (backend.referrersApi) {
            // With the Referrers API only ranges are listed (last=<prefix>): my inbox once, and each
            // message's bundle-<hex12>- tags once, a page each, whatever the foreign tags.
            assert.equal(listings, 1 + MESSAGES, 'one page for my inbox, one per message for its bundle tags');
            assert.ok(total <= 1 + (PER_MESSAGE + 1) * MESSAGES + PER_RUN, `${total} requests > 1 + ${PER_MESSAGE + 1}·${MESSAGES} + ${PER_RUN}`);
          } else {
            assert.equal(listings, pages, 'the tags were listed once for the whole run, not once per message');
            assert.ok(total <= pages + PER_MESSAGE * MESSAGES + PER_RUN, `${total} requests > ${pages} + ${PER_MESSAGE}·${MESSAGES} + ${PER_RUN}`);
          }
          // Nothing of the 5,000 foreign tags was fetched: no manifest GET outside my messages and their bundles.
          const otherInbox = c.requests.filter((r) => /\/manifests\/(build-|inbox-)/.test(r.url) && !sent.some((s) => r.url.endsWith(`/manifests/${s.tag}`)));
          assert.deepEqual(otherInbox, [], 'no foreign tag was fetched');
        } finally {
          await c.close();
        }
      } finally {
        await setup.close();
        await out.cleanup();
      }
    });
  });
}
