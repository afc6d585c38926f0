import { createHash, createPublicKey, type KeyObject } from 'node:crypto';

/**
 * The key id comms shows and puts in a bundle's `publicKey.hint`: the lowercase hex sha256 of the
 * public key's DER SubjectPublicKeyInfo, so anyone holding the .pub file can recompute it
 * (`openssl pkey -pubin -in key.pub -outform DER | sha256sum`).
 */
export function keyIdOf(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return createHash('sha256').update(der).digest('hex');
}
