/**
 * watch: keep receiving as messages arrive. Each poll is one receive run (one tag listing) that
 * skips every inbox tag, digest and message id already delivered; what was delivered is recorded
 * in a state file (atomically replaced) so a restarted watcher delivers nothing twice. Errors back
 * off exponentially; the AbortSignal (SIGINT in the CLI) stops it cleanly between steps.
 *
 * A message refused for its signature is not refused at once: dockercomms v1.0 pushes the inbox
 * tag before the signature bundle, so a poll in between sees no bundle (or only someone else's).
 * It is tried again on later polls for a grace period counted from when this watcher first saw it
 * (kept in the state file across restarts); until the grace ends nothing is yielded, no receipt is
 * written and nothing is recorded as handled.
 *
 * The state file lives outside the output folder by default (under the user's state folder), and
 * an explicit one directly inside it is refused: a received file can never overwrite it, nor be
 * loaded as it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, realpath, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { CommsError, NotFoundError, ProtocolError, UsageError, type VerificationError } from '../errors.ts';
import { sleep } from '../util/abort.ts';
import { parseInboxTag, recipientTag } from '../protocol/tags.ts';
import { prepareOutDir } from './out-dir.ts';
import { receiveEach, type ReceiveFailure, type ReceiveOptions, type ReceivedMessage } from './receive.ts';

/** How long a message whose signature does not verify yet is retried (default). */
export const DEFAULT_BUNDLE_GRACE_MS = 10 * 60 * 1000;

export interface WatchOptions extends Omit<ReceiveOptions, 'skip' | 'max' | 'retryUnverified'> {
  /** Poll interval (default 5 s). */
  intervalMs?: number;
  /** Ceiling of the back-off after consecutive failed polls (default 5 min). */
  maxBackoffMs?: number;
  /**
   * Where delivered tags/digests/ids are recorded (default: `defaultWatchStateFile(...)`, under
   * `$XDG_STATE_HOME/comms/watch`, else `~/.local/state/comms/watch`). Refused when directly inside
   * `outDir`, where a received file could take its name.
   */
  stateFile?: string;
  /**
   * How long a message whose signature bundle is missing (or does not verify) is tried again,
   * counted from when this watcher first saw it (default DEFAULT_BUNDLE_GRACE_MS, 10 minutes).
   */
  bundleGraceMs?: number;
  /** Called once when a message is first held back to wait for its signature bundle. */
  onBundleWait?: (message: { tag: string; digest: string; error: VerificationError; until: Date }) => void;
  /**
   * Called once when the mailbox does not exist (yet): the registry does not know the repository.
   * The watcher then polls at its normal interval, without backing off, until it appears.
   */
  onMailboxMissing?: () => void;
  /** Called when a poll fails and the watcher backs off; the watcher keeps going. */
  onPollError?: (error: unknown, retryInMs: number) => void;
}

interface WatchState {
  version: 1;
  tags: string[];
  digests: string[];
  messageIds: string[];
  /** Inbox tags waiting for their signature bundle → when this watcher first saw them (ms since epoch). */
  pending?: Record<string, number>;
}

/** Bounds the state file; the oldest entries go first (their messages have long expired). */
const MAX_STATE_ENTRIES = 50_000;

/**
 * The default state file for watching `outDir` for `me` in `repositoryName`: one file per such
 * triple under the user's state folder, named by a hash of them, never inside `outDir`.
 */
export async function defaultWatchStateFile(outDir: string, repositoryName: string, me: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const base = env['XDG_STATE_HOME'] || path.join(homedir(), '.local', 'state');
  const out = await realpath(outDir).catch(() => path.resolve(outDir));
  const key = createHash('sha256')
    .update(JSON.stringify([out, repositoryName, me]))
    .digest('hex')
    .slice(0, 32);
  return path.join(base, 'comms', 'watch', `${key}.json`);
}

/** Refuses a state file directly inside the output folder (a received file could take its name). */
export async function checkStateFileOutsideOut(stateFile: string, outDir: string): Promise<void> {
  const [dir, out] = await Promise.all([realpath(path.dirname(path.resolve(stateFile))).catch(() => undefined), realpath(outDir)]);
  if (dir !== undefined && dir === out) {
    throw new UsageError(
      `stateFile ${stateFile} is inside the output folder ${outDir}, where a received file could take its name: keep it elsewhere (or leave it out for the default)`,
      { code: 'STATE_FILE_IN_OUT', option: 'stateFile' },
    );
  }
}

