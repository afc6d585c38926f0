/**
 * Blob upload sessions, kept on disk under `<root>/_uploads/` (a name no repository can have):
 * `<id>.json` says which repository the session belongs to, `<id>.data` holds the bytes received
 * so far. Nothing of an upload is in memory but a running sha256, so a session survives a
 * restart of the server (its hash is then recomputed from the file) and a huge blob costs no RAM.
 *
 * A chunk is appended all or nothing: when the request fails or breaks off midway, the file is
 * truncated back and the hash restored, so the session's Range always reports whole chunks.
 * On commit the data file is hard-linked into the repository's blob store, so a data file with
 * more than one link is never written again.
 * Sessions idle for longer than the TTL are removed by `sweep()`.
 *
 * Limits: at most `maxPerRepository` open sessions per repository and `maxTotal` in all (429
 * TOOMANYREQUESTS beyond), and no session grows beyond `maxBlobBytes` (413 SIZE_INVALID; the chunk
 * that would cross it is rolled back).
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { RegistryHttpError } from './errors.ts';

export const UPLOADS_DIR = '_uploads';

export interface UploadSession {
  readonly id: string;
  /** The repository the session was started for; it cannot be used from another one. */
  readonly name: string;
  readonly dataPath: string;
}

export interface UploadLimits {
  /** Open sessions one repository may have at once. */
  maxPerRepository: number;
  /** Open sessions of all repositories together. */
  maxTotal: number;
  /** Largest blob an upload may grow to, in bytes. */
  maxBlobBytes: number;
}

export const DEFAULT_UPLOAD_LIMITS: UploadLimits = { maxPerRepository: 64, maxTotal: 1024, maxBlobBytes: 10 * 1024 ** 3 };

interface LiveState {
  /** Bytes in the data file that `hash` covers. */
  size: number;
  hash: Hash;
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export class UploadStore {
  readonly dir: string;
  private readonly ttlMs: number;
  private readonly live = new Map<string, LiveState>();
  /** One operation at a time per session: chunks must land in order. */
  private readonly queues = new Map<string, Promise<unknown>>();
  readonly limits: UploadLimits;
  /** Open sessions: id → repository name (known from the meta files at init, then kept here). */
  private readonly open = new Map<string, string>();
  private readonly perRepository = new Map<string, number>();

  constructor(root: string, ttlMs: number, limits: Partial<UploadLimits> = {}) {
    this.dir = join(root, UPLOADS_DIR);
    this.ttlMs = ttlMs;
    this.limits = { ...DEFAULT_UPLOAD_LIMITS, ...limits };
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const file of await readdir(this.dir)) {
      const m = /^(.+)\.json$/.exec(file);
      if (m === null) continue;
      let name: unknown;
      try {
        name = (JSON.parse(await readFile(join(this.dir, file), 'utf8')) as { name?: unknown }).name;
      } catch {
        continue;
      }
      if (typeof name === 'string') this.track(m[1] as string, name);
    }
  }

  private track(id: string, name: string): void {
    if (this.open.has(id)) return;
    this.open.set(id, name);
    this.perRepository.set(name, (this.perRepository.get(name) ?? 0) + 1);
  }

  private untrack(id: string): void {
    const name = this.open.get(id);
    if (name === undefined) return;
    this.open.delete(id);
    const left = (this.perRepository.get(name) ?? 1) - 1;
    if (left > 0) this.perRepository.set(name, left);
    else this.perRepository.delete(name);
  }

  /** Open sessions of repository `name`. */
  count(name: string): number {
    return this.perRepository.get(name) ?? 0;
  }

  /** SIZE_INVALID (413) when an upload would hold more than `maxBlobBytes`. */
  checkSize(total: number): void {
    if (total > this.limits.maxBlobBytes) {
      throw new RegistryHttpError(
        'SIZE_INVALID',
        `the blob would be ${total} bytes, above this registry's limit of ${this.limits.maxBlobBytes} bytes per blob`,
        {
          status: 413,
          detail: { limit: this.limits.maxBlobBytes },
        },
      );
    }
  }

