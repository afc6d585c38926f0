/**
 * The ManifestBuilder: message, receipt and bundle artifacts as deterministic bytes plus the
 * descriptor that names them. Bytes are Go-encoding/json-identical (see go-json.ts), so the same
 * inputs give dockercomms v1.0's digest.
 *
 * One deliberate difference from v1.0: v1.0 leaves the manifest's own `mediaType` out (it never
 * sets ocispec.Manifest.MediaType); comms writes it, as the image spec recommends and as
 * registries that check the body against Content-Type expect. `omitMediaType: true` reproduces
 * v1.0's bytes exactly.
 */
import { ProtocolError, UsageError } from '../errors.ts';
import type { Descriptor, ImageManifest } from '../oci/descriptor.ts';
import { digestOf, parseDigest } from '../oci/digest.ts';
import { EMPTY_JSON_DIGEST, MAX_MANIFEST_BYTES, MediaType } from '../oci/mediatypes.ts';
import { Annotation, ArtifactType, BundleMediaType, ExtensionAnnotation, PROTOCOL_VERSION, type Compression, type ReceiptStatus } from './constants.ts';
import { filenameProblem, MAX_SENT_FILENAME_BYTES } from './filename.ts';
import { goManifest } from './go-json.ts';
import { totalChunks } from './sizes.ts';

/** The OCI empty config every dockercomms artifact uses: the two bytes `{}`. */
export const EMPTY_CONFIG_DESCRIPTOR: Readonly<Descriptor> = Object.freeze({
  mediaType: MediaType.EmptyJSON,
  digest: EMPTY_JSON_DIGEST,
  size: 2,
});

export interface BuiltManifest {
  /** The exact bytes to push; their sha256 is `descriptor.digest`. */
  bytes: Uint8Array;
  /** mediaType (image manifest), digest, size, artifactType. */
  descriptor: Descriptor;
  manifest: ImageManifest;
}

export interface BuildManifestInput {
  artifactType: string;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations: Record<string, string>;
  /** Leave out the manifest's own mediaType, as dockercomms v1.0 does (for byte-for-byte tests). */
  omitMediaType?: boolean;
}

function invalid(message: string): ProtocolError {
  return new ProtocolError(message, { code: 'MANIFEST_INVALID' });
}

function checkDescriptor(what: string, d: Descriptor): void {
  if (typeof d.mediaType !== 'string' || d.mediaType === '') throw invalid(`${what} has no mediaType`);
  parseDigest(d.digest);
  if (!Number.isSafeInteger(d.size) || d.size < 0) throw invalid(`${what} has an invalid size ${d.size}`);
  if (d.annotations !== undefined) checkStringMap(`${what} annotations`, d.annotations);
}

function checkStringMap(what: string, m: Record<string, string>): void {
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== 'string') throw invalid(`${what}: the value of ${JSON.stringify(k)} is not a string`);
  }
}

/** A copy of a descriptor with only the fields a `subject` needs (as v1.0 writes it). */
export function subjectDescriptor(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

/** Builds an artifact manifest and its bytes. */
export function buildManifest(input: BuildManifestInput): BuiltManifest {
  const config = { ...EMPTY_CONFIG_DESCRIPTOR };
  input.layers.forEach((l, i) => checkDescriptor(`layer ${i}`, l));
  if (input.subject !== undefined) checkDescriptor('subject', input.subject);
  checkStringMap('manifest annotations', input.annotations);
  if (typeof input.artifactType !== 'string' || input.artifactType === '') throw invalid('artifactType is required');

  // Key order here is cosmetic (the bytes come from goManifest); it mirrors Go's struct order.
  const manifest: ImageManifest = {
    schemaVersion: 2,
    ...(input.omitMediaType === true ? {} : { mediaType: MediaType.ImageManifest }),
    artifactType: input.artifactType,
    config,
    layers: input.layers.map((l) => ({ ...l })),
    ...(input.subject === undefined ? {} : { subject: { ...input.subject } }),
    ...(Object.keys(input.annotations).length > 0 ? { annotations: { ...input.annotations } } : {}),
  };

  const bytes = new TextEncoder().encode(goManifest(manifest));
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new ProtocolError(`the manifest would be ${bytes.length} bytes, more than registries accept (${MAX_MANIFEST_BYTES})`, { code: 'MANIFEST_TOO_LARGE' });
  }
  return {
    bytes,
    descriptor: { mediaType: MediaType.ImageManifest, digest: digestOf(bytes), size: bytes.length, artifactType: input.artifactType },
    manifest,
  };
}

