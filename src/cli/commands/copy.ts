/** `comms copy SRC DST`: a message (with its bundle and receipts) or a whole mailbox, byte for byte. */
import type { Argv } from 'yargs';
import { copy, type CopyResult } from '../../comms/copy.ts';
import { DigestMismatchError, UsageError } from '../../errors.ts';
import { auditOptions, openTargetArg, readStdin, stepOptions, withAuditOptions, withGlobalOptions, type AuditArgs, type GlobalArgs } from '../common.ts';
import type { Output } from '../output.ts';
import { parsePositiveInt } from '../parse.ts';

export interface CopyArgs extends GlobalArgs, AuditArgs {
  src: string;
  dst: string;
  all: boolean;
  recursive: boolean;
  digest?: string;
  parallel: number;
}

export function copyBuilder(y: Argv) {
  return withAuditOptions(withGlobalOptions(y))
    .positional('src', {
      type: 'string',
      demandOption: true,
      describe: 'host/name:tag, host/name@sha256:…, oci:<folder>:tag, oci:<folder>@sha256:… (with --all: host/name or oci:<folder>)',
    })
    .positional('dst', { type: 'string', demandOption: true, describe: 'host/name[:tag] or oci:<folder>[:tag] (the folder is created when missing)' })
    .option('all', { type: 'boolean', default: false, describe: 'Copy every tagged manifest of SRC with its referrers, under the same tags' })
    .option('recursive', { type: 'boolean', default: false, describe: 'Also copy replies to the message, and theirs' })
    .option('digest', { type: 'string', describe: 'The digest SRC must have: refuse before pushing when it has another, fail when DST then serves another' })
    .option('parallel', { type: 'number', default: 4, describe: 'Blobs copied at once' })
    .example('comms copy oci:./handover:v1 ghcr.io/acme/mailbox:v1 --digest sha256:…', 'Publish exactly what was reviewed')
    .example('comms copy 127.0.0.1:5000/mailbox 127.0.0.1:5001/mirror --all', 'Mirror a mailbox');
}

export async function runCopy(args: CopyArgs, out: Output, signal: AbortSignal): Promise<number> {
  const parallel = parsePositiveInt('--parallel', args.parallel);
  const audit = await auditOptions(args);
  const stdinPassword = args['password-stdin'] ? (await readStdin()).replace(/\r?\n$/, '') : undefined;
  const extra = stdinPassword === undefined ? {} : { stdinPassword };
  const source = await openTargetArg(args.src, args, extra);
  if (args.all && (source.tag !== undefined || source.digest !== undefined))
    throw new UsageError('copy --all: SRC names a repository or folder, without a tag or digest');
  const reference = source.digest ?? source.tag;
  if (!args.all && reference === undefined)
    throw new UsageError(`copy: ${JSON.stringify(args.src)} names no tag or digest (write :tag or @sha256:…, or use --all)`);
  // The source is resolved before the destination is opened (which creates an oci: folder): a
  // missing, oversized or unexpected source leaves nothing behind.
  if (reference !== undefined) {
    const resolved = await source.repository.resolve(reference, { signal });
    if (args.digest !== undefined && resolved.digest !== args.digest) {
      throw new DigestMismatchError(
        `${source.repository.name} serves ${resolved.digest} for ${reference}, not the expected ${args.digest}: nothing was copied`,
        { code: 'SOURCE_DIGEST_MISMATCH' },
      );
    }
  }
  const destination = await openTargetArg(args.dst, args, { ...extra, create: true });
  if (destination.digest !== undefined) throw new UsageError("copy: DST takes a tag, not a digest (the digest is the source's)");
  if (args.all && destination.tag !== undefined) throw new UsageError('copy --all: DST names a repository or folder, without a tag');
  const result = await copy({
    source: source.repository,
    destination: destination.repository,
    ...(reference === undefined ? {} : { reference }),
    ...(destination.tag === undefined ? {} : { tag: destination.tag }),
    ...(args.digest === undefined ? {} : { expectedDigest: args.digest }),
    all: args.all,
    recursive: args.recursive,
    concurrency: parallel,
    signal,
    ...audit,
    ...stepOptions(out),
  });
  out.result(copyJson(result), renderCopy(result));
  return 0;
}

export function copyJson(r: CopyResult): object {
  return r;
}

function renderCopy(r: CopyResult): string {
  const head = r.digest === undefined ? `copied ${r.source} → ${r.destination}` : `copied ${r.digest} ${r.source} → ${r.destination}`;
  const lines = [
    head,
    `  ${r.manifests.length} manifest(s); blobs: ${r.blobsCopied} copied (${r.bytesCopied} bytes), ${r.blobsSkipped} already there, ${r.blobsMounted} mounted`,
  ];
  for (const m of r.manifests) lines.push(`  ${m.digest}  ${m.artifactType ?? m.mediaType}${m.tags.length > 0 ? `  ${m.tags.join(' ')}` : ''}`);
  if (r.referrersIgnored > 0) lines.push(`  ${r.referrersIgnored} listed referrer(s) ignored: they do not point at the manifest they were listed for`);
  return lines.join('\n');
}
