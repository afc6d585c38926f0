/**
 * How the CLI recognises receipts that are mine (recv and ls): verified under the trust policy
 * plus the public key of my own signing key (--key, COMMS_KEY).
 */
import type { ReadReceipts } from '../comms/read-state.ts';
import type { MessageSigner } from '../trust/signer.ts';
import type { TrustPolicy } from '../trust/verify.ts';
import { resolveSigner, type SignArgs } from './common.ts';

/** My own key signer, to recognise receipts I signed: the receipt signer, else --key / COMMS_KEY when given. */
export async function myKeySigner(args: SignArgs, signer: MessageSigner | undefined): Promise<MessageSigner | undefined> {
  if (signer !== undefined) return signer;
  if (args.key === undefined && !process.env['COMMS_KEY']) return undefined;
  return resolveSigner({ ...args, sign: true });
}

/**
 * How a receipt of mine is recognised (read on another machine): verified under the trust policy
 * plus my own public key. Undefined with neither (--no-verify and no key): then no receipt can be
 * told to be mine.
 */
export function readReceiptsOf(policy: TrustPolicy | false, mine: MessageSigner | undefined): ReadReceipts | undefined {
  const key = mine !== undefined && 'publicKeyPem' in mine && 'keyId' in mine ? (mine as MessageSigner & { publicKeyPem: string; keyId: string }) : undefined;
  // Whether the signer is me is decided by read-state.ts (my key id, or a binding to --me), not by --require-sender-match.
  const base: TrustPolicy | undefined = policy === false ? undefined : { ...policy, requireSenderMatch: false };
  if (key === undefined) return base === undefined ? undefined : { policy: base };
  return { policy: { ...base, trustedKeys: [...(base?.trustedKeys ?? []), key.publicKeyPem] }, myKeyIds: [key.keyId] };
}
