import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError, InvalidReferenceError } from '../errors.ts';

/** OCI digest grammar; comms computes sha256 and accepts sha256/sha512 when reading. */
const DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

export interface ParsedDigest {
  algorithm: 'sha256' | 'sha512';
  hex: string;
}

/** Parses and checks a digest; an unknown algorithm or a malformed encoding is exit 4. */
export function parseDigest(digest: string): ParsedDigest {
  if (typeof digest !== 'string' || !DIGEST_RE.test(digest)) {
    throw new InvalidReferenceError(`invalid digest ${JSON.stringify(digest)}: expected <algorithm>:<hex>`);
  }
  const i = digest.indexOf(':');
  const algorithm = digest.slice(0, i);
  const hex = digest.slice(i + 1);
  const len = HEX_LENGTH[algorithm];
  if (len === undefined) {
    throw new InvalidReferenceError(`unsupported digest algorithm ${JSON.stringify(algorithm)} in ${digest}`, {
      code: 'DIGEST_INVALID',
    });
  }
  if (hex.length !== len || !/^[a-f0-9]+$/.test(hex)) {
    throw new InvalidReferenceError(`invalid ${algorithm} digest ${JSON.stringify(digest)}: expected ${len} lowercase hex characters`, {
      code: 'DIGEST_INVALID',
    });
  }
  return { algorithm: algorithm as ParsedDigest['algorithm'], hex };
}

export function isDigest(s: string): boolean {
  try {
    parseDigest(s);
    return true;
  } catch {
    return false;
  }
}

/** sha256 digest of bytes, as `sha256:<hex>`. */
export function digestOf(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function hasherFor(digest: string): Hash {
  return createHash(parseDigest(digest).algorithm);
}

/**
 * A pass-through stream that hashes and counts what flows through it and fails (with
 * DigestMismatchError, exit 4) the moment the size is exceeded, or at the end when the digest
 * or size differ. Content is therefore never accepted unverified, however it is consumed.
 */
export class VerifyingStream extends Transform {
  readonly expectedDigest: string;
  readonly expectedSize: number;
  private readonly hash: Hash;
  private seen = 0;

  /** `prefix` lets a resumed download continue a hash begun on bytes already received. */
  constructor(expectedDigest: string, expectedSize: number, prefix?: { bytes: number; hash: Hash }) {
    super();
    this.expectedDigest = expectedDigest;
    this.expectedSize = expectedSize;
    this.hash = prefix?.hash ?? hasherFor(expectedDigest);
    this.seen = prefix?.bytes ?? 0;
  }

  get bytesSeen(): number {
    return this.seen;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.expectedSize >= 0 && this.seen > this.expectedSize) {
      cb(new DigestMismatchError(`content for ${this.expectedDigest} is larger than its descriptor's size ${this.expectedSize}`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.expectedSize >= 0 && this.seen !== this.expectedSize) {
      cb(new DigestMismatchError(`content for ${this.expectedDigest} has ${this.seen} bytes, its descriptor says ${this.expectedSize}`));
      return;
    }
    const actual = `${parseDigest(this.expectedDigest).algorithm}:${this.hash.digest('hex')}`;
    if (actual !== this.expectedDigest) {
      cb(new DigestMismatchError(`content digest mismatch: expected ${this.expectedDigest}, got ${actual}`));
      return;
    }
    cb();
  }
}
