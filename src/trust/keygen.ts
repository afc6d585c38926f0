/**
 * `comms keygen`: writes an ECDSA P-256 key pair as PEM — the private key as PKCS#8 (encrypted
 * with AES-256-CBC under PBKDF2 when a passphrase is given, which `openssl pkey` also reads), the
 * public key as SPKI (the same `-----BEGIN PUBLIC KEY-----` form as cosign.pub).
 *
 * It never overwrites: if either file exists it throws KeyError `KEY_EXISTS` (exit 1 — a refusal,
 * not a protocol or format error) and leaves the disk exactly as it was, not even writing the
 * other file. Files are created with O_EXCL ('wx'), so two concurrent keygens cannot both win.
 */
import { generateKeyPairSync } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UsageError } from '../errors.ts';
import { KeyError } from './errors.ts';
import { keyIdOf } from './key-id.ts';
import { generateAgeIdentity } from './age.ts';

export interface GenerateKeyPairOptions {
  privateKeyPath: string;
  publicKeyPath: string;
  /** Encrypts the private key. An empty string means "no passphrase". */
  passphrase?: string;
}

export async function generateKeyPair(options: GenerateKeyPairOptions): Promise<{ keyId: string }> {
  const { privateKeyPath, publicKeyPath, passphrase } = options;
  if (resolve(privateKeyPath) === resolve(publicKeyPath)) {
    throw new UsageError('the private and public key paths must differ');
  }
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privatePem =
    passphrase === undefined || passphrase === ''
      ? privateKey.export({ format: 'pem', type: 'pkcs8' })
      : privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase });
  const publicPem = publicKey.export({ format: 'pem', type: 'spki' });

  const privateFile = await create(privateKeyPath, 0o600);
  let publicFile: FileHandle | undefined;
  try {
    publicFile = await create(publicKeyPath, 0o644);
    await fill(privateFile, privatePem, 0o600);
    await fill(publicFile, publicPem, 0o644);
    await privateFile.close();
    await publicFile.close();
  } catch (err) {
    // Nothing partial is left behind: remove whatever this call created.
    await privateFile.close().catch(() => {});
    await unlink(privateKeyPath).catch(() => {});
    if (publicFile) {
      await publicFile.close().catch(() => {});
      await unlink(publicKeyPath).catch(() => {});
    }
    throw err;
  }
  return { keyId: keyIdOf(publicKey) };
}

/**
 * Writes a new age X25519 identity to `path` (mode 0600, never overwriting) in age-keygen's
 * format — `# created:`, `# public key: age1…`, the `AGE-SECRET-KEY-1…` line — so `age -d -i` and
 * `comms recv --identity` both read it. Returns the recipient others encrypt to.
 */
export async function generateAgeIdentityFile(path: string, now: Date = new Date()): Promise<{ recipient: string }> {
  const { identity, recipient } = await generateAgeIdentity();
  const text = `# created: ${now.toISOString().replace(/\.\d{3}Z$/, 'Z')}\n# public key: ${recipient}\n${identity}\n`;
  const file = await create(path, 0o600);
  try {
    await fill(file, text, 0o600);
    await file.close();
  } catch (err) {
    await file.close().catch(() => {});
    await unlink(path).catch(() => {});
    throw err;
  }
  return { recipient };
}

async function create(path: string, mode: number): Promise<FileHandle> {
  try {
    return await open(path, 'wx', mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new KeyError(`${path} already exists: keygen never overwrites a key; move it away or choose another path`, {
        code: 'KEY_EXISTS',
      });
    }
    throw new KeyError(`cannot create ${path} (${code ?? 'open failed'})`, { code: 'KEY_WRITE_FAILED', cause: err });
  }
}

async function fill(file: FileHandle, text: string | Buffer, mode: number): Promise<void> {
  // The umask may have narrowed the creation mode; set it exactly.
  await file.chmod(mode);
  await file.writeFile(text);
  await file.sync();
}
