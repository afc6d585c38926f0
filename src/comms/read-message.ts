/**
 * readMessage: one message, by digest, verified and read into memory — for programs (agents
 * above all) that want its content, not a file. The manifest is checked and its size compared with
 * `maxBytes` before a chunk is fetched; the signature is verified under the trust policy before a
 * chunk is fetched too; the chunks go through the same checking reader recv uses. An encrypted
 * message is decrypted in memory when identities are given.
 *
 * Nothing unverified is returned as verified: a message that fails verification is refused
 * (VerificationError) unless the caller passed `allowUnverified`, and then `verified` is false.
 */
import { Readable } from 'node:stream';
import type { OperationOptions, Repository } from '../oci/target.ts';
import { parseDigest } from '../oci/digest.ts';
import { ENCRYPTION_AGE, ExtensionAnnotation } from '../protocol/constants.ts';
import { readChunk } from '../protocol/chunk-reader.ts';
import { chunkRawSize } from '../protocol/sizes.ts';
import { parseMessageManifest, type MessageInfo } from '../protocol/validate.ts';
import { receivedFilename } from '../protocol/filename.ts';
import type { TrustPolicy } from '../trust/policy.ts';
import type { AgeIdentities } from '../trust/age.ts';
import { ProtocolError, UsageError, VerificationError } from '../errors.ts';
import { forEachLimit } from '../util/pool.ts';
import type { VerifiedMessage } from './verify-message.ts';

/** Default cap on a message read into memory: 16 MiB. */
export const DEFAULT_READ_MAX_BYTES = 16 * 1024 * 1024;

export interface ReadMessageOptions extends OperationOptions {
  /** The trust policy to verify with, or `false` to skip verification (then `allowUnverified` is required). */
  verify: TrustPolicy | false;
  /**
   * Return a message that is not verified (verification skipped, or failed) instead of refusing
   * it; its result then says `verified: false` and `signer: null`.
   */
  allowUnverified?: boolean;
  /** Refuse (before downloading) a message whose payload is larger (default 16 MiB). */
  maxBytes?: number;
  /** age identities: an encrypted message is decrypted in memory with them. */
  identities?: AgeIdentities;
  /** Chunks fetched at once (default 4). */
  parallel?: number;
}

export interface MessageContent {
  digest: string;
  messageId: string;
  /** The sender the message claims (`dockercomms.sender`). */
  sender: string;
  recipient: string;
  createdAt: string;
  /** The filename it travels under (the real one, decrypted, for an encrypted message read with identities). */
  filename: string;
  /** The content type it declares (comms extension `dockercomms.content.type`), when it does. */
  contentType: string | undefined;
  /** The message it answers, for a reply. */
  replyTo: string | undefined;
  threadId: string | undefined;
  /** Size of the content in bytes (the plaintext's when decrypted). */
  size: number;
  /** True only when a signature bundle verified under the policy. */
  verified: boolean;
  /** Who signed it, as the policy verified it; null when not verified. */
  signer: VerifiedMessage | null;
  /** The verified sender identity (`signer.identity`); null when not verified. */
  verifiedSender: string | null;
  /** Why it is not verified, when it was read with allowUnverified. */
  unverifiedReason?: string;
  encrypted: boolean;
  decrypted: boolean;
  bytes(): Uint8Array;
  /** The content as UTF-8 text (refused for an encrypted message that was not decrypted). */
  text(): string;
  /** The content parsed as JSON (refused when it is not JSON). */
  json(): unknown;
  stream(): Readable;
}

