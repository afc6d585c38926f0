/**
 * age encryption (age-encryption.org/v1) of message payloads. The `age-encryption` package makes
 * and opens the header (recipient stanzas, header MAC); the payload STREAM runs on node:crypto
 * (age-stream.ts), an order of magnitude faster than the package's pure-JS cipher.
 *
 * An encrypted payload is an ordinary binary age file: `header || 16-byte nonce || STREAM`, so
 * `age -d -i KEY` opens what comms writes and comms opens what `age -r` writes.
 */
import { open, readFile } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient, type Identity, type Recipient, type Stanza } from 'age-encryption';
import { UsageError } from '../errors.ts';
import {
  PAYLOAD_NONCE_BYTES,
  STREAM_CHUNK,
  STREAM_TAG,
  StreamEncrypter,
  StreamOpener,
  StreamSealer,
  StreamUnsealer,
  payloadKey,
  streamPlaintextSize,
  streamSize,
} from './age-stream.ts';
import { DecryptionError, KeyError } from './errors.ts';

/** The first line of every age file. */
export const AGE_MAGIC = 'age-encryption.org/v1\n';
/** A header longer than this is refused (about 6000 X25519 recipients). */
export const MAX_HEADER_BYTES = 1024 * 1024;

/** Validated recipient strings (`age1…`), ready for encryption. */
export type AgeRecipients = readonly string[];
/** Validated identity strings (`AGE-SECRET-KEY-1…`), ready for decryption. Never printed. */
export type AgeIdentities = readonly string[];

/** Checks one recipient string; UsageError `AGE_RECIPIENT_INVALID` when it is not one. */
export function parseRecipient(value: string, source = 'recipient'): string {
  const s = value.trim();
  if (s.startsWith('ssh-')) {
    throw new UsageError(`${source}: SSH recipients are not supported; use an age X25519 recipient (age1…, from age-keygen)`, {
      code: 'AGE_RECIPIENT_INVALID',
    });
  }
  try {
    new Encrypter().addRecipient(s);
  } catch (cause) {
    throw new UsageError(`${source}: ${JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}…` : s)} is not an age recipient (age1…)`, {
      code: 'AGE_RECIPIENT_INVALID',
      cause,
    });
  }
  return s;
}

/** The recipients of a file as `age -R` reads it: one per line; blank lines and `#` comments skipped. */
export function parseRecipientsText(text: string, source: string): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    out.push(parseRecipient(line, `${source} line ${i + 1}`));
  }
  if (out.length === 0) throw new UsageError(`${source} holds no recipient`, { code: 'AGE_RECIPIENT_INVALID' });
  return out;
}

/**
 * `--encrypt-to` values: each an `age1…` recipient, or else the path of a recipients file.
 * Duplicates are dropped (one stanza per recipient).
 */
export async function resolveRecipients(values: readonly string[]): Promise<AgeRecipients> {
  const out: string[] = [];
  for (const v of values) {
    if (v.trim().startsWith('age1')) out.push(parseRecipient(v));
    else out.push(...parseRecipientsText(await readKeyFile(v, 'recipients file', 'AGE_RECIPIENT_INVALID'), v));
  }
  if (out.length === 0) throw new UsageError('no age recipient given', { code: 'AGE_RECIPIENT_INVALID' });
  return [...new Set(out)];
}

/** The identities in an identity file's text as age-keygen writes it (comments and blank lines skipped). */
export function parseIdentitiesText(text: string, source: string): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      if (!line.startsWith('AGE-SECRET-KEY-1')) throw new Error('not an X25519 identity');
      new Decrypter().addIdentity(line);
    } catch (cause) {
      // The line may be a secret: say where it is, never what it holds.
      throw new KeyError(`${source} line ${i + 1} is not an age identity (AGE-SECRET-KEY-1…); encrypted, armored and SSH identity files are not supported`, {
        code: 'AGE_IDENTITY_INVALID',
        cause: cause instanceof Error ? new Error(cause.message) : undefined,
      });
    }
    out.push(line);
  }
  if (out.length === 0) throw new KeyError(`${source} holds no age identity`, { code: 'AGE_IDENTITY_INVALID' });
  return out;
}

/** The identities of several identity files (`--identity`, repeatable). */
export async function loadIdentityFiles(paths: readonly string[]): Promise<AgeIdentities> {
  const out: string[] = [];
  for (const p of paths) out.push(...parseIdentitiesText(await readKeyFile(p, 'identity file', 'AGE_IDENTITY_INVALID'), p));
  return [...new Set(out)];
}

