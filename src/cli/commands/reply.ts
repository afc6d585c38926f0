import type { Argv } from 'yargs';
import { reply } from '../../comms/reply.ts';
import { parseDigest } from '../../oci/digest.ts';
import { openRepo } from '../common.ts';
import type { Output } from '../output.ts';
import { createTransferProgress } from '../progress.ts';
import { prepareMessage, withMessageOptions, type MessageArgs } from './send.ts';

export interface ReplyArgs extends MessageArgs {
  to: string;
  recipient?: string;
}

export function replyBuilder(y: Argv) {
  return withMessageOptions(y)
    .option('to', { type: 'string', demandOption: true, describe: 'Digest of the message you answer (sha256:…)' })
    .option('recipient', { type: 'string', describe: 'Who the reply is for (default: the original sender)' })
    .example('$0 reply --repo ghcr.io/acme/mailbox --to sha256:… --message "got it" --key bob.key', 'answer a message; it goes to the original sender');
}

export async function runReply(args: ReplyArgs, out: Output, signal: AbortSignal): Promise<number> {
  parseDigest(args.to);
  const prepared = await prepareMessage(args, args.recipient, out, 'reply');
  const repository = await openRepo(args.repo, args);
  const progress = createTransferProgress('reply', { enabled: !args.json && !args.quiet });
  const r = await reply({
    ...prepared,
    repository,
    to: args.to,
    recipient: args.recipient,
    signal,
    onProgress: (p) => progress.update({ read: p.bytesRead, done: p.payloadBytesUploaded, total: p.totalBytes }),
  });
  progress.finish();
  out.result(
    { digest: r.digest, tag: r.tag, inReplyTo: r.inReplyTo, recipient: r.recipient, bytes: r.bytes, chunks: r.chunks, signed: r.bundle !== undefined, encrypted: r.encrypted },
    `replied to ${r.inReplyTo} (for ${r.recipient}): ${r.repository}:${r.tag}@${r.digest}${r.encrypted ? ' (encrypted)' : ''}`,
  );
  return 0;
}
