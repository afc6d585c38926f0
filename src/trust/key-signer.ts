/**
 * The local-key signer: an ECDSA P-256 private key (PEM; PKCS#8, SEC1, or encrypted PKCS#8 with a
 * passphrase) signs the manifest bytes in process with node:crypto. No Fulcio: the verification
 * material is the public-key hint (the key id). No Rekor either, by default — as with
 * `cosign sign-blob --key … --tlog-upload=false`, because a key-signed message is trusted through
 * the verifier's copy of the public key, and uploading would publish the sender's key and message
 * digests to a public log without being asked to. `rekorURL` opts in to a transparency-log witness.
 */
import { createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Signer, Witness } from '@sigstore/sign';
import { CommsError, NotFoundError } from '../errors.ts';
import { MessageBundleV03Builder } from './bundle-builder.ts';
import { KeyError, SigningError } from './errors.ts';
import { keyIdOf } from './key-id.ts';
import { abortable } from '../util/abort.ts';
import { toSignedBundle, type MessageSigner, type SignedBundle } from './signer.ts';

export interface KeySignerOptions {
  /** Passphrase of an encrypted key. An empty string means "no passphrase". */
  passphrase?: string;
  /** Also record the signature in this Rekor log (off unless given). */
  rekorURL?: string;
}

export interface KeySigner extends MessageSigner {
  readonly kind: 'key';
  /** Hex sha256 of the public key's DER SPKI; also the bundle's key hint. */
  readonly keyId: string;
  /** The public key, PEM (SPKI): what a verifier passes as a trusted key. */
  readonly publicKeyPem: string;
}

/** Reads a PEM private key file and returns a signer. Errors name the path, never the key. */
export async function loadKeySigner(path: string, options: KeySignerOptions = {}): Promise<KeySigner> {
  let pem: Buffer;
  try {
    pem = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`private key file ${path} does not exist`, { code: 'KEY_NOT_FOUND' });
    throw new KeyError(`cannot read private key file ${path} (${code ?? 'read failed'})`, { code: 'KEY_UNREADABLE' });
  }
  return createKeySigner(pem, { ...options, source: path });
}

/** A signer from PEM text held in memory (e.g. a CI secret). */
export function createKeySigner(pem: string | Uint8Array, options: KeySignerOptions & { source?: string } = {}): KeySigner {
  const privateKey = parsePrivateKey(pem, options.passphrase, options.source ?? 'the private key');
  const keyId = keyIdOf(privateKey);
  const publicKeyPem = createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString();
  const signer: Signer = {
    sign: async (data) => ({
      signature: cryptoSign('sha256', data, privateKey),
      key: { $case: 'publicKey', publicKey: publicKeyPem, hint: keyId },
    }),
  };
  const rekorURL = options.rekorURL;
  // @sigstore/sign's Rekor client (and the HTTP stack under it) is loaded only when a witness is asked for.
  let builder: Promise<MessageBundleV03Builder> | undefined;
  const builderOf = async () => {
    const witnesses: Witness[] = [];
    if (rekorURL) {
      const { RekorWitness } = await import('@sigstore/sign');
      witnesses.push(new RekorWitness({ rekorBaseURL: rekorURL, majorApiVersion: 1 }));
    }
    return new MessageBundleV03Builder({ signer, witnesses });
  };
  return {
    kind: 'key',
    keyId,
    publicKeyPem,
    async sign(artifact: Uint8Array, signOptions: { signal?: AbortSignal } = {}): Promise<SignedBundle> {
      return abortable(
        async () => {
          try {
            builder ??= builderOf();
            return toSignedBundle(await (await builder).create({ data: Buffer.from(artifact) }));
          } catch (err) {
            if (err instanceof CommsError) throw err;
            throw rekorURL
              ? new SigningError(`recording the signature in Rekor at ${options.rekorURL} failed`, { code: 'REKOR_FAILED', cause: err })
              : new SigningError('signing with the local key failed', { code: 'SIGNING_FAILED', cause: err });
          }
        },
        signOptions.signal,
        'signing',
      );
    },
  };
}

const ENCRYPTED_PEM = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,\s*ENCRYPTED/;

/**
 * Parses and checks the key. The PEM's own labels tell an encrypted key from a plain one, so a
 * missing or wrong passphrase is reported as such. The cause keeps only OpenSSL's error code, so
 * nothing derived from the input can surface in a message.
 */
function parsePrivateKey(pem: string | Uint8Array, passphrase: string | undefined, source: string): KeyObject {
  const text = typeof pem === 'string' ? pem : Buffer.from(pem).toString('latin1');
  const encrypted = ENCRYPTED_PEM.test(text);
  const given = passphrase !== undefined && passphrase !== '';
  if (encrypted && !given) {
    throw new KeyError(`${source} is encrypted: a passphrase is required`, { code: 'KEY_PASSPHRASE_REQUIRED' });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: text, format: 'pem', ...(given ? { passphrase } : {}) });
  } catch (err) {
    const cause = new Error(`OpenSSL ${(err as { code?: string }).code ?? 'error'}`);
    if (encrypted) throw new KeyError(`cannot decrypt ${source}: wrong passphrase`, { code: 'KEY_PASSPHRASE_WRONG', cause });
    throw new KeyError(`${source} is not a PEM private key`, { code: 'KEY_INVALID', cause });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    const what =
      key.asymmetricKeyType === 'ec'
        ? `an EC key on ${key.asymmetricKeyDetails?.namedCurve ?? 'an unknown curve'}`
        : `a ${key.asymmetricKeyType ?? 'unknown'} key`;
    throw new KeyError(`${source} is ${what}: comms signs with ECDSA P-256 keys only`, { code: 'KEY_UNSUPPORTED' });
  }
  return key;
}
