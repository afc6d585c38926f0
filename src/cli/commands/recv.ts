import type { Argv } from 'yargs';
import { NotFoundError } from '../../errors.ts';
import { parseTargetRef } from '../../oci/reference.ts';
import type { Repository } from '../../oci/target.ts';
import { sleep } from '../../util/abort.ts';
import { receiveEach, type ReceivedMessage, type ReceiveFailure } from '../../comms/receive.ts';
import { errorJson, type Output } from '../output.ts';
import { cliMessage } from '../flags.ts';
import {
  openRepo,
  resolvePolicy,
  resolveSigner,
  withGlobalOptions,
  withVerifyOptions,
  type GlobalArgs,
  type SignArgs,
  type VerifyArgs,
  stepOptions,
} from '../common.ts';
import { createProgress, formatBytes } from '../progress.ts';
import { parseDuration, parsePositiveInt, parseSince } from '../parse.ts';
import { checkStateFileOutsideOut, defaultWatchStateFile, loadDelivered, saveDelivered, watch } from '../../comms/watch.ts';
import { myKeySigner, readReceiptsOf } from '../read-receipts.ts';
import type { ConflictPolicy } from '../../comms/materialize.ts';
import { checkOutDir } from '../../comms/out-dir.ts';
import type { AgeIdentities } from '../../trust/age.ts';

export interface RecvArgs extends GlobalArgs, VerifyArgs, SignArgs {
  repo: string;
  me: string;
  out: string;
  since?: string;
  max?: number;
  'include-expired': boolean;
  'include-read': boolean;
  'write-receipt': boolean;
  /** --no-clobber sets it false (yargs reads a `--no-` prefix as the negation of the option). */
  clobber: boolean;
  parallel: number;
  watch: boolean;
  interval: string;
  'state-file'?: string;
  identity?: string[];
  'bundle-grace': string;
}

export function recvBuilder(y: Argv) {
  return withVerifyOptions(withGlobalOptions(y))
    .option('repo', { type: 'string', demandOption: true, describe: 'Mailbox: a registry repository or oci:<folder>' })
    .option('me', { type: 'string', demandOption: true, describe: 'Your recipient identity' })
    .option('out', { type: 'string', demandOption: true, describe: 'Folder to write received files into (created if missing)' })
    .option('since', { type: 'string', describe: 'Only messages created since this RFC 3339 time or duration (30m, 2h, 7d), less 5 minutes of clock skew' })
    .option('max', { type: 'number', describe: 'Receive at most this many messages (oldest first)' })
    .option('include-expired', {
      type: 'boolean',
      default: false,
      describe: 'Also deliver messages whose time to live (created_at + ttl_seconds, plus 5 minutes of clock skew) has passed',
    })
    .option('include-read', {
      type: 'boolean',
      default: false,
      describe: 'Also deliver messages already read: recorded in the state file as delivered into this --out, or acknowledged by a receipt signed by you',
    })
    .option('write-receipt', { type: 'boolean', default: false, describe: 'Push an accepted (or rejected) receipt for each message' })
    .option('clobber', {
      type: 'boolean',
      default: true,
      describe: 'Write name-1.ext when a file of that name exists; --no-clobber fails instead (nothing is ever overwritten)',
    })
    .option('parallel', { type: 'number', default: 4, describe: 'Chunks downloaded at once' })
    .option('watch', { type: 'boolean', default: false, describe: 'Keep receiving as messages arrive, until Ctrl-C' })
    .option('interval', { type: 'string', default: '5s', describe: 'With --watch: time between polls (e.g. 5s, 1m)' })
    .option('state-file', {
      type: 'string',
      describe:
        'Where delivered messages are recorded, so each is delivered once (default: a file per --out, --repo and --me under $XDG_STATE_HOME/comms/watch, else ~/.local/state/comms/watch; never inside --out)',
    })
    .option('bundle-grace', {
      type: 'string',
      default: '10m',
      describe:
        'With --watch: how long a message whose signature bundle is missing (or does not verify) is tried again before it is refused (dockercomms v1.0 pushes the bundle after the message)',
    })
    .option('identity', {
      type: 'string',
      array: true,
      requiresArg: true,
      alias: 'i',
      describe:
        'Decrypt encrypted messages with the age identities in this file (as age-keygen writes it); repeatable. Also COMMS_AGE_IDENTITY (the key itself) and COMMS_AGE_IDENTITY_FILE',
    })
    .option('key', { type: 'string', describe: 'Sign receipts with this key (with --write-receipt)' })
    .option('sign', { type: 'boolean', default: true, hidden: true })
    .option('fulcio-url', { type: 'string', hidden: true })
    .option('rekor-url', { type: 'string', hidden: true })
    .example('$0 recv --repo ghcr.io/acme/mailbox --me bob --out ./inbox --trusted-key alice.pub', "receive messages signed by alice's key")
    .example(
      '$0 recv --repo ghcr.io/acme/ci --me ops --out ./in --certificate-identity-regexp "^https://github.com/acme/" --certificate-oidc-issuer https://token.actions.githubusercontent.com --watch',
      "follow messages signed keylessly by acme's GitHub workflows",
    );
}

