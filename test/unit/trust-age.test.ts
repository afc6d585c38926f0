/**
 * The age module: the STREAM on node:crypto round-trips every size class (empty, one byte, around
 * and at 64 KiB multiples), agrees with the age-encryption package's own implementation in both
 * directions, and refuses tampered, truncated, extended and mis-addressed payloads with typed
 * errors; recipient and identity parsing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { Decrypter, Encrypter } from 'age-encryption';
import { ExitCode, UsageError } from '../../src/errors.ts';
import {
  createDecryptStream,
  decryptBytes,
  decryptFileTo,
  encryptBytes,
  encryptFile,
  generateAgeIdentity,
  loadIdentityFiles,
  parseIdentitiesText,
  parseRecipientsText,
  plaintextSize,
  resolveRecipients,
  startEncryption,
} from '../../src/trust/age.ts';
import { STREAM_CHUNK, STREAM_TAG, payloadKey, StreamEncrypter, streamPlaintextSize, streamSize } from '../../src/trust/age-stream.ts';
import { DecryptionError, KeyError } from '../../src/trust/errors.ts';

const K = STREAM_CHUNK;
const SIZES = [0, 1, K - 1, K, K + 1, 2 * K, 3 * K + 5];

/** Feeds `data` in pieces of `piece` bytes (odd sizes cross chunk boundaries) through `t`. */
async function through(t: NodeJS.ReadWriteStream, data: Uint8Array, piece = 7777): Promise<Buffer> {
  const parts: Buffer[] = [];
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += piece) pieces.push(Buffer.from(data.subarray(i, i + piece)));
  await pipeline(
    Readable.from(pieces),
    t,
    new Writable({
      write(c: Buffer, _e, cb) {
        parts.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(parts);
}

async function encrypt(plain: Uint8Array, recipients: string[], piece?: number): Promise<Buffer> {
  const enc = await startEncryption(recipients);
  const body = await through(enc.stream, plain, piece);
  const out = Buffer.concat([enc.prefix, body]);
  assert.equal(out.length, enc.encryptedSize(plain.length), 'encryptedSize() predicts the size');
  return out;
}

function decrypt(file: Uint8Array, identities: string[], piece?: number): Promise<Buffer> {
  return through(createDecryptStream(identities), file, piece);
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<DecryptionError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof DecryptionError, `expected DecryptionError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code);
  assert.equal(caught.exitCode, ExitCode.VERIFICATION);
  return caught;
}

/** Offset of the STREAM in an encrypted file (just past the header and nonce). */
function streamStart(file: Buffer): number {
  const mac = file.indexOf('\n--- ');
  return file.indexOf('\n', mac + 1) + 1 + 16;
}

describe('age STREAM on node:crypto', () => {
  let alice: { identity: string; recipient: string };
  let bob: { identity: string; recipient: string };
  before(async () => {
    alice = await generateAgeIdentity();
    bob = await generateAgeIdentity();
  });

  it('round-trips every size class, fed in pieces that cross chunk boundaries', async () => {
    for (const n of SIZES) {
      const plain = randomBytes(n);
      for (const piece of [1000, K, 3 * K]) {
        const file = await encrypt(plain, [alice.recipient], piece);
        assert.equal(streamPlaintextSize(file.length - streamStart(file)), n);
        assert.deepEqual(await decrypt(file, [alice.identity], piece), plain, `size ${n}, pieces of ${piece}`);
      }
    }
  });

  it('writes the STREAM the spec defines: full final chunk on exact multiples, one empty chunk for the empty payload', () => {
    assert.equal(streamSize(0), STREAM_TAG);
    assert.equal(streamSize(K), K + STREAM_TAG, 'an exact multiple has no extra empty chunk');
    assert.equal(streamSize(K + 1), K + 1 + 2 * STREAM_TAG);
    assert.equal(streamPlaintextSize(K + STREAM_TAG + STREAM_TAG), undefined, 'an empty chunk after others is no valid size');
    assert.equal(streamPlaintextSize(STREAM_TAG - 1), undefined);
  });

  it('is what the age-encryption package decrypts, and decrypts what it encrypts', async () => {
    for (const n of SIZES) {
      const plain = randomBytes(n);
      const ours = await encrypt(plain, [alice.recipient]);
      const d = new Decrypter();
      d.addIdentity(alice.identity);
      assert.deepEqual(Buffer.from(await d.decrypt(ours)), plain, `package decrypts ours, size ${n}`);
      const e = new Encrypter();
      e.addRecipient(alice.recipient);
      const theirs = await e.encrypt(plain);
      assert.deepEqual(await decrypt(theirs, [alice.identity]), plain, `we decrypt the package's, size ${n}`);
    }
  });

  it('decrypts for any of several recipients, with any matching identity among several', async () => {
    const plain = randomBytes(1000);
    const file = await encrypt(plain, [alice.recipient, bob.recipient]);
    assert.deepEqual(await decrypt(file, [bob.identity]), plain);
    const other = await generateAgeIdentity();
    assert.deepEqual(await decrypt(file, [other.identity, alice.identity]), plain);
  });

  it("refuses another recipient's identity, and no identity, as AGE_NO_IDENTITY", async () => {
    const file = await encrypt(randomBytes(100), [alice.recipient]);
    await rejectsWith(decrypt(file, [bob.identity]), 'AGE_NO_IDENTITY');
    await rejectsWith(decrypt(file, []), 'AGE_NO_IDENTITY');
  });

  it('refuses a flipped byte in any chunk, and emits nothing of the chunk that fails', async () => {
    const plain = randomBytes(3 * K + 5);
    const file = await encrypt(plain, [alice.recipient]);
    const start = streamStart(file);
    for (const at of [start, start + K + STREAM_TAG + 10, file.length - 1]) {
      const bad = Buffer.from(file);
      bad[at]! ^= 1;
      const d = createDecryptStream([alice.identity]);
      const got: Buffer[] = [];
      d.on('data', (b: Buffer) => got.push(b));
      await rejectsWith(pipeline(Readable.from([bad]), d), 'AGE_PAYLOAD_INVALID');
      const chunk = Math.floor((at - start) / (K + STREAM_TAG));
      assert.ok(Buffer.concat(got).length <= chunk * K, 'no plaintext of or after the failing chunk');
    }
  });

  it('refuses a payload cut at a chunk boundary, cut inside a chunk, or with bytes appended', async () => {
    const file = await encrypt(randomBytes(2 * K), [alice.recipient]);
    const start = streamStart(file);
    await rejectsWith(decrypt(file.subarray(0, start + K + STREAM_TAG), [alice.identity]), 'AGE_PAYLOAD_INVALID');
    await rejectsWith(decrypt(file.subarray(0, file.length - 100), [alice.identity]), 'AGE_PAYLOAD_INVALID');
    await rejectsWith(decrypt(file.subarray(0, start + 5), [alice.identity]), 'AGE_PAYLOAD_INVALID');
    await rejectsWith(decrypt(Buffer.concat([file, Buffer.from('x')]), [alice.identity]), 'AGE_PAYLOAD_INVALID');
  });

  it('refuses a final chunk that is empty after full ones', async () => {
    // A STREAM whose writer wrongly closes an exact multiple with an extra empty chunk.
    const enc = await startEncryption([alice.recipient]);
    const nonce = enc.prefix.subarray(enc.prefix.length - 16);
    const d = new Decrypter();
    d.addIdentity(alice.identity);
    const fileKey = await d.decryptHeader(enc.prefix.subarray(0, enc.prefix.length - 16));
    const key = payloadKey(fileKey, nonce);
    const { createCipheriv } = await import('node:crypto');
    const seal = (data: Buffer, counter: number, last: boolean) => {
      const n = Buffer.alloc(12);
      n.writeUIntBE(counter, 5, 6);
      n[11] = last ? 1 : 0;
      const c = createCipheriv('chacha20-poly1305', key, n, { authTagLength: 16 });
      return Buffer.concat([c.update(data), c.final(), c.getAuthTag()]);
    };
    const file = Buffer.concat([enc.prefix, seal(randomBytes(K), 0, false), seal(Buffer.alloc(0), 1, true)]);
    const err = await rejectsWith(decrypt(file, [alice.identity]), 'AGE_PAYLOAD_INVALID');
    assert.match(err.message, /empty chunk/);
    // The same chunks with the full one marked last decrypt: the refusal is about the empty chunk.
    const good = Buffer.concat([enc.prefix, seal(Buffer.alloc(K, 1), 0, true)]);
    assert.deepEqual(await decrypt(good, [alice.identity]), Buffer.alloc(K, 1));
  });

  it('refuses a header whose MAC was changed, a payload that is not age at all, and an endless header', async () => {
    const file = await encrypt(randomBytes(10), [alice.recipient]);
    const macAt = file.indexOf('\n--- ') + 6;
    const badMac = Buffer.from(file);
    badMac[macAt] = badMac[macAt] === 0x41 ? 0x42 : 0x41;
    await rejectsWith(decrypt(badMac, [alice.identity]), 'AGE_HEADER_INVALID');
    await rejectsWith(decrypt(Buffer.from('hello, plain text\n'), [alice.identity]), 'AGE_HEADER_INVALID');
    await rejectsWith(decrypt(file.subarray(0, 30), [alice.identity]), 'AGE_HEADER_INVALID');
    await rejectsWith(
      decrypt(Buffer.concat([Buffer.from('age-encryption.org/v1\n'), Buffer.alloc(2 * 1024 * 1024, 0x61)]), [alice.identity], K),
      'AGE_HEADER_INVALID',
    );
  });

  it('encrypts and decrypts small values whole (the filename)', async () => {
    const enc = await encryptBytes(Buffer.from('report.pdf'), [alice.recipient]);
    assert.equal((await decryptBytes(enc, [alice.identity])).toString(), 'report.pdf');
    await rejectsWith(decryptBytes(enc, [bob.identity]), 'AGE_NO_IDENTITY');
  });

  it('gives a fresh file key and nonce to every encryption', async () => {
    const a = await encrypt(Buffer.from('same'), [alice.recipient]);
    const b = await encrypt(Buffer.from('same'), [alice.recipient]);
    assert.notDeepEqual(a, b);
    assert.equal(plaintextSize(a.length, streamStart(a)), 4);
  });

  it('encryptFile() seals a file into reused buffers: the same age file, for sizes around its 1 MiB pieces; a file that changed size is refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'comms-age-file-'));
    try {
      for (const n of [0, 1, K, 16 * K - 1, 16 * K, 16 * K + 1, 33 * K + 7]) {
        const plain = randomBytes(n);
        const file = join(dir, `p-${n}`);
        await writeFile(file, plain);
        const enc = await startEncryption([alice.recipient]);
        // Copy each piece before asking for the one after next, as the chunk writer consumes them.
        const pieces: Buffer[] = [];
        for await (const piece of encryptFile(file, n, enc, (m) => new Error(m))) pieces.push(Buffer.from(piece));
        const out = Buffer.concat(pieces);
        assert.equal(out.length, enc.encryptedSize(n));
        assert.deepEqual(await decrypt(out, [alice.identity]), plain, `size ${n}`);
      }
      const file = join(dir, 'short');
      await writeFile(file, randomBytes(100));
      const enc = await startEncryption([alice.recipient]);
      await assert.rejects(async () => {
        for await (const _ of encryptFile(file, 200, enc, (m) => new Error(`changed: ${m}`)));
      }, /changed: .* ended at 100 bytes/);
      const enc2 = await startEncryption([alice.recipient]);
      await assert.rejects(async () => {
        for await (const _ of encryptFile(file, 50, enc2, (m) => new Error(`changed: ${m}`)));
      }, /changed: .* grew/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('decryptFileTo() opens an age file into a new file through reused buffers, and refuses what createDecryptStream refuses', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'comms-age-dec-'));
    try {
      let i = 0;
      const attempt = async (file: Buffer, ids: string[]) => {
        const from = join(dir, `in-${i}`);
        const to = join(dir, `out-${i++}`);
        await writeFile(from, file);
        const n = await decryptFileTo(from, to, ids);
        const got = await readFile(to);
        assert.equal(got.length, n);
        return got;
      };
      for (const n of [0, 1, K, 16 * K, 16 * K + 1, 33 * K + 7]) {
        const plain = randomBytes(n);
        assert.deepEqual(await attempt(await encrypt(plain, [alice.recipient]), [alice.identity]), plain, `size ${n}`);
      }
      const file = await encrypt(randomBytes(20 * K), [alice.recipient]);
      const start = streamStart(file);
      const flipped = Buffer.from(file);
      flipped[start + 17 * (K + STREAM_TAG) + 3]! ^= 1;
      await rejectsWith(attempt(flipped, [alice.identity]), 'AGE_PAYLOAD_INVALID');
      await rejectsWith(attempt(file.subarray(0, start + 16 * (K + STREAM_TAG)), [alice.identity]), 'AGE_PAYLOAD_INVALID');
      await rejectsWith(attempt(file.subarray(0, start + 5), [alice.identity]), 'AGE_PAYLOAD_INVALID');
      await rejectsWith(attempt(Buffer.concat([file, Buffer.from('x')]), [alice.identity]), 'AGE_PAYLOAD_INVALID');
      await rejectsWith(attempt(file, [bob.identity]), 'AGE_NO_IDENTITY');
      await rejectsWith(attempt(file.subarray(0, 40), [alice.identity]), 'AGE_HEADER_INVALID');
      await rejectsWith(attempt(Buffer.from('not age\n'), [alice.identity]), 'AGE_HEADER_INVALID');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('StreamEncrypter seals the empty input as one 16-byte final chunk', async () => {
    const out = await through(new StreamEncrypter(randomBytes(32)), Buffer.alloc(0));
    assert.equal(out.length, STREAM_TAG);
  });
});

describe('age recipients and identities', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'comms-age-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a recipients file as age -R does: comments and blank lines skipped, duplicates merged', async () => {
    const a = await generateAgeIdentity();
    const b = await generateAgeIdentity();
    const file = join(dir, 'recipients.txt');
    await writeFile(file, `# team\n${a.recipient}\n\n  ${b.recipient}  \n# again\n${a.recipient}\n`);
    assert.deepEqual(await resolveRecipients([file, b.recipient]), [a.recipient, b.recipient]);
  });

  it('refuses a malformed recipient, an SSH recipient, an empty recipients file, a missing file (exit 4)', async () => {
    for (const [text, re] of [
      ['age1notakey', /not an age recipient/],
      ['ssh-ed25519 AAAAC3Nza', /SSH recipients are not supported/],
      ['# nothing\n', /holds no recipient/],
    ] as const) {
      const err = (() => {
        try {
          parseRecipientsText(text, 'r.txt');
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      assert.ok(err instanceof UsageError, text);
      assert.equal(err.code, 'AGE_RECIPIENT_INVALID');
      assert.match(err.message, re);
    }
    await assert.rejects(resolveRecipients([join(dir, 'missing.txt')]), (e: unknown) => e instanceof UsageError && e.exitCode === ExitCode.PROTOCOL);
  });

  it('reads identities from an age-keygen style file, and never echoes a bad line', async () => {
    const a = await generateAgeIdentity();
    const text = `# created: 2026-12-01T00:00:00Z\n# public key: ${a.recipient}\n${a.identity}\n`;
    assert.deepEqual(parseIdentitiesText(text, 'k.txt'), [a.identity]);
    const file = join(dir, 'key.txt');
    await writeFile(file, text);
    assert.deepEqual(await loadIdentityFiles([file, file]), [a.identity]);
    const secretish = `${a.identity.slice(0, -2)}QQ`;
    for (const bad of [secretish, 'AGE-PLUGIN-YUBIKEY-1XYZ', '-----BEGIN OPENSSH PRIVATE KEY-----', '']) {
      let caught: unknown;
      try {
        parseIdentitiesText(bad, 'k.txt');
      } catch (e) {
        caught = e;
      }
      assert.ok(caught instanceof KeyError, bad);
      assert.equal(caught.code, 'AGE_IDENTITY_INVALID');
      if (bad !== '') assert.ok(!caught.message.includes(bad), 'the message does not contain the line');
    }
  });
});
