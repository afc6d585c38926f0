/**
 * The payload STREAM of the age format (age-encryption.org/v1, "Payload"), on node:crypto's
 * native ChaCha20-Poly1305: the plaintext is cut into 64 KiB chunks, each sealed with the payload
 * key and the nonce `11-byte big-endian chunk counter || last-chunk flag (0x00, or 0x01 on the
 * final chunk)`. The final chunk may be full; it is empty only when the whole payload is.
 *
 * Both directions are Transforms holding at most one chunk (plus the stream buffers), so memory
 * does not grow with the payload. A decrypting stream emits a chunk only after its tag checked;
 * a later chunk may still fail, so a consumer must discard what it wrote when the stream errors.
 */
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DecryptionError } from './errors.ts';

/** Plaintext bytes per STREAM chunk. */
export const STREAM_CHUNK = 64 * 1024;
/** The Poly1305 tag after each chunk. */
export const STREAM_TAG = 16;
/** The random nonce between the header and the STREAM, input to the payload key's HKDF. */
export const PAYLOAD_NONCE_BYTES = 16;

/** HKDF-SHA-256(ikm = file key, salt = payload nonce, info = "payload"), 32 bytes. */
export function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32));
}

/** STREAM bytes for a plaintext of `n` bytes (the empty payload is one empty final chunk). */
export function streamSize(n: number): number {
  const chunks = n === 0 ? 1 : Math.ceil(n / STREAM_CHUNK);
  return n + chunks * STREAM_TAG;
}

/** Plaintext bytes for STREAM bytes of size `n`; undefined when no plaintext has that size. */
export function streamPlaintextSize(n: number): number | undefined {
  const full = STREAM_CHUNK + STREAM_TAG;
  const chunks = Math.ceil(n / full);
  const last = n - (chunks - 1) * full;
  if (n < STREAM_TAG || (chunks > 1 && last <= STREAM_TAG)) return undefined;
  return n - chunks * STREAM_TAG;
}

