/**
 * Steps: the stages of an operation (send, reply, ack, copy, receive), reported to an `onStep`
 * callback as each starts, is done, or fails, beside the byte-level `onProgress`. A callback that
 * throws does not break the operation: reporting is advisory.
 */

/**
 * - `compress`: a chunk read and compressed (send, reply)
 * - `upload`: blobs sent (a chunk; copy: a manifest's config and layers)
 * - `sign`: a signature made
 * - `push-manifest`: a manifest pushed by digest (a signed message has none: its `tag` stores it)
 * - `push-bundle`: the signature bundle artifact pushed
 * - `tag`: a tag pointed at a manifest
 * - `index`: a referrer made findable (Referrers API, or the referrers tag schema written)
 * - `fetch-manifest`: a manifest read (receive, copy)
 * - `verify`: a signature checked (receive)
 * - `download`: a message's chunks read, checked and its file written into place (receive)
 * - `write-receipt`: an audit receipt file written (--receipt-dir)
 */
export type StepName =
  | 'compress'
  | 'upload'
  | 'sign'
  | 'push-manifest'
  | 'push-bundle'
  | 'tag'
  | 'index'
  | 'fetch-manifest'
  | 'download'
  | 'verify'
  | 'write-receipt';

export type StepState = 'started' | 'done' | 'failed';

/** What a step is about, when it is about one thing. */
export interface StepInfo {
  digest?: string;
  tag?: string;
  /** The chunk's index (compress, upload of a message chunk). */
  chunk?: number;
  /** A file name (write-receipt). */
  path?: string;
}

export type OnStep = (step: StepName, state: StepState, info?: StepInfo) => void;

/** Reports `state` for `step`; a throwing callback is ignored (reporting must not change the outcome). */
export function report(onStep: OnStep | undefined, step: StepName, state: StepState, info?: StepInfo): void {
  if (onStep === undefined) return;
  try {
    onStep(step, state, info);
  } catch {
    // advisory only
  }
}

/** Runs `work` between `started` and `done` (or `failed`, rethrowing). */
export async function runStep<T>(onStep: OnStep | undefined, step: StepName, info: StepInfo | undefined, work: () => Promise<T>): Promise<T> {
  report(onStep, step, 'started', info);
  try {
    const out = await work();
    report(onStep, step, 'done', info);
    return out;
  } catch (err) {
    report(onStep, step, 'failed', info);
    throw err;
  }
}
