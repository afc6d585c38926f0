import type { Argv } from 'yargs';
import { reply } from '../../comms/reply.ts';
import type { SendInput } from '../../comms/send.ts';
import { UsageError } from '../../errors.ts';
import { openRepo, resolveSigner, withGlobalOptions, withSignOptions, type GlobalArgs, type SignArgs } from '../common.ts';
import type { Output } from '../output.ts';
import { parseSize } from '../parse.ts';
import { createProgress } from '../progress.ts';

export interface ReplyArgs extends GlobalArgs, SignArgs {
  file?: string;
  repo: string;
  to: string;
  recipient?: string;
  message?: string;
  filename?: string;
  sender?: string;
  compress: 'gzip' | 'zstd';
  'chunk-bytes': string;
  parallel: number;
  'ttl-seconds': number;
}

export function replyBuilder(y: Argv) {
  return withSignOptions(withGlobalOptions(y))
    .positional('file', { type: 'string', describe: 'The file to send back, or - for stdin (omit with --message)' })
    .option('repo', { type: 'string', demandOption: true, describe: 'Mailbox: a registry repository or oci:<folder>' })
    .option('to', { type: 'string', demandOption: true, describe: 'Digest of the message you answer (sha256:…)' })
    .option('recipient', { type: 'string', describe: 'Who the reply is for (default: the original sender)' })
    .option('message', { type: 'string', alias: 'm', describe: 'Reply with this text' })
    .option('filename', { type: 'string', describe: 'Name the recipient sees' })
    .option('sender', { type: 'string', describe: 'Your identity (default: COMMS_SENDER, else user@host)' })
    .option('compress', { choices: ['gzip', 'zstd'] as const, default: 'gzip' as const })
    .option('chunk-bytes', { type: 'string', default: '104857600' })
    .option('parallel', { type: 'number', default: 4 })
    .option('ttl-seconds', { type: 'number', default: 604800 });
}

export async function runReply(args: ReplyArgs, out: Output, signal: AbortSignal): Promise<number> {
  let input: SendInput;
  if (args.message !== undefined) {
    if (args.file !== undefined) throw new UsageError('give either a file or --message, not both');
    input = { text: args.message, filename: args.filename };
  } else if (args.file === '-') input = { stream: process.stdin, filename: args.filename ?? 'stdin.bin' };
  else if (args.file !== undefined) input = { path: args.file, filename: args.filename };
  else throw new UsageError('nothing to reply with: give a file, - for stdin, or --message TEXT');
  const signer = await resolveSigner(args);
  if (!signer) out.note('--no-sign: this reply is NOT signed');
  const repository = await openRepo(args.repo, args);
  const progress = createProgress('reply', { enabled: !args.json });
  const r = await reply({
    repository,
    to: args.to,
    recipient: args.recipient,
    input,
    sender: args.sender,
    compression: args.compress,
    chunkBytes: parseSize('--chunk-bytes', args['chunk-bytes']),
    parallel: args.parallel,
    ttlSeconds: args['ttl-seconds'],
    signer,
    signal,
    onProgress: (p) => progress.update(p.bytesRead, p.totalBytes),
  });
  progress.finish();
  out.result(
    { digest: r.digest, tag: r.tag, inReplyTo: r.inReplyTo, recipient: r.recipient, bytes: r.bytes, chunks: r.chunks, signed: r.bundle !== undefined },
    `replied to ${r.inReplyTo} (for ${r.recipient}): ${r.repository}:${r.tag}@${r.digest}`,
  );
  return 0;
}
