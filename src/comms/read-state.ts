/**
 * Read state shared by every machine of one user: a message is read when an `accepted` receipt
 * for it says it is from me and its signature verifies as mine — signed by one of my own keys
 * (the key recv signs receipts with), or by a signer the trust policy binds to my identity. A
 * receipt anyone could have pushed (unsigned, or signed by someone else) never hides a message.
 */
import type { Descriptor } from '../oci/descriptor.ts';
import type { OperationOptions, Repository } from '../oci/target.ts';
import { Annotation, ArtifactType } from '../protocol/constants.ts';
import { senderMatches, type TrustPolicy } from '../trust/policy.ts';
import { NotFoundError, ProtocolError, VerificationError } from '../errors.ts';
import { findReferrers } from './discover.ts';
import type { TagSnapshot } from './tag-snapshot.ts';

/** How a receipt is recognised as mine. */
export interface ReadReceipts {
  /** Verifies the receipts' signatures (add my own public key to `trustedKeys`). */
  policy: TrustPolicy;
  /** Key ids (64 hex) that are mine: a receipt signed by one of them is mine. */
  myKeyIds?: string[];
}

/** Receipts from me tried per message (each costs a few requests); junk under my name cannot cost more. */
export const MAX_READ_RECEIPTS_TRIED = 4;

/**
 * The digest of my verified `accepted` receipt for `message`, or undefined when there is none.
 * Costs one referrers lookup, plus a few requests per receipt that claims to be mine.
 */
export async function readReceiptOf(
  repo: Repository,
  message: Descriptor,
  me: string,
  how: ReadReceipts,
  options: OperationOptions & { snapshot?: TagSnapshot } = {},
): Promise<string | undefined> {
  const found = await findReferrers(repo, message, {
    artifactType: ArtifactType.Receipt,
    signal: options.signal,
    ...(options.snapshot === undefined ? {} : { snapshot: options.snapshot }),
  });
  const mine = found
    .filter(
      (d) =>
        d.annotations?.[Annotation.Sender] === me &&
        d.annotations?.[Annotation.ReceiptStatus] === 'accepted' &&
        d.annotations?.[Annotation.ReceiptFor] === message.digest,
    )
    .slice(-MAX_READ_RECEIPTS_TRIED);
  const myKeys = new Set((how.myKeyIds ?? []).map((k) => k.toLowerCase()));
  for (const d of mine.reverse()) {
    try {
      const receipt = await repo.fetchManifest(d.digest, { signal: options.signal });
      // The verifier (Sigstore) is loaded only when a receipt is there to verify.
      const { verifyMessage } = await import('./verify-message.ts');
      const verified = await verifyMessage(repo, receipt.descriptor, receipt.bytes, {
        policy: how.policy,
        sender: me,
        signal: options.signal,
        ...(options.snapshot === undefined ? {} : { snapshot: options.snapshot }),
      });
      const byMyKey = verified.keyId !== undefined && myKeys.has(verified.keyId.toLowerCase());
      if (byMyKey || (verified.bound && verified.identity === me) || senderMatches(verified, me)) return d.digest;
    } catch (err) {
      // A receipt that is gone, malformed or not verifiably mine just does not count.
      if (err instanceof VerificationError || err instanceof NotFoundError || err instanceof ProtocolError) continue;
      throw err;
    }
  }
  return undefined;
}
