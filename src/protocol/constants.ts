/**
 * Every name of the dockercomms v1.0 wire format (media types, artifact types, annotation keys)
 * and its defaults and limits, in one place. comms' own additions live in `ExtensionAnnotation`,
 * kept apart so nobody mistakes them for v1.0: they are additive, and a v1.0 reader ignores them.
 */

/** The value comms writes into `dockercomms.version`. Readers accept any `1.x`. */
export const PROTOCOL_VERSION = '1.0';

export const ArtifactType = {
  Message: 'application/vnd.dockercomms.message.v1',
  Receipt: 'application/vnd.dockercomms.receipt.v1',
  Bundle: 'application/vnd.dev.sigstore.bundle.v0.3+json',
} as const;
export type ArtifactType = (typeof ArtifactType)[keyof typeof ArtifactType];

export const ChunkMediaType = {
  Gzip: 'application/vnd.dockercomms.chunk.v1.tar+gzip',
  Zstd: 'application/vnd.dockercomms.chunk.v1.tar+zstd',
} as const;
export type ChunkMediaType = (typeof ChunkMediaType)[keyof typeof ChunkMediaType];

/**
 * The one size limit for a signature bundle's JSON (real bundles are a few KiB): a larger bundle
 * layer is refused before it is fetched, and larger bytes are never parsed.
 */
export const MAX_BUNDLE_BYTES = 1024 * 1024;

/** The layer media type of a bundle artifact is the bundle media type itself. */
export const BundleMediaType = ArtifactType.Bundle;

export type Compression = 'gzip' | 'zstd';
export const COMPRESSIONS: readonly Compression[] = ['gzip', 'zstd'];

export function chunkMediaTypeFor(compression: Compression): ChunkMediaType {
  return compression === 'zstd' ? ChunkMediaType.Zstd : ChunkMediaType.Gzip;
}

/** Annotation keys of dockercomms v1.0. */
export const Annotation = {
  Version: 'dockercomms.version',
  Sender: 'dockercomms.sender',
  Recipient: 'dockercomms.recipient',
  CreatedAt: 'dockercomms.created_at',
  TtlSeconds: 'dockercomms.ttl_seconds',
  Filename: 'dockercomms.filename',
  TotalBytes: 'dockercomms.total_bytes',
  ChunkBytes: 'dockercomms.chunk_bytes',
  ChunkCount: 'dockercomms.chunk_count',
  Compression: 'dockercomms.compression',
  MessageId: 'dockercomms.message.id',
  ReceiptFor: 'dockercomms.receipt.for',
  ReceiptStatus: 'dockercomms.receipt.status',
  ReceiptVerified: 'dockercomms.receipt.verified',
  ReceiptReason: 'dockercomms.receipt.reason',
  /** On each chunk layer descriptor, not on the manifest. */
  ChunkIndex: 'dockercomms.chunk.index',
} as const;
export type Annotation = (typeof Annotation)[keyof typeof Annotation];

/**
 * comms extensions (not in v1.0). Additive only: a message carrying them is still a complete
 * v1.0 message. A reply is a message artifact that also has `subject` (the message it answers)
 * and `dockercomms.reply.to` holding that message's manifest digest.
 */
export const ExtensionAnnotation = {
  /** The manifest digest (`sha256:…`) of the message this message answers. */
  ReplyTo: 'dockercomms.reply.to',
  /** The message id (UUID) of the first message of a conversation; replies carry it on. */
  ThreadId: 'dockercomms.thread.id',
  /** `age`: the payload is an age file (age-encryption.org/v1) encrypted to the recipient's keys. */
  Encryption: 'dockercomms.encryption',
  /** With Encryption: base64 of an age file holding the real filename (UTF-8), to the same recipients. */
  EncryptedFilename: 'dockercomms.encryption.filename',
  /** The payload's media type, e.g. `text/plain; charset=utf-8` or `application/json`. */
  ContentType: 'dockercomms.content.type',
} as const;
export type ExtensionAnnotation = (typeof ExtensionAnnotation)[keyof typeof ExtensionAnnotation];

/** The one value of ExtensionAnnotation.Encryption comms writes and decrypts. */
export const ENCRYPTION_AGE = 'age';
/** Longest ExtensionAnnotation.EncryptedFilename accepted (base64 characters): a filename's age file with ~100 recipients. */
export const MAX_ENCRYPTED_FILENAME_CHARS = 64 * 1024;

export const ReceiptStatus = { Accepted: 'accepted', Rejected: 'rejected' } as const;
export type ReceiptStatus = (typeof ReceiptStatus)[keyof typeof ReceiptStatus];

/** 100 MiB, v1.0's default chunk size. */
export const DEFAULT_CHUNK_BYTES = 104857600;
/** 7 days. */
export const DEFAULT_TTL_SECONDS = 604800;
/** v1.0 refuses more chunks than this, and so does comms, reading and writing. */
export const MAX_CHUNKS = 10000;
/** 10 TiB, v1.0's ceiling on a message's total size. */
export const MAX_TOTAL_BYTES = 10 * 1024 * 1024 * 1024 * 1024;

/** Tag prefixes of the v1.0 tag schema. */
export const TagPrefix = {
  Inbox: 'inbox-',
  Receipt: 'receipt-',
  Bundle: 'bundle-',
  /** [comms extension] a reply's second tag, naming the message it answers (SPEC §5). */
  Reply: 'reply-',
} as const;
