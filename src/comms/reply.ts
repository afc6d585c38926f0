/**
 * reply: a message whose `subject` is the message it answers (SPEC §3.4). It gets its own inbox
 * tag for its recipient — by default the VERIFIED sender of the original — so it arrives like any
 * message, and it is listed as a referrer of the original.
 *
 * The original's `dockercomms.sender` is a claim anyone who can push could have written; a reply
 * sent to it unverified could go to whoever forged it. So without an explicit recipient the
 * original is verified under `policy` and the reply goes to its verified sender; an original whose
 * sender is not verified is refused (exit 2), unless the caller accepts the claim explicitly
 * (`unverifiedRecipient: true`, the CLI's --no-verify).
 */
import type { Descriptor } from '../oci/descriptor.ts';
import { parseDigest } from '../oci/digest.ts';
import { ExtensionAnnotation } from '../protocol/constants.ts';
import { parseMessageManifest } from '../protocol/validate.ts';
import type { TrustPolicy } from '../trust/verify.ts';
import { UsageError, VerificationError } from '../errors.ts';
import { ageRecipientsFor } from '../trust/trust-file.ts';
import { checkSigning, send, sendAuditReceipt, type SendOptions, type SendResult } from './send.ts';
import { prepareAuditDir, writeAuditReceipt } from './audit.ts';
import { describeVerdict, verifyArtifact, type Verdict } from './verdict.ts';

export interface ReplyOptions extends Omit<SendOptions, 'recipient' | 'subject'> {
  /** Digest of the message being answered. */
  inReplyTo?: string;
  /** @deprecated the old name of `inReplyTo`. */
  to?: string;
  /** Who the reply is for. Default: the original's sender, verified under `policy`. */
  recipient?: string;
  /** Verifies the original's sender, the default recipient. */
  policy?: TrustPolicy;
  /** Send to the original's claimed sender without verifying it (explicitly). */
  unverifiedRecipient?: boolean;
}

export interface ReplyResult extends SendResult {
  inReplyTo: string;
  recipient: string;
  /** The verdict on the original when it was verified to find the recipient. */
  original?: Verdict;
}

export async function reply(options: ReplyOptions): Promise<ReplyResult> {
  const startedAt = new Date();
  const inReplyTo = options.inReplyTo ?? options.to;
  if (inReplyTo === undefined) throw new UsageError('reply: options.inReplyTo (the digest of the message answered) is required');
  if (options.inReplyTo !== undefined && options.to !== undefined && options.to !== options.inReplyTo) {
    throw new UsageError('reply: options.inReplyTo and options.to name different messages');
  }
  parseDigest(inReplyTo);
  checkSigning(options, 'reply');
  if (options.recipient === undefined && options.policy === undefined && options.unverifiedRecipient !== true) {
    throw new UsageError('reply: a reply goes to the verified sender of the message: pass options.policy, or an explicit options.recipient', {
      code: 'NO_TRUST_POLICY',
    });
  }
  if (options.auditDir !== undefined) await prepareAuditDir(options.auditDir);
  const original = await options.repository.fetchManifest(inReplyTo, { signal: options.signal });
  const info = parseMessageManifest(original.bytes);
  const subject: Descriptor = { mediaType: original.descriptor.mediaType, digest: original.descriptor.digest, size: original.descriptor.size };
  let recipient = options.recipient;
  let verdict: Verdict | undefined;
  if (recipient === undefined) {
    if (options.policy !== undefined) {
      verdict = await verifyArtifact(options.repository, original.descriptor, original.bytes, options.policy, { signal: options.signal });
      if (!verdict.verified || !verdict.senderVerified) {
        throw new VerificationError(
          `cannot reply to ${inReplyTo}: its sender ${JSON.stringify(info.sender)} is not verified (${describeVerdict(verdict)}); name the recipient explicitly if you mean it`,
          { code: 'SENDER_UNVERIFIED' },
        );
      }
    }
    recipient = info.sender;
  }
  const annotations = {
    ...options.annotations,
    [ExtensionAnnotation.ReplyTo]: original.descriptor.digest,
    // A conversation keeps the id of its first message; a reply to a v1.0 message starts one.
    [ExtensionAnnotation.ThreadId]: info.threadId ?? info.messageId,
  };
  // A reply to an encrypted message is encrypted too, to the recipient's keys in the trust file,
  // unless recipients are given or `encrypt: false` asks for a reply in clear.
  let encrypt = options.encrypt;
  if (encrypt === undefined && info.encryption !== undefined && (options.encryptTo?.length ?? 0) === 0) {
    if (options.trust === undefined || ageRecipientsFor(options.trust, recipient).length === 0) {
      throw new UsageError(
        `${inReplyTo} is encrypted and no age recipient of ${JSON.stringify(recipient)} is known: bind one in the trust file (comms trust add ${recipient} age1…), give encryptTo, or encrypt: false to reply in clear`,
        { code: 'NO_AGE_RECIPIENT' },
      );
    }
    encrypt = true;
  }
  const { inReplyTo: _i, to: _t, policy: _p, unverifiedRecipient: _u, ...sendOptions } = options;
  // The reply writes its own audit receipt (operation "reply"), not send's.
  // The default sender comes from the trust file, the policy's when no other is given.
  const trust = options.trust ?? options.policy?.trust;
  const result = await send({ ...sendOptions, ...(trust !== undefined ? { trust } : {}), recipient, subject, annotations, encrypt, auditDir: undefined });
  if (options.auditDir !== undefined) {
    await writeAuditReceipt(options.auditDir, sendAuditReceipt('reply', options.repository.name, result, startedAt, inReplyTo), options.onStep);
  }
  return { ...result, inReplyTo, recipient, ...(verdict !== undefined ? { original: verdict } : {}) };
}
