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
