/**
 * An OCI image-layout folder (image-spec image-layout.md) as a Repository.
 *
 * On disk:
 *   oci-layout                  {"imageLayoutVersion":"1.0.0"}
 *   index.json                  image index: one entry per tag (annotation
 *                               org.opencontainers.image.ref.name) and one per untagged manifest,
 *                               so every manifest pushed is reachable (see index-file.ts)
 *   blobs/<alg>/<hex>           blobs and manifests alike, content-addressed
 *   referrers/<alg>/<hex>/…     referrers index by subject, one file per referrer (see referrers-index.ts)
 *   index.json.journal          changes not yet folded into index.json, one JSON object per line, when
 *                               the layout is opened with `journal` (the registry); read by every reader
 *   index.json.lock             the lock serialising index.json updates across processes (see lock.ts)
 *   .tmp/                       temp files of writes in progress; never read; `sweepTemp` clears old ones
 *
 * Referrers: found through referrers/ (written when a manifest with a subject is pushed), so a
 * query costs O(referrers of that subject) and never reads the store's other blobs. Content
 * another tool put in the folder is indexed by `reindexReferrers()`.
 *
 * Concurrency: blobs need no lock — content-addressed, written to .tmp and renamed into place.
 * index.json is read-modify-written only under the lock and replaced atomically, and the journal
 * is appended to only under the lock, a whole number of lines per write, so readers (who take no
 * lock) always see a whole index and whole changes; a reader that a compaction overtook reads
 * again. Updates from one process are grouped into one write. Referrer files are idempotent
 * atomic creates.
 * Order of a manifest push: blob, then referrer file, then index.json — a crash between steps
 * leaves at worst an unreferenced blob, never an index entry for content that is not there.
 */
import { createReadStream } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { Readable, Transform, type TransformCallback, pipeline, Writable } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { AbortError, CommsError, DigestMismatchError, NotFoundError, ProtocolError, UsageError } from '../../errors.ts';
import { checkAborted } from '../../util/abort.ts';
import { readCapped } from '../../util/read-capped.ts';
import { referrerDescriptor, type Descriptor } from '../descriptor.ts';
import { parseDigest, VerifyingStream } from '../digest.ts';
import { isManifestMediaType, MAX_MANIFEST_BYTES, MediaType } from '../mediatypes.ts';
import { validateTag } from '../reference.ts';
import type {
  FetchedManifest,
  FetchOptions,
  OperationOptions,
  PageVisitor,
  PushOptions,
  PushResult,
  ReferrerPushOptions,
  ReferrerPushResult,
  ReferrersOptions,
  Repository,
  TagListOptions,
} from '../target.ts';
import { fsyncDir, streamToFileAtomic, tempPath, writeFileAtomic } from './atomic.ts';
import {
  emptyIndex,
  firstAfter,
  type IndexOp,
  IndexModel,
  parseIndex,
  parseJournal,
  publicDescriptor,
  serializeIndex,
  serializeJournal,
} from './index-file.ts';
import { FileLock, type LockOptions } from './lock.ts';
import { type ManifestFields, parseManifestFields } from './manifest-fields.ts';
import { ReferrersIndex } from './referrers-index.ts';

export interface OciLayoutOptions {
  /** Create the folder, `oci-layout` and an empty `index.json` when absent (default false). */
  create?: boolean;
  /** Tuning of the index.json lock (tests use short timeouts). */
  lock?: LockOptions;
  /**
   * Record index.json updates by appending them to `index.json.journal` and fold the journal into
   * index.json from time to time (after 1,000 changes or a quarter of the index, after a second
   * without updates, and on compact()), so an update costs O(1) however many tags there are.
   * For a long-running writer (the registry). Every OciLayout reads the journal either way, and
   * one that does not journal folds it into index.json on its next update.
   */
  journal?: boolean;
  /** How long a journaling layout waits without updates before it folds the journal in (default 1 s). */
  journalIdleMs?: number;
}

const LAYOUT_VERSION = '1.0.0';
const OCI_LAYOUT_BYTES = new TextEncoder().encode(JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION }));
const DEFAULT_PAGE_SIZE = 100;
const REFERRERS_PAGE_SIZE = 100;
const DEFAULT_SWEEP_AGE_MS = 24 * 60 * 60 * 1000;

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function checkSize(desc: Descriptor): void {
  if (!Number.isSafeInteger(desc.size) || desc.size < 0) {
    throw new ProtocolError(`descriptor ${desc.digest} has an invalid size ${String(desc.size)}`, { code: 'SIZE_INVALID' });
  }
}

function ioError(err: unknown, what: string): CommsError {
  if (err instanceof CommsError) return err;
  return new CommsError(`${what}: ${(err as Error | undefined)?.message ?? String(err)}`, { code: 'IO_ERROR', cause: err });
}

/** Discards a push's input without reading it (the content is already stored). */
function discard(content: Readable | Uint8Array): void {
  if (content instanceof Readable && !content.destroyed) content.destroy();
}

