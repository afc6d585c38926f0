import type { Argv } from 'yargs';
import { verifyMessage } from '../../comms/verify-message.ts';
import { parseDigest } from '../../oci/digest.ts';
import { claimsOf } from '../../comms/verdict.ts';
import { Annotation } from '../../protocol/constants.ts';
import { VerificationError } from '../../errors.ts';
import { openRepo, resolvePolicy, withGlobalOptions, withVerifyOptions, type GlobalArgs, type VerifyArgs } from '../common.ts';
import type { Output } from '../output.ts';

export interface VerifyCmdArgs extends GlobalArgs, VerifyArgs {
  repo: string;
  digest: string;
  bundle: 'auto' | 'referrers' | 'tag';
}

export function verifyBuilder(y: Argv) {
  return withVerifyOptions(withGlobalOptions(y))
    .option('repo', { type: 'string', demandOption: true, describe: 'Mailbox: a registry repository or oci:<folder>' })
    .option('digest', { type: 'string', demandOption: true, describe: 'Digest of the manifest to verify (sha256:…)' })
    .option('bundle', {
      choices: ['auto', 'referrers', 'tag'] as const,
      default: 'auto' as const,
      describe: 'Where to look for signature bundles: referrers (API or tag-schema index), v1.0 bundle-<hex12>- tags, or both',
    });
}

export async function runVerify(args: VerifyCmdArgs, out: Output, signal: AbortSignal): Promise<number> {
  parseDigest(args.digest);
  const policy = await resolvePolicy(args);
  if (policy === false) throw new VerificationError('comms verify with --no-verify verifies nothing; give a trust policy', { code: 'NO_TRUST_POLICY' });
  const repository = await openRepo(args.repo, args);
  const manifest = await repository.fetchManifest(args.digest, { signal });
  // Messages, replies and receipts all name their sender; the verdict checks it against the signer.
  const sender = claimsOf(manifest.bytes).annotations[Annotation.Sender] || undefined;
  const v = await verifyMessage(repository, manifest.descriptor, manifest.bytes, { policy, sender, source: args.bundle, signal });
  out.result(
    { digest: args.digest, verified: true, kind: v.kind, identity: v.identity, issuer: v.issuer, bundle: v.bundleDigest },
    `verified ${args.digest}: signed by ${v.identity}${v.issuer ? ` (issuer ${v.issuer})` : ''}, bundle ${v.bundleDigest}`,
  );
  return 0;
}