/** RFC 3339 in UTC with 'Z' and whole seconds, as Go's time.RFC3339 formats a UTC time. */
export function formatCreatedAt(date: Date): string {
  const t = date.getTime();
  if (Number.isNaN(t)) throw new UsageError('invalid created_at date');
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999) throw new UsageError(`created_at year ${year} is outside 0000..9999`);
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}

function checkCount(what: string, n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${what} must be a non-negative integer, got ${n}`);
  return String(n);
}

const V1_KEYS = new Set<string>(Object.values(Annotation));

function mergeExtra(out: Record<string, string>, extra: Record<string, string> | undefined): Record<string, string> {
  if (extra === undefined) return out;
  for (const [k, v] of Object.entries(extra)) {
    if (V1_KEYS.has(k)) throw new UsageError(`extra annotation ${k} would replace a dockercomms v1.0 annotation`);
    if (typeof v !== 'string') throw new UsageError(`extra annotation ${k} is not a string`);
    out[k] = v;
  }
  return out;
}

export interface MessageAnnotationsInput {
  sender: string;
  recipient: string;
  createdAt: Date;
  ttlSeconds: number;
  /** Must already be a plain basename (see sanitizeFilename). */
  filename: string;
  totalBytes: number;
  /** The chunk size used; the annotation carries min(totalBytes, chunkBytes), as v1.0 does. */
  chunkBytes: number;
  chunkCount: number;
  compression: Compression;
  /** A UUID. */
  messageId: string;
  /** Extension annotations (e.g. ExtensionAnnotation.ReplyTo); may not replace a v1.0 key. */
  extra?: Record<string, string>;
}

/** The annotations of a message manifest, exactly v1.0's set, plus `extra`. */
export function messageAnnotations(m: MessageAnnotationsInput): Record<string, string> {
  const problem = filenameProblem(m.filename);
  if (problem !== undefined) throw new UsageError(`filename ${JSON.stringify(m.filename)} cannot be sent: ${problem}; pass it through sanitizeFilename`);
  if (Buffer.byteLength(m.filename, 'utf8') > MAX_SENT_FILENAME_BYTES) {
    throw new UsageError(
      `filename ${JSON.stringify(m.filename)} cannot be sent: it is longer than ${MAX_SENT_FILENAME_BYTES} bytes, too long for a dockercomms v1.0 receiver's temporary file; pass it through sanitizeFilename`,
    );
  }
  if (!isUuid(m.messageId)) throw new UsageError(`message id ${JSON.stringify(m.messageId)} is not a UUID`);
  if (m.compression !== 'gzip' && m.compression !== 'zstd') throw new UsageError(`unknown compression ${JSON.stringify(m.compression)}`);
  const total = checkCount('totalBytes', m.totalBytes);
  checkCount('chunkBytes', m.chunkBytes);
  if (m.totalBytes > 0 && m.chunkBytes <= 0) throw new UsageError('chunkBytes must be positive');
  const expected = m.totalBytes === 0 ? 0 : totalChunks(m.totalBytes, m.chunkBytes);
  if (m.chunkCount !== expected)
    throw new UsageError(`chunkCount ${m.chunkCount} does not match ${m.totalBytes} bytes in chunks of ${m.chunkBytes} (${expected})`);
  const effectiveChunkBytes = Math.min(m.totalBytes, m.chunkBytes);
  const out: Record<string, string> = {
    [Annotation.Version]: PROTOCOL_VERSION,
    [Annotation.Sender]: m.sender,
    [Annotation.Recipient]: m.recipient,
    [Annotation.CreatedAt]: formatCreatedAt(m.createdAt),
    [Annotation.TtlSeconds]: checkCount('ttlSeconds', m.ttlSeconds),
    [Annotation.MessageId]: m.messageId,
    [Annotation.Filename]: m.filename,
    [Annotation.TotalBytes]: total,
    [Annotation.ChunkBytes]: String(effectiveChunkBytes),
    [Annotation.ChunkCount]: String(m.chunkCount),
    [Annotation.Compression]: m.compression,
  };
  return mergeExtra(out, m.extra);
}

