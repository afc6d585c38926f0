import { checkAborted } from './abort.ts';

/**
 * Runs async work over a source with at most `limit` tasks in flight. The source is pulled
 * lazily — only when a slot is free — so a generator that spools to disk never runs more than
 * `limit` items ahead of the workers. The first failure aborts the rest and is rethrown.
 */
export async function forEachLimit<T>(
  source: Iterable<T> | AsyncIterable<T>,
  limit: number,
  work: (item: T, index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`concurrency must be a positive integer, got ${limit}`);
  const iterator = Symbol.asyncIterator in source ? (source as AsyncIterable<T>)[Symbol.asyncIterator]() : toAsync((source as Iterable<T>)[Symbol.iterator]());
  let failed: { error: unknown } | undefined;
  let index = 0;
  let pulling: Promise<unknown> = Promise.resolve();

  // Pulls are serialised: async generators must not be re-entered.
  const next = (): Promise<IteratorResult<T>> => {
    const p = pulling.then(() => iterator.next());
    pulling = p.catch(() => undefined);
    return p;
  };

  const worker = async (): Promise<void> => {
    while (failed === undefined) {
      checkAborted(signal);
      const r = await next();
      if (r.done) return;
      const i = index++;
      try {
        await work(r.value, i);
      } catch (error) {
        failed ??= { error };
        return;
      }
    }
  };

  const workers = Array.from({ length: limit }, () =>
    worker().catch((error: unknown) => {
      failed ??= { error };
    }),
  );
  await Promise.all(workers);
  if (failed !== undefined) {
    await iterator.return?.(undefined).catch(() => undefined);
    throw failed.error;
  }
}

/** Maps with bounded concurrency, keeping the input order in the result. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>, signal?: AbortSignal): Promise<R[]> {
  const out = new Array<R>(items.length);
  await forEachLimit(
    items,
    limit,
    async (item, i) => {
      out[i] = await fn(item, i);
    },
    signal,
  );
  return out;
}

function toAsync<T>(it: Iterator<T>): AsyncIterator<T> {
  return {
    next: async () => it.next(),
    return: async (v?: unknown) => (it.return ? it.return(v) : { done: true, value: undefined }),
  } as AsyncIterator<T>;
}

export interface TwoStageOptions<T, R> {
  /** The first stage (e.g. compress), at most `firstLimit` items at once. */
  first: (item: T, index: number) => Promise<R>;
  firstLimit: number;
  /** The second stage (e.g. upload) of each first-stage result, at most `secondLimit` at once. */
  second: (result: R, index: number) => Promise<void>;
  secondLimit: number;
  /** Frees a first-stage result that never reaches the second stage (after a failure). */
  discard?: (result: R) => Promise<void>;
  signal?: AbortSignal | undefined;
}

/**
 * Runs two stages over `items` as a pipeline: a first-stage worker hands its result to the second
 * stage and goes on with its next item, so the stages overlap instead of taking turns. A worker
 * holding a result waits for a second-stage slot before taking its next item: at most
 * firstLimit + secondLimit results exist at once. The first failure of either stage stops new
 * work; what was started is awaited, then the failure is rethrown.
 */
export async function twoStageLimit<T, R>(items: Iterable<T> | AsyncIterable<T>, options: TwoStageOptions<T, R>): Promise<void> {
  const { first, second, secondLimit, discard, signal } = options;
  if (!Number.isInteger(secondLimit) || secondLimit < 1) throw new RangeError(`concurrency must be a positive integer, got ${secondLimit}`);
  const state: { failed?: { error: unknown } } = {};
  let active = 0;
  const waiting: (() => void)[] = [];
  const running = new Set<Promise<void>>();
  const release = (): void => {
    active--;
    waiting.shift()?.();
  };
  try {
    await forEachLimit(
      items,
      options.firstLimit,
      async (item, index) => {
        if (state.failed !== undefined) throw state.failed.error;
        const result = await first(item, index);
        while (active >= secondLimit && state.failed === undefined) await new Promise<void>((resolve) => waiting.push(resolve));
        const stopped = state.failed as { error: unknown } | undefined;
        if (stopped !== undefined) {
          await discard?.(result);
          throw stopped.error;
        }
        active++;
        const p: Promise<void> = second(result, index)
          .catch((error: unknown) => {
            state.failed ??= { error };
            // Wake every waiting worker: they stop instead of handing over more.
            for (const wake of waiting.splice(0)) wake();
          })
          .finally(() => {
            running.delete(p);
            release();
          });
        running.add(p);
      },
      signal,
    );
  } catch (error) {
    state.failed ??= { error };
  }
  while (running.size > 0) await Promise.all(running);
  if (state.failed !== undefined) throw state.failed.error;
}