async function readManifestBody(content: Readable | Uint8Array, cap: number): Promise<Uint8Array> {
  if (!(content instanceof Readable)) return content;
  const bytes = await readCapped(content, cap);
  if (bytes === undefined) {
    content.destroy();
    throw new ProtocolError(`manifest exceeds ${cap} bytes`, { code: 'MANIFEST_TOO_LARGE' });
  }
  return bytes;
}

interface PendingUpdate {
  /** The change to make, decided against the current document; undefined for none. */
  plan: (index: IndexModel) => IndexOp | undefined;
  resolve: (changed: boolean) => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
  /** Fold the journal into index.json in this write. */
  compact?: boolean;
}

/** index.json and the journal as last read or written, and the index they make. */
interface IndexState {
  /** `ino:size:mtime` of index.json, `none` when absent. */
  indexKey: string;
  /** `ino:bytes` of the journal read, `none` when absent. */
  journalKey: string;
  journalOps: number;
  index: IndexModel;
}

const NONE = 'none';
/** The journal is folded into index.json once it holds this many changes, or a quarter of the index if more. */
const JOURNAL_MIN_OPS = 1000;
/** A journaling layout folds its journal into index.json once no update came for this long. */
const JOURNAL_IDLE_MS = 1000;

function indexKeyOf(st: BigIntStats): string {
  return `${st.ino}:${st.size}:${st.mtimeNs}`;
}

/** The stat key of a file, `none` when it does not exist. */
async function statKey(path: string, journal: boolean): Promise<string> {
  try {
    const st = await stat(path, { bigint: true });
    return journal ? `${st.ino}:${st.size}` : indexKeyOf(st);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return NONE;
    throw ioError(err, `cannot stat ${path}`);
  }
}

export class OciLayout implements Repository {
  readonly name: string;
  /** Absolute path of the layout folder. */
  readonly root: string;
  private readonly indexPath: string;
  private readonly tmpDir: string;
  private readonly lock: FileLock;
  private readonly referrersIndex: ReferrersIndex;
  private readonly journalPath: string;
  private readonly journal: boolean;
  private readonly journalIdleMs: number;
  private cached: IndexState | undefined;
  /** index.json updates waiting for the next write, and whether a write is under way. */
  private readonly pendingUpdates: PendingUpdate[] = [];
  private flushing = false;
  /** The write of index.json or the journal under way in this process, if any. */
  private indexWrite: Promise<void> | undefined;
  private idleCompaction: NodeJS.Timeout | undefined;
  private readonly madeDirs = new Set<string>();
  /** How long the last write of a whole index.json took. */
  private lastFoldMs = 0;

  private constructor(path: string, root: string, options: OciLayoutOptions) {
    this.name = `oci:${path}`;
    this.root = root;
    this.indexPath = join(root, 'index.json');
    this.journalPath = join(root, 'index.json.journal');
    this.journal = options.journal === true;
    this.journalIdleMs = options.journalIdleMs ?? JOURNAL_IDLE_MS;
    this.tmpDir = join(root, '.tmp');
    this.lock = new FileLock(join(root, 'index.json.lock'), options.lock, this.tmpDir);
    this.referrersIndex = new ReferrersIndex(join(root, 'referrers'), this.tmpDir);
  }

  /** Opens the layout at `path`; NotFoundError when it is not one and `create` is not set. */
  static async open(path: string, options: OciLayoutOptions = {}): Promise<OciLayout> {
    if (typeof path !== 'string' || path === '' || path.includes('\0')) {
      throw new UsageError(`invalid layout path ${JSON.stringify(path)}`);
    }
    const root = resolvePath(path);
    const layout = new OciLayout(path, root, options);
    const markerPath = join(root, 'oci-layout');
    let marker: string;
    try {
      marker = await readFile(markerPath, 'utf8');
    } catch (err) {
      const code = errCode(err);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || options.create !== true) {
        if (code === 'ENOENT' || code === 'ENOTDIR') throw new NotFoundError(`no OCI image layout at ${path}`, { cause: err });
        throw ioError(err, `cannot read ${markerPath}`);
      }
      await layout.create();
      return layout;
    }
    let version: unknown;
    try {
      version = (JSON.parse(marker) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch (err) {
      throw new ProtocolError(`${markerPath} is not valid JSON`, { code: 'LAYOUT_INVALID', cause: err });
    }
    if (typeof version !== 'string' || !version.startsWith('1.')) {
      throw new ProtocolError(`unsupported image layout version ${JSON.stringify(version)} in ${markerPath}`, { code: 'LAYOUT_INVALID' });
    }
    if (options.create === true) {
      await layout.create();
    } else {
      // A layout written by another tool has no temp folder yet; a read-only one never needs it.
      await mkdir(layout.tmpDir, { recursive: true }).catch(() => undefined);
    }
    return layout;
  }

  /** Idempotent and safe to race: each file is created only if absent. */
  private async create(): Promise<void> {
    try {
      await mkdir(join(this.root, 'blobs'), { recursive: true });
      await mkdir(this.tmpDir, { recursive: true });
      await writeFileAtomic(this.tmpDir, this.indexPath, serializeIndex(emptyIndex()), 'create');
      // oci-layout last: its presence is what makes the folder a layout to open() without create.
      await writeFileAtomic(this.tmpDir, join(this.root, 'oci-layout'), OCI_LAYOUT_BYTES, 'create');
    } catch (err) {
      throw ioError(err, `cannot create an OCI image layout at ${this.root}`);
    }
  }

  /** mkdir -p, once per folder and process (folders of a layout are never removed by comms). */
  private async ensureDir(dir: string): Promise<void> {
    if (this.madeDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.madeDirs.add(dir);
  }

  private blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.root, 'blobs', algorithm, hex);
  }

