/**
 * Parsers for manifests read from a registry: message, receipt, bundle, and any artifact. They
 * trust nothing: every field the protocol relies on is checked, and anything wrong ends in an
 * InvalidManifestError (a ProtocolError, exit 4) whose `code` says what and whose `field` names
 * the field. Where dockercomms v1.0 was lenient comms is not (an unparseable created_at is
 * refused, not waved through), except where v1.0's own output needs leniency (no manifest
 * mediaType; receipts without size or filename keys and with `"layers": null`).
 */
import { ProtocolError, type ErrorCode } from '../errors.ts';
import type { Descriptor, ImageManifest } from '../oci/descriptor.ts';
import { isDigest } from '../oci/digest.ts';
import { ManifestFormatError, readDescriptor as readOciDescriptor, readStringMap } from '../oci/manifest-json.ts';
import { EMPTY_JSON_DIGEST, MAX_MANIFEST_BYTES, MediaType } from '../oci/mediatypes.ts';
import {
  Annotation,
  ArtifactType,
  BundleMediaType,
  ExtensionAnnotation,
  MAX_BUNDLE_BYTES,
  MAX_CHUNKS,
  MAX_ENCRYPTED_FILENAME_CHARS,
  MAX_TOTAL_BYTES,
  chunkMediaTypeFor,
  type Compression,
  type ReceiptStatus,
} from './constants.ts';
import { receivedFilename } from './filename.ts';
import { isUuid } from './manifest.ts';
import { MAX_USTAR_SIZE } from './tar.ts';

/** A manifest that breaks the protocol; `field` names the offending field when there is one. */
export class InvalidManifestError extends ProtocolError {
  readonly field: string | undefined;
  constructor(code: ErrorCode, message: string, field?: string, cause?: unknown) {
    super(message, cause === undefined ? { code } : { code, cause });
    this.field = field;
  }
}

function bad(code: ErrorCode, message: string, field?: string): InvalidManifestError {
  return new InvalidManifestError(code, message, field);
}

export interface ParseOptions {
  /** Refuse larger manifests (default MAX_MANIFEST_BYTES, 4 MiB). */
  maxManifestBytes?: number;
}

export interface MessageParseOptions extends ParseOptions {
  /** Refuse messages announcing more bytes than this (default and ceiling MAX_TOTAL_BYTES). */
  maxTotalBytes?: number;
}

/** What every dockercomms artifact carries. */
export interface EnvelopeInfo {
  /** `dockercomms.version`, a `1.x`. */
  version: string;
  sender: string;
  recipient: string;
  createdAt: Date;
  ttlSeconds: number;
  /** createdAt + ttlSeconds. */
  expiresAt: Date;
  subject?: Descriptor;
  annotations: Record<string, string>;
  manifest: ImageManifest;
}

export interface MessageInfo extends EnvelopeInfo {
  filename: string;
  totalBytes: number;
  /** `dockercomms.chunk_bytes`: every chunk but the last has exactly this many payload bytes. */
  chunkBytes: number;
  chunkCount: number;
  compression: Compression;
  messageId: string;
  /** The chunk layers, sorted by `dockercomms.chunk.index` (layers[i] is chunk i). */
  layers: Descriptor[];
  /** comms extension: the digest of the message this one answers (equals subject.digest). */
  replyTo?: string;
  /** comms extension: the conversation's id. */
  threadId?: string;
  /**
   * comms extension: how the payload is encrypted (`age`); `filename` is then an opaque name and
   * `encryptedFilename` the real one, encrypted (an age file's bytes).
   */
  encryption?: string;
  encryptedFilename?: Uint8Array;
}

export interface ReceiptInfo extends EnvelopeInfo {
  /** The message manifest digest the receipt answers. */
  forDigest: string;
  status: ReceiptStatus;
  verified: boolean;
  reason?: string;
}

export interface ArtifactInfo {
  artifactType: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations: Record<string, string>;
  manifest: ImageManifest;
}

export interface BundleInfo extends ArtifactInfo {
  /** The one layer: the Sigstore bundle JSON. */
  bundleLayer: Descriptor;
  subject: Descriptor;
}

export { MAX_BUNDLE_BYTES } from './constants.ts';
/** Sender, recipient and similar free-text annotations are refused above this length. */
export const MAX_IDENTITY_LENGTH = 1024;