async function readKeyFile(p: string, what: string, code: 'AGE_RECIPIENT_INVALID' | 'AGE_IDENTITY_INVALID'): Promise<string> {
  try {
    return await readFile(p, 'utf8');
  } catch (cause) {
    const message = `cannot read ${what} ${p}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`;
    throw code === 'AGE_RECIPIENT_INVALID' ? new UsageError(message, { code, cause }) : new KeyError(message, { code, cause });
  }
}

// Defined beside the trust file, which needs no age code to read it.
export { ageRecipientsFor } from './trust-file.ts';

/** A new X25519 identity, with its recipient, as age-keygen makes them. */
export async function generateAgeIdentity(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

/** The recipient (`age1…`) of an identity. */
export async function recipientOf(identity: string): Promise<string> {
  return identityToRecipient(identity);
}

/** The file key, as the Encrypter hands it to its recipients; the stanzas are the others' to write. */
class FileKeyTap implements Recipient {
  fileKey: Uint8Array | undefined;
  wrapFileKey(fileKey: Uint8Array): Stanza[] {
    this.fileKey = Uint8Array.from(fileKey);
    return [];
  }
}

export interface AgeEncryption {
  /** The age header and the payload nonce: the first bytes of the encrypted payload. */
  prefix: Buffer;
  /** Encrypts the plaintext into the STREAM that follows `prefix` (use it, or sealer, once). */
  stream: Transform;
  /** The same STREAM, sealed chunk by chunk into the caller's buffers. */
  sealer: StreamSealer;
  /** The encrypted payload's size for a plaintext of `n` bytes. */
  encryptedSize(n: number): number;
}

/**
 * Starts one encryption to `recipients`: a fresh file key and nonce. The package writes the
 * header (its stanzas and MAC) by encrypting the empty payload; the file key reaches us through a
 * recipient that writes no stanza, and the empty payload's own 16-byte final chunk is dropped.
 */
export async function startEncryption(recipients: AgeRecipients): Promise<AgeEncryption> {
  if (recipients.length === 0) throw new UsageError('no age recipient given', { code: 'AGE_RECIPIENT_INVALID' });
  const encrypter = new Encrypter();
  const tap = new FileKeyTap();
  encrypter.addRecipient(tap);
  for (const r of recipients) encrypter.addRecipient(r);
  const empty = await encrypter.encrypt(new Uint8Array(0));
  const prefix = Buffer.from(empty.subarray(0, empty.length - streamSize(0)));
  if (tap.fileKey === undefined || !prefix.subarray(0, AGE_MAGIC.length).equals(Buffer.from(AGE_MAGIC))) {
    throw new Error('age-encryption did not produce an age header');
  }
  const nonce = prefix.subarray(prefix.length - PAYLOAD_NONCE_BYTES);
  const key = payloadKey(tap.fileKey, nonce);
  tap.fileKey.fill(0);
  return { prefix, stream: new StreamEncrypter(key), sealer: new StreamSealer(key), encryptedSize: (n) => prefix.length + streamSize(n) };
}

/** Chunks sealed per yielded piece of encryptFile(): pieces of about 1 MiB. */
const CHUNKS_PER_PIECE = 16;

/**
 * The encrypted payload of a file of `size` bytes: `prefix`, then the STREAM, as pieces in two
 * buffers used in turn. A piece is valid until the piece after next is requested, so the consumer
 * must be done with each piece by then (the chunk writer awaits every write, reading one ahead).
 * Memory stays at the two buffers and one read buffer, whatever the size. Throws `onChanged()`'s
 * error when the file turns out shorter or longer than `size`.
 */
export async function* encryptFile(filePath: string, size: number, enc: AgeEncryption, onChanged: (message: string) => Error): AsyncGenerator<Buffer> {
  yield enc.prefix;
  const chunks = size === 0 ? 1 : Math.ceil(size / STREAM_CHUNK);
  const input = Buffer.allocUnsafe(CHUNKS_PER_PIECE * STREAM_CHUNK);
  const outputs = [Buffer.allocUnsafe(CHUNKS_PER_PIECE * (STREAM_CHUNK + STREAM_TAG)), Buffer.allocUnsafe(CHUNKS_PER_PIECE * (STREAM_CHUNK + STREAM_TAG))];
  const fh = await open(filePath, 'r');
  try {
    if (size === 0) yield outputs[0]!.subarray(0, enc.sealer.seal(input.subarray(0, 0), true, outputs[0]!, 0));
    for (let pos = 0, chunk = 0, turn = 0; pos < size; turn ^= 1) {
      const got = Math.min(input.length, size - pos);
      for (let have = 0; have < got; ) {
        const { bytesRead } = await fh.read(input, have, got - have, pos + have);
        if (bytesRead === 0) throw onChanged(`${filePath} ended at ${pos + have} bytes, not the ${size} it had when sending began`);
        have += bytesRead;
      }
      // The input buffer holds whole STREAM chunks, so its pieces start on chunk boundaries.
      const out = outputs[turn]!;
      let n = 0;
      for (let off = 0; off < got; off += STREAM_CHUNK, chunk++) {
        n += enc.sealer.seal(input.subarray(off, Math.min(off + STREAM_CHUNK, got)), chunk === chunks - 1, out, n);
      }
      pos += got;
      yield out.subarray(0, n);
    }
    const { bytesRead } = await fh.read(input, 0, 1, size);
    if (bytesRead > 0) throw onChanged(`${filePath} grew while it was being sent: it had ${size} bytes`);
  } finally {
    await fh.close();
  }
}

/** Encrypts a small value (a filename) whole. */
export async function encryptBytes(plain: Uint8Array, recipients: AgeRecipients): Promise<Buffer> {
  const enc = await startEncryption(recipients);
  const parts: Buffer[] = [enc.prefix];
  enc.stream.on('data', (b: Buffer) => parts.push(b));
  const done = new Promise<void>((resolve, reject) => {
    enc.stream.on('end', resolve);
    enc.stream.on('error', reject);
  });
  enc.stream.end(plain);
  await done;
  return Buffer.concat(parts);
}

/** Decrypts a small value (a filename) whole; the errors of createDecryptStream(). */
export async function decryptBytes(encrypted: Uint8Array, identities: AgeIdentities): Promise<Buffer> {
  const d = createDecryptStream(identities);
  const parts: Buffer[] = [];
  d.on('data', (b: Buffer) => parts.push(b));
  const done = new Promise<void>((resolve, reject) => {
    d.on('end', resolve);
    d.on('error', reject);
  });
  d.end(encrypted);
  await done;
  return Buffer.concat(parts);
}

/**
 * Decrypts the age file at `from` into the new file `to` (created 0600, never replacing one),
 * through reused buffers: memory stays flat however large it is. Returns the plaintext's size.
 * Errors as createDecryptStream(); `to` may then hold part of the plaintext, which the caller
 * removes.
 */
export async function decryptFileTo(from: string, to: string, identities: AgeIdentities, signal?: AbortSignal): Promise<number> {
  const src = await open(from, 'r');
  try {
    const size = (await src.stat()).size;
    const head = Buffer.allocUnsafe(Math.min(size, MAX_HEADER_BYTES + PAYLOAD_NONCE_BYTES));
    const { bytesRead } = await src.read(head, 0, head.length, 0);
    const magic = Buffer.from(AGE_MAGIC);
    if (bytesRead < magic.length || !head.subarray(0, magic.length).equals(magic))
      throw headerInvalid('the payload is not an age file (no age-encryption.org/v1 header)');
    const mac = head.subarray(0, bytesRead).indexOf('\n--- ');
    const nl = mac === -1 ? -1 : head.subarray(0, bytesRead).indexOf('\n', mac + 1);
    if (nl === -1)
      throw headerInvalid(bytesRead < size ? `the age header is longer than ${MAX_HEADER_BYTES} bytes` : 'the encrypted payload ends inside its age header');
    const start = nl + 1 + PAYLOAD_NONCE_BYTES;
    if (start > bytesRead) throw headerInvalid('the encrypted payload ends before its nonce');
    const fileKey = await unwrapHeader(head.subarray(0, nl + 1), identities);
    const unsealer = new StreamUnsealer(payloadKey(fileKey, head.subarray(nl + 1, start)));
    fileKey.fill(0);
    const sealedChunk = STREAM_CHUNK + STREAM_TAG;
    const streamBytes = size - start;
    const chunks = Math.max(1, Math.ceil(streamBytes / sealedChunk));
    const input = Buffer.allocUnsafe(CHUNKS_PER_PIECE * sealedChunk);
    const output = Buffer.allocUnsafe(CHUNKS_PER_PIECE * STREAM_CHUNK);
    const dst = await open(to, 'wx', 0o600);
    try {
      let written = 0;
      for (let pos = 0, chunk = 0; chunk < chunks; ) {
        if (signal?.aborted === true) throw signal.reason;
        const want = Math.min(input.length, streamBytes - pos);
        for (let have = 0; have < want; ) {
          const r = await src.read(input, have, want - have, start + pos + have);
          if (r.bytesRead === 0) throw new DecryptionError('the encrypted payload changed while it was being decrypted', { code: 'AGE_PAYLOAD_INVALID' });
          have += r.bytesRead;
        }
        let n = 0;
        for (let off = 0; chunk < chunks && (off < want || want === 0); off += sealedChunk, chunk++) {
          n += unsealer.open(input.subarray(off, Math.min(off + sealedChunk, want)), chunk === chunks - 1, output, n);
        }
        pos += want;
        for (let done = 0; done < n; ) done += (await dst.write(output, done, n - done, written + done)).bytesWritten;
        written += n;
      }
      return written;
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

/** Marks that every identity before it found no stanza of its own. */
class NoMatchProbe implements Identity {
  reached = false;
  unwrapFileKey(): null {
    this.reached = true;
    return null;
  }
}

/** The file key of an age header (its bytes up to and including the MAC line). */
export async function unwrapHeader(header: Uint8Array, identities: AgeIdentities): Promise<Uint8Array> {
  if (identities.length === 0) throw new DecryptionError('the message is encrypted and no age identity was given', { code: 'AGE_NO_IDENTITY' });
  const decrypter = new Decrypter();
  for (const id of identities) decrypter.addIdentity(id);
  const probe = new NoMatchProbe();
  decrypter.addIdentity(probe);
  try {
    return await decrypter.decryptHeader(header);
  } catch (cause) {
    if (probe.reached) throw new DecryptionError('none of the age identities given is a recipient of this message', { code: 'AGE_NO_IDENTITY', cause });
    throw new DecryptionError('the age header is malformed or its MAC does not check (tampered?)', { code: 'AGE_HEADER_INVALID', cause });
  }
}

/**
 * Decrypts an age file streamed through it: reads the header (at most MAX_HEADER_BYTES), unwraps
 * the file key with the first identity that is a recipient, then opens the STREAM. Errors are
 * DecryptionError: `AGE_NO_IDENTITY`, `AGE_HEADER_INVALID`, `AGE_PAYLOAD_INVALID`. What it emitted
 * before an error must be discarded.
 */
export function createDecryptStream(identities: AgeIdentities): Transform {
  return new AgeDecryptStream(identities);
}

class AgeDecryptStream extends Transform {
  readonly #identities: AgeIdentities;
  /** Bytes before the STREAM, kept until the header and nonce are complete. */
  #head: Buffer = Buffer.alloc(0);
  #opener: StreamOpener | undefined;

  constructor(identities: AgeIdentities) {
    super();
    this.#identities = identities;
  }

  override _transform(data: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#opener !== undefined) {
      this.#write(data, cb);
      return;
    }
    this.#head = Buffer.concat([this.#head, data]);
    this.#tryStart().then(
      (rest) => (rest === undefined ? cb() : this.#write(rest, cb)),
      (err: unknown) => cb(err as Error),
    );
  }

  override _flush(cb: TransformCallback): void {
    if (this.#opener === undefined) {
      cb(headerInvalid(this.#headerEnd() === -1 ? 'the encrypted payload ends inside its age header' : 'the encrypted payload ends before its nonce'));
      return;
    }
    try {
      cb(null, this.#opener.end());
    } catch (err) {
      cb(err as Error);
    }
  }

  #write(data: Buffer, cb: TransformCallback): void {
    try {
      for (const b of this.#opener!.write(data)) this.push(b);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  /** Index just past the header's MAC line, or -1 while it is incomplete. */
  #headerEnd(): number {
    const mac = this.#head.indexOf('\n--- ');
    if (mac === -1) return -1;
    const nl = this.#head.indexOf('\n', mac + 1);
    return nl === -1 ? -1 : nl + 1;
  }

  /** Once the header and nonce are in: the opener, and the STREAM bytes that came with them. */
  async #tryStart(): Promise<Buffer | undefined> {
    const head = this.#head;
    const magic = Buffer.from(AGE_MAGIC);
    const n = Math.min(head.length, magic.length);
    if (!head.subarray(0, n).equals(magic.subarray(0, n))) throw headerInvalid('the payload is not an age file (no age-encryption.org/v1 header)');
    const end = this.#headerEnd();
    if (end === -1) {
      if (head.length > MAX_HEADER_BYTES) throw headerInvalid(`the age header is longer than ${MAX_HEADER_BYTES} bytes`);
      return undefined;
    }
    if (head.length < end + PAYLOAD_NONCE_BYTES) return undefined;
    const fileKey = await unwrapHeader(head.subarray(0, end), this.#identities);
    this.#opener = new StreamOpener(payloadKey(fileKey, head.subarray(end, end + PAYLOAD_NONCE_BYTES)));
    fileKey.fill(0);
    this.#head = Buffer.alloc(0);
    return head.subarray(end + PAYLOAD_NONCE_BYTES);
  }
}

function headerInvalid(message: string): DecryptionError {
  return new DecryptionError(message, { code: 'AGE_HEADER_INVALID' });
}

/** The plaintext size of an encrypted payload of `n` bytes whose header and nonce take `prefix`. */
export function plaintextSize(n: number, prefix: number): number | undefined {
  return n < prefix ? undefined : streamPlaintextSize(n - prefix);
}
