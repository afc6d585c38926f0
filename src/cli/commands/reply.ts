import type { Argv } from 'yargs';
import { reply } from '../../comms/reply.ts';
import { parseDigest } from '../../oci/digest.ts';
import { UsageError } from '../../errors.ts';
import { openRepo, resolvePolicy, withVerifyOptions, type VerifyArgs } from '../common.ts';
import type { Output } from '../output.ts';
import { createTransferProgress } from '../progress.ts';
import { prepareMessage, withMessageOptions, type MessageArgs } from './send.ts';

export interface ReplyArgs extends MessageArgs, VerifyArgs {
  'in-reply-to'?: string;
  /** Deprecated: the old name of --in-reply-to. */
  to?: string;
  recipient?: string;
}

export function replyBuilder(y: Argv) {
  return withVerifyOptions(withMessageOptions(y))
    .option('in-reply-to', { type: 'string', describe: 'Digest of the message you answer (sha256:…)' })
    .option('to', { type: 'string', deprecated: 'use --in-reply-to', describe: 'Old name of --in-reply-to' })
    .option('recipient', { type: 'string', describe: 'Who the reply is for (default: the verified sender of the message you answer)' })
    .example(
      '$0 reply --repo ghcr.io/acme/mailbox --in-reply-to sha256:… --message "got it" --key bob.key',
      'answer a message; it goes to its verified sender',
    );
}

export async function runReply(args: ReplyArgs, out: Output, signal: AbortSignal): Promise<number> {
  const inReplyTo = args['in-reply-to'] ?? args.to;
  if (inReplyTo === undefined) throw new UsageError('name the message you answer: --in-reply-to DIGEST');
  if (args['in-reply-to'] !== undefined && args.to !== undefined && args.to !== args['in-reply-to']) {
    throw new UsageError('--in-reply-to and --to name different messages (--to is the old name of --in-reply-to)');
  }
  if (args.to !== undefined && args['in-reply-to'] === undefined) out.note('--to is deprecated for reply (it means a recipient in send): use --in-reply-to');
  parseDigest(inReplyTo);
  const prepared = await prepareMessage(args, args.recipient, out, 'reply');
  // The reply goes to the original's verified sender: the trust policy is needed unless --recipient says.
  const policy = args.recipient === undefined ? await resolvePolicy(args) : undefined;
  if (policy === false) out.note(`--no-verify: the reply goes to the sender ${inReplyTo} CLAIMS, unverified`);
  const repository = await openRepo(args.repo, args);
  const progress = createTransferProgress('reply', { enabled: !args.json && !args.quiet });
  const r = await reply({
    ...prepared,
    repository,
    inReplyTo,
    recipient: args.recipient,
    ...(policy ? { policy } : {}),
    unverifiedRecipient: policy === false,
    signal,
    onProgress: (p) => progress.update({ read: p.bytesRead, done: p.payloadBytesUploaded, total: p.totalBytes }),
  });
  progress.finish();
  out.result(
    {
      digest: r.digest,
      tag: r.tag,
      inReplyTo: r.inReplyTo,
      recipient: r.recipient,
      bytes: r.bytes,
      chunks: r.chunks,
      signed: r.bundle !== undefined,
      encrypted: r.encrypted,
    },
    `replied to ${r.inReplyTo} (for ${r.recipient}${r.original?.verified ? ', verified' : ''}): ${r.repository}:${r.tag}@${r.digest}${r.encrypted ? ' (encrypted)' : ''}`,
  );
  return 0;
}
