/**
 * reply: a message whose `subject` is the message it answers (SPEC §3.4). It gets its own inbox
 * tag for its recipient — by default the original sender — so it arrives like any message, and
 * it is listed as a referrer of the original.
 */
import type { Descriptor } from '../oci/descriptor.ts';
import { parseDigest } from '../oci/digest.ts';
import { parseMessageManifest } from '../protocol/validate.ts';
import { send, type SendOptions, type SendResult } from './send.ts';

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
  parseDigest(options.to);
  const original = await options.repository.fetchManifest(options.to, { signal: options.signal });
  const info = parseMessageManifest(original.bytes);
  const subject: Descriptor = { mediaType: original.descriptor.mediaType, digest: original.descriptor.digest, size: original.descriptor.size };
  const recipient = options.recipient ?? info.sender;
  const result = await send({ ...options, recipient, subject });
  return { ...result, inReplyTo: options.to, recipient };
}