export async function readMessage(repository: Repository, digest: string, options: ReadMessageOptions): Promise<MessageContent> {
  parseDigest(digest);
  const maxBytes = options.maxBytes ?? DEFAULT_READ_MAX_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new UsageError(`maxBytes must be a non-negative integer, got ${maxBytes}`, { option: 'maxBytes' });
  if (options.verify === false && options.allowUnverified !== true) {
    throw new UsageError('verify: false reads the message unverified: pass allowUnverified: true to accept that, or a trust policy', {
      code: 'NO_TRUST_POLICY',
      option: 'verify',
    });
  }
  // The verifier (Sigstore) and age are loaded only when used.
  if (options.verify !== false) (await import('../trust/verify.ts')).checkTrustPolicy(options.verify);
  const fetched = await repository.fetchManifest(digest, { signal: options.signal });
  if (fetched.descriptor.digest !== digest) throw new ProtocolError(`asked for ${digest}, got ${fetched.descriptor.digest}`, { code: 'DIGEST_MISMATCH' });
  const info = parseMessageManifest(fetched.bytes);
  if (info.totalBytes > maxBytes) {
    throw new ProtocolError(`message ${digest} holds ${info.totalBytes} bytes, more than maxBytes ${maxBytes}: not downloaded`, { code: 'TOTAL_TOO_LARGE' });
  }

  let signer: VerifiedMessage | null = null;
  let unverifiedReason: string | undefined;
  if (options.verify === false) {
    unverifiedReason = 'verification was skipped';
  } else {
    try {
      const { verifyMessage } = await import('./verify-message.ts');
      signer = await verifyMessage(repository, fetched.descriptor, fetched.bytes, { policy: options.verify, sender: info.sender, signal: options.signal });
    } catch (err) {
      if (!(err instanceof VerificationError) || options.allowUnverified !== true) throw err;
      unverifiedReason = err.message;
    }
  }

  let content = await download(repository, info, options);
  let filename = info.filename;
  const encrypted = info.encryption !== undefined;
  let decrypted = false;
  if (encrypted && options.identities !== undefined && options.identities.length > 0) {
    if (info.encryption !== ENCRYPTION_AGE)
      throw new ProtocolError(`the message is encrypted with ${JSON.stringify(info.encryption)}; comms decrypts only age`, { code: 'ENCRYPTION_UNSUPPORTED' });
    const { decryptBytes } = await import('../trust/age.ts');
    content = await decryptBytes(content, options.identities);
    decrypted = true;
    if (info.encryptedFilename !== undefined) {
      const raw = (await decryptBytes(info.encryptedFilename, options.identities)).toString('utf8');
      const { name, problem } = receivedFilename(raw);
      if (name === undefined) throw new ProtocolError(`the encrypted filename ${JSON.stringify(raw)} is refused: ${problem}`, { code: 'UNSAFE_FILENAME' });
      filename = name;
    } else {
      filename = filename.replace(/\.age$/, '') || 'file';
    }
  }

  const readable = !encrypted || decrypted;
  const text = (): string => {
    if (!readable) throw new UsageError(`message ${digest} is encrypted and was not decrypted: give identities to read it`, { code: 'AGE_NO_IDENTITY' });
    return new TextDecoder('utf-8', { fatal: false }).decode(content);
  };
  const result: MessageContent = {
    digest,
    messageId: info.messageId,
    sender: info.sender,
    recipient: info.recipient,
    createdAt: info.createdAt.toISOString(),
    filename,
    contentType: info.annotations[ExtensionAnnotation.ContentType],
    replyTo: info.replyTo,
    threadId: info.threadId,
    size: content.length,
    verified: signer !== null,
    signer,
    verifiedSender: signer === null ? null : signer.identity,
    encrypted,
    decrypted,
    bytes: () => new Uint8Array(content),
    text,
    json: () => {
      const t = text();
      try {
        return JSON.parse(t) as unknown;
      } catch (cause) {
        throw new ProtocolError(`message ${digest} is not JSON: ${(cause as Error).message}`, { code: 'PAYLOAD_NOT_JSON', cause });
      }
    },
    stream: () => Readable.from([Buffer.from(content)]),
  };
  if (unverifiedReason !== undefined) result.unverifiedReason = unverifiedReason;
  return result;
}

/** Every chunk through the checking reader, into one buffer of exactly total_bytes. */
async function download(repository: Repository, info: MessageInfo, options: ReadMessageOptions): Promise<Buffer> {
  const content = Buffer.alloc(info.totalBytes);
  await forEachLimit(
    info.layers,
    options.parallel ?? 4,
    async (layer, i) => {
      const expected = chunkRawSize(info.totalBytes, info.chunkBytes, i);
      const compressed = await repository.fetch(layer, { signal: options.signal });
      const raw = readChunk(compressed, { index: i, chunkBytes: info.chunkBytes, compression: info.compression, expectedBytes: expected });
      let at = i * info.chunkBytes;
      let got = 0;
      for await (const part of raw) {
        const b = part as Buffer;
        // The reader already stops a chunk longer than `expected`; this keeps the copy in bounds regardless.
        if (got + b.length > expected) throw new ProtocolError(`chunk ${i} holds more than the ${expected} bytes expected`, { code: 'TOTAL_BYTES_MISMATCH' });
        b.copy(content, at);
        at += b.length;
        got += b.length;
      }
      if (got !== expected) throw new ProtocolError(`chunk ${i} holds ${got} bytes, expected ${expected}`, { code: 'TOTAL_BYTES_MISMATCH' });
    },
    options.signal,
  );
  return content;
}
