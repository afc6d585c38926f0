import type { Argv } from 'yargs';
import { findReferrers, replyRecipientsOf } from '../../comms/discover.ts';
import { thread, type ThreadNode } from '../../comms/thread.ts';
import { claimsOf, describeVerdict, judgeReferrer, verifyArtifact, type Verdict } from '../../comms/verdict.ts';
import { parseDigest } from '../../oci/digest.ts';
import { Annotation, ArtifactType } from '../../protocol/constants.ts';
import type { TrustPolicy } from '../../trust/verify.ts';
import { CommsError, NotFoundError, ProtocolError, UsageError } from '../../errors.ts';
import { openRepo, resolvePolicy, withGlobalOptions, withVerifyOptions, type GlobalArgs, type VerifyArgs } from '../common.ts';
import type { Output } from '../output.ts';

export interface ThreadArgs extends GlobalArgs, VerifyArgs {
  repo: string;
  digest: string;
  'verified-only': boolean;
}

export function threadBuilder(y: Argv) {
  return withVerifyOptions(withGlobalOptions(y))
    .positional('digest', { type: 'string', demandOption: true, describe: 'Digest of the message (sha256:…)' })
    .option('repo', { type: 'string', demandOption: true, describe: 'Mailbox: a registry repository or oci:<folder>' })
    .option('verified-only', { type: 'boolean', default: false, describe: 'Show only the replies and receipts verified under the trust policy' });
}

/**
 * The policy for showing (not delivering): without any trust flag or trust file, nodes are shown
 * as unverified rather than the command refused; --verified-only needs a policy.
 */
async function viewPolicy(args: VerifyArgs & { 'verified-only': boolean }, out: Output): Promise<TrustPolicy | undefined> {
  let policy: TrustPolicy | false | undefined;
  try {
    policy = await resolvePolicy(args);
  } catch (err) {
    if (!(err instanceof UsageError && err.code === 'NO_TRUST_POLICY')) throw err;
    policy = undefined;
  }
  if (policy === false || policy === undefined) {
    if (args['verified-only'])
      throw new UsageError('--verified-only needs a trust policy: --trust FILE (or a trust file), --trusted-key, or --certificate-identity*', {
        code: 'NO_TRUST_POLICY',
      });
    out.note('no trust policy: nothing is verified, every sender shown is a claim (give --trust FILE, --trusted-key or --certificate-identity*)');
    return undefined;
  }
  return policy;
}

export async function runThread(args: ThreadArgs, out: Output, signal: AbortSignal): Promise<number> {
  parseDigest(args.digest);
  const policy = await viewPolicy(args, out);
  const repository = await openRepo(args.repo, args);
  const root = await thread(repository, args.digest, { signal, ...(policy !== undefined ? { policy } : {}), verifiedOnly: args['verified-only'] });
  out.result(root, renderTree(root).join('\n'));
  return 0;
}

/** `verified as bob`, `unverified (unsigned)`, `INVALID (reason)`. */
export function trustLabel(node: ThreadNode): string {
  return describeVerdict({
    status: node.trust,
    verified: node.verified,
    ...(node.signer !== undefined ? { identity: node.signer } : {}),
    ...(node.sender !== undefined ? { claimedSender: node.sender } : {}),
    senderVerified: node.verified && node.signer === node.sender,
    ...(node.reason !== undefined ? { reason: node.reason } : {}),
  });
}

export function renderTree(node: ThreadNode, prefix = '', last = true, isRoot = true): string[] {
  const parts = [node.kind, node.digest.slice(0, 19)];
  if (node.kind !== 'bundle' && node.kind !== 'other') parts.push(`[${trustLabel(node)}]`);
  if (node.sender) parts.push(node.verified && node.signer === node.sender ? `from ${node.sender}` : `claims from ${node.sender}`);
  else if (node.partiesUnnamed) parts.push('from (not named in the receipt)');
  if (node.createdAt) parts.push(`at ${node.createdAt}`);
  if (node.filename && (node.kind === 'message' || node.kind === 'reply')) parts.push(node.filename);
  if (node.status)
    parts.push(`${node.status}${node.receiptVerified === 'true' ? ', says verified' : ''}${node.receiptReason ? `: ${node.receiptReason}` : ''}`);
  const line = isRoot ? parts.join('  ') : `${prefix}${last ? '└── ' : '├── '}${parts.join('  ')}`;
  const childPrefix = isRoot ? '' : prefix + (last ? '    ' : '│   ');
  return [line, ...node.children.flatMap((c, i) => renderTree(c, childPrefix, i === node.children.length - 1, false))];
}

