import { stat } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { checkSendOptions, send, trustedRecipients, type SendInput, type SendOptions } from '../../comms/send.ts';
import { UsageError } from '../../errors.ts';
import { resolveSender } from '../../comms/sender.ts';
import {
  auditOptions,
  openRepo,
  resolveSigner,
  resolveTrustFile,
  stepOptions,
  withAuditOptions,
  withGlobalOptions,
  withSignOptions,
  type AuditArgs,
  type GlobalArgs,
  type SignArgs,
} from '../common.ts';
import type { Output } from '../output.ts';
import { createTransferProgress, formatBytes } from '../progress.ts';
import { parsePositiveInt, parseSize, parseTtl } from '../parse.ts';

/** The flags of anything that sends a message: send and reply. */
export interface MessageArgs extends GlobalArgs, SignArgs, AuditArgs {
  file?: string;
  repo: string;
  message?: string;
  filename?: string;
  sender?: string;
  compress: 'gzip' | 'zstd';
  level?: number;
  'chunk-bytes': string;
  parallel: number;
  'ttl-seconds'?: number;
  ttl?: string;
  session?: string;
  'encrypt-to'?: string[];
  /** Unset: only replies to encrypted messages are encrypted (see comms/reply.ts); --no-encrypt sets false. */
  encrypt?: boolean;
  trust?: string;
}

export interface SendArgs extends MessageArgs {
  recipient: string;
}

export function withMessageOptions<T>(y: Argv<T>) {
  return withAuditOptions(withSignOptions(withGlobalOptions(y)))
    .positional('file', { type: 'string', describe: 'The file to send, or - for stdin (omit with --message)' })
    .option('repo', { type: 'string', demandOption: true, describe: 'Mailbox: a registry repository (ghcr.io/acme/mailbox) or oci:<folder>' })
    .option('message', { type: 'string', alias: 'm', describe: 'Send this text (as message.txt) instead of a file' })
    .option('filename', { type: 'string', describe: "Name the recipient sees (default: the file's basename; stdin.bin for -)" })
    .option('sender', {
      type: 'string',
      describe: 'Sender identity (default: the identity the trust file binds your key to, else COMMS_SENDER, else your keyless identity)',
    })
    .option('compress', { choices: ['gzip', 'zstd'] as const, default: 'gzip' as const, describe: 'Layer compression' })
    .option('level', { type: 'number', describe: 'Compression level (gzip 0-9, default 6; zstd 1-19, default 3)' })
    .option('chunk-bytes', { type: 'string', default: '104857600', describe: 'Chunk size in bytes (suffixes KiB, MiB, GiB accepted)' })
    .option('parallel', { type: 'number', default: 4, describe: 'Chunks uploaded at once (the next ones compress meanwhile)' })
    .option('ttl', {
      type: 'string',
      describe: 'How long the message lives: 90s, 30m, 1h, 7d, 2w (default 7d); receivers pass it over once expired, gc deletes it',
    })
    .option('ttl-seconds', { type: 'number', describe: 'The same as --ttl, in seconds (default 604800)' })
    .option('session', { type: 'string', describe: 'Session UUID (default: a new one per run)' })
    .option('encrypt-to', {
      type: 'string',
      array: true,
      requiresArg: true,
      describe: 'Encrypt to this age recipient (age1…) or every recipient in this file (as age -R reads it); repeatable',
    })
    .option('encrypt', {
      type: 'boolean',
      describe:
        'Encrypt to the age recipients the trust file binds to the recipient (a reply to an encrypted message does so by default; --no-encrypt replies in clear)',
    })
    .option('trust', { type: 'string', describe: 'Trust file for --encrypt (default: COMMS_TRUST, else ~/.config/comms/trust when present)' });
}

export function sendBuilder(y: Argv) {
  return withMessageOptions(y)
    .option('recipient', { type: 'string', demandOption: true, alias: 'to', describe: 'Who the message is for' })
    .example('$0 send report.pdf --repo ghcr.io/acme/mailbox --to bob --key me.key', 'send a file, signed with a local key')
    .example('$0 send --message "deploy 1.4.2 ok" --repo ghcr.io/acme/ci --to ops', "in CI: signed keylessly with the job's OIDC identity")
    .example('tar c dir | $0 send - --filename dir.tar --repo oci:./mailbox --to bob --no-sign', 'stdin into a folder mailbox, unsigned on purpose')
    .example(
      '$0 send secret.pdf --repo ghcr.io/acme/mailbox --to bob --key me.key --encrypt-to age1…',
      "encrypted to bob's age key: the registry holds only ciphertext",
    );
}