export async function* watch(options: WatchOptions): AsyncGenerator<ReceivedMessage | ReceiveFailure> {
  await prepareOutDir(options.outDir);
  const stateFile = options.stateFile ?? (await defaultWatchStateFile(options.outDir, options.repository.name, options.me));
  await checkStateFileOutsideOut(stateFile, options.outDir);
  const state = await loadState(stateFile);
  const skip = { tags: new Set(state.tags), digests: new Set(state.digests), messageIds: new Set(state.messageIds) };
  const pending = new Map<string, number>(Object.entries(state.pending ?? {}));
  const grace = options.bundleGraceMs ?? DEFAULT_BUNDLE_GRACE_MS;
  const interval = options.intervalMs ?? 5000;
  const maxBackoff = options.maxBackoffMs ?? 300_000;
  let failures = 0;
  let missing = false;
  // Held back (true) while within the grace; the first hold of a message is recorded and reported.
  const retryUnverified = (m: { tag: string; digest: string; error: VerificationError }): boolean => {
    const now = Date.now();
    let first = pending.get(m.tag);
    if (first === undefined) {
      first = now;
      pending.set(m.tag, now);
      options.onBundleWait?.({ ...m, until: new Date(now + grace) });
    }
    return now - first < grace;
  };
  while (!options.signal?.aborted) {
    // A waiting tag that vanished (deleted before its grace ended) is forgotten after a while.
    for (const [tag, first] of pending) if (Date.now() - first > grace + 3_600_000) pending.delete(tag);
    const pendingBefore = pending.size;
    try {
      const listFrom = newestDeliveredDay(skip.tags, options.me);
      for await (const item of receiveEach({ ...options, skip, retryUnverified, ...(listFrom === undefined ? {} : { listFrom }) })) {
        // A message refused for its content is not retried every poll: it is recorded as handled.
        skip.tags.add(item.tag);
        pending.delete(item.tag);
        if (item.digest !== undefined) skip.digests.add(item.digest);
        if (!('error' in item)) skip.messageIds.add(item.messageId);
        await saveState(stateFile, skip, pending);
        yield item;
      }
      failures = 0;
      missing = false;
      if (pending.size !== pendingBefore) await saveState(stateFile, skip, pending);
    } catch (err) {
      if (options.signal?.aborted) break;
      // A mailbox nobody has sent to yet is not a failure: wait for it at the normal pace.
      if (err instanceof NotFoundError && err.code === 'NAME_UNKNOWN') {
        if (!missing) options.onMailboxMissing?.();
        missing = true;
        failures = 0;
        if (!(await pause(interval, options.signal))) break;
        continue;
      }
      failures++;
      const backoff = Math.min(maxBackoff, interval * 2 ** Math.min(failures, 16));
      options.onPollError?.(err, backoff);
      if (!(await pause(backoff, options.signal))) break;
      continue;
    }
    if (!(await pause(interval, options.signal))) break;
  }
}

/**
 * What a state file records as delivered (recv without --watch reads and extends the same record,
 * so a message is delivered once into one --out however it is received).
 */
export async function loadDelivered(file: string): Promise<{ tags: Set<string>; digests: Set<string>; messageIds: Set<string>; pending: Map<string, number> }> {
  const s = await loadState(file);
  return { tags: new Set(s.tags), digests: new Set(s.digests), messageIds: new Set(s.messageIds), pending: new Map(Object.entries(s.pending ?? {})) };
}

/** Replaces the state file (atomically) with these records. */
export async function saveDelivered(
  file: string,
  s: { tags: Set<string>; digests: Set<string>; messageIds: Set<string>; pending: Map<string, number> },
): Promise<void> {
  await saveState(file, s, s.pending);
}

/**
 * The day before the newest inbox tag of `me` delivered so far: later polls list from there (where
 * the registry can list a range), so a long-lived mailbox costs a watcher its recent tags only. A
 * day's margin covers a sender whose clock or upload crossed midnight.
 */
function newestDeliveredDay(tags: Set<string>, me: string): Date | undefined {
  const mine = recipientTag(me);
  let newest: number | undefined;
  for (const t of tags) {
    const parsed = parseInboxTag(t);
    if (parsed === undefined || parsed.recipientTag !== mine) continue;
    if (newest === undefined || parsed.date.getTime() > newest) newest = parsed.date.getTime();
  }
  return newest === undefined ? undefined : new Date(newest - 86_400_000);
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
    if (s.pending !== undefined && (typeof s.pending !== 'object' || s.pending === null || Object.values(s.pending).some((v) => typeof v !== 'number')))
      throw new Error('unexpected shape');
    return s;
  } catch (cause) {
    throw new ProtocolError(`the watch state file ${file} is corrupt; move it away to start afresh (messages already received may then be delivered again)`, {
      cause,
      code: 'STATE_INVALID',
    });
  }
}

async function saveState(file: string, s: { tags: Set<string>; digests: Set<string>; messageIds: Set<string> }, pending: Map<string, number>): Promise<void> {
  const keep = (set: Set<string>) => [...set].slice(-MAX_STATE_ENTRIES);
  const body: WatchState = { version: 1, tags: keep(s.tags), digests: keep(s.digests), messageIds: keep(s.messageIds) };
  if (pending.size > 0) body.pending = Object.fromEntries([...pending].slice(-MAX_STATE_ENTRIES));
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
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
