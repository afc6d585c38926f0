/**
 * send: a file, a stream or a literal text → chunk layers (streamed, spooled to temp files so
 * memory does not grow with the file), uploaded with bounded parallelism (a layer already in the
 * registry is skipped, so a re-run after an interruption sends only what is missing), then the
 * message manifest under its inbox tag, then — when a signer is given — the signature bundle.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Descriptor } from '../oci/descriptor.ts';
import type { Repository } from '../oci/target.ts';
import { ArtifactType, DEFAULT_CHUNK_BYTES, DEFAULT_TTL_SECONDS, ENCRYPTION_AGE, ExtensionAnnotation, MAX_TOTAL_BYTES } from '../protocol/constants.ts';
import { effectiveChunkBytes } from '../protocol/sizes.ts';
import { spoolFileChunk, writeChunks, type SpooledChunk } from '../protocol/chunk-writer.ts';
import { totalChunks } from '../protocol/sizes.ts';
import { buildManifest, messageAnnotations } from '../protocol/manifest.ts';
import { inboxTag, replyTag } from '../protocol/tags.ts';
import { sanitizeFilename } from '../protocol/filename.ts';
import { isUuid } from '../protocol/manifest.ts';
import { forEachLimit, twoStageLimit } from '../util/pool.ts';
import { isPidAlive } from '../util/process.ts';
import { UsageError } from '../errors.ts';
import type { MessageSigner } from '../trust/signer.ts';
import type { AgeRecipients } from '../trust/age.ts';
import { ageRecipientsFor } from '../trust/trust-file.ts';
import type { TrustFile } from '../trust/trust-file.ts';
import type { PushedBundle } from './bundle.ts';
import { pushEmptyConfig } from './empty-config.ts';
import { pushArtifact } from './push-artifact.ts';
import { resolveSender } from './sender.ts';
import { AUDIT_SCHEMA, clientInfo, prepareAuditDir, writeAuditReceipt, type AuditReceipt } from './audit.ts';
import { runStep, type OnStep } from './steps.ts';

export type Compression = 'gzip' | 'zstd';

/** What to send: a file path, a stream (stdin), or a literal text sent as a small file. */
export type SendInput =
  | { path: string; filename?: string }
  | { stream: Readable; filename: string }
  | { text: string; filename?: string }
  /** A JSON value, sent as `message.json` with content type `application/json`. */
  | { json: unknown; filename?: string };

export const CONTENT_TYPE_TEXT = 'text/plain; charset=utf-8';
export const CONTENT_TYPE_JSON = 'application/json';

export interface SendProgress {
  phase: 'upload';
  /** Payload bytes read into the compressors so far, reported as they are read (not per chunk). */
  bytesRead: number;
  /** Compressed bytes uploaded so far (skipped layers count as uploaded). */
  bytesUploaded: number;
  /**
   * Payload bytes whose compressed form is in the registry: each chunk counts its payload in
   * proportion to its upload. Reaches totalBytes when every chunk is uploaded; the measure of done.
   */
  payloadBytesUploaded: number;
  /** Total payload size when known (files and texts), else undefined (streams). */
  totalBytes: number | undefined;
  chunksDone: number;
}

export interface SendOptions {
  repository: Repository;
  recipient: string;
  input: SendInput;
  /**
   * Who sends (`dockercomms.sender`). Default: the identity `trust` binds the signer to, else
   * COMMS_SENDER, else the keyless certificate identity; with none of these, send refuses.
   */
  sender?: string;
  /** The trust file: the identity the signer is bound to (the default sender), the age recipients (`encrypt`). */
  trust?: TrustFile;
  compression?: Compression;
  /** Compression level (gzip 0–9, zstd 1–19). Default gzip 6 (0 when encrypting: ciphertext does not compress), zstd 3. */
  level?: number;
  chunkBytes?: number;
  parallel?: number;
  ttlSeconds?: number;
  /** Session UUID (its first 8 hex characters go into the inbox tag). */
  sessionId?: string;
  messageId?: string;
  /** For replies: the message this one answers. */
  subject?: Descriptor;
  /**
   * The payload's media type, carried as `dockercomms.content.type`. Default: text/plain for a
   * text, application/json for a JSON value, none for files and streams.
   */
  contentType?: string;
  /** Extra (extension) annotations on the message manifest. */
  annotations?: Record<string, string>;
  /** Signs the message. Required unless `unsigned: true`. */
  signer?: MessageSigner;
  /**
   * age recipients (`age1…`): the payload is encrypted to them before it is chunked, the filename
   * annotation is made opaque and the real name travels encrypted (SPEC.md, Encryption).
   */
  encryptTo?: AgeRecipients;
  /**
   * Encrypt to the age recipients `trust` binds to `recipient` (besides any `encryptTo`); refused
   * (UsageError `NO_AGE_RECIPIENT`) when it binds none.
   */
  encrypt?: boolean;
  /** Push without a signature, explicitly (the CLI's --no-sign): receivers that verify will refuse it. */
  unsigned?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: SendProgress) => void;
  /** Called as each stage starts and ends: compress, upload, push-manifest, index, sign, push-bundle, tag, write-receipt. */
  onStep?: OnStep;
  /** Write an audit receipt (a JSON file) for this send into this folder (see audit.ts). */
  auditDir?: string;
  /** Folder for spooled layers (default: the OS temp folder). */
  spoolDir?: string;
  now?: () => Date;
}