/** --ttl (a duration) or --ttl-seconds, never both; undefined leaves the default (7 days). */
function ttlSecondsOf(args: MessageArgs): number | undefined {
  if (args.ttl !== undefined && args['ttl-seconds'] !== undefined) throw new UsageError('--ttl and --ttl-seconds say the same thing: give one of them');
  return args.ttl !== undefined ? parseTtl('--ttl', args.ttl) : args['ttl-seconds'];
}

/**
 * Every flag and the input are checked before the mailbox is opened — opening an oci: mailbox
 * for sending creates it, and a refused command must leave nothing behind — then the signer is
 * resolved. Returns what send() needs besides the repository.
 */
export async function prepareMessage(
  args: MessageArgs,
  recipient: string | undefined,
  out: Output,
  what: string,
): Promise<Omit<SendOptions, 'repository' | 'recipient'>> {
  const input = messageInput(args);
  const options: Omit<SendOptions, 'repository' | 'recipient'> = {
    input,
    sender: args.sender,
    compression: args.compress,
    level: args.level,
    chunkBytes: parseSize('--chunk-bytes', args['chunk-bytes']),
    parallel: parsePositiveInt('--parallel', args.parallel),
    ttlSeconds: ttlSecondsOf(args),
    sessionId: args.session,
  };
  checkSendOptions({ ...options, recipient });
  if ('path' in input) await checkRegularFile(input.path);
  const encryptTo = args['encrypt-to'];
  if (encryptTo !== undefined) {
    // The age module is loaded only when the message is encrypted.
    const { resolveRecipients } = await import('../../trust/age.ts');
    options.encryptTo = await resolveRecipients(encryptTo);
  }
  // The trust file is read only when it may name keys: --encrypt, or a reply (which follows an encrypted original).
  if (args.encrypt !== undefined) options.encrypt = args.encrypt;
  if (args.encrypt === true || (args.encrypt === undefined && what === 'reply')) {
    const trust = await resolveTrustFile(args);
    if (trust !== undefined) options.trust = trust;
  }
  if (recipient !== undefined) trustedRecipients({ ...options, recipient });
  const signer = await resolveSigner(args);
  if (!signer) out.note(`--no-sign: this ${what} is NOT signed; recipients that verify (the default) will refuse it`);
  // Without --sender, the sender is the identity the trust file binds the signer to (if any).
  const sender = await resolveSender({
    sender: args.sender,
    signer,
    trust: args.sender === undefined ? (options.trust ?? (await resolveTrustFile(args))) : undefined,
  });
  return { ...options, sender, ...(signer !== undefined ? { signer } : { unsigned: true }), ...(await auditOptions(args)), ...stepOptions(out) };
}

export async function runSend(args: SendArgs, out: Output, signal: AbortSignal): Promise<number> {
  const prepared = await prepareMessage(args, args.recipient, out, 'message');
  const repository = await openRepo(args.repo, args, { create: true });
  const progress = createTransferProgress('send', { enabled: !args.json && !args.quiet });
  const result = await send({
    ...prepared,
    repository,
    recipient: args.recipient,
    signal,
    onProgress: (p) => progress.update({ read: p.bytesRead, done: p.payloadBytesUploaded, total: p.totalBytes }),
  });
  progress.finish();
  const json: Record<string, unknown> = {
    digest: result.digest,
    tag: result.tag,
    repository: result.repository,
    messageId: result.messageId,
    bytes: result.bytes,
    chunks: result.chunks,
    chunksSkipped: result.chunksSkipped,
    compression: result.compression,
    signed: result.bundle !== undefined,
    encrypted: result.encrypted,
  };
  if (result.bundle) json['bundle'] = { digest: result.bundle.digest, tag: result.bundle.tag };
  out.result(
    json,
    `sent ${formatBytes(result.bytes)} in ${result.chunks} chunk(s) to ${args.recipient}: ${result.repository}:${result.tag}@${result.digest}${result.bundle ? ' (signed)' : ''}${result.encrypted ? ' (encrypted)' : ''}`,
  );
  return 0;
}

function messageInput(args: MessageArgs): SendInput {
  if (args.message !== undefined) {
    if (args.file !== undefined) throw new UsageError('give either a file or --message, not both');
    return { text: args.message, filename: args.filename };
  }
  if (args.file === undefined) throw new UsageError('nothing to send: give a file, - for stdin, or --message TEXT');
  if (args.file === '-') {
    if (args['password-stdin']) throw new UsageError('stdin can carry the password (--password-stdin) or the file (-), not both');
    return { stream: process.stdin, filename: args.filename ?? 'stdin.bin' };
  }
  return { path: args.file, filename: args.filename };
}

/** The same refusals send() makes for a path, made before anything is opened. */
async function checkRegularFile(file: string): Promise<void> {
  const st = await stat(file).catch((cause: unknown) => {
    throw new UsageError(`cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
  });
  if (!st.isFile()) throw new UsageError(`${file} is not a regular file`);
}
