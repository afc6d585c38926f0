/**
 * Byte compatibility of comms' age encryption with the reference age CLI (Debian's `age`,
 * `age-keygen`), both ways, for the empty payload, one byte, sizes around and at 64 KiB multiples
 * (where the final STREAM chunk is full), and a multi-chunk payload; `age -R` recipients files;
 * identities made by age-keygen.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { createDecryptStream, loadIdentityFiles, resolveRecipients, startEncryption } from '../../src/trust/age.ts';
import { DecryptionError } from '../../src/trust/errors.ts';
import { requireTools, skipMessage, tempDir, type TempDir } from '../support/tools.ts';

const run = promisify(execFile);

/** `age -d -i key file` → its stdout bytes (age -o creates no file for an empty plaintext). */
async function ageDecrypt(key: string, file: string): Promise<Buffer> {
  return (await run('age', ['-d', '-i', key, file], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })).stdout;
}
const K = 64 * 1024;
const SIZES = [0, 1, K - 1, K, K + 1, 2 * K, 5 * K + 123];

async function collect(t: NodeJS.ReadWriteStream, data: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(
    Readable.from(data.length === 0 ? [] : [data]),
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

const haveAge = requireTools('age', 'age-keygen');

describe('age CLI interop', { skip: haveAge ? false : skipMessage('age', 'age-keygen') }, () => {
  let dir: TempDir;
  let keyFile: string;
  let recipient: string;
  before(async () => {
    dir = await tempDir('comms-age-cli-');
    keyFile = join(dir.path, 'key.txt');
    await run('age-keygen', ['-o', keyFile]);
    recipient = (await run('age-keygen', ['-y', keyFile])).stdout.trim();
  });
  after(async () => {
    await dir.cleanup();
  });

  it('age -d -i decrypts what comms encrypts to the exact bytes, for every size class', async () => {
    for (const n of SIZES) {
      const plain = randomBytes(n);
      const enc = await startEncryption(await resolveRecipients([recipient]));
      const file = Buffer.concat([enc.prefix, await collect(enc.stream, plain)]);
      const encPath = join(dir.path, `ours-${n}.age`);
      await writeFile(encPath, file);
      assert.deepEqual(await ageDecrypt(keyFile, encPath), plain, `size ${n}`);
    }
  });

  it('comms decrypts, with an age-keygen identity file, what age -r and age -R encrypt, for every size class', async () => {
    const identities = await loadIdentityFiles([keyFile]);
    const recipientsFile = join(dir.path, 'recipients.txt');
    const other = join(dir.path, 'other.txt');
    await run('age-keygen', ['-o', other]);
    await writeFile(recipientsFile, `# bob\n${(await run('age-keygen', ['-y', other])).stdout}\n${recipient}\n`);
    for (const n of SIZES) {
      const plain = randomBytes(n);
      const plainPath = join(dir.path, `theirs-${n}.bin`);
      await writeFile(plainPath, plain);
      for (const args of [
        ['-r', recipient],
        ['-R', recipientsFile],
      ]) {
        const encPath = join(dir.path, `theirs-${n}.age`);
        await run('age', [...args, '-o', encPath, plainPath]);
        assert.deepEqual(await collect(createDecryptStream(identities), await readFile(encPath)), plain, `size ${n}, ${args[0]}`);
      }
    }
  });

  it('a recipients file as age -R reads it gives the same recipients to comms, and each identity decrypts', async () => {
    const second = join(dir.path, 'second.txt');
    await run('age-keygen', ['-o', second]);
    const secondRecipient = (await run('age-keygen', ['-y', second])).stdout.trim();
    const recipientsFile = join(dir.path, 'team.txt');
    await writeFile(recipientsFile, `# the team\n${recipient}\n\n${secondRecipient}\n`);
    const enc = await startEncryption(await resolveRecipients([recipientsFile]));
    const plain = randomBytes(K + 7);
    const encPath = join(dir.path, 'team.age');
    await writeFile(encPath, Buffer.concat([enc.prefix, await collect(enc.stream, plain)]));
    for (const key of [keyFile, second]) {
      assert.deepEqual(await ageDecrypt(key, encPath), plain);
    }
  });

  it('comms refuses a file age encrypted to someone else, and one age made and was then tampered with', async () => {
    const other = join(dir.path, 'someone.txt');
    await run('age-keygen', ['-o', other]);
    const plainPath = join(dir.path, 'p.bin');
    await writeFile(plainPath, randomBytes(3 * K));
    const encPath = join(dir.path, 'p.age');
    await run('age', ['-r', (await run('age-keygen', ['-y', other])).stdout.trim(), '-o', encPath, plainPath]);
    const identities = await loadIdentityFiles([keyFile]);
    await assert.rejects(
      collect(createDecryptStream(identities), await readFile(encPath)),
      (e: unknown) => e instanceof DecryptionError && e.code === 'AGE_NO_IDENTITY',
    );
    const mine = join(dir.path, 'mine.age');
    await run('age', ['-r', recipient, '-o', mine, plainPath]);
    const bytes = await readFile(mine);
    bytes[bytes.length - K]! ^= 0x80;
    await assert.rejects(collect(createDecryptStream(identities), bytes), (e: unknown) => e instanceof DecryptionError && e.code === 'AGE_PAYLOAD_INVALID');
  });
});
