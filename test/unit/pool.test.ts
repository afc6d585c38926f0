import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forEachLimit, mapLimit } from '../../src/util/pool.ts';

test('forEachLimit never runs more than the limit and pulls the source lazily', async () => {
  let inFlight = 0;
  let maxInFlight = 0;
  let produced = 0;
  let maxAhead = 0;
  let done = 0;
  async function* source() {
    for (let i = 0; i < 20; i++) {
      produced++;
      maxAhead = Math.max(maxAhead, produced - done);
      yield i;
    }
  }
  await forEachLimit(source(), 3, async () => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((r) => setTimeout(r, 2));
    inFlight--;
    done++;
  });
  assert.equal(maxInFlight, 3);
  assert.ok(maxAhead <= 3, `source ran ${maxAhead} ahead`);
  assert.equal(done, 20);
});

test('forEachLimit rethrows the first failure and stops pulling', async () => {
  let pulled = 0;
  async function* source() {
    for (let i = 0; i < 100; i++) {
      pulled++;
      yield i;
    }
  }
  await assert.rejects(
    forEachLimit(source(), 2, async (i) => {
      if (i === 3) throw new Error('boom');
      await new Promise((r) => setTimeout(r, 1));
    }),
    /boom/,
  );
  assert.ok(pulled < 10, `pulled ${pulled}`);
});

test('mapLimit keeps input order', async () => {
  const out = await mapLimit([5, 1, 3], 2, async (x) => {
    await new Promise((r) => setTimeout(r, x));
    return x * 2;
  });
  assert.deepEqual(out, [10, 2, 6]);
});

test('an aborted pool rejects with AbortError (a CommsError) carrying the reason', async () => {
  const { AbortError } = await import('../../src/errors.ts');
  const controller = new AbortController();
  const reason = new Error('caller gave up');
  controller.abort(reason);
  await assert.rejects(
    forEachLimit([1, 2, 3], 2, async () => undefined, controller.signal),
    (e: unknown) => e instanceof AbortError && e.cause === reason,
  );
});
