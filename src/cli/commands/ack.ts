import type { Argv } from 'yargs';
import { ack } from '../../comms/ack.ts';
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

export interface AckArgs extends GlobalArgs, SignArgs, AuditArgs {
  repo: string;
  for: string;
  status: 'accepted' | 'rejected';
  verified: boolean;
  reason?: string;
  sender?: string;
  recipient?: string;
}

export function ackBuilder(y: Argv) {
  return withAuditOptions(withSignOptions(withGlobalOptions(y)))
    .option('repo', { type: 'string', demandOption: true, describe: 'Mailbox: a registry repository or oci:<folder>' })
    .option('for', { type: 'string', demandOption: true, describe: 'Digest of the message manifest (sha256:…)' })
    .option('status', { choices: ['accepted', 'rejected'] as const, demandOption: true, describe: 'The receipt status' })
    .option('verified', { type: 'boolean', default: false, describe: "Say the message's signature was verified" })
    .option('reason', { type: 'string', describe: 'Why (mostly for rejected)' })
    .option('sender', {
      type: 'string',
      describe: 'Who acknowledges (default: the identity the trust file binds your key to, else COMMS_SENDER, else your keyless identity)',
    })
    .option('recipient', { type: 'string', describe: "Whom the receipt is for (default: the message's sender)" });
}

export async function runAck(args: AckArgs, out: Output, signal: AbortSignal): Promise<number> {
  const signer = await resolveSigner(args);
  if (!signer) out.note('--no-sign: this receipt is NOT signed; readers that verify will not count it');
  const sender = await resolveSender({ sender: args.sender, signer, trust: await resolveTrustFile(args) });
  const audit = await auditOptions(args);
  const repository = await openRepo(args.repo, args);
  const r = await ack({
    repository,
    forDigest: args.for,
    status: args.status,
    verified: args.verified,
    reason: args.reason,
    sender,
    recipient: args.recipient,
    ...(signer !== undefined ? { signer } : { unsigned: true }),
    signal,
    ...audit,
    ...stepOptions(out),
  });
  out.result(
    { digest: r.digest, tag: r.tag, for: r.forDigest, status: r.status, verified: r.verified, indexedBy: r.indexedBy, signed: r.bundle !== undefined },
    `receipt ${r.status} for ${r.forDigest}: ${repository.name}:${r.tag}@${r.digest}`,
  );
  return 0;
}