  private async blobSize(digest: string): Promise<number | undefined> {
    try {
      const st = await stat(this.blobPath(digest));
      return st.isFile() ? st.size : undefined;
    } catch (err) {
      if (errCode(err) === 'ENOENT') return undefined;
      throw ioError(err, `cannot stat ${digest}`);
    }
  }

  // ---- index.json -------------------------------------------------------------------------

  /** index.json with the journal applied, read from disk (no lock; the caller checks it is consistent). */
  private async loadState(): Promise<IndexState> {
    let indexKey = NONE;
    let index: IndexModel;
    let fh;
    try {
      fh = await open(this.indexPath, 'r');
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw ioError(err, `cannot read ${this.indexPath}`);
    }
    if (fh === undefined) {
      index = new IndexModel(emptyIndex());
    } else {
      try {
        indexKey = indexKeyOf(await fh.stat({ bigint: true }));
        index = new IndexModel(parseIndex(await fh.readFile(), this.indexPath));
      } finally {
        await fh.close();
      }
    }
    let journalKey = NONE;
    let journalOps = 0;
    let jh;
    try {
      jh = await open(this.journalPath, 'r');
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw ioError(err, `cannot read ${this.journalPath}`);
    }
    if (jh !== undefined) {
      try {
        const st = await jh.stat({ bigint: true });
        const bytes = await jh.readFile();
        // A last line without its newline is being appended right now: it is not there yet.
        const whole = bytes.subarray(0, bytes.lastIndexOf(10) + 1);
        const ops = parseJournal(whole, this.journalPath);
        for (const op of ops) index.apply(op);
        journalOps = ops.length;
        journalKey = `${st.ino}:${whole.length}`;
      } finally {
        await jh.close();
      }
    }
    return { indexKey, journalKey, journalOps, index };
  }

  /**
   * The current index (index.json with the journal applied), without the lock. Cached per the
   * stat of both files, which every replace or append changes; a read that a compaction by another
   * process overtook (index.json replaced while the journal was read) is done again. The model is
   * changed in place by this process's updates: use it right away (no await in between), or take
   * what it hands out (sorted tags, a copy of the entries), which never changes.
   */
  private async readIndex(): Promise<IndexModel> {
    for (let attempt = 0; attempt < 5; attempt++) {
      // This process may be writing right now: its index is then the newest there is.
      if (this.indexWrite !== undefined) await this.indexWrite.catch(() => undefined);
      const [indexKey, journalKey] = await Promise.all([statKey(this.indexPath, false), statKey(this.journalPath, true)]);
      const seen = this.cached;
      if (seen !== undefined && seen.indexKey === indexKey && seen.journalKey === journalKey) return seen.index;
      // A write of this process began meanwhile (the files moved under the stat): its index,
      // read under the lock just before, is the newest there is.
      if (this.indexWrite !== undefined && this.cached !== undefined) return this.cached.index;
      const state = await this.loadState();
      if ((await statKey(this.indexPath, false)) !== state.indexKey) continue;
      // Never replace a state cached meanwhile (a write of this process) with this one.
      if (this.cached === seen) this.cached = state;
      return state.index;
    }
    return this.lock.withLock(async () => (await this.readIndexLocked()).index);
  }

  /** The current state read under the lock: the cached one when both files are as last seen. */
  private async readIndexLocked(): Promise<IndexState> {
    const [indexKey, journalKey] = await Promise.all([statKey(this.indexPath, false), statKey(this.journalPath, true)]);
    const seen = this.cached;
    if (seen !== undefined && seen.indexKey === indexKey && seen.journalKey === journalKey) return seen;
    const state = await this.loadState();
    this.cached = state;
    return state;
  }

  /**
   * Changes index.json under the lock: `plan` decides the change against the current index;
   * resolves whether it changed anything. Updates that arrive while one is being written are
   * applied together by the next write (group commit): one lock, one read and one write for all
   * of them, and each caller is answered only once the write that holds its change is durable.
   */
  private updateIndex(plan: (index: IndexModel) => IndexOp | undefined, signal?: AbortSignal): Promise<boolean> {
    checkAborted(signal);
    return new Promise<boolean>((resolve, reject) => {
      this.pendingUpdates.push({ plan, resolve, reject, signal });
      if (!this.flushing) void this.flushUpdates();
    });
  }

