import type { Argv } from 'yargs';
import { gc, removeMessages, type RemovalStep, type RemoveResult } from '../../comms/remove.ts';
import { OciLayout } from '../../oci/layout/index.ts';
import type { Repository } from '../../oci/target.ts';
import { openRepo, withGlobalOptions, type GlobalArgs } from '../common.ts';
import { cliMessage } from '../flags.ts';
import { errorJson, type Output } from '../output.ts';

export interface RmArgs extends GlobalArgs {
  repo: string;
  digest?: string[];
  'dry-run': boolean;
}

/** Blobs of an oci: folder younger than this stay (a writer may be about to push their manifest). */
const FOLDER_BLOB_GRACE_MS = 10 * 60 * 1000;

export function rmBuilder(y: Argv) {
  return withGlobalOptions(y)
    .positional('digest', { type: 'string', array: true, describe: 'Message manifest digests (sha256:…) to delete' })
    .option('repo', { type: 'string', demandOption: true, describe: 'Mailbox: a registry repository or oci:<folder>' })
    .option('dry-run', { type: 'boolean', default: false, describe: 'Print what would be deleted; delete nothing' })
    .example('$0 rm --repo ghcr.io/acme/mailbox sha256:…', 'delete a message with its receipts and signature bundles');
}

export function gcBuilder(y: Argv) {
  return withGlobalOptions(y)
    .option('repo', { type: 'string', demandOption: true, describe: 'Mailbox: a registry repository or oci:<folder>' })
    .option('dry-run', { type: 'boolean', default: false, describe: 'Print what would be deleted; delete nothing' })
    .example('$0 gc --repo ghcr.io/acme/mailbox --dry-run', 'what expired messages (with receipts and bundles) would be deleted');
}

export async function runRm(args: RmArgs, out: Output, signal: AbortSignal): Promise<number> {
  const repository = await openRepo(args.repo, args);
  const result = await removeMessages({
    repository,
    digests: args.digest ?? [],
    dryRun: args['dry-run'],
    signal,
    onStep: (s) => reportStep(s, args['dry-run'], out),
  });
  return finish(result, repository, args['dry-run'], out, signal);
}

export async function runGc(args: RmArgs, out: Output, signal: AbortSignal): Promise<number> {
  const repository = await openRepo(args.repo, args);
  const result = await gc({ repository, dryRun: args['dry-run'], signal, onStep: (s) => reportStep(s, args['dry-run'], out) });
  if (!args.json && result.messages.length === 0) out.note('no expired messages');
  return finish(result, repository, args['dry-run'], out, signal);
}

async function finish(result: RemoveResult, repository: Repository, dryRun: boolean, out: Output, signal: AbortSignal): Promise<number> {
  // A folder has no garbage collector of its own: the blobs nothing references any more go now.
  if (!dryRun && repository instanceof OciLayout && result.steps.some((s) => s.deleted)) {
    const blobs = await repository.removeUnreferencedBlobs({ olderThanMs: FOLDER_BLOB_GRACE_MS, signal });
    if (blobs.length > 0) out.note(`removed ${blobs.length} blob(s) nothing refers to any more`);
  }
  const firstError = result.steps.find((s) => s.error !== undefined)?.error;
  return firstError === undefined ? 0 : firstError.exitCode || 1;
}

function reportStep(s: RemovalStep, dryRun: boolean, out: Output): void {
  const json: Record<string, unknown> = { kind: s.kind, digest: s.digest, message: s.message, deleted: s.error === undefined && !dryRun, dryRun };
  if (s.entries !== undefined) json['entries'] = s.entries;
  if (s.error !== undefined) json['error'] = errorJson(s.error);
  const what = s.kind === 'referrers-index' ? `referrers index ${s.digest} (${s.entries?.length ?? 0} entries)` : `${s.kind} ${s.digest}`;
  if (s.error !== undefined) {
    if (out.json) out.result(json, '');
    else out.note(`could not delete ${what}: ${cliMessage(s.error)}`);
    return;
  }
  out.result(json, `${dryRun ? 'would delete' : 'deleted'} ${what}`);
}
