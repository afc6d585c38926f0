/**
 * watch: keep receiving as messages arrive. Each poll is one receive run (one tag listing) that
 * skips every inbox tag, digest and message id already delivered; what was delivered is recorded
 * in a state file (atomically replaced) so a restarted watcher delivers nothing twice. Errors back
 * off exponentially; the AbortSignal (SIGINT in the CLI) stops it cleanly between steps.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CommsError, ProtocolError } from '../errors.ts';
import { sleep } from '../util/abort.ts';
import { receiveEach, type ReceiveFailure, type ReceiveOptions, type ReceivedMessage } from './receive.ts';

export interface WatchOptions extends Omit<ReceiveOptions, 'skip' | 'max'> {
  /** Poll interval (default 5 s). */
  intervalMs?: number;
  /** Ceiling of the back-off after consecutive failed polls (default 5 min). */
  maxBackoffMs?: number;
  /** Where delivered tags/digests/ids are recorded (default: `<outDir>/.comms-watch.json`). */
  stateFile?: string;
  /** Called when a poll fails and the watcher backs off; the watcher keeps going. */
  onPollError?: (error: unknown, retryInMs: number) => void;
}

interface WatchState {
  version: 1;
  tags: string[];
  digests: string[];
  messageIds: string[];
}

/** Bounds the state file; the oldest entries go first (their messages have long expired). */
const MAX_STATE_ENTRIES = 50_000;

export async function* watch(options: WatchOptions): AsyncGenerator<ReceivedMessage | ReceiveFailure> {
  const stateFile = options.stateFile ?? path.join(options.outDir, '.comms-watch.json');
  const state = await loadState(stateFile);
  const skip = { tags: new Set(state.tags), digests: new Set(state.digests), messageIds: new Set(state.messageIds) };
  const interval = options.intervalMs ?? 5000;
  const maxBackoff = options.maxBackoffMs ?? 300_000;
  let failures = 0;
  while (!options.signal?.aborted) {
    try {
      for await (const item of receiveEach({ ...options, skip })) {
        // A message refused for its content is not retried every poll: it is recorded as handled.
        skip.tags.add(item.tag);
        if (item.digest !== undefined) skip.digests.add(item.digest);
        if (!('error' in item)) skip.messageIds.add(item.messageId);
        await saveState(stateFile, skip);
        yield item;
      }
      failures = 0;
    } catch (err) {
      if (options.signal?.aborted) break;
      failures++;
      const backoff = Math.min(maxBackoff, interval * 2 ** Math.min(failures, 16));
      options.onPollError?.(err, backoff);
      if (!(await pause(backoff, options.signal))) break;
      continue;
    }
    if (!(await pause(interval, options.signal))) break;
  }
}

async function loadState(file: string): Promise<WatchState> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, tags: [], digests: [], messageIds: [] };
    throw new CommsError(`cannot read the watch state file ${file}`, { cause: err });
  }
  try {
    const s = JSON.parse(text) as WatchState;
    if (s.version !== 1 || !Array.isArray(s.tags) || !Array.isArray(s.digests) || !Array.isArray(s.messageIds)) throw new Error('unexpected shape');
    return s;
  } catch (cause) {
    throw new ProtocolError(`the watch state file ${file} is corrupt; move it away to start afresh (messages already received may then be delivered again)`, { cause, code: 'STATE_INVALID' });
  }
}

async function saveState(file: string, s: { tags: Set<string>; digests: Set<string>; messageIds: Set<string> }): Promise<void> {
  const keep = (set: Set<string>) => [...set].slice(-MAX_STATE_ENTRIES);
  const body: WatchState = { version: 1, tags: keep(s.tags), digests: keep(s.digests), messageIds: keep(s.messageIds) };
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(body), { mode: 0o600 });
  await rename(tmp, file);
}

/** Resolves true after `ms`, or false as soon as the signal aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  return sleep(ms, signal).then(
    () => true,
    () => false,
  );
}
