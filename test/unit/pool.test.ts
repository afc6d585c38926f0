import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forEachLimit, mapLimit, twoStageLimit } from '../../src/util/pool.ts';

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

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('twoStageLimit overlaps the stages: later items are compressed while earlier ones upload, within both limits', async () => {
  let first = 0;
  let maxFirst = 0;
  let second = 0;
  let maxSecond = 0;
  let alive = 0;
  let maxAlive = 0;
  let firstWhileSecond = 0;
  const done: number[] = [];
  await twoStageLimit([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], {
    first: async (i) => {
      first++;
      maxFirst = Math.max(maxFirst, first);
      if (second > 0) firstWhileSecond++;
      await tick(3);
      first--;
      alive++;
      maxAlive = Math.max(maxAlive, alive);
      return i;
    },
    firstLimit: 2,
    second: async (i) => {
      second++;
      maxSecond = Math.max(maxSecond, second);
      await tick(10);
      second--;
      alive--;
      done.push(i);
    },
    secondLimit: 3,
  });
  assert.deepEqual(
    [...done].sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  assert.equal(maxFirst, 2);
  assert.equal(maxSecond, 3);
  assert.ok(maxAlive <= 5, `${maxAlive} results alive at once`);
  assert.ok(firstWhileSecond >= 5, `the first stage ran beside the second only ${firstWhileSecond} times`);
});

test('twoStageLimit: a second-stage failure stops new work, awaits what started, discards unhanded results, rethrows', async () => {
  let started = 0;
  let running = 0;
  const discarded: number[] = [];
  await assert.rejects(
    twoStageLimit(
      Array.from({ length: 50 }, (_, i) => i),
      {
        first: async (i) => {
          started++;
          await tick(1);
          return i;
        },
        firstLimit: 2,
        second: async (i) => {
          running++;
          await tick(i === 1 ? 5 : 20);
          running--;
          if (i === 1) throw new Error('upload failed');
        },
        secondLimit: 2,
        discard: async (i) => {
          discarded.push(i);
        },
      },
    ),
    /upload failed/,
  );
  assert.equal(running, 0, 'every started second stage finished before the rejection');
  assert.ok(started < 10, `the first stage went on to ${started} items`);
  assert.ok(discarded.length >= 1, 'a result that could not be handed over was discarded');
});
