/**
 * Listing that scales with your own mail: on comms serve (which honours `last` and has the
 * Referrers API) a recv of one message costs the same number of requests in a mailbox holding
 * 50,000 inbox tags of other recipients as in one holding none, and one tag-list request; recv
 * with --since lists from that day on. docker-registry 2.8 (which ignores `last` and lists
 * everything) still delivers, through the full listing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listMessages } from '../../src/comms/list.ts';
import { loadKeySigner, receive, send, watch } from '../../src/index.ts';
import { setTimeout as delay } from 'node:timers/promises';
import { recipientTag } from '../../src/protocol/tags.ts';
import { RegistryClient } from '../../src/oci/remote/index.ts';
import { backendKinds, countingRepo, startBackend, type Backend } from '../support/referrers-backends.ts';
import { TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { pushForeignManifest, tagInLayout, tagOverHttp } from '../support/referrers-seed.ts';
import { tempDir } from '../support/tools.ts';

/** `count` inbox tags of other recipients, spread on both sides of anyone's prefix. */
function othersInboxTags(count: number): string[] {
  const tags: string[] = [];
  for (let i = 0; i < count; i++) tags.push(`inbox-${recipientTag(`someone-${i}`)}-20260101-${randomBytes(4).toString('hex')}-${String(i).padStart(8, '0')}`);
  return tags;
}

for (const kind of backendKinds()) {
  describe(`recv in a mailbox full of other recipients' tags on ${kind}`, () => {
    let backend: Backend;
    before(async () => {
      backend = await startBackend(kind);
    });
    after(async () => {
      await backend?.stop();
    });

    const others = kind === 'comms-serve' ? 50_000 : 2_000;
    it(`one message for me among ${others} other recipients' tags: ${kind === 'comms-serve' ? 'as many requests and tag pages as with none' : 'delivered through the full listing'}`, async (t) => {
      const signer = await loadKeySigner(TEST_KEY);
      const policy = { trustedKeys: [await readFile(TEST_PUB, 'utf8')] };
      const setup = new RegistryClient({ plainHttp: true });
      const out = await tempDir('comms-scale-');
      try {
        const measure = async (seedCount: number) => {
          const ref = backend.freshRepo('scale');
          const repo = setup.repository(ref);
          const foreign = await pushForeignManifest(repo);
          const names = othersInboxTags(seedCount);
          if (seedCount > 0) {
            if (backend.serveRoot !== undefined) await tagInLayout(join(backend.serveRoot, ref.slice(ref.indexOf('/') + 1)), foreign, names);
            else await tagOverHttp(repo, foreign, names, 16);
          }
          const sent = await send({ repository: repo, recipient: 'me', sender: 'alice', input: { text: 'for me' }, signer });
          const c = countingRepo(ref);
          try {
            const r = await receive({ repository: c.repo, me: 'me', outDir: join(out.path, `${seedCount}`), verify: policy });
            assert.deepEqual(r.failures, []);
            assert.deepEqual(
              r.messages.map((m) => m.digest),
              [sent.digest],
            );
            const listed = await listMessages({ repository: c.repo, me: 'me' });
            assert.equal(listed.length, 1);
            return { total: c.requests.length, pages: c.count('GET', /\/tags\/list$/) };
          } finally {
            await c.close();
          }
        };
        const empty = await measure(0);
        const busy = await measure(others);
        t.diagnostic(
          `${kind}: recv + ls of one message: ${empty.total} requests (${empty.pages} tag pages) with no other tags, ${busy.total} (${busy.pages}) with ${others}`,
        );
        if (kind === 'comms-serve') {
          assert.equal(busy.total, empty.total, 'the same requests however many other tags');
          assert.equal(busy.pages, empty.pages, 'the same tag pages however many other tags');
          assert.ok(busy.pages <= 3, `${busy.pages} tag pages: recv's inbox range and its message's bundle range, ls's inbox range`);
        }
      } finally {
        await setup.close();
        await out.cleanup();
      }
    });

    if (kind === 'comms-serve') {
      it('a watcher lists from the day before the newest message it delivered', async () => {
        const ref = backend.freshRepo('watchday');
        const setup = new RegistryClient({ plainHttp: true });
        const out = await tempDir('comms-scale-watch-');
        const ac = new AbortController();
        const c = countingRepo(ref);
        try {
          const sent = await send({ unsigned: true, repository: setup.repository(ref), recipient: 'me', sender: 'alice', input: { text: 'hi' } });
          const items = watch({
            repository: c.repo,
            me: 'me',
            outDir: join(out.path, 'in'),
            stateFile: join(out.path, 'state.json'),
            verify: false,
            intervalMs: 50,
            signal: ac.signal,
          });
          const first = await items.next();
          assert.equal(!first.done && first.value.digest, sent.digest);
          const before = c.requests.length;
          // The generator resumes (and polls again) only when asked: ask, then stop it.
          const more = items.next();
          await delay(500);
          ac.abort();
          await more;
          const lasts = c.requests
            .slice(before)
            .filter((q) => /\/tags\/list$/.test(new URL(q.url).pathname))
            .map((q) => new URL(q.url).searchParams.get('last'));
          const day = new Date(Date.parse(`${sent.tag.split('-')[2]!.replace(/(\d{4})(\d{2})(\d{2})/, '$1-$2-$3')}T00:00:00Z`) - 86_400_000)
            .toISOString()
            .slice(0, 10)
            .replaceAll('-', '');
          assert.ok(lasts.length >= 1, 'polled again');
          for (const last of lasts) assert.equal(last, `inbox-${recipientTag('me')}-${day}`);
        } finally {
          ac.abort();
          await c.close();
          await setup.close();
          await out.cleanup();
        }
      });

      it('recv --since lists from that day on: an older message of mine is not even listed', async () => {
        const ref = backend.freshRepo('since');
        const setup = new RegistryClient({ plainHttp: true });
        const out = await tempDir('comms-scale-since-');
        try {
          const repo = setup.repository(ref);
          const old = await send({
            unsigned: true,
            repository: repo,
            recipient: 'me',
            sender: 'alice',
            input: { text: 'old' },
            now: () => new Date(Date.now() - 3 * 86_400_000),
            ttlSeconds: 30 * 86_400,
          });
          const fresh = await send({ unsigned: true, repository: repo, recipient: 'me', sender: 'alice', input: { text: 'new' } });
          const c = countingRepo(ref);
          try {
            const r = await receive({ repository: c.repo, me: 'me', outDir: out.path, verify: false, since: new Date(Date.now() - 3_600_000) });
            assert.deepEqual(
              r.messages.map((m) => m.digest),
              [fresh.digest],
            );
            const fetchedOld = c.requests.some((q) => q.url.includes(old.tag));
            assert.equal(fetchedOld, false, 'the older tag was never fetched');
            const page = c.requests.find((q) => /\/tags\/list$/.test(new URL(q.url).pathname))!;
            assert.match(new URL(page.url).searchParams.get('last') ?? '', new RegExp(`^inbox-${recipientTag('me')}-\\d{8}$`));
          } finally {
            await c.close();
          }
        } finally {
          await setup.close();
          await out.cleanup();
        }
      });
    }
  });
}