export interface SendResult {
  digest: string;
  tag: string;
  repository: string;
  messageId: string;
  bytes: number;
  chunks: number;
  /** Layers that were already in the registry and were not uploaded again. */
  chunksSkipped: number;
  compression: Compression;
  descriptor: Descriptor;
  bundle?: PushedBundle;
  /** True when the payload was encrypted (`encryptTo`); `bytes` then counts the encrypted payload. */
  encrypted: boolean;
}

/**
 * A signer, or the explicit `unsigned: true`; never an unsigned artifact by omission. `what`
 * names the call in the message (send, ack, reply).
 */
export function checkSigning(options: { signer?: MessageSigner | undefined; unsigned?: boolean | undefined }, what: string): void {
  if (options.signer === undefined && options.unsigned !== true) {
    throw new UsageError(
      `${what}: no signer; pass options.signer (loadKeySigner, keylessSignerFromEnv), or options.unsigned: true to push it unsigned on purpose`,
      { code: 'NO_SIGNER' },
    );
  }
  if (options.signer !== undefined && options.unsigned === true) {
    throw new UsageError(`${what}: options.signer and options.unsigned: true contradict each other`, { code: 'NO_SIGNER' });
  }
}

/**
 * Checks everything about the options that needs no I/O, so a caller (the CLI) can refuse bad
 * flags before it opens — and for oci:, creates — the mailbox. send() calls it too.
 */
export function checkSendOptions(
  options: { recipient?: string | undefined } & Pick<
    SendOptions,
    'compression' | 'level' | 'chunkBytes' | 'parallel' | 'ttlSeconds' | 'sessionId' | 'messageId'
  >,
): void {
  const compression = options.compression ?? 'gzip';
  checkPositiveInt('chunkBytes', options.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  checkPositiveInt('parallel', options.parallel ?? 4);
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_TTL_SECONDS;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 0)
    throw new UsageError(`ttlSeconds must be a non-negative integer, got ${ttlSeconds}`, { option: 'ttlSeconds' });
  if (compression !== 'gzip' && compression !== 'zstd')
    throw new UsageError(`compression must be gzip or zstd, got ${String(compression)}`, { option: 'compression' });
  if (options.level !== undefined) {
    const [lo, hi] = compression === 'gzip' ? [0, 9] : [1, 19];
    if (!Number.isInteger(options.level) || options.level < lo || options.level > hi)
      throw new UsageError(`level for ${compression} must be ${lo}..${hi}, got ${options.level}`, { option: 'level' });
  }
  if (options.recipient === '') throw new UsageError('the recipient must not be empty');
  // The tag carries the first 8 hex characters of each id (wire-format.md), so they must be UUIDs.
  if (options.sessionId !== undefined && !isUuid(options.sessionId))
    throw new UsageError(`sessionId must be a UUID, got ${JSON.stringify(options.sessionId)}`, { option: 'sessionId' });
  if (options.messageId !== undefined && !isUuid(options.messageId))
    throw new UsageError(`the message id must be a UUID, got ${JSON.stringify(options.messageId)}`);
}

export async function send(options: SendOptions): Promise<SendResult> {
  const startedAt = new Date();
  const result = await sendMessage(options);
  if (options.auditDir !== undefined) {
    await writeAuditReceipt(options.auditDir, sendAuditReceipt('send', options.repository.name, result, startedAt), options.onStep);
  }
  return result;
}

