/**
 * Audit receipts on disk: one JSON file per operation (send, reply, ack, copy) in a folder the
 * caller names, saying what was pushed, where, when, by whom and with which client.
 *
 * The folder is checked before the operation starts (so a bad one fails before anything is
 * pushed): it is created (mode 0700) when missing, and refused when it is a symbolic link or not
 * a folder. A file is written whole or not at all: into a temporary file opened with O_EXCL and
 * O_NOFOLLOW (never through a link planted under its name), flushed to disk, then hard-linked onto
 * its final name, which fails rather than replacing anything already there. Its name is built only
 * from characters checked here (time, operation, digest hex, random hex), never from a tag or a
 * repository name.
 */
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { link, lstat, mkdir, open, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { SignerIdentity } from '../trust/signer-identity.ts';
import { CommsError, UsageError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { report, type OnStep } from './steps.ts';

/** The `schema` of every audit receipt this version writes. */
export const AUDIT_SCHEMA = 'comms.audit-receipt.v1';

export type AuditOperation = 'send' | 'reply' | 'ack' | 'copy';

export interface AuditReceipt {
  schema: typeof AUDIT_SCHEMA;
  operation: AuditOperation;
  /** `host/name` or `oci:<path>`. */
  repository: string;
  /** The manifest pushed (for copy: the root, absent with --all). */
  digest?: string;
  /** `<repository>@<digest>`: where to fetch exactly this. */
  reference?: string;
  /** The tag pointed at it (inbox, receipt, or copy's destination tag). */
  tag?: string;
  mediaType?: string;
  artifactType?: string;
  /** For reply and ack: the message answered or acknowledged. */
  subject?: string;
  /** For copy: where it came from. */
  source?: string;
  sizes: {
    /** Bytes of the manifest pushed. */
    manifest?: number;
    /** Payload bytes before compression (send, reply). */
    payload?: number;
    /** Layers (chunks) in the message, and how many the registry already had. */
    chunks?: number;
    chunksSkipped?: number;
    /** Copy: manifests written, blob bytes sent. */
    manifests?: number;
    blobBytes?: number;
  };
  /** RFC 3339 UTC times the operation started and finished, and the difference. */
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** Who signed what was pushed; null when it was not signed here. */
  signer: (SignerIdentity & { bundleDigest?: string }) | null;
  /** Other artifacts the operation pushed or copied (digests), e.g. a copy's referrers. */
  related?: string[];
  client: { name: 'comms'; version: string; os: NodeJS.Platform; osRelease: string; arch: string; node: string };
}

export interface AuditOptions {
  /** Folder to write one audit receipt per operation into. */
  auditDir?: string;
}

/** The client part of every receipt. */
export function clientInfo(): AuditReceipt['client'] {
  return { name: 'comms', version: VERSION, os: process.platform, osRelease: os.release(), arch: process.arch, node: process.version };
}

/**
 * Checks (and creates, mode 0700) the audit folder before an operation pushes anything: a symbolic
 * link, something that is not a folder, or a path with a NUL or an empty name is refused (exit 4).
 */
export async function prepareAuditDir(dir: string): Promise<string> {
  if (typeof dir !== 'string' || dir === '' || dir.includes('\0')) {
    throw new UsageError(`--receipt-dir must name a folder, got ${JSON.stringify(dir)}`, { code: 'RECEIPT_DIR_INVALID' });
  }
  const abs = path.resolve(dir);
  let st: Stats | undefined;
  try {
    st = await lstat(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw receiptDirError(abs, err);
  }
  if (st === undefined) {
    try {
      await mkdir(abs, { recursive: true, mode: 0o700 });
      st = await lstat(abs);
    } catch (err) {
      throw receiptDirError(abs, err);
    }
  }
  if (st.isSymbolicLink()) throw new UsageError(`--receipt-dir ${abs} is a symbolic link; name the folder itself`, { code: 'RECEIPT_DIR_INVALID' });
  if (!st.isDirectory()) throw new UsageError(`--receipt-dir ${abs} is not a folder`, { code: 'RECEIPT_DIR_INVALID' });
  return abs;
}

function receiptDirError(dir: string, cause: unknown): CommsError {
  return new UsageError(`--receipt-dir ${dir}: cannot use it (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, { code: 'RECEIPT_DIR_INVALID', cause });
}

const NAME_PART = /^[a-z0-9]+$/;

/** `<UTC yyyymmddThhmmss.mmmZ>-<operation>-<hex12 of the digest>-<rand8>.json`, every part checked. */
export function auditFileName(operation: AuditOperation, digest: string | undefined, at: Date, rand = randomBytes(4).toString('hex')): string {
  const time = at.toISOString().replace(/[-:]/g, '').replace('.', '_');
  const hex = digest === undefined ? 'all' : (digest.split(':')[1] ?? '').slice(0, 12);
  for (const part of [operation, hex, rand]) {
    if (!NAME_PART.test(part))
      throw new UsageError(`an audit receipt name part ${JSON.stringify(part)} is not lowercase letters and digits`, { code: 'RECEIPT_DIR_INVALID' });
  }
  if (!/^\d{8}T\d{6}_\d{3}Z$/.test(time)) throw new UsageError(`invalid audit receipt time ${time}`, { code: 'RECEIPT_DIR_INVALID' });
  return `${time}-${operation}-${hex}-${rand}.json`;
}

/**
 * Writes `receipt` into `dir` atomically and returns the file's path. The operation itself has
 * already succeeded when this runs: a failure here says so (RECEIPT_WRITE_FAILED, exit 1).
 */
export async function writeAuditReceipt(dir: string, receipt: AuditReceipt, onStep?: OnStep): Promise<string> {
  const folder = await prepareAuditDir(dir);
  const name = auditFileName(receipt.operation, receipt.digest, new Date(receipt.finishedAt));
  const final = path.join(folder, name);
  const temp = path.join(folder, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  report(onStep, 'write-receipt', 'started', { path: final });
  try {
    const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(receipt, null, 2)}\n`, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    // link() never replaces an existing name (EEXIST) and does not follow a link at `final`.
    await link(temp, final);
  } catch (cause) {
    report(onStep, 'write-receipt', 'failed', { path: final });
    throw new CommsError(
      `${receipt.operation} succeeded${receipt.digest ? ` (${receipt.digest})` : ''}, but its audit receipt could not be written to ${folder} (${(cause as NodeJS.ErrnoException).code ?? 'error'})`,
      { code: 'RECEIPT_WRITE_FAILED', cause },
    );
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  await syncDir(folder);
  report(onStep, 'write-receipt', 'done', { path: final });
  return final;
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Some filesystems cannot fsync a folder; the file itself is already on disk.
  }
}