  /** Folds the journal into index.json now (a journaling layout does it by itself when idle). */
  async compact(): Promise<void> {
    if (this.idleCompaction !== undefined) clearTimeout(this.idleCompaction);
    this.idleCompaction = undefined;
    await new Promise<boolean>((resolve, reject) => {
      this.pendingUpdates.push({ plan: () => undefined, resolve, reject, signal: undefined, compact: true });
      if (!this.flushing) void this.flushUpdates();
    });
  }

  private async flushUpdates(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pendingUpdates.length > 0) {
        const batch = this.pendingUpdates.splice(0).filter((u) => {
          if (u.signal?.aborted !== true) return true;
          u.reject(new AbortError());
          return false;
        });
        if (batch.length === 0) continue;
        try {
          const changed = await this.lock.withLock(() => this.applyBatch(batch));
          batch.forEach((u, i) => u.resolve(changed[i] as boolean));
        } catch (err) {
          for (const u of batch) u.reject(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /**
   * Under the lock: applies the batch to the index in memory and writes it, to the journal or as a
   * new index.json. Each change costs O(1) in memory (see IndexModel) and on disk (one journal
   * line); only a fold writes the whole index, after a number of changes proportional to it. The
   * changes are visible to this process's readers from the moment they are applied, as a
   * registry's readers see a tag its writer is still storing; a failed write drops the model, so
   * the next read takes what the files say.
   */
  private async applyBatch(batch: PendingUpdate[]): Promise<boolean[]> {
    const state = await this.readIndexLocked();
    const index = state.index;
    const ops: IndexOp[] = [];
    const results = batch.map((u) => {
      const op = u.plan(index);
      const changed = op !== undefined && index.apply(op);
      if (changed) ops.push(op);
      return changed;
    });
    const compact = batch.some((u) => u.compact === true) && (state.journalKey !== NONE || ops.length > 0);
    if (ops.length === 0 && !compact) return results;
    const total = state.journalOps + ops.length;
    const write = async (): Promise<void> => {
      if (this.journal && !compact && total < Math.max(JOURNAL_MIN_OPS, index.size / 4)) {
        this.cached = { ...(await this.appendJournal(ops, state.journalKey === NONE)), indexKey: state.indexKey, journalOps: total, index };
        this.scheduleCompaction();
      } else {
        const started = Date.now();
        await writeFileAtomic(this.tmpDir, this.indexPath, serializeIndex(index.toDocument()), 'replace');
        this.lastFoldMs = Date.now() - started;
        const indexKey = await statKey(this.indexPath, false);
        // index.json now holds every change: the journal goes (applying it again would change nothing).
        if (state.journalKey !== NONE) await rm(this.journalPath, { force: true });
        this.cached = { indexKey, journalKey: NONE, journalOps: 0, index };
      }
    };
    this.indexWrite = write();
    try {
      await this.indexWrite;
    } catch (err) {
      this.cached = undefined;
      throw err;
    } finally {
      this.indexWrite = undefined;
    }
    return results;
  }

  /** Appends `ops` to the journal in one write, durably; returns the journal's new key. */
  private async appendJournal(ops: IndexOp[], creating: boolean): Promise<{ journalKey: string }> {
    const bytes = serializeJournal(ops);
    const fh = await open(this.journalPath, 'a', 0o644);
    let st;
    try {
      // One write call: a reader sees whole lines, or a last line it leaves out.
      for (let off = 0; off < bytes.length; ) {
        const { bytesWritten } = await fh.write(bytes, off, bytes.length - off);
        off += bytesWritten;
      }
      await fh.datasync();
      st = await fh.stat({ bigint: true });
    } finally {
      await fh.close();
    }
    if (creating) await fsyncDir(this.root);
    return { journalKey: `${st.ino}:${st.size}` };
  }

  /**
   * Folds the journal in once no update came for a while: the idle time, or ten times what the
   * last fold took if longer — so a big index that updates arrive slowly at (a loaded machine)
   * is not rewritten between every few of them.
   */
  private scheduleCompaction(): void {
    if (this.idleCompaction !== undefined) clearTimeout(this.idleCompaction);
    this.idleCompaction = setTimeout(
      () => {
        this.idleCompaction = undefined;
        void this.compact().catch(() => undefined);
      },
      Math.max(this.journalIdleMs, 10 * this.lastFoldMs),
    );
    this.idleCompaction.unref();
  }

  // ---- Storage ----------------------------------------------------------------------------

  async exists(desc: Descriptor, options: OperationOptions = {}): Promise<boolean> {
    parseDigest(desc.digest);
    checkAborted(options.signal);
    return (await this.blobSize(desc.digest)) !== undefined;
  }

  async fetch(desc: Descriptor, options: FetchOptions = {}): Promise<Readable> {
    const path = this.blobPath(desc.digest);
    checkSize(desc);
    checkAborted(options.signal);
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if (errCode(err) === 'ENOENT') throw new NotFoundError(`${desc.digest} not found in ${this.name}`, { cause: err });
      throw ioError(err, `cannot open ${desc.digest}`);
    }
    const source = fh.createReadStream();
    const verifier = new VerifyingStream(desc.digest, desc.size);
    const onProgress = options.onProgress;
    let out: Readable;
    if (onProgress === undefined) {
      out = pipeline(source, verifier, () => undefined);
    } else {
      let seen = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb: TransformCallback) {
          seen += chunk.length;
          onProgress(seen);
          cb(null, chunk);
        },
      });
      out = pipeline(source, verifier, counter, () => undefined);
    }
    const signal = options.signal;
    if (signal !== undefined) {
      const onAbort = (): void => {
        out.destroy(new AbortError());
      };
      signal.addEventListener('abort', onAbort, { once: true });
      out.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    return out;
  }