/** The audit receipt of a send (or a reply, which is a send with a subject). */
export function sendAuditReceipt(operation: 'send' | 'reply', repository: string, result: SendResult, startedAt: Date, subject?: string): AuditReceipt {
  const finishedAt = new Date();
  const receipt: AuditReceipt = {
    schema: AUDIT_SCHEMA,
    operation,
    repository,
    digest: result.digest,
    reference: `${repository}@${result.digest}`,
    tag: result.tag,
    mediaType: result.descriptor.mediaType,
    artifactType: ArtifactType.Message,
    sizes: { manifest: result.descriptor.size, payload: result.bytes, chunks: result.chunks, chunksSkipped: result.chunksSkipped },
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
    signer: result.bundle === undefined ? null : { ...result.bundle.signedBy, bundleDigest: result.bundle.digest },
    client: clientInfo(),
  };
  if (subject !== undefined) receipt.subject = subject;
  return receipt;
}

async function sendMessage(options: SendOptions): Promise<SendResult> {
  checkSendOptions(options);
  // A bad audit folder is refused before anything is pushed.
  if (options.auditDir !== undefined) await prepareAuditDir(options.auditDir);
  const onStep = options.onStep;
  const repo = options.repository;
  const compression = options.compression ?? 'gzip';
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const parallel = options.parallel ?? 4;
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_TTL_SECONDS;
  const now = options.now ?? (() => new Date());
  checkSigning(options, 'send');
  const sender = await resolveSender({ sender: options.sender, signer: options.signer, trust: options.trust, signal: options.signal });

  const given = options.encryptTo !== undefined && options.encryptTo.length > 0 ? await parseRecipients(options.encryptTo) : [];
  const recipients = [...new Set([...given, ...trustedRecipients(options)])];
  const messageId = options.messageId ?? randomUUID();
  const opened = await openInput(options.input);
  const contentType = options.contentType ?? opened.contentType;
  if (contentType !== undefined && !/^[\x21-\x7e][\x20-\x7e]{0,254}$/.test(contentType)) {
    throw new UsageError(`contentType must be a media type (printable ASCII, at most 255 characters), got ${JSON.stringify(contentType)}`, {
      option: 'contentType',
    });
  }
  const encrypted = recipients.length > 0;
  const { source, filename, totalBytes, extra } = encrypted ? await encryptInput(opened, recipients, messageId) : { ...opened, extra: {} };
  if (totalBytes !== undefined && totalBytes > MAX_TOTAL_BYTES) {
    throw new UsageError(`the input has ${totalBytes} bytes, more than the protocol's limit of ${MAX_TOTAL_BYTES}`);
  }
  const sessionId = options.sessionId ?? randomUUID();
  const createdAt = now();
  const spoolParent = options.spoolDir ?? os.tmpdir();
  await sweepDeadSpools(spoolParent);
  const spoolRoot = await mkdtemp(path.join(spoolParent, `comms-send-${process.pid}-`));
  const progress: SendProgress = { phase: 'upload', bytesRead: 0, bytesUploaded: 0, payloadBytesUploaded: 0, totalBytes, chunksDone: 0 };
  const onRead = (n: number) => {
    progress.bytesRead += n;
    options.onProgress?.({ ...progress });
  };
  // The shared empty config is asked for (and stored when absent) while the layers upload: the
  // first request that needs it is the manifest PUT at the end.
  const configReady = pushEmptyConfig(repo, { signal: options.signal });
  // Awaited before the manifest push; when the upload fails first, its error is the one reported.
  configReady.catch(() => {});
  const layers: Descriptor[] = [];
  let chunksSkipped = 0;
  let rawTotal = 0;
  // Uploads one spooled layer (skipped when the registry has it) and removes its spool file.
  const upload = async (chunk: SpooledChunk): Promise<void> => {
    try {
      rawTotal += chunk.rawBytes;
      let sentBefore = 0;
      let payloadCredited = 0;
      const result = await runStep(onStep, 'upload', { chunk: chunk.index, digest: chunk.descriptor.digest }, () =>
        repo.push(chunk.descriptor, createReadStream(chunk.path), {
          signal: options.signal,
          // A small layer (a short message) is sent without asking first: cheaper than the question.
          skipExistsCheck: true,
          onProgress: (n) => {
            progress.bytesUploaded += n - sentBefore;
            sentBefore = n;
            const payload = Math.min(chunk.rawBytes, Math.floor((n / Math.max(chunk.descriptor.size, 1)) * chunk.rawBytes));
            progress.payloadBytesUploaded += payload - payloadCredited;
            payloadCredited = payload;
            options.onProgress?.({ ...progress });
          },
        }),
      );
      if (result.skipped) {
        chunksSkipped++;
        progress.bytesUploaded += chunk.descriptor.size - sentBefore;
      }
      progress.payloadBytesUploaded += chunk.rawBytes - payloadCredited;
      layers[chunk.index] = chunk.descriptor;
      progress.chunksDone++;
      options.onProgress?.({ ...progress });
    } finally {
      await chunk.dispose();
    }
  };
  try {
    // Ciphertext does not compress: gzip stores it (level 0) unless a level is asked for.
    const level = options.level ?? (encrypted && compression === 'gzip' ? 0 : undefined);
    const chunkOptions = { chunkBytes, compression, level, spoolDir: spoolRoot, signal: options.signal, onRead };
    if (source.file !== undefined) {
      // A file: chunks are compressed from their byte ranges of the file (zlib runs on libuv's
      // thread pool) while up to --parallel finished ones upload: the next chunks compress during
      // the uploads instead of all workers compressing, then all uploading. zstd gets one
      // compressor per core: more only add memory (a zstd context and buffers each, over 200 MiB
      // at 4 on 2 cores). gzip's contexts are small and its compression slow: --parallel of them
      // keep the cores busy (bench/RESULTS.md).
      const { file, size } = source;
      const count = totalChunks(size, chunkBytes);
      await twoStageLimit(
        Array.from({ length: count }, (_, i) => i),
        {
          first: (i) => runStep(onStep, 'compress', { chunk: i }, () => spoolFileChunk(file, i, { ...chunkOptions, totalBytes: size })),
          firstLimit: compression === 'gzip' ? parallel : Math.min(parallel, os.availableParallelism()),
          second: upload,
          secondLimit: parallel,
          discard: (chunk) => chunk.dispose(),
          signal: options.signal,
        },
      );
      const after = await stat(file);
      if (after.size !== size) {
        throw new UsageError(`${file} changed while it was being sent: it had ${size} bytes, now ${after.size}`, { code: 'INPUT_CHANGED' });
      }
    } else {
      // A stream (stdin) or a text: cut in order; a known size still makes it one pass, and the
      // writer refuses more than MAX_CHUNKS chunks and a stream that ends early or runs long.
      const chunks = writeChunks(source.stream, { ...chunkOptions, totalBytes });
      await runStep(onStep, 'compress', undefined, () => forEachLimit(chunks, parallel, upload, options.signal));
    }
  } finally {
    await rm(spoolRoot, { recursive: true, force: true });
  }
  if (totalBytes !== undefined && rawTotal !== totalBytes) {
    throw new UsageError(`the input changed while it was being sent: expected ${totalBytes} bytes, read ${rawTotal}`);
  }

  const annotations = messageAnnotations({
    sender,
    recipient: options.recipient,
    createdAt,
    ttlSeconds,
    filename,
    totalBytes: rawTotal,
    chunkBytes: effectiveChunkBytes(rawTotal, chunkBytes),
    chunkCount: layers.length,
    compression,
    messageId,
    extra: { ...options.annotations, ...(contentType === undefined ? {} : { [ExtensionAnnotation.ContentType]: contentType }), ...extra },
  });
  const built = buildManifest({ artifactType: ArtifactType.Message, layers, subject: options.subject, annotations });
  const tag = inboxTag({ recipient: options.recipient, date: createdAt, sessionId, messageId });
  // By digest, then its signature, and only then the inbox tag (SPEC §8): a receiver (a watcher
  // above all) never sees a signed message before its bundle exists.
  await configReady;
  const { bundle } = await pushArtifact(repo, built, {
    subject: options.subject,
    tag,
    // A reply is also tagged under the message it answers (SPEC §5, §9.1).
    replyTag: options.subject === undefined ? undefined : replyTag(options.subject.digest, createdAt),
    signer: options.signer,
    now: createdAt,
    signal: options.signal,
    onStep,
    configPresent: true,
  });
  const result: SendResult = {
    digest: built.descriptor.digest,
    tag,
    repository: repo.name,
    messageId,
    bytes: rawTotal,
    chunks: layers.length,
    chunksSkipped,
    compression,
    descriptor: built.descriptor,
    encrypted,
  };
  if (bundle !== undefined) result.bundle = bundle;
  return result;
}

