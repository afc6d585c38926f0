import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TagSnapshot } from '../../src/comms/tag-snapshot.ts';
import type { PageVisitor, Repository } from '../../src/oci/target.ts';

/** A repository whose tag list is `pages`, page by page (nothing else is used). */
function listing(pages: string[][]): Repository {
  return {
    async tags(visit: PageVisitor<string>) {
      for (const p of pages) if ((await visit(p)) === false) return;
    },
  } as unknown as Repository;
}

test('a tag snapshot with prefixes keeps only the tags that start with one of them, while listing', async () => {
  const pages = [
    ['inbox-bob-1', 'junk-1', 'bundle-abc-1'],
    Array.from({ length: 10_000 }, (_, i) => `junk-${i}`),
    ['inbox-carol-1', 'inbox-bob-2', 'receipt-abc-1'],
  ];
  const snap = await TagSnapshot.load(listing(pages), { prefixes: ['inbox-bob-', 'bundle-'] });
  assert.equal(snap.size, 3, 'the 10,002 other tags were not kept');
  assert.deepEqual(snap.withPrefix('inbox-bob-'), ['inbox-bob-1', 'inbox-bob-2']);
  assert.deepEqual(snap.withPrefix('bundle-'), ['bundle-abc-1']);
  assert.equal((await TagSnapshot.load(listing(pages))).size, 10_005, 'without prefixes every (distinct) tag is kept');
});
