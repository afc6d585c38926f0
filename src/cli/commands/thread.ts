import type { Argv } from 'yargs';
import { findReferrers, replyRecipientsOf } from '../../comms/discover.ts';
import { thread, type ThreadNode } from '../../comms/thread.ts';
import { parseDigest } from '../../oci/digest.ts';
import { openRepo, withGlobalOptions, type GlobalArgs } from '../common.ts';
import type { Output } from '../output.ts';

export interface ThreadArgs extends GlobalArgs {
  repo: string;
  digest: string;
}

export function threadBuilder(y: Argv) {
  return withGlobalOptions(y)
    .positional('digest', { type: 'string', demandOption: true, describe: 'Digest of the message (sha256:…)' })
    .option('repo', { type: 'string', demandOption: true, describe: 'Mailbox: a registry repository or oci:<folder>' });
}

export async function runThread(args: ThreadArgs, out: Output, signal: AbortSignal): Promise<number> {
  parseDigest(args.digest);
  const repository = await openRepo(args.repo, args);
  const root = await thread(repository, args.digest, { signal });
  out.result(root, renderTree(root).join('\n'));
  return 0;
}

export function renderTree(node: ThreadNode, prefix = '', last = true, isRoot = true): string[] {
  const parts = [node.kind, node.digest.slice(0, 19)];
  if (node.sender) parts.push(`from ${node.sender}`);
  else if (node.partiesUnnamed) parts.push('from (not named in the receipt)');
  if (node.createdAt) parts.push(`at ${node.createdAt}`);
  if (node.filename && (node.kind === 'message' || node.kind === 'reply')) parts.push(node.filename);
  if (node.status) parts.push(`${node.status}${node.verified === 'true' ? ', verified' : ''}${node.reason ? `: ${node.reason}` : ''}`);
  const line = isRoot ? parts.join('  ') : `${prefix}${last ? '└── ' : '├── '}${parts.join('  ')}`;
  const childPrefix = isRoot ? '' : prefix + (last ? '    ' : '│   ');
  return [line, ...node.children.flatMap((c, i) => renderTree(c, childPrefix, i === node.children.length - 1, false))];
}

export interface DiscoverArgs extends GlobalArgs {
  repo: string;
  digest: string;
  'artifact-type'?: string;
  source: 'auto' | 'referrers' | 'tag';
}

export function discoverBuilder(y: Argv) {
  return withGlobalOptions(y)
    .positional('digest', { type: 'string', demandOption: true, describe: 'Digest of the subject manifest (sha256:…)' })
    .option('repo', { type: 'string', demandOption: true, describe: 'Mailbox: a registry repository or oci:<folder>' })
    .option('artifact-type', { type: 'string', describe: 'Only referrers of this artifactType' })
    .option('source', { choices: ['auto', 'referrers', 'tag'] as const, default: 'auto' as const, describe: 'referrers: API or tag-schema index only; tag: v1.0-style tags only; auto: both' });
}

export async function runDiscover(args: DiscoverArgs, out: Output, signal: AbortSignal): Promise<number> {
  parseDigest(args.digest);
  const repository = await openRepo(args.repo, args);
  const { descriptor: subject, bytes } = await repository.fetchManifest(args.digest, { signal });
  // Replies are also found through the inboxes they are addressed to (SPEC §9.2), as thread does.
  const found = await findReferrers(repository, subject, { artifactType: args['artifact-type'], source: args.source, replyRecipients: replyRecipientsOf(bytes), signal });
  if (out.json) {
    for (const d of found) out.result({ digest: d.digest, mediaType: d.mediaType, size: d.size, artifactType: d.artifactType, annotations: d.annotations ?? {} }, '');
  } else {
    out.result({}, found.length === 0 ? `no referrers of ${args.digest}` : `${args.digest}\n${found.map((d, i) => `${i === found.length - 1 ? '└── ' : '├── '}${d.artifactType ?? d.mediaType}  ${d.digest}`).join('\n')}`);
  }
  return 0;
}