// ---------------------------------------------------------------------------------------------
// Generic manifest structure

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The OCI reader's verdict on a field, as this protocol's refusal (DESCRIPTOR_INVALID, naming the field). */
function asInvalid<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof ManifestFormatError) throw new InvalidManifestError('DESCRIPTOR_INVALID', err.message, err.field);
    throw err;
  }
}

function stringMap(v: unknown, field: string): Record<string, string> | undefined {
  return asInvalid(() => readStringMap(v, field));
}

function readDescriptor(v: unknown, field: string): Descriptor {
  return asInvalid(() => readOciDescriptor(v, field));
}

/** Bytes → a structurally valid OCI image manifest (any artifactType, any config). */
function readImageManifest(bytes: Uint8Array, options: ParseOptions): ImageManifest {
  const max = options.maxManifestBytes ?? MAX_MANIFEST_BYTES;
  if (bytes.length > max) throw bad('MANIFEST_TOO_LARGE', `the manifest has ${bytes.length} bytes, more than the ${max} accepted`);
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new InvalidManifestError('MANIFEST_NOT_JSON', 'the manifest is not valid UTF-8 JSON', undefined, cause);
  }
  if (!isObject(doc)) throw bad('MANIFEST_NOT_JSON', 'the manifest is not a JSON object');
  if (doc['schemaVersion'] !== 2) throw bad('MANIFEST_SCHEMA_VERSION', `schemaVersion is ${JSON.stringify(doc['schemaVersion'])}, expected 2`, 'schemaVersion');
  const mediaType = doc['mediaType'];
  // v1.0 leaves mediaType out; when present it must say image manifest.
  if (mediaType !== undefined && mediaType !== MediaType.ImageManifest) {
    throw bad('MANIFEST_MEDIA_TYPE', `mediaType is ${JSON.stringify(mediaType)}, expected ${MediaType.ImageManifest}`, 'mediaType');
  }
  if ('manifests' in doc) throw bad('MANIFEST_MEDIA_TYPE', 'the document is an image index, not an image manifest', 'manifests');
  const artifactType = doc['artifactType'];
  if (artifactType !== undefined && typeof artifactType !== 'string') throw bad('ARTIFACT_TYPE', 'artifactType is not a string', 'artifactType');
  const config = readDescriptor(doc['config'], 'config');
  const rawLayers = doc['layers'];
  // Go writes a nil slice as null (v1.0's receipts do): read it as no layers.
  if (rawLayers !== undefined && rawLayers !== null && !Array.isArray(rawLayers)) throw bad('DESCRIPTOR_INVALID', 'layers is not a list', 'layers');
  const layers = ((rawLayers as unknown[] | null | undefined) ?? []).map((l, i) => readDescriptor(l, `layers[${i}]`));
  const manifest: ImageManifest = { schemaVersion: 2 } as ImageManifest;
  if (mediaType !== undefined) manifest.mediaType = mediaType;
  if (typeof artifactType === 'string') manifest.artifactType = artifactType;
  manifest.config = config;
  manifest.layers = layers;
  if (doc['subject'] !== undefined && doc['subject'] !== null) manifest.subject = readDescriptor(doc['subject'], 'subject');
  const annotations = stringMap(doc['annotations'], 'annotations');
  if (annotations !== undefined) manifest.annotations = annotations;
  return manifest;
}

function requireArtifactType(m: ImageManifest, want: string): void {
  if (m.artifactType !== want) throw bad('ARTIFACT_TYPE', `artifactType is ${JSON.stringify(m.artifactType)}, expected ${want}`, 'artifactType');
}

function requireEmptyConfig(m: ImageManifest): void {
  const c = m.config;
  if (c.mediaType !== MediaType.EmptyJSON || c.digest !== EMPTY_JSON_DIGEST || c.size !== 2) {
    throw bad('CONFIG_NOT_EMPTY', `config must be the OCI empty descriptor (${MediaType.EmptyJSON}, ${EMPTY_JSON_DIGEST}, 2 bytes)`, 'config');
  }
}

// ---------------------------------------------------------------------------------------------
// Annotation values

const CANONICAL_INT_RE = /^(0|[1-9][0-9]*)$/;

