/**
 * Who an artifact says it is from (`dockercomms.sender`) when the caller does not say: the
 * identity the trust file binds your signer to, else `COMMS_SENDER`, else the keyless
 * certificate's identity. Never a made-up `user@host`: a sender nobody can verify is a claim a
 * reply would be sent to and never found.
 */
import type { MessageSigner } from '../trust/signer.ts';
import type { TrustFile } from '../trust/trust-file.ts';
import { UsageError } from '../errors.ts';

export interface SenderOptions {
  sender?: string | undefined;
  signer?: MessageSigner | undefined;
  trust?: TrustFile | undefined;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal | undefined;
}

export async function resolveSender(options: SenderOptions): Promise<string> {
  if (options.sender !== undefined) {
    if (options.sender === '') throw new UsageError('sender must not be empty', { code: 'NO_SENDER', option: 'sender' });
    return options.sender;
  }
  const { signer, trust } = options;
  let keyless: { identity: string; issuer: string } | undefined;
  if (signer !== undefined && isKeyless(signer)) keyless = await signer.certificateIdentity({ signal: options.signal });
  if (trust !== undefined && signer !== undefined) {
    const keyId = (signer as { keyId?: unknown }).keyId;
    const bound =
      typeof keyId === 'string' ? trust.identitiesOfKey(keyId) : keyless !== undefined ? trust.identitiesOfCertificate(keyless.identity, keyless.issuer) : [];
    if (bound.length === 1) return bound[0]!;
    if (bound.length > 1) {
      throw new UsageError(`sender: the signer is bound to ${bound.map((b) => JSON.stringify(b)).join(', ')} in ${trust.path ?? 'the trust file'}; name one`, {
        code: 'SENDER_AMBIGUOUS',
        option: 'sender',
      });
    }
  }
  const env = (options.env ?? process.env)['COMMS_SENDER'];
  if (env !== undefined && env !== '') return env;
  if (keyless !== undefined) return keyless.identity;
  // Never a made-up user@host: a reply to it would go where nobody reads.
  throw new UsageError('sender is unknown: name it, set COMMS_SENDER, or bind the signing key to an identity in the trust file', {
    code: 'NO_SENDER',
    option: 'sender',
  });
}

function isKeyless(
  s: MessageSigner,
): s is MessageSigner & { certificateIdentity(o?: { signal?: AbortSignal }): Promise<{ identity: string; issuer: string }> } {
  return s.kind === 'keyless' && typeof (s as { certificateIdentity?: unknown }).certificateIdentity === 'function';
}