export async function runRecv(args: RecvArgs, out: Output, signal: AbortSignal): Promise<number> {
  // Flags are checked before anything is opened or created (an oci: mailbox, --out).
  const since = args.since === undefined ? undefined : parseSince(args.since);
  parsePositiveInt('--parallel', args.parallel);
  if (args.max !== undefined) parsePositiveInt('--max', args.max);
  const intervalMs = args.watch ? parseDuration('--interval', args.interval) : 0;
  const identities = await resolveIdentities(args.identity);
  const bundleGraceMs = args.watch ? parseDuration('--bundle-grace', args['bundle-grace']) : 0;
  const policy = await resolvePolicy(args);
  if (policy === false) out.note('--no-verify: signatures are NOT checked; anyone who can push to this repository can impersonate a sender');
  // Receipts are signed when a signer is at hand; an unsigned receipt is still a receipt.
  // An explicit --key that cannot be loaded is an error; no signer at all just means unsigned receipts.
  const signer = !args['write-receipt'] ? undefined : args.key !== undefined ? await resolveSigner(args) : await resolveSigner(args).catch(() => undefined);
  await checkOutDir(args.out);
  const mine = await myKeySigner(args, signer);
  const readReceipts = args['include-read'] ? undefined : readReceiptsOf(policy, mine);
  const repository = args.watch ? await openWhenPresent(args, intervalMs, out, signal) : await openRepo(args.repo, args);
  if (repository === undefined) return 0; // Ctrl-C while waiting for the folder: a watcher's normal end
  // Without --watch the same record is read and extended: each message is delivered once into --out.
  const stateFile = args.watch ? args['state-file'] : (args['state-file'] ?? (await defaultWatchStateFile(args.out, repository.name, args.me)));
  if (!args.watch && args['state-file'] !== undefined) await checkStateFileOutsideOut(args['state-file'], args.out);
  const delivered = args.watch || args['include-read'] || stateFile === undefined ? undefined : await loadDelivered(stateFile);
  const progress = createProgress('recv', { enabled: !args.json && !args.quiet });
  let exit = 0;
  let count = 0;
  const common = {
    repository,
    me: args.me,
    outDir: args.out,
    verify: policy,
    since,
    max: args.watch ? undefined : args.max,
    includeExpired: args['include-expired'],
    ...(readReceipts === undefined ? {} : { readReceipts }),
    writeReceipt: args['write-receipt'],
    signer,
    identities,
    onConflict: (args.clobber ? 'suffix' : 'fail') as ConflictPolicy,
    parallel: args.parallel,
    signal,
    onProgress: (p: { bytesWritten: number; totalBytes: number }) => progress.update(p.bytesWritten, p.totalBytes),
    ...stepOptions(out),
  };
  const items = args.watch
    ? watch({
        ...common,
        intervalMs,
        stateFile: args['state-file'],
        bundleGraceMs,
        onBundleWait: (m) => out.note(`no verified signature for ${m.digest} yet (${m.error.message}); trying again until ${m.until.toISOString()}`),
        onMailboxMissing: () => out.note(`${repository.name} does not exist yet; waiting for its first message`),
        onPollError: (err, ms) => out.note(`poll failed (${err instanceof Error ? err.message : String(err)}); retrying in ${Math.round(ms / 1000)} s`),
      })
    : receiveEach({ ...common, ...(delivered === undefined ? {} : { skip: delivered }) });
  for await (const item of items) {
    progress.finish();
    if ('error' in item) {
      // Every failure is reported; the exit code is the first one's. (`exit ||= report(…)` skipped
      // the report of every failure after the first.)
      const code = reportFailure(item, out);
      exit ||= code;
    } else {
      count++;
      if (stateFile !== undefined && !args.watch) {
        const record = delivered ?? { tags: new Set<string>(), digests: new Set<string>(), messageIds: new Set<string>(), pending: new Map<string, number>() };
        record.tags.add(item.tag);
        record.digests.add(item.digest);
        record.messageIds.add(item.messageId);
        await saveDelivered(stateFile, record);
      }
      reportMessage(item, out);
    }
    // The message (or refusal) stands; the receipt that failed to go out still fails the run.
    if (item.receiptError !== undefined) {
      out.note(`could not push the receipt for ${item.digest ?? item.tag}: ${item.receiptError.message}`);
      exit ||= item.receiptError.exitCode;
    }
  }
  if (!args.json && count === 0 && exit === 0 && !args.watch) out.note(`no new messages for ${args.me}`);
  // A watcher stopped by Ctrl-C has done its job.
  return args.watch && signal.aborted ? 0 : exit;
}