/**
 * Spool folders are named `comms-send-<pid>-<random>`; a send killed mid-upload cannot remove its
 * own, so each send removes those whose process is gone.
 */
async function sweepDeadSpools(parent: string): Promise<void> {
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    const m = /^comms-send-(\d+)-[A-Za-z0-9]{6}$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !isPidAlive(Number(m[1]))) {
      await rm(path.join(parent, name), { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

interface OpenedInput {
  source: { file: string; size: number; stream?: undefined } | { file?: undefined; stream: Readable | AsyncIterable<Buffer> };
  filename: string;
  totalBytes: number | undefined;
  contentType?: string;
}

async function openInput(input: SendInput): Promise<OpenedInput> {
  if ('text' in input) {
    const bytes = Buffer.from(input.text, 'utf8');
    return {
      source: { stream: Readable.from([bytes]) },
      filename: sanitizeFilename(input.filename ?? 'message.txt'),
      totalBytes: bytes.length,
      contentType: CONTENT_TYPE_TEXT,
    };
  }
  if ('json' in input) {
    let text: string | undefined;
    try {
      text = JSON.stringify(input.json);
    } catch (cause) {
      throw new UsageError(`the json value cannot be sent: ${(cause as Error).message}`, { cause, option: 'json' });
    }
    if (text === undefined) throw new UsageError('the json value cannot be sent: it has no JSON form (undefined, a function or a symbol)', { option: 'json' });
    const bytes = Buffer.from(text, 'utf8');
    return {
      source: { stream: Readable.from([bytes]) },
      filename: sanitizeFilename(input.filename ?? 'message.json'),
      totalBytes: bytes.length,
      contentType: CONTENT_TYPE_JSON,
    };
  }
  if ('path' in input) {
    const st = await stat(input.path).catch((cause: unknown) => {
      throw new UsageError(`cannot read ${input.path}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
    });
    if (!st.isFile()) throw new UsageError(`${input.path} is not a regular file`);
    return { source: { file: input.path, size: st.size }, filename: sanitizeFilename(input.filename ?? path.basename(input.path)), totalBytes: st.size };
  }
  return { source: { stream: input.stream }, filename: sanitizeFilename(input.filename), totalBytes: undefined };
}

/** `encryptTo`, each checked; the age module is loaded only for a message that is encrypted. */
async function parseRecipients(values: AgeRecipients): Promise<string[]> {
  const { parseRecipient } = await import('../trust/age.ts');
  return values.map((r) => parseRecipient(r));
}

/** With `encrypt`: the recipient's age recipients from the trust file, which must name some. */
export function trustedRecipients(options: Pick<SendOptions, 'encrypt' | 'trust' | 'recipient'>): string[] {
  if (options.encrypt !== true) return [];
  const found = options.trust === undefined ? [] : ageRecipientsFor(options.trust, options.recipient);
  if (found.length === 0) {
    const where = options.trust?.path ?? 'no trust file';
    throw new UsageError(
      `cannot encrypt to ${JSON.stringify(options.recipient)}: ${where} binds no age recipient to it; add one (comms trust add ${options.recipient} age1…) or give encryptTo`,
      { code: 'NO_AGE_RECIPIENT' },
    );
  }
  return found;
}

/**
 * The input as its age encryption: header and nonce, then the STREAM of the plaintext (read in
 * order: one pass, memory bounded by the stream buffers). Its name becomes `<message id>.age`; the
 * real one goes into an annotation, encrypted to the same recipients.
 */
async function encryptInput(input: OpenedInput, recipients: AgeRecipients, messageId: string): Promise<OpenedInput & { extra: Record<string, string> }> {
  const { encryptBytes, encryptFile, startEncryption } = await import('../trust/age.ts');
  const enc = await startEncryption(recipients);
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  out.write(enc.prefix);
  // pipeline() ends `out` after the final chunk and destroys every stream on a failure either way.
  let stream: Readable | AsyncIterable<Buffer>;
  if (input.source.file !== undefined) {
    // A file is sealed into reused buffers: memory stays flat however large it is.
    stream = encryptFile(input.source.file, input.source.size, enc, (message) => new UsageError(message, { code: 'INPUT_CHANGED' }));
  } else {
    const out = new PassThrough({ highWaterMark: 1024 * 1024 });
    out.write(enc.prefix);
    // pipeline() ends `out` after the final chunk and destroys every stream on a failure either way.
    pipeline(input.source.stream, enc.stream, out).catch((err: unknown) => out.destroy(err as Error));
    stream = out;
  }
  const name = await encryptBytes(Buffer.from(input.filename, 'utf8'), recipients);
  return {
    source: { stream },
    filename: `${messageId}.age`,
    totalBytes: input.totalBytes === undefined ? undefined : enc.encryptedSize(input.totalBytes),
    extra: { [ExtensionAnnotation.Encryption]: ENCRYPTION_AGE, [ExtensionAnnotation.EncryptedFilename]: name.toString('base64') },
  };
}

function checkPositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new UsageError(`${name} must be a positive integer, got ${v}`, { option: name });
}