  private paths(id: string): { meta: string; data: string } {
    return { meta: join(this.dir, `${id}.json`), data: join(this.dir, `${id}.data`) };
  }

  /** A new session for repository `name`; TOOMANYREQUESTS when a session limit is reached. */
  async create(name: string): Promise<UploadSession> {
    const tooMany = (why: string): RegistryHttpError =>
      new RegistryHttpError('TOOMANYREQUESTS', `${why}; finish or cancel one (DELETE its upload URL), or wait until abandoned ones expire`, {
        status: 429,
        detail: { repository: name, limits: { perRepository: this.limits.maxPerRepository, total: this.limits.maxTotal } },
      });
    if (this.count(name) >= this.limits.maxPerRepository) {
      throw tooMany(`repository ${name} already has ${this.count(name)} upload sessions open, this registry's limit per repository`);
    }
    if (this.open.size >= this.limits.maxTotal) throw tooMany(`this registry already has ${this.open.size} upload sessions open, its limit`);
    const id = randomUUID();
    // Counted before the first await, so concurrent starts cannot overshoot the limit.
    this.track(id, name);
    const { meta, data } = this.paths(id);
    try {
      await writeFile(data, new Uint8Array(0), { flag: 'wx' });
      // The meta file appears whole (rename) or not at all: a session without it does not exist.
      const tmp = `${meta}.tmp`;
      await writeFile(tmp, JSON.stringify({ name, created: Date.now() }), { flag: 'wx' });
      await rename(tmp, meta);
    } catch (err) {
      this.untrack(id);
      await rm(data, { force: true });
      throw err;
    }
    this.live.set(id, { size: 0, hash: createHash('sha256') });
    return { id, name, dataPath: data };
  }

  /** The session `id` of repository `name`; BLOB_UPLOAD_UNKNOWN when there is none. */
  async get(name: string, id: string): Promise<UploadSession> {
    const { meta, data } = this.paths(id);
    let owner: unknown;
    try {
      owner = (JSON.parse(await readFile(meta, 'utf8')) as { name?: unknown }).name;
    } catch {
      owner = undefined;
    }
    if (owner !== name) throw new RegistryHttpError('BLOB_UPLOAD_UNKNOWN', `no upload session ${id} in ${name}`, { detail: { id } });
    return { id, name, dataPath: data };
  }