/**
 * With --watch, an oci: folder that does not exist yet is waited for at the poll interval (one
 * note), as a registry repository nobody has pushed to is; undefined when stopped meanwhile.
 */
async function openWhenPresent(args: RecvArgs, intervalMs: number, out: Output, signal: AbortSignal): Promise<Repository | undefined> {
  let noted = false;
  for (;;) {
    try {
      return await openRepo(args.repo, args);
    } catch (err) {
      if (!(err instanceof NotFoundError) || parseTargetRef(args.repo).kind !== 'layout') throw err;
      if (!noted) out.note(`${args.repo} does not exist yet; waiting for its first message`);
      noted = true;
      const waited = await sleep(intervalMs, signal).then(
        () => true,
        () => false,
      );
      if (!waited) return undefined;
    }
  }
}

function reportMessage(m: ReceivedMessage, out: Output): void {
  const json: Record<string, unknown> = {
    digest: m.digest,
    tag: m.tag,
    messageId: m.messageId,
    filename: m.filename,
    path: m.path,
    bytes: m.bytes,
    sender: m.sender,
    createdAt: m.createdAt,
    encrypted: m.encrypted,
    decrypted: m.decrypted,
    verified: m.verified === null ? null : { kind: m.verified.kind, identity: m.verified.identity, issuer: m.verified.issuer },
  };
  if (m.receipt) json['receipt'] = { digest: m.receipt.digest, tag: m.receipt.tag, status: m.receipt.status };
  if (m.receiptError) json['receiptError'] = errorJson(m.receiptError);
  const who = m.verified ? `${m.sender}, verified as ${m.verified.identity}` : `${m.sender}, unverified`;
  const how = m.decrypted ? ', decrypted' : m.encrypted ? ', still encrypted (an age file: give --identity to decrypt)' : '';
  out.result(json, `received ${m.path} (${formatBytes(m.bytes)}) from ${who}${how}`);
}

/**
 * The age identities of --identity files, COMMS_AGE_IDENTITY (identity lines themselves, for CI
 * secrets) and COMMS_AGE_IDENTITY_FILE (a path); undefined when none is given.
 */
export async function resolveIdentities(files: readonly string[] | undefined, env: NodeJS.ProcessEnv = process.env): Promise<AgeIdentities | undefined> {
  const fromEnv = env['COMMS_AGE_IDENTITY'];
  const fileFromEnv = env['COMMS_AGE_IDENTITY_FILE'];
  const hasEnv = fromEnv !== undefined && fromEnv.trim() !== '';
  const hasFileFromEnv = fileFromEnv !== undefined && fileFromEnv !== '';
  // The age module is loaded only when an identity is given.
  if ((files ?? []).length === 0 && !hasEnv && !hasFileFromEnv) return undefined;
  const { loadIdentityFiles, parseIdentitiesText } = await import('../../trust/age.ts');
  const out: string[] = [...(await loadIdentityFiles(files ?? []))];
  if (hasEnv) out.push(...parseIdentitiesText(fromEnv, 'COMMS_AGE_IDENTITY'));
  if (hasFileFromEnv) out.push(...(await loadIdentityFiles([fileFromEnv])));
  return out.length === 0 ? undefined : [...new Set(out)];
}

function reportFailure(f: ReceiveFailure, out: Output): number {
  const code = f.error.exitCode;
  if (out.json) {
    out.result(
      { digest: f.digest, tag: f.tag, error: errorJson(f.error), receipt: f.receipt ? { digest: f.receipt.digest, status: f.receipt.status } : undefined },
      '',
    );
  } else {
    out.note(`refused ${f.digest ?? f.tag}: ${cliMessage(f.error)}${f.receipt ? ` (rejected receipt ${f.receipt.tag})` : ''}`);
  }
  return code;
}