function chunkNonce(counter: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  // 11-byte big-endian counter: 2^48 chunks (16 EiB) are far beyond any payload, so 6 bytes do.
  nonce.writeUIntBE(counter, 5, 6);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/**
 * Seals STREAM chunks into a buffer the caller owns and reuses. The cipher's output is taken as a
 * latin1 string (a one-to-one byte mapping) and written into place: a string lives on V8's heap and
 * goes with the next young-generation collection, where a Buffer per chunk is memory outside the
 * heap that piles up between collections (a gigabyte of it per gigabyte sent).
 */
export class StreamSealer {
  readonly #key: Buffer;
  #counter = 0;
  #done = false;

  constructor(key: Uint8Array) {
    this.#key = Buffer.from(key);
  }

  /** Seals `plain` (at most STREAM_CHUNK bytes; empty only as the one chunk of an empty payload) into `out` at `offset`; returns the bytes written. */
  seal(plain: Uint8Array, last: boolean, out: Buffer, offset: number): number {
    if (this.#done) throw new Error('the STREAM is already finished');
    if (plain.length > STREAM_CHUNK || (plain.length === 0 && !(last && this.#counter === 0))) throw new Error(`a STREAM chunk of ${plain.length} bytes`);
    const cipher = createCipheriv('chacha20-poly1305', this.#key, chunkNonce(this.#counter++, last), { authTagLength: STREAM_TAG });
    const n = out.write(cipher.update(plain, undefined, 'latin1'), offset, 'latin1');
    cipher.final();
    cipher.getAuthTag().copy(out, offset + n);
    this.#done = last;
    return n + STREAM_TAG;
  }
}

/** Seals plaintext into the STREAM under `key` (32 bytes, from payloadKey()). */
export class StreamEncrypter extends Transform {
  readonly #key: Buffer;
  readonly #buf = Buffer.allocUnsafe(STREAM_CHUNK);
  #fill = 0;
  #counter = 0;

  constructor(key: Uint8Array) {
    super();
    this.#key = Buffer.from(key);
  }

  override _transform(data: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let off = 0;
    while (off < data.length) {
      // A full chunk is sealed only once more input shows it is not the last one.
      if (this.#fill === STREAM_CHUNK) this.#seal(false);
      const n = Math.min(STREAM_CHUNK - this.#fill, data.length - off);
      data.copy(this.#buf, this.#fill, off, off + n);
      this.#fill += n;
      off += n;
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.#seal(true);
    cb();
  }

  #seal(last: boolean): void {
    const cipher = createCipheriv('chacha20-poly1305', this.#key, chunkNonce(this.#counter++, last), { authTagLength: STREAM_TAG });
    // Pushed apart: joining them would allocate a second copy of every chunk.
    this.push(cipher.update(this.#buf.subarray(0, this.#fill)));
    cipher.final();
    this.push(cipher.getAuthTag());
    this.#fill = 0;
  }
}

/**
 * Opens the STREAM under `key`, synchronously: write() and end() return the plaintext of the
 * chunks they completed, each only after its tag checked. Throws DecryptionError
 * (`AGE_PAYLOAD_INVALID`) on a chunk whose tag does not check (tampered, reordered, or a final
 * chunk moved), a truncated STREAM, an empty final chunk after others, or bytes after the final
 * chunk.
 */
export class StreamOpener {
  readonly #key: Buffer;
  readonly #buf = Buffer.allocUnsafe(STREAM_CHUNK + STREAM_TAG);
  #fill = 0;
  #counter = 0;

  constructor(key: Uint8Array) {
    this.#key = Buffer.from(key);
  }

  write(data: Uint8Array): Buffer[] {
    const out: Buffer[] = [];
    let off = 0;
    while (off < data.length) {
      // A full chunk is opened only once more input shows it is not the last one.
      if (this.#fill === this.#buf.length) out.push(this.#open(false));
      const n = Math.min(this.#buf.length - this.#fill, data.length - off);
      this.#buf.set(data.subarray(off, off + n), this.#fill);
      this.#fill += n;
      off += n;
    }
    return out;
  }

  end(): Buffer {
    if (this.#fill < STREAM_TAG) throw invalid(`the encrypted payload is truncated (chunk ${this.#counter} has ${this.#fill} bytes)`);
    if (this.#fill === STREAM_TAG && this.#counter > 0)
      throw invalid('the encrypted payload ends with an empty chunk after others, which the age format forbids');
    return this.#open(true);
  }

  #open(last: boolean): Buffer {
    const end = this.#fill - STREAM_TAG;
    let plain: Buffer;
    try {
      plain = this.#tryOpen(end, last);
    } catch (cause) {
      // A full chunk that authenticates as the final one has bytes after it.
      const what =
        !last && this.#opens(end, true) ? 'has data after its final chunk' : `fails authentication at chunk ${this.#counter} (tampered or truncated)`;
      throw invalid(`the encrypted payload ${what}`, cause);
    }
    this.#counter++;
    this.#fill = 0;
    return plain;
  }

  #tryOpen(end: number, last: boolean): Buffer {
    const decipher = createDecipheriv('chacha20-poly1305', this.#key, chunkNonce(this.#counter, last), { authTagLength: STREAM_TAG });
    decipher.setAuthTag(this.#buf.subarray(end, this.#fill));
    const plain = decipher.update(this.#buf.subarray(0, end));
    decipher.final();
    return plain;
  }

  #opens(end: number, last: boolean): boolean {
    try {
      this.#tryOpen(end, last);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Opens STREAM chunks into a buffer the caller owns and reuses, taking the plaintext as a latin1
 * string first (see StreamSealer: garbage on V8's heap, not outside it). The caller says which
 * chunk is the final one; the errors are StreamOpener's.
 */
export class StreamUnsealer {
  readonly #key: Buffer;
  #counter = 0;

  constructor(key: Uint8Array) {
    this.#key = Buffer.from(key);
  }

  /** Opens one sealed chunk (its ciphertext and tag) into `out` at `offset`; returns the plaintext bytes written. */
  open(sealed: Uint8Array, last: boolean, out: Buffer, offset: number): number {
    if (sealed.length < STREAM_TAG || sealed.length > STREAM_CHUNK + STREAM_TAG)
      throw invalid(`the encrypted payload is truncated (chunk ${this.#counter} has ${sealed.length} bytes)`);
    if (last && sealed.length === STREAM_TAG && this.#counter > 0)
      throw invalid('the encrypted payload ends with an empty chunk after others, which the age format forbids');
    const text = this.#tryOpen(sealed, last);
    if (text === undefined) {
      const what =
        !last && this.#tryOpen(sealed, true) !== undefined
          ? 'has data after its final chunk'
          : `fails authentication at chunk ${this.#counter} (tampered or truncated)`;
      throw invalid(`the encrypted payload ${what}`);
    }
    this.#counter++;
    return out.write(text, offset, 'latin1');
  }

  #tryOpen(sealed: Uint8Array, last: boolean): string | undefined {
    const end = sealed.length - STREAM_TAG;
    const decipher = createDecipheriv('chacha20-poly1305', this.#key, chunkNonce(this.#counter, last), { authTagLength: STREAM_TAG });
    decipher.setAuthTag(sealed.subarray(end));
    const text = decipher.update(sealed.subarray(0, end), undefined, 'latin1');
    try {
      decipher.final();
      return text;
    } catch {
      return undefined;
    }
  }
}

/** StreamOpener as a Transform. */
export class StreamDecrypter extends Transform {
  readonly #opener: StreamOpener;

  constructor(key: Uint8Array) {
    super();
    this.#opener = new StreamOpener(key);
  }

  override _transform(data: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      for (const b of this.#opener.write(data)) this.push(b);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      cb(null, this.#opener.end());
    } catch (err) {
      cb(err as Error);
    }
  }
}

function invalid(message: string, cause?: unknown): DecryptionError {
  return new DecryptionError(message, { code: 'AGE_PAYLOAD_INVALID', cause });
}