export interface ReceiptAnnotationsInput {
  sender: string;
  recipient: string;
  createdAt: Date;
  ttlSeconds: number;
  /** The message manifest digest the receipt answers. */
  forDigest: string;
  status: ReceiptStatus;
  verified: boolean;
  reason?: string;
  extra?: Record<string, string>;
}

/** The annotations of a receipt manifest: v1.0's set (no size or filename keys). */
export function receiptAnnotations(r: ReceiptAnnotationsInput): Record<string, string> {
  parseDigest(r.forDigest);
  if (r.status !== 'accepted' && r.status !== 'rejected') throw new UsageError(`unknown receipt status ${JSON.stringify(r.status)}`);
  const out: Record<string, string> = {
    [Annotation.Version]: PROTOCOL_VERSION,
    [Annotation.Sender]: r.sender,
    [Annotation.Recipient]: r.recipient,
    [Annotation.CreatedAt]: formatCreatedAt(r.createdAt),
    [Annotation.TtlSeconds]: checkCount('ttlSeconds', r.ttlSeconds),
    [Annotation.ReceiptFor]: r.forDigest,
    [Annotation.ReceiptStatus]: r.status,
    [Annotation.ReceiptVerified]: r.verified ? 'true' : 'false',
  };
  if (r.reason !== undefined && r.reason !== '') out[Annotation.ReceiptReason] = r.reason;
  return mergeExtra(out, r.extra);
}

export interface BuildOptions {
  /** See BuildManifestInput.omitMediaType. */
  omitMediaType?: boolean;
}

/** A message manifest; with `subject` (and ExtensionAnnotation.ReplyTo in annotations) it is a reply. */
export function messageManifest(layers: Descriptor[], annotations: Record<string, string>, subject?: Descriptor, options: BuildOptions = {}): BuiltManifest {
  const replyTo = annotations[ExtensionAnnotation.ReplyTo];
  if (replyTo !== undefined && (subject === undefined || subject.digest !== replyTo)) {
    throw new UsageError(`${ExtensionAnnotation.ReplyTo} must name the subject's digest`);
  }
  return buildManifest({
    artifactType: ArtifactType.Message,
    layers,
    annotations,
    ...(subject === undefined ? {} : { subject: subjectDescriptor(subject) }),
    ...options,
  });
}

/**
 * A receipt manifest with no layers. comms links it to the message through `subject` (v1.0
 * receipts have none and are found only by tag); pass undefined to leave it out.
 */
export function receiptManifest(annotations: Record<string, string>, subject?: Descriptor, options: BuildOptions = {}): BuiltManifest {
  return buildManifest({
    artifactType: ArtifactType.Receipt,
    layers: [],
    annotations,
    ...(subject === undefined ? {} : { subject: subjectDescriptor(subject) }),
    ...options,
  });
}

/** The bundle artifact: one layer holding the Sigstore bundle JSON, subject = the message. */
export function bundleManifest(bundleLayer: Descriptor, subject: Descriptor, options: BuildOptions = {}): BuiltManifest {
  if (bundleLayer.mediaType !== BundleMediaType) throw invalid(`a bundle layer must have media type ${BundleMediaType}`);
  return buildManifest({
    artifactType: ArtifactType.Bundle,
    layers: [{ mediaType: bundleLayer.mediaType, digest: bundleLayer.digest, size: bundleLayer.size }],
    subject: { mediaType: MediaType.ImageManifest, digest: subject.digest, size: subject.size },
    annotations: { [Annotation.Version]: PROTOCOL_VERSION },
    ...options,
  });
}