export interface DiscoverArgs extends GlobalArgs, VerifyArgs {
  repo: string;
  digest: string;
  'artifact-type'?: string;
  source: 'auto' | 'referrers' | 'tag';
  'verified-only': boolean;
}

export function discoverBuilder(y: Argv) {
  return withVerifyOptions(withGlobalOptions(y))
    .option('verified-only', { type: 'boolean', default: false, describe: 'List only referrers verified under the trust policy (and signature bundles)' })
    .positional('digest', { type: 'string', demandOption: true, describe: 'Digest of the subject manifest (sha256:…)' })
    .option('repo', { type: 'string', demandOption: true, describe: 'Mailbox: a registry repository or oci:<folder>' })
    .option('artifact-type', { type: 'string', describe: 'Only referrers of this artifactType' })
    .option('source', {
      choices: ['auto', 'referrers', 'tag'] as const,
      default: 'auto' as const,
      describe: 'referrers: API or tag-schema index only; tag: v1.0-style tags only; auto: both',
    });
}

export async function runDiscover(args: DiscoverArgs, out: Output, signal: AbortSignal): Promise<number> {
  parseDigest(args.digest);
  const policy = await viewPolicy(args, out);
  const repository = await openRepo(args.repo, args);
  const { descriptor: subject, bytes } = await repository.fetchManifest(args.digest, { signal });
  const recipient = claimsOf(bytes).annotations[Annotation.Recipient];
  // Replies are also found through the inboxes they are addressed to (SPEC §9.2), as thread does.
  const found = await findReferrers(repository, subject, {
    artifactType: args['artifact-type'],
    source: args.source,
    replyRecipients: replyRecipientsOf(bytes),
    signal,
  });
  const rows = [];
  for (const d of found) {
    const isBundle = d.artifactType === ArtifactType.Bundle;
    let trust: Record<string, unknown> = { trust: 'unchecked', verified: false };
    let label = '';
    if (!isBundle) {
      const m = await repository.fetchManifest(d.digest, { signal }).catch((err: unknown) => {
        // Listed but gone or unreadable (anyone who can push can list junk): shown as such.
        if (err instanceof NotFoundError || err instanceof ProtocolError) return err;
        throw err;
      });
      const v: Verdict =
        m instanceof CommsError
          ? { status: 'invalid', verified: false, reason: m.message }
          : judgeReferrer(await verifyArtifact(repository, m.descriptor, m.bytes, policy, { signal }), m.bytes, {
              digest: subject.digest,
              ...(recipient !== undefined ? { recipient } : {}),
            });
      trust = {
        trust: v.status,
        verified: v.verified,
        ...(v.verified ? { signer: v.identity } : {}),
        ...(!v.verified && v.reason !== undefined ? { reason: v.reason } : {}),
      };
      label = `  [${describeVerdict(v)}]`;
    }
    if (args['verified-only'] && !isBundle && trust['verified'] !== true) continue;
    rows.push({ d, trust, label });
  }
  if (out.json) {
    for (const { d, trust } of rows)
      out.result({ digest: d.digest, mediaType: d.mediaType, size: d.size, artifactType: d.artifactType, annotations: d.annotations ?? {}, ...trust }, '');
  } else {
    out.result(
      {},
      rows.length === 0
        ? `no referrers of ${args.digest}`
        : `${args.digest}\n${rows.map(({ d, label }, i) => `${i === rows.length - 1 ? '└── ' : '├── '}${d.artifactType ?? d.mediaType}  ${d.digest}${label}`).join('\n')}`,
    );
  }
  return 0;
}
