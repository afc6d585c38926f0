/**
 * Cancellation, one way everywhere: an aborted operation rejects with AbortError (a CommsError,
 * the signal's reason as its cause), waits are node:timers/promises timers that leave no listener
 * behind, and a race against a signal releases the caller without waiting for the work.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { AbortError } from '../errors.ts';

/** The error an aborted operation rejects with: always a CommsError (AbortError), the reason as its cause. */
export function abortErrorOf(signal: AbortSignal, what?: string): AbortError {
  if (what !== undefined) return new AbortError(`${what} was aborted`, { cause: signal.reason });
  return signal.reason instanceof AbortError ? signal.reason : new AbortError(undefined, { cause: signal.reason });
}

/** Throws AbortError when the signal has fired (AbortSignal.throwIfAborted throws the bare reason). */
export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortErrorOf(signal);
}

/** Waits `ms`, or rejects with AbortError as soon as `signal` fires. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  checkAborted(signal);
  try {
    await delay(ms, undefined, signal === undefined ? undefined : { signal });
  } catch (err) {
    if (signal?.aborted) throw abortErrorOf(signal);
    throw err;
  }
}

/**
 * Settles as `work` does, or rejects with AbortError as soon as `signal` fires; the work may go on
 * in the background (a shared token request, a client that takes no signal), and its later
 * rejection is not reported as unhandled. `what` names the operation in the error message.
 */
export async function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined, what?: string): Promise<T> {
  if (signal === undefined) return work;
  if (signal.aborted) {
    work.catch(() => {});
    throw abortErrorOf(signal, what);
  }
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortErrorOf(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  work.catch(() => {});
  try {
    return await Promise.race([work, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

/** raceAbort for work not started yet: an already aborted signal never starts it. */
export function abortable<T>(work: () => Promise<T>, signal: AbortSignal | undefined, what = 'the operation'): Promise<T> {
  if (signal?.aborted) return Promise.reject(abortErrorOf(signal, what));
  return raceAbort(work(), signal, what);
}
