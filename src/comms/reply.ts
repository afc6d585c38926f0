/**
 * reply: a message whose `subject` is the message it answers (SPEC §3.4). It gets its own inbox
 * tag for its recipient — by default the original sender — so it arrives like any message, and
 * it is listed as a referrer of the original.
 */
import type { Descriptor } from '../oci/descriptor.ts';
import { parseDigest } from '../oci/digest.ts';
import { ExtensionAnnotation } from '../protocol/constants.ts';
import { parseMessageManifest } from '../protocol/validate.ts';
import { send, sendAuditReceipt, type SendOptions, type SendResult } from './send.ts';
import { UsageError } from '../errors.ts';
import { ageRecipientsFor } from '../trust/age.ts';
import { prepareAuditDir, writeAuditReceipt } from './audit.ts';

export interface ReplyOptions extends Omit<SendOptions, 'recipient' | 'subject'> {
  /** Digest of the message being answered. */
  to: string;
  /** Default: the original message's sender. */
  recipient?: string;
}

export interface ReplyResult extends SendResult {
  inReplyTo: string;
  recipient: string;
}

export async function reply(options: ReplyOptions): Promise<ReplyResult> {
  const startedAt = new Date();
  parseDigest(options.to);
  if (options.auditDir !== undefined) await prepareAuditDir(options.auditDir);
  const original = await options.repository.fetchManifest(options.to, { signal: options.signal });
  const info = parseMessageManifest(original.bytes);
  const subject: Descriptor = { mediaType: original.descriptor.mediaType, digest: original.descriptor.digest, size: original.descriptor.size };
  const recipient = options.recipient ?? info.sender;
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
      throw new UsageError(`${options.to} is encrypted and no age recipient of ${JSON.stringify(recipient)} is known: bind one in the trust file (comms trust add ${recipient} age1…), give encryptTo, or encrypt: false to reply in clear`, { code: 'NO_AGE_RECIPIENT' });
    }
    encrypt = true;
  }
  // The reply writes its own audit receipt (operation "reply"), not send's.
  const result = await send({ ...options, recipient, subject, annotations, encrypt, auditDir: undefined });
  if (options.auditDir !== undefined) {
    await writeAuditReceipt(options.auditDir, sendAuditReceipt('reply', options.repository.name, result, startedAt, options.to), options.onStep);
  }

  return { ...result, inReplyTo: options.to, recipient };
}
