/**
 * Listings a hostile registry never ends: every tag-list or referrers page links to another one
 * (empty pages, or pages full of new entries). recv must stop at the documented bound (pages per
 * listing, entries per listing), exit 4 with a message naming the bound, and have sent about that
 * many requests — not run forever with memory growing.
 */
import { after, before, describe, it } from 'node:test';
import { inboxPrefix } from '../../src/protocol/tags.ts';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { send } from '../../src/comms/send.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';
import { DEFAULT_LIST_LIMITS } from '../../src/oci/remote/list-limits.ts';
import { runComms } from '../support/cli.ts';
import { startHostileRegistry, type HostileRegistry } from '../support/hostile-registry.ts';
import { tempDir, type TempDir } from '../support/tools.ts';
import { listAll } from '../support/hostile-cli.ts';

let work: TempDir;
/** A genuine message for bob: its inbox tag and manifest bytes. */
let message: { tag: string; bytes: Uint8Array };

before(async () => {
  work = await tempDir('comms-listing-');
  const layout = await OciLayout.open(path.join(work.path, 'src'), { create: true });
  const sent = await send({ unsigned: true, repository: layout, recipient: 'bob', sender: 'alice', input: { text: 'hello' } });
  message = { tag: sent.tag, bytes: (await layout.fetchManifest(sent.descriptor.digest)).bytes };
});
after(async () => {
  await work?.cleanup();
});

async function recv(stand: HostileRegistry, label: string, verify: boolean) {
  const out = path.join(work.path, label);
  await mkdir(out);
  const trust = verify ? ['--trusted-key', path.join(import.meta.dirname, '../../fixtures/keys/test-only-p256.pub')] : ['--no-verify'];
  const r = await runComms(['recv', '--repo', `${stand.host}/mbox`, '--me', 'bob', '--out', out, '--plain-http', ...trust], { env: { TMPDIR: work.path } });
  return { ...r, delivered: await listAll(out) };
}

function countRequests(stand: HostileRegistry, route: RegExp): number {
  return stand.requests.filter((q) => route.test(q)).length;
}

describe('a tag list that never ends', () => {
  it(`empty pages, each linking to another: recv stops after ${DEFAULT_LIST_LIMITS.maxTagPages} pages, exit 4 naming the limit`, async () => {
    const stand = await startHostileRegistry({ endlessTags: { perPage: 0 } });
    try {
      const r = await recv(stand, 'tags-pages', false);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, new RegExp(`after ${DEFAULT_LIST_LIMITS.maxTagPages} pages \\(the limit of pages per listing\\)`));
      assert.equal(countRequests(stand, /^GET \/v2\/mbox\/tags\/list/), DEFAULT_LIST_LIMITS.maxTagPages);
      assert.deepEqual(r.delivered, []);
    } finally {
      await stand.close();
    }
  });

  it(`pages full of new tags: recv stops past ${DEFAULT_LIST_LIMITS.maxTags} tags, exit 4 naming the limit`, async () => {
    const perPage = 50_000;
    // Named in bob's inbox range: a receiver that lists only its own range (the registry answers the
    // Referrers API) must still stop at the bound.
    const stand = await startHostileRegistry({ endlessTags: { perPage, prefix: inboxPrefix('bob') } });
    try {
      const r = await recv(stand, 'tags-entries', false);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, new RegExp(`listed more than ${DEFAULT_LIST_LIMITS.maxTags} tags \\(the limit per listing\\)`));
      assert.equal(countRequests(stand, /^GET \/v2\/mbox\/tags\/list/), Math.floor(DEFAULT_LIST_LIMITS.maxTags / perPage) + 1);
    } finally {
      await stand.close();
    }
  });
});

describe('a referrers list that never ends', () => {
  for (const [what, perPage, says, pages] of [
    [
      'empty pages, each linking to another',
      0,
      `after ${DEFAULT_LIST_LIMITS.maxReferrerPages} pages \\(the limit of pages per listing\\)`,
      DEFAULT_LIST_LIMITS.maxReferrerPages,
    ],
    [
      'pages full of new referrers',
      10_000,
      `listed more than ${DEFAULT_LIST_LIMITS.maxReferrers} referrers \\(the limit per listing\\)`,
      DEFAULT_LIST_LIMITS.maxReferrers / 10_000 + 1,
    ],
  ] as const) {
    it(`${what}: verifying the message stops at the bound, the message is refused with exit 4 naming it, nothing delivered`, async () => {
      const stand = await startHostileRegistry({ manifests: { mbox: { [message.tag]: message.bytes } }, endlessReferrers: { perPage } });
      try {
        const r = await recv(stand, `referrers-${perPage}`, true);
        assert.equal(r.code, 4, r.stderr);
        assert.match(r.stderr, new RegExp(says));
        // Plus the one probe that finds the Referrers API before the tags are listed.
        assert.equal(countRequests(stand, /^GET \/v2\/mbox\/referrers\//), pages + 1);
        assert.deepEqual(r.delivered, []);
      } finally {
        await stand.close();
      }
    });
  }
});
