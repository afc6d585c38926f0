import { AbortError } from '../errors.ts';

/** The error an aborted operation rejects with: always a CommsError (AbortError), the reason as its cause. */
export function abortErrorOf(signal: AbortSignal): AbortError {
  return signal.reason instanceof AbortError ? signal.reason : new AbortError(undefined, { cause: signal.reason });
}

/** Throws AbortError when the signal has fired (AbortSignal.throwIfAborted throws the bare reason). */
export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortErrorOf(signal);
}
