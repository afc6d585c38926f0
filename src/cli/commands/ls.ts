import type { Argv } from 'yargs';
import { listMessages, type ListedMessage, type ListFailure } from '../../comms/list.ts';
import { UsageError } from '../../errors.ts';
import type { TrustPolicy } from '../../trust/verify.ts';
import { openRepo, resolvePolicy, withGlobalOptions, withVerifyOptions, type GlobalArgs, type SignArgs, type VerifyArgs } from '../common.ts';
import { cliMessage } from '../flags.ts';
import { errorJson, type Output } from '../output.ts';
import { parseSince } from '../parse.ts';
import { formatBytes } from '../progress.ts';
import { myKeySigner, readReceiptsOf } from '../read-receipts.ts';

export interface LsArgs extends GlobalArgs, VerifyArgs, SignArgs {
  repo: string;
  me: string;
  since?: string;
  'include-expired': boolean;
}

export function lsBuilder(y: Argv) {
  return withVerifyOptions(withGlobalOptions(y))
    .option('repo', { type: 'string', demandOption: true, describe: 'Mailbox: a registry repository or oci:<folder>' })
    .option('me', { type: 'string', demandOption: true, describe: 'Your recipient identity' })
    .option('since', { type: 'string', describe: 'Only messages created since this RFC 3339 time or duration (30m, 2h, 7d), less 5 minutes of clock skew' })
    .option('include-expired', { type: 'boolean', default: false, describe: 'Also list messages whose time to live has passed' })
    .option('key', { type: 'string', describe: 'Your signing key: receipts signed with it mark messages read (default: COMMS_KEY)' })
    .option('sign', { type: 'boolean', default: true, hidden: true })
    .example('$0 ls --repo ghcr.io/acme/mailbox --me bob', 'what is waiting for bob, without downloading it')
    .example(
      '$0 ls --repo ghcr.io/acme/mailbox --me bob --trusted-key alice.pub --key bob.key --json',
      'with signatures checked and read state, one JSON object a line',
    );
}

export async function runLs(args: LsArgs, out: Output, signal: AbortSignal): Promise<number> {
  const since = args.since === undefined ? undefined : parseSince(args.since);
  // Trust flags are optional here: without them signatures are simply not checked (shown as such).
  const policy = await resolvePolicy(args).catch((err: unknown) => {
    if (err instanceof UsageError && err.code === 'NO_TRUST_POLICY') return false as const;
    throw err;
  });
  const mine = await myKeySigner(args, undefined);
  const readReceipts = readReceiptsOf(policy, mine);
  const repository = await openRepo(args.repo, args);
  const items = await listMessages({
    repository,
    me: args.me,
    ...(policy === false ? {} : { policy: policy as TrustPolicy }),
    ...(readReceipts === undefined ? {} : { readReceipts }),
    ...(since === undefined ? {} : { since }),
    includeExpired: args['include-expired'],
    signal,
  });
  let exit = 0;
  for (const item of items) {
    if ('error' in item) exit ||= reportFailure(item, out);
    else reportListed(item, out);
  }
  if (!args.json && items.length === 0) out.note(`no messages for ${args.me}`);
  return exit;
}

function reportListed(m: ListedMessage, out: Output): void {
  const json: Record<string, unknown> = {
    digest: m.digest,
    tag: m.tag,
    messageId: m.messageId,
    sender: m.sender,
    createdAt: m.createdAt,
    expiresAt: m.expiresAt,
    expired: m.expired,
    size: m.size,
    filename: m.filename,
    encrypted: m.encrypted,
    verified: m.verified === null ? null : m.verified === false ? false : { kind: m.verified.kind, identity: m.verified.identity, issuer: m.verified.issuer },
    read: m.read,
  };
  if (m.verifyError !== undefined) json['verifyError'] = errorJson(m.verifyError);
  if (m.readReceipt !== undefined) json['readReceipt'] = m.readReceipt;
  const who =
    m.verified === null
      ? `${m.sender} (not checked)`
      : m.verified === false
        ? `${m.sender} (does NOT verify)`
        : `${m.sender} (verified as ${m.verified.identity})`;
  const state = [m.read === null ? '' : m.read ? 'read' : 'unread', m.expired ? 'expired' : '', m.encrypted ? 'encrypted' : '']
    .filter((s) => s !== '')
    .join(', ');
  out.result(
    json,
    `${m.digest.slice(0, 19)}  ${m.createdAt}  ${formatBytes(m.size).padStart(9)}  ${m.filename}  from ${who}${state === '' ? '' : `  [${state}]`}`,
  );
}

function reportFailure(f: ListFailure, out: Output): number {
  if (out.json) out.result({ digest: f.digest, tag: f.tag, error: errorJson(f.error) }, '');
  else out.note(`invalid message under ${f.tag}: ${cliMessage(f.error)}`);
  return f.error.exitCode;
}
