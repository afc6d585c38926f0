/**
 * A cross-process exclusive lock on one file, for the read-modify-write of index.json.
 *
 * Protocol:
 * - Acquire: write `{pid, host, created, token}` to a temp file, then hard-link it to the lock
 *   path (link fails with EEXIST when the lock exists), so the lock appears whole or not at all:
 *   a holder killed at any moment never leaves an empty lock file behind. On EEXIST, retry with
 *   exponential backoff and jitter until `timeoutMs` → CommsError LOCK_TIMEOUT.
 * - Stale: a lock is stale when its holder is on this host and its pid is dead, or when it is
 *   older than `staleMs` (the holder hung, or lives on another host). A lock file that is empty
 *   or unreadable cannot be a live holder's (this code never writes one; an older writer that
 *   created then wrote it took milliseconds): it is stale once `UNREADABLE_STALE_MS` old.
 * - Breaking a stale lock is itself serialised by a second `wx` file (`<lock>.break`): under it the
 *   breaker re-reads the lock and unlinks it only if it is still the same stale file. Without this,
 *   two waiters could both judge a lock stale and the second would delete the first one's fresh lock.
 * - Release: unlink the lock only if it still carries our token (it may have been broken as stale).
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { hostname } from 'node:os';
import { CommsError } from '../../errors.ts';
import { checkAborted, sleep } from '../../util/abort.ts';
import { isPidAlive } from '../../util/process.ts';

export interface LockOptions {
  /** A lock older than this is taken to be abandoned (default 30 s; critical sections take ms). */
  staleMs?: number;
  /** Give up acquiring after this long (default 60 s). */
  timeoutMs?: number;
}

interface LockInfo {
  pid: number;
  host: string;
  created: number;
  token: string;
}

const DEFAULT_STALE_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 60_000;
const MIN_BACKOFF_MS = 2;
const MAX_BACKOFF_MS = 100;
/** An empty or torn lock file older than this is debris of a writer killed mid-write. */
const UNREADABLE_STALE_MS = 1_000;
/** Breaking takes a few syscalls; a breaker file older than this belongs to a crashed breaker. */
const BREAKER_STALE_MS = 5_000;

function parseInfo(text: string): LockInfo | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.created === 'number' && typeof v.token === 'string') {
      return v as LockInfo;
    }
  } catch {
    // An empty or torn lock file: debris of an older writer killed between creating and writing it.
  }
  return undefined;
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export class FileLock {
  readonly path: string;
  private readonly staleMs: number;
  private readonly timeoutMs: number;
  private readonly tmpDir: string;

  /** `tmpDir` holds the lock's content while it is written (same filesystem; default the lock's folder). */
  constructor(path: string, options: LockOptions = {}, tmpDir: string = dirname(path)) {
    this.path = path;
    this.tmpDir = tmpDir;
    this.staleMs = options.staleMs ?? DEFAULT_STALE_MS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Runs `fn` while holding the lock. */
  async withLock<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await fn();
    } finally {
      await release();
    }
  }

  /** Acquires the lock and returns its release function. */
  async acquire(signal?: AbortSignal): Promise<() => Promise<void>> {
    const token = randomBytes(12).toString('hex');
    const deadline = Date.now() + this.timeoutMs;
    let backoff = MIN_BACKOFF_MS;
    for (;;) {
      checkAborted(signal);
      if (await this.tryCreate(token)) return () => this.release(token);
      if (await this.breakIfStale()) continue;
      if (Date.now() >= deadline) {
        throw new CommsError(`timed out after ${this.timeoutMs} ms waiting for the lock ${this.path}`, { code: 'LOCK_TIMEOUT' });
      }
      // Full jitter: waiters that collided do not retry in lockstep.
      const wait = backoff / 2 + Math.random() * (backoff / 2);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      await sleep(wait, signal);
    }
  }

  private async tryCreate(token: string): Promise<boolean> {
    const info: LockInfo = { pid: process.pid, host: hostname(), created: Date.now(), token };
    const tmp = join(this.tmpDir, `${process.pid}-${token}.lock`);
    try {
      const text = JSON.stringify(info);
      await writeFile(tmp, text, { flag: 'wx', mode: 0o644 }).catch(async (err: unknown) => {
        if (errCode(err) !== 'ENOENT') throw err;
        await mkdir(this.tmpDir, { recursive: true });
        await writeFile(tmp, text, { flag: 'wx', mode: 0o644 });
      });
      // The lock appears with its whole content, or not at all.
      await link(tmp, this.path);
      return true;
    } catch (err) {
      if (errCode(err) === 'EEXIST') return false;
      throw new CommsError(`cannot create the lock ${this.path}: ${(err as Error).message}`, { code: 'IO_ERROR', cause: err });
    } finally {
      await rm(tmp, { force: true });
    }
  }

  private async release(token: string): Promise<void> {
    const info = parseInfo(await readFile(this.path, 'utf8').catch(() => ''));
    if (info?.token === token) await rm(this.path, { force: true });
  }

  /** Reads the lock file; undefined when it is gone. */
  private async snapshot(): Promise<{ text: string; ino: number; mtimeMs: number } | undefined> {
    try {
      const [st, text] = await Promise.all([stat(this.path), readFile(this.path, 'utf8')]);
      return { text, ino: st.ino, mtimeMs: st.mtimeMs };
    } catch (err) {
      if (errCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  private isStale(snap: { text: string; mtimeMs: number }): boolean {
    const info = parseInfo(snap.text);
    if (info === undefined) return Date.now() - snap.mtimeMs > Math.min(UNREADABLE_STALE_MS, this.staleMs);
    if (info.host === hostname() && !isPidAlive(info.pid)) return true;
    return Date.now() - info.created > this.staleMs;
  }

  /** Removes the lock when it is stale; true when the caller should retry at once. */
  private async breakIfStale(): Promise<boolean> {
    const seen = await this.snapshot();
    if (seen === undefined) return true;
    if (!this.isStale(seen)) return false;

    const breaker = `${this.path}.break`;
    let fh;
    try {
      fh = await open(breaker, 'wx', 0o644);
    } catch (err) {
      if (errCode(err) !== 'EEXIST') throw err;
      const st = await stat(breaker).catch(() => undefined);
      if (st !== undefined && Date.now() - st.mtimeMs > BREAKER_STALE_MS) await rm(breaker, { force: true });
      return false;
    }
    try {
      await fh.close();
      const now = await this.snapshot();
      // Only the very file judged stale is removed; a lock re-created meanwhile is left alone.
      if (now !== undefined && now.ino === seen.ino && now.text === seen.text && this.isStale(now)) {
        await rm(this.path, { force: true });
      }
      return true;
    } finally {
      await rm(breaker, { force: true });
    }
  }
}