/** A canonical non-negative decimal integer (no sign, no leading zeros, no spaces), or undefined. */
export function parseCanonicalInt(s: string): number | undefined {
  if (!CANONICAL_INT_RE.test(s) || s.length > 16) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Strict RFC 3339 date-time (as Go's time.Parse(time.RFC3339) accepts it), or undefined. */
export function parseRfc3339(s: string): Date | undefined {
  const m = RFC3339_RE.exec(s);
  if (m === null) return undefined;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const frac = m[7];
  if (mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 59) return undefined;
  const daysInMonth = [31, isLeap(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]!;
  if (d < 1 || d > daysInMonth) return undefined;
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, sec, frac === undefined ? 0 : Math.floor(Number(`0.${frac}`) * 1000));
  return new Date(date.getTime() - offsetMinutes * 60_000);
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

class Annotations {
  readonly #a: Record<string, string>;
  constructor(a: Record<string, string> | undefined) {
    if (a === undefined) throw bad('ANNOTATION_MISSING', 'the manifest has no annotations', 'annotations');
    this.#a = a;
  }

  get all(): Record<string, string> {
    return this.#a;
  }

  optional(key: string): string | undefined {
    return Object.hasOwn(this.#a, key) ? this.#a[key] : undefined;
  }

  required(key: string): string {
    const v = this.optional(key);
    if (v === undefined) throw bad('ANNOTATION_MISSING', `annotation ${key} is missing`, key);
    return v;
  }

  invalid(key: string, why: string): InvalidManifestError {
    return bad('ANNOTATION_INVALID', `annotation ${key} ${JSON.stringify(this.#a[key])} ${why}`, key);
  }

  int(key: string): number {
    const n = parseCanonicalInt(this.required(key));
    if (n === undefined) throw this.invalid(key, 'is not a canonical non-negative decimal integer');
    return n;
  }

  text(key: string): string {
    const v = this.required(key);
    if (v.length > MAX_IDENTITY_LENGTH) throw this.invalid(key, `is longer than ${MAX_IDENTITY_LENGTH} characters`);
    if (hasControl(v)) throw this.invalid(key, 'contains control characters');
    return v;
  }

  date(key: string): Date {
    const d = parseRfc3339(this.required(key));
    if (d === undefined) throw this.invalid(key, 'is not an RFC 3339 date-time');
    return d;
  }

  digest(key: string): string {
    const v = this.required(key);
    if (!isDigest(v)) throw this.invalid(key, 'is not a digest');
    return v;
  }
}

const VERSION_RE = /^1\.(0|[1-9][0-9]{0,5})$/;

function readEnvelope(m: ImageManifest, a: Annotations): EnvelopeInfo {
  const version = a.required(Annotation.Version);
  if (!VERSION_RE.test(version)) {
    throw bad('UNSUPPORTED_VERSION', `annotation ${Annotation.Version} is ${JSON.stringify(version)}: this reader understands 1.x`, Annotation.Version);
  }
  const sender = a.text(Annotation.Sender);
  const recipient = a.text(Annotation.Recipient);
  const createdAt = a.date(Annotation.CreatedAt);
  const ttlSeconds = a.int(Annotation.TtlSeconds);
  const info: EnvelopeInfo = {
    version,
    sender,
    recipient,
    createdAt,
    ttlSeconds,
    expiresAt: new Date(createdAt.getTime() + ttlSeconds * 1000),
    annotations: a.all,
    manifest: m,
  };
  if (m.subject !== undefined) info.subject = m.subject;
  return info;
}

// ---------------------------------------------------------------------------------------------
// Public parsers

/** Parses and checks a message manifest (see the file comment); throws InvalidManifestError. */
export function parseMessageManifest(bytes: Uint8Array, options: MessageParseOptions = {}): MessageInfo {
  const maxTotal = Math.min(options.maxTotalBytes ?? MAX_TOTAL_BYTES, MAX_TOTAL_BYTES);
  const m = readImageManifest(bytes, options);
  requireArtifactType(m, ArtifactType.Message);
  requireEmptyConfig(m);
  const a = new Annotations(m.annotations);
  const envelope = readEnvelope(m, a);

  const messageId = a.required(Annotation.MessageId);
  if (!isUuid(messageId)) throw a.invalid(Annotation.MessageId, 'is not a UUID');
  const rawFilename = a.required(Annotation.Filename);
  const { name: filename, problem } = receivedFilename(rawFilename);
  if (filename === undefined)
    throw bad('UNSAFE_FILENAME', `annotation ${Annotation.Filename} ${JSON.stringify(rawFilename)} is refused: ${problem}`, Annotation.Filename);
  const totalBytes = a.int(Annotation.TotalBytes);
  const chunkBytes = a.int(Annotation.ChunkBytes);
  const chunkCount = a.int(Annotation.ChunkCount);
  const compression = a.required(Annotation.Compression);
  if (compression !== 'gzip' && compression !== 'zstd') {
    throw bad(
      'COMPRESSION_UNSUPPORTED',
      `annotation ${Annotation.Compression} is ${JSON.stringify(compression)}, expected gzip or zstd`,
      Annotation.Compression,
    );
  }

  if (chunkCount > MAX_CHUNKS) throw bad('TOO_MANY_CHUNKS', `chunk_count ${chunkCount} is more than the ${MAX_CHUNKS} allowed`, Annotation.ChunkCount);
  if (totalBytes > maxTotal) throw bad('TOTAL_TOO_LARGE', `total_bytes ${totalBytes} is more than the ${maxTotal} accepted`, Annotation.TotalBytes);
  if (chunkBytes > MAX_USTAR_SIZE)
    throw bad('CHUNK_TOO_LARGE', `chunk_bytes ${chunkBytes} is more than a chunk can hold (${MAX_USTAR_SIZE})`, Annotation.ChunkBytes);
  if (chunkCount !== m.layers.length) {
    throw bad('CHUNK_COUNT_MISMATCH', `chunk_count is ${chunkCount} but the manifest has ${m.layers.length} layers`, Annotation.ChunkCount);
  }
  if (totalBytes > 0 && chunkBytes === 0) throw bad('TOTAL_BYTES_MISMATCH', `chunk_bytes is 0 but total_bytes is ${totalBytes}`, Annotation.ChunkBytes);
  const expectedCount = totalBytes === 0 ? 0 : Math.ceil(totalBytes / chunkBytes);
  if (chunkCount !== expectedCount) {
    throw bad(
      'TOTAL_BYTES_MISMATCH',
      `total_bytes ${totalBytes} in chunks of ${chunkBytes} makes ${expectedCount} chunks, but chunk_count is ${chunkCount}`,
      Annotation.TotalBytes,
    );
  }

  const wantMediaType = chunkMediaTypeFor(compression);
  const byIndex: (Descriptor | undefined)[] = new Array<Descriptor | undefined>(chunkCount).fill(undefined);
  m.layers.forEach((layer, i) => {
    if (layer.mediaType !== wantMediaType) {
      throw bad(
        'LAYER_MEDIA_TYPE',
        `layers[${i}] has media type ${JSON.stringify(layer.mediaType)}; compression ${compression} needs ${wantMediaType}`,
        `layers[${i}].mediaType`,
      );
    }
    const raw = layer.annotations?.[Annotation.ChunkIndex];
    const field = `layers[${i}].annotations.${Annotation.ChunkIndex}`;
    if (raw === undefined) throw bad('CHUNK_INDEX_INVALID', `layers[${i}] has no ${Annotation.ChunkIndex} annotation`, field);
    const index = parseCanonicalInt(raw);
    if (index === undefined) throw bad('CHUNK_INDEX_INVALID', `layers[${i}] has chunk index ${JSON.stringify(raw)}, not a canonical decimal integer`, field);
    if (index >= chunkCount) throw bad('CHUNK_INDEX_GAP', `layers[${i}] has chunk index ${index}, outside 0..${chunkCount - 1}: a chunk is missing`, field);
    if (byIndex[index] !== undefined) throw bad('CHUNK_INDEX_DUPLICATE', `chunk index ${index} appears twice`, field);
    byIndex[index] = layer;
  });

  const info: MessageInfo = {
    ...envelope,
    filename,
    totalBytes,
    chunkBytes,
    chunkCount,
    compression,
    messageId,
    layers: byIndex as Descriptor[],
  };

  const replyTo = a.optional(ExtensionAnnotation.ReplyTo);
  if (replyTo !== undefined) {
    if (!isDigest(replyTo)) throw a.invalid(ExtensionAnnotation.ReplyTo, 'is not a digest');
    if (m.subject?.digest !== replyTo) {
      throw bad(
        'REPLY_SUBJECT_MISMATCH',
        `annotation ${ExtensionAnnotation.ReplyTo} names ${replyTo} but the subject is ${m.subject?.digest ?? 'absent'}`,
        ExtensionAnnotation.ReplyTo,
      );
    }
    info.replyTo = replyTo;
  }
  const threadId = a.optional(ExtensionAnnotation.ThreadId);
  if (threadId !== undefined) {
    if (!isUuid(threadId)) throw a.invalid(ExtensionAnnotation.ThreadId, 'is not a UUID');
    info.threadId = threadId;
  }
  const encryption = a.optional(ExtensionAnnotation.Encryption);
  if (encryption !== undefined) {
    info.encryption = encryption;
    const name = a.optional(ExtensionAnnotation.EncryptedFilename);
    if (name !== undefined) {
      if (name.length > MAX_ENCRYPTED_FILENAME_CHARS || !/^[A-Za-z0-9+/]*={0,2}$/.test(name) || name.length % 4 !== 0) {
        throw a.invalid(ExtensionAnnotation.EncryptedFilename, `is not base64 of at most ${MAX_ENCRYPTED_FILENAME_CHARS} characters`);
      }
      info.encryptedFilename = Buffer.from(name, 'base64');
    }
  }
  return info;
}

/** Parses and checks a receipt manifest; v1.0's receipts (no size keys, null layers) pass. */
export function parseReceiptManifest(bytes: Uint8Array, options: ParseOptions = {}): ReceiptInfo {
  const m = readImageManifest(bytes, options);
  requireArtifactType(m, ArtifactType.Receipt);
  requireEmptyConfig(m);
  const a = new Annotations(m.annotations);
  const envelope = readEnvelope(m, a);
  const forDigest = a.digest(Annotation.ReceiptFor);
  const status = a.required(Annotation.ReceiptStatus);
  if (status !== 'accepted' && status !== 'rejected') throw a.invalid(Annotation.ReceiptStatus, 'is not accepted or rejected');
  const verified = a.required(Annotation.ReceiptVerified);
  if (verified !== 'true' && verified !== 'false') throw a.invalid(Annotation.ReceiptVerified, 'is not true or false');
  if (m.subject !== undefined && m.subject.digest !== forDigest) {
    throw bad('RECEIPT_SUBJECT_MISMATCH', `the receipt is for ${forDigest} but its subject is ${m.subject.digest}`, 'subject');
  }
  const info: ReceiptInfo = { ...envelope, forDigest, status, verified: verified === 'true' };
  const reason = a.optional(Annotation.ReceiptReason);
  if (reason !== undefined) {
    if (reason.length > 4096 || hasControl(reason.replaceAll('\n', '')))
      throw a.invalid(Annotation.ReceiptReason, 'is too long or contains control characters');
    info.reason = reason;
  }
  return info;
}

/** Structural checks only: a valid image manifest, optionally of the given artifactType. */
export function parseArtifactManifest(bytes: Uint8Array, options: ParseOptions & { artifactType?: string } = {}): ArtifactInfo {
  const m = readImageManifest(bytes, options);
  if (options.artifactType !== undefined) requireArtifactType(m, options.artifactType);
  if (m.artifactType === undefined || m.artifactType === '') throw bad('ARTIFACT_TYPE', 'the manifest has no artifactType', 'artifactType');
  const info: ArtifactInfo = { artifactType: m.artifactType, config: m.config, layers: m.layers, annotations: m.annotations ?? {}, manifest: m };
  if (m.subject !== undefined) info.subject = m.subject;
  return info;
}

/** A signature bundle artifact: one bundle layer (at most MAX_BUNDLE_BYTES) and a subject. */
export function parseBundleManifest(bytes: Uint8Array, options: ParseOptions = {}): BundleInfo {
  const info = parseArtifactManifest(bytes, { ...options, artifactType: ArtifactType.Bundle });
  if (info.layers.length !== 1) throw bad('BUNDLE_INVALID', `a bundle manifest must have exactly one layer, it has ${info.layers.length}`, 'layers');
  const layer = info.layers[0]!;
  if (layer.mediaType !== BundleMediaType)
    throw bad('LAYER_MEDIA_TYPE', `the bundle layer has media type ${JSON.stringify(layer.mediaType)}, expected ${BundleMediaType}`, 'layers[0].mediaType');
  if (layer.size > MAX_BUNDLE_BYTES)
    throw bad('BUNDLE_INVALID', `the bundle layer has ${layer.size} bytes, more than the ${MAX_BUNDLE_BYTES} accepted`, 'layers[0].size');
  if (info.subject === undefined) throw bad('BUNDLE_INVALID', 'a bundle manifest must have a subject (the signed message)', 'subject');
  return { ...info, bundleLayer: layer, subject: info.subject };
}