  async push(desc: Descriptor, content: Readable | Uint8Array, options: PushOptions = {}): Promise<PushResult> {
    const path = this.blobPath(desc.digest);
    checkSize(desc);
    checkAborted(options.signal);
    if (isManifestMediaType(desc.mediaType)) return this.pushManifestContent(desc, content, options);

    if ((await this.blobSize(desc.digest)) === desc.size) {
      discard(content);
      return { descriptor: desc, skipped: true };
    }
    await mkdir(dirname(path), { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
    const source = content instanceof Readable ? content : Readable.from([Buffer.from(content.buffer, content.byteOffset, content.byteLength)]);
    await streamToFileAtomic(this.tmpDir, path, source, desc, { onProgress: options.onProgress, signal: options.signal });
    return { descriptor: desc, skipped: false };
  }

  /**
   * push() of a blob that is already a complete file on this filesystem (the registry's finished
   * upload), without copying it: the file is hard-linked into the temp folder, verified there by
   * hashing, and renamed into place. The caller's file is left where it is and must never be
   * written again — it may now be the stored blob itself. Where a hard link is impossible (another
   * filesystem) the file's bytes are pushed as by push().
   */
  async pushFile(desc: Descriptor, file: string, options: PushOptions = {}): Promise<PushResult> {
    const path = this.blobPath(desc.digest);
    checkSize(desc);
    checkAborted(options.signal);
    if (isManifestMediaType(desc.mediaType) || (await this.blobSize(desc.digest)) === desc.size) {
      return this.push(desc, createReadStream(file), options);
    }
    await mkdir(dirname(path), { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
    const tmp = tempPath(this.tmpDir, 'blob');
    try {
      await link(file, tmp);
    } catch (err) {
      const code = errCode(err);
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EMLINK') throw ioError(err, `cannot link ${file} into ${this.name}`);
      return this.push(desc, createReadStream(file), options);
    }
    try {
      await pipelineAsync(
        createReadStream(tmp),
        new VerifyingStream(desc.digest, desc.size),
        new Writable({ write: (_chunk, _enc, cb) => cb() }),
        options.signal !== undefined ? { signal: options.signal } : {},
      );
      const fh = await open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      await fsyncDir(dirname(path));
      options.onProgress?.(desc.size);
      return { descriptor: desc, skipped: false };
    } catch (err) {
      if ((err as Error | undefined)?.name === 'AbortError') throw new AbortError(undefined, { cause: err });
      throw ioError(err, `storing ${desc.digest} failed`);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** push() of a manifest media type: skip the input when the stored copy is intact, else buffer it (≤ 4 MiB). */
  private async pushManifestContent(desc: Descriptor, content: Readable | Uint8Array, options: PushOptions): Promise<PushResult> {
    if (desc.size > MAX_MANIFEST_BYTES) {
      discard(content);
      throw new ProtocolError(`manifest ${desc.digest} is ${desc.size} bytes, above the ${MAX_MANIFEST_BYTES} limit`, { code: 'MANIFEST_TOO_LARGE' });
    }
    const stored = await this.readStoredManifest(desc).catch(() => undefined);
    if (stored !== undefined) {
      discard(content);
      // Indexing again is idempotent, and repairs a push a crash interrupted after the blob.
      const ociSubject = await this.indexManifest(desc, parseManifestFields(stored, desc.mediaType), undefined, options.signal);
      return { descriptor: desc, skipped: true, ...(ociSubject !== undefined ? { ociSubject } : {}) };
    }
    const bytes = await readManifestBody(content, MAX_MANIFEST_BYTES);
    const result = await this.pushManifest(desc, bytes, undefined, options);
    options.onProgress?.(bytes.length);
    return result;
  }

  // ---- Target -----------------------------------------------------------------------------

  async resolve(reference: string, options: OperationOptions = {}): Promise<Descriptor> {
    if (typeof reference === 'string' && reference.includes(':')) {
      parseDigest(reference);
      checkAborted(options.signal);
      const entry = (await this.readIndex()).findDigest(reference);
      if (entry !== undefined) return publicDescriptor(entry);
      return this.sniffManifest(reference);
    }
    validateTag(reference);
    checkAborted(options.signal);
    const entry = (await this.readIndex()).findTag(reference);
    if (entry === undefined) throw new NotFoundError(`tag ${reference} not found in ${this.name}`, { code: 'MANIFEST_UNKNOWN' });
    return publicDescriptor(entry);
  }

  /**
   * A manifest stored but not listed in index.json (written by another tool, e.g. a child of an
   * index): its media type is read from the manifest itself.
   */
  private async sniffManifest(digest: string): Promise<Descriptor> {
    const notFound = (): NotFoundError => new NotFoundError(`manifest ${digest} not found in ${this.name}`, { code: 'MANIFEST_UNKNOWN' });
    const size = await this.blobSize(digest);
    if (size === undefined || size > MAX_MANIFEST_BYTES) throw notFound();
    const bytes = await this.readStoredManifest({ mediaType: '', digest, size }).catch(() => undefined);
    if (bytes === undefined) throw notFound();
    let doc: { mediaType?: unknown; manifests?: unknown; config?: unknown; schemaVersion?: unknown };
    try {
      doc = JSON.parse(new TextDecoder().decode(bytes)) as typeof doc;
    } catch {
      throw notFound();
    }
    if (doc === null || typeof doc !== 'object' || doc.schemaVersion !== 2) throw notFound();
    const mediaType =
      typeof doc.mediaType === 'string'
        ? doc.mediaType
        : Array.isArray(doc.manifests)
          ? MediaType.ImageIndex
          : doc.config !== undefined
            ? MediaType.ImageManifest
            : '';
    if (!isManifestMediaType(mediaType)) throw notFound();
    return { mediaType, digest, size };
  }

  async tag(desc: Descriptor, tag: string, options: OperationOptions = {}): Promise<void> {
    validateTag(tag);
    parseDigest(desc.digest);
    checkAborted(options.signal);
    if (!isManifestMediaType(desc.mediaType)) {
      throw new ProtocolError(`cannot tag ${desc.digest}: ${desc.mediaType} is not a manifest media type`, { code: 'MANIFEST_INVALID' });
    }
    const size = await this.blobSize(desc.digest);
    if (size === undefined) throw new NotFoundError(`manifest ${desc.digest} not found in ${this.name}`, { code: 'MANIFEST_UNKNOWN' });
    if (size !== desc.size) throw new DigestMismatchError(`manifest ${desc.digest} is ${size} bytes, the descriptor says ${desc.size}`);
    await this.updateIndex((index) => ({ op: 'tag', tag, desc: publicDescriptor(index.findDigest(desc.digest) ?? desc) }), options.signal);
  }

  /** Removes `tag`; its manifest stays, reachable by digest. NotFoundError when there is no such tag. */
  async untag(tag: string, options: OperationOptions = {}): Promise<void> {
    validateTag(tag);
    checkAborted(options.signal);
    const removed = await this.updateIndex(() => ({ op: 'untag', tag }), options.signal);
    if (!removed) throw new NotFoundError(`tag ${tag} not found in ${this.name}`, { code: 'MANIFEST_UNKNOWN' });
  }

  // ---- Repository -------------------------------------------------------------------------

  async tags(visit: PageVisitor<string>, options: TagListOptions = {}): Promise<void> {
    const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new UsageError(`page size must be a positive integer, got ${pageSize}`);
    checkAborted(options.signal);
    const sorted = (await this.readIndex()).tags();
    // `last` need not be a tag: listing starts after it in lexical order (a tag prefix works).
    const start = options.last === undefined ? 0 : firstAfter(sorted, options.last);
    for (let i = start; i < sorted.length; i += pageSize) {
      checkAborted(options.signal);
      if ((await visit(sorted.slice(i, i + pageSize))) === false) return;
    }
  }

  async referrers(subject: Descriptor, visit: PageVisitor<Descriptor>, options: ReferrersOptions = {}): Promise<void> {
    parseDigest(subject.digest);
    checkAborted(options.signal);
    const found: Descriptor[] = [];
    for (const d of await this.referrersIndex.list(subject.digest)) {
      if (options.artifactType !== undefined && d.artifactType !== options.artifactType) continue;
      // A referrer deleted by another tool leaves its file behind; only present manifests count.
      if ((await this.blobSize(d.digest)) === undefined) continue;
      found.push(d);
    }
    for (let i = 0; i < found.length; i += REFERRERS_PAGE_SIZE) {
      checkAborted(options.signal);
      if ((await visit(found.slice(i, i + REFERRERS_PAGE_SIZE))) === false) return;
    }
  }

  async referrersApiSupported(_options?: OperationOptions): Promise<boolean> {
    return true;
  }

  async delete(desc: Descriptor, options: OperationOptions = {}): Promise<void> {
    const path = this.blobPath(desc.digest);
    checkAborted(options.signal);
    const recorded = (await this.readIndex()).findDigest(desc.digest) !== undefined;
    let removed = false;
    if (recorded || isManifestMediaType(desc.mediaType)) {
      // The subject is read before the bytes go, so the referrers file can go with them.
      const size = await this.blobSize(desc.digest);
      let fields: ManifestFields | undefined;
      if (size !== undefined && size <= MAX_MANIFEST_BYTES) {
        const bytes = await this.readStoredManifest({ mediaType: desc.mediaType, digest: desc.digest, size }).catch(() => undefined);
        try {
          fields = bytes !== undefined ? parseManifestFields(bytes, desc.mediaType) : undefined;
        } catch {
          fields = undefined;
        }
      }
      removed = await this.updateIndex(() => ({ op: 'remove', digest: desc.digest }), options.signal);
      if (fields?.subject !== undefined) await this.referrersIndex.remove(fields.subject.digest, desc.digest);
    }
    try {
      await rm(path);
      removed = true;
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw ioError(err, `cannot delete ${desc.digest}`);
    }
    if (!removed) throw new NotFoundError(`${desc.digest} not found in ${this.name}`);
  }

  /** The stored bytes of a manifest, verified against `desc` (digest, and size when known). */
  private async readStoredManifest(desc: Descriptor): Promise<Uint8Array> {
    let fh;
    try {
      fh = await open(this.blobPath(desc.digest), 'r');
    } catch (err) {
      if (errCode(err) === 'ENOENT') throw new NotFoundError(`manifest ${desc.digest} not found in ${this.name}`, { code: 'MANIFEST_UNKNOWN' });
      throw ioError(err, `cannot open ${desc.digest}`);
    }
    let bytes: Buffer;
    try {
      const size = (await fh.stat()).size;
      if (size > MAX_MANIFEST_BYTES) {
        throw new ProtocolError(`manifest ${desc.digest} is ${size} bytes, above the ${MAX_MANIFEST_BYTES} limit`, { code: 'MANIFEST_TOO_LARGE' });
      }
      bytes = await fh.readFile();
    } finally {
      await fh.close();
    }
    if (bytes.length !== desc.size) {
      throw new DigestMismatchError(`stored manifest ${desc.digest} has ${bytes.length} bytes, its descriptor says ${desc.size}`);
    }
    const { algorithm } = parseDigest(desc.digest);
    const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
    if (actual !== desc.digest) throw new DigestMismatchError(`stored manifest ${desc.digest} is corrupt: its bytes hash to ${actual}`);
    return bytes;
  }

  async fetchManifest(reference: string, options: OperationOptions = {}): Promise<FetchedManifest> {
    const descriptor = await this.resolve(reference, options);
    if (descriptor.size > MAX_MANIFEST_BYTES) {
      throw new ProtocolError(`manifest ${descriptor.digest} is ${descriptor.size} bytes, above the ${MAX_MANIFEST_BYTES} limit`, {
        code: 'MANIFEST_TOO_LARGE',
      });
    }
    const bytes = await this.readStoredManifest(descriptor);
    return { descriptor, bytes };
  }

  /** The layout store indexes every manifest's subject itself: no tag schema to maintain. */
  async pushReferrer(desc: Descriptor, bytes: Uint8Array, _subject: Descriptor, tag?: string, options: ReferrerPushOptions = {}): Promise<ReferrerPushResult> {
    return { ...(await this.pushManifest(desc, bytes, tag, options)), indexedBy: 'registry' };
  }

  async pushManifest(desc: Descriptor, bytes: Uint8Array, tag?: string, options: OperationOptions = {}): Promise<PushResult> {
    const path = this.blobPath(desc.digest);
    if (tag !== undefined) validateTag(tag);
    checkSize(desc);
    checkAborted(options.signal);
    if (!isManifestMediaType(desc.mediaType)) {
      throw new ProtocolError(`${desc.mediaType} is not a manifest media type`, { code: 'MANIFEST_INVALID' });
    }
    if (bytes.length > MAX_MANIFEST_BYTES) {
      throw new ProtocolError(`manifest is ${bytes.length} bytes, above the ${MAX_MANIFEST_BYTES} limit`, { code: 'MANIFEST_TOO_LARGE' });
    }
    const { algorithm } = parseDigest(desc.digest);
    const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
    if (bytes.length !== desc.size || actual !== desc.digest) {
      throw new DigestMismatchError(`manifest bytes (${bytes.length} bytes, ${actual}) do not match the descriptor (${desc.size} bytes, ${desc.digest})`);
    }
    const fields = parseManifestFields(bytes, desc.mediaType);

    // A stored copy is read (and verified) only when a file of that size is there.
    const skipped = (await this.blobSize(desc.digest)) === desc.size && (await this.readStoredManifest(desc).catch(() => undefined)) !== undefined;
    if (!skipped) {
      await this.ensureDir(dirname(path));
      await this.ensureDir(this.tmpDir);
      await writeFileAtomic(this.tmpDir, path, bytes, 'replace');
    }
    const ociSubject = await this.indexManifest(desc, fields, tag, options.signal);
    return { descriptor: desc, skipped, ...(ociSubject !== undefined ? { ociSubject } : {}) };
  }

  /** Records a stored manifest: its referrers file (when it has a subject), then index.json. */
  private async indexManifest(desc: Descriptor, fields: ManifestFields, tag: string | undefined, signal?: AbortSignal): Promise<string | undefined> {
    const current = await this.readIndex();
    const settled = tag !== undefined ? current.findTag(tag)?.digest === desc.digest : current.findDigest(desc.digest) !== undefined;
    if (fields.subject !== undefined) await this.referrersIndex.add(fields.subject.digest, referrerDescriptor(desc, fields));
    const entry = referrerDescriptor(desc, { artifactType: fields.declaredArtifactType });
    // Re-pushing what index.json already says needs no lock.
    if (!settled) await this.updateIndex(() => (tag !== undefined ? { op: 'tag', tag, desc: entry } : { op: 'record', desc: entry }), signal);
    return fields.subject?.digest;
  }

  // ---- maintenance ------------------------------------------------------------------------

  /**
   * Records the subjects of the manifests index.json lists, for content another tool (skopeo,
   * oras) wrote into the folder without our referrers index. Reads each listed manifest once;
   * returns how many referrers it recorded. Unreadable or invalid manifests are passed over.
   */
  async reindexReferrers(options: OperationOptions = {}): Promise<number> {
    const seen = new Set<string>();
    let recorded = 0;
    for (const entry of (await this.readIndex()).entries()) {
      checkAborted(options.signal);
      if (seen.has(entry.digest) || !isManifestMediaType(entry.mediaType) || entry.size > MAX_MANIFEST_BYTES) continue;
      seen.add(entry.digest);
      let fields: ManifestFields;
      try {
        fields = parseManifestFields(await this.readStoredManifest(entry), entry.mediaType);
      } catch {
        continue;
      }
      if (fields.subject === undefined) continue;
      await this.referrersIndex.add(fields.subject.digest, referrerDescriptor(entry, fields));
      recorded += 1;
    }
    return recorded;
  }

  /**
   * Removes temp files older than `olderThanMs` (default one day) left by writers that crashed.
   * A live writer's temp file is younger: its mtime moves with every chunk written.
   */
  async sweepTemp(olderThanMs = DEFAULT_SWEEP_AGE_MS): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.tmpDir);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return 0;
      throw ioError(err, `cannot list ${this.tmpDir}`);
    }
    let removed = 0;
    const cutoff = Date.now() - olderThanMs;
    for (const name of names) {
      const p = join(this.tmpDir, name);
      const st = await stat(p).catch(() => undefined);
      if (st?.isFile() && st.mtimeMs < cutoff) {
        await rm(p, { force: true });
        removed += 1;
      }
    }
    return removed;
  }
  /**
   * Removes the blobs no manifest recorded in index.json refers to (as config, layer or index
   * child) and that is not itself such a manifest — what deleting messages leaves behind. Blobs
   * younger than `olderThanMs` (default one hour) stay: a writer uploads a manifest's blobs before
   * the manifest. Returns the digests removed.
   */
  async removeUnreferencedBlobs(options: OperationOptions & { olderThanMs?: number } = {}): Promise<string[]> {
    const olderThanMs = options.olderThanMs ?? 3_600_000;
    const index = await this.readIndex();
    const keep = new Set<string>();
    for (const entry of index.entries()) {
      checkAborted(options.signal);
      keep.add(entry.digest);
      const size = await this.blobSize(entry.digest);
      if (size === undefined || size > MAX_MANIFEST_BYTES) continue;
      let parsed: { config?: { digest?: unknown }; layers?: { digest?: unknown }[]; manifests?: { digest?: unknown }[] };
      try {
        parsed = JSON.parse(new TextDecoder().decode(await this.readStoredManifest({ mediaType: entry.mediaType, digest: entry.digest, size })));
      } catch {
        continue;
      }
      const refs = [parsed?.config, ...(Array.isArray(parsed?.layers) ? parsed.layers : []), ...(Array.isArray(parsed?.manifests) ? parsed.manifests : [])];
      for (const r of refs) if (typeof r?.digest === 'string') keep.add(r.digest);
    }
    const removed: string[] = [];
    const cutoff = Date.now() - olderThanMs;
    const root = join(this.root, 'blobs');
    for (const algorithm of await readdir(root).catch(() => [] as string[])) {
      for (const hex of await readdir(join(root, algorithm)).catch(() => [] as string[])) {
        checkAborted(options.signal);
        const digest = `${algorithm}:${hex}`;
        if (keep.has(digest)) continue;
        const p = join(root, algorithm, hex);
        const st = await stat(p).catch(() => undefined);
        if (st === undefined || !st.isFile() || st.mtimeMs >= cutoff) continue;
        await rm(p, { force: true });
        removed.push(digest);
      }
    }
    return removed;
  }
}