  /** Runs `fn` after every earlier operation on the same session has finished. */
  exclusive<T>(session: UploadSession, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(session.id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.queues.set(session.id, tail);
    void tail.then(() => {
      if (this.queues.get(session.id) === tail) this.queues.delete(session.id);
    });
    return run;
  }

  /** Bytes received so far. */
  async size(session: UploadSession): Promise<number> {
    try {
      return (await stat(session.dataPath)).size;
    } catch (err) {
      if (errCode(err) === 'ENOENT') throw new RegistryHttpError('BLOB_UPLOAD_UNKNOWN', `upload session ${session.id} is gone`);
      throw err;
    }
  }

  /**
   * Appends `body` at the end of the session. With `expectedLength` the body must be exactly that
   * long (the length its Content-Range announced). Returns the new size. Call inside exclusive().
   */
  async append(session: UploadSession, body: Readable | AsyncIterable<Buffer>, expectedLength?: number): Promise<number> {
    const start = await this.size(session);
    const state = await this.liveState(session, start);
    const before = state.hash.copy();
    // A second link means the file was handed to the blob store (a commit a crash interrupted):
    // writing to it now would change a stored blob.
    if ((await stat(session.dataPath)).nlink > 1) {
      throw new RegistryHttpError('BLOB_UPLOAD_INVALID', 'this upload was already committed; complete it with PUT or start a new one');
    }
    const fh = await open(session.dataPath, 'r+');
    let written = 0;
    try {
      // destroyOnReturn false: a refused chunk must not tear down the socket the answer goes out on.
      const chunks: AsyncIterable<unknown> = body instanceof Readable ? body.iterator({ destroyOnReturn: false }) : body;
      for await (const chunk of chunks) {
        const buf = chunk as Buffer;
        if (expectedLength !== undefined && written + buf.length > expectedLength) {
          throw new RegistryHttpError('BLOB_UPLOAD_INVALID', `the chunk is longer than its Content-Range says (${expectedLength} bytes)`, { status: 400 });
        }
        this.checkSize(start + written + buf.length);
        for (let off = 0; off < buf.length; ) {
          const { bytesWritten } = await fh.write(buf, off, buf.length - off, start + written + off);
          off += bytesWritten;
        }
        state.hash.update(buf);
        written += buf.length;
      }
      if (expectedLength !== undefined && written !== expectedLength) {
        throw new RegistryHttpError('BLOB_UPLOAD_INVALID', `the chunk has ${written} bytes, its Content-Range says ${expectedLength}`);
      }
      state.size = start + written;
      await fh.datasync();
      return state.size;
    } catch (err) {
      await fh.truncate(start).catch(() => undefined);
      state.hash = before;
      state.size = start;
      throw err;
    } finally {
      await fh.close();
    }
  }

  /** The running sha256 for the session, rebuilt from the file when this process does not hold it. */
  private async liveState(session: UploadSession, size: number): Promise<LiveState> {
    const cur = this.live.get(session.id);
    if (cur !== undefined && cur.size === size) return cur;
    const fresh: LiveState = { size, hash: await hashFile(session.dataPath, 'sha256', size) };
    this.live.set(session.id, fresh);
    return fresh;
  }

  /** `<algorithm>:<hex>` of everything received. Call inside exclusive(). */
  async digest(session: UploadSession, algorithm: 'sha256' | 'sha512'): Promise<{ digest: string; size: number }> {
    const size = await this.size(session);
    if (algorithm === 'sha256') {
      const state = await this.liveState(session, size);
      return { digest: `sha256:${state.hash.copy().digest('hex')}`, size };
    }
    return { digest: `${algorithm}:${(await hashFile(session.dataPath, algorithm, size)).digest('hex')}`, size };
  }

  async remove(session: UploadSession): Promise<void> {
    this.live.delete(session.id);
    this.untrack(session.id);
    const { meta, data } = this.paths(session.id);
    // The meta file goes first: without it the session no longer exists, whatever is left.
    await rm(meta, { force: true });
    await rm(data, { force: true });
  }

  /** Removes sessions (and stray files) untouched for longer than the TTL; returns how many files went. */
  async sweep(now = Date.now()): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return 0;
      throw err;
    }
    const newest = new Map<string, number>();
    for (const name of names) {
      const id = name.split('.')[0] as string;
      const st = await stat(join(this.dir, name)).catch(() => undefined);
      if (st === undefined) continue;
      newest.set(id, Math.max(newest.get(id) ?? 0, st.mtimeMs));
    }
    let removed = 0;
    for (const name of names) {
      const id = name.split('.')[0] as string;
      if (now - (newest.get(id) ?? now) <= this.ttlMs) continue;
      if (this.queues.has(id)) continue; // a request is working on it right now
      this.live.delete(id);
      this.untrack(id);
      await rm(join(this.dir, name), { force: true, recursive: true });
      removed += 1;
    }
    return removed;
  }
}

/** Hashes the first `size` bytes of a file. */
export async function hashFile(path: string, algorithm: 'sha256' | 'sha512', size: number): Promise<Hash> {
  const hash = createHash(algorithm);
  if (size === 0) return hash;
  for await (const chunk of createReadStream(path, { start: 0, end: size - 1 })) hash.update(chunk as Buffer);
  return hash;
}
