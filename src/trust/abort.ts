import { AbortError } from '../errors.ts';

/**
 * Runs `work` and rejects with AbortError as soon as `signal` fires. The Sigstore clients take no
 * signal, so their request may finish in the background; the caller is released at once.
 */
export async function abortable<T>(work: () => Promise<T>, signal: AbortSignal | undefined, what = 'the operation'): Promise<T> {
  if (signal === undefined) return work();
  if (signal.aborted) throw new AbortError(`${what} was aborted`, { cause: signal.reason });
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new AbortError(`${what} was aborted`, { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  const running = work();
  // If the abort wins, the work's later rejection must not surface as unhandled.
  running.catch(() => {});
  try {
    return await Promise.race([running, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
