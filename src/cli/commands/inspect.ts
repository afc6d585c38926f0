/** `comms inspect REF` (a manifest as served) and `comms tags --repo R` (tags page by page). */
import type { Argv } from 'yargs';
import { inspect, type InspectResult } from '../../comms/inspect.ts';
import type { Descriptor } from '../../oci/descriptor.ts';
import { UsageError } from '../../errors.ts';
import { openRepo, openTargetArg, withGlobalOptions, type GlobalArgs } from '../common.ts';
import type { Output } from '../output.ts';
import { parsePositiveInt } from '../parse.ts';

export interface InspectArgs extends GlobalArgs {
  ref: string;
  raw: boolean;
}

export function inspectBuilder(y: Argv) {
  return withGlobalOptions(y)
    .positional('ref', { type: 'string', demandOption: true, describe: 'host/name:tag, host/name@sha256:…, oci:<folder>:tag or oci:<folder>@sha256:…' })
    .option('raw', { type: 'boolean', default: false, describe: 'Write the manifest exactly as served (its bytes, nothing added) to stdout' })
    .example('comms inspect 127.0.0.1:5000/mailbox@sha256:…', 'Digest, media type, size, layers, subject and annotations')
    .example('comms inspect --raw oci:./outbox:v1 | sha256sum', 'The exact bytes: their sha256 is the digest');
}

export async function runInspect(args: InspectArgs, out: Output, signal: AbortSignal, stdout: NodeJS.WritableStream = process.stdout): Promise<number> {
  if (args.raw && args.json) throw new UsageError('--raw writes the manifest bytes; it cannot be combined with --json');
  const target = await openTargetArg(args.ref, args);
  // A reference with both names the digest: what is served must be exactly that.
  const reference = target.digest ?? target.tag;
  if (reference === undefined) throw new UsageError(`inspect: ${JSON.stringify(args.ref)} names no tag or digest (write :tag or @sha256:…)`);
  const result = await inspect({ repository: target.repository, reference, signal });
  if (target.digest !== undefined && target.tag !== undefined) {
    out.debug(`${args.ref}: the digest is used; the tag ${target.tag} is not resolved`);
  }
  if (args.raw) {
    await new Promise<void>((resolve, reject) => stdout.write(result.bytes, (err) => (err ? reject(err) : resolve())));
    return 0;
  }
  out.result(inspectJson(result), renderInspect(result));
  return 0;
}

/** The --json object: the reference, digest, media type, size, summary, and the manifest parsed (when JSON). */
export function inspectJson(r: InspectResult): object {
  let manifest: unknown;
  try {
    manifest = JSON.parse(new TextDecoder().decode(r.bytes));
  } catch {
    manifest = null;
  }
  return { repository: r.repository, reference: r.reference, digest: r.digest, mediaType: r.mediaType, size: r.size, summary: r.summary, manifest };
}

const line = (d: Descriptor): string =>
  `${d.digest}  ${d.size} bytes  ${d.artifactType ?? d.mediaType}${d.annotations?.['org.opencontainers.image.title'] ? `  ${d.annotations['org.opencontainers.image.title']}` : ''}`;

export function renderInspect(r: InspectResult): string {
  const s = r.summary;
  const lines = [
    `Name:       ${r.repository}`,
    `Reference:  ${r.reference}`,
    `Digest:     ${r.digest}`,
    `MediaType:  ${r.mediaType}`,
    `Size:       ${r.size} bytes`,
    `Kind:       ${s.kind}`,
  ];
  if (s.artifactType !== undefined) lines.push(`ArtifactType: ${s.artifactType}`);
  if (s.config !== undefined) lines.push(`Config:     ${line(s.config)}`);
  if (s.layers !== undefined) {
    lines.push(`Layers:     ${s.layers.length} (${s.layersBytes ?? 0} bytes)`);
    for (const l of s.layers) lines.push(`  ${line(l)}`);
  }
  if (s.manifests !== undefined) {
    lines.push(`Manifests:  ${s.manifests.length}`);
    for (const m of s.manifests) lines.push(`  ${line(m)}`);
  }
  if (s.subject !== undefined) lines.push(`Subject:    ${line(s.subject)}`);
  if (s.annotations !== undefined) {
    lines.push('Annotations:');
    for (const [k, v] of Object.entries(s.annotations).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) lines.push(`  ${k}: ${v}`);
  }
  return lines.join('\n');
}

export interface TagsArgs extends GlobalArgs {
  repo: string;
  'page-size'?: number;
  last?: string;
}

export function tagsBuilder(y: Argv) {
  return withGlobalOptions(y)
    .option('repo', { type: 'string', demandOption: true, describe: 'A registry repository (host/name) or oci:<folder>' })
    .option('page-size', { type: 'number', describe: 'Tags asked for per request (the registry may send fewer)' })
    .option('last', { type: 'string', describe: 'Start after this tag (lexical order)' })
    .example('comms tags --repo 127.0.0.1:5000/mailbox', 'One tag per line, as each page arrives')
    .example('comms tags --repo oci:./outbox --json', 'One JSON object per page: {"repository","page","tags"}');
}

export async function runTags(args: TagsArgs, out: Output, signal: AbortSignal): Promise<number> {
  const pageSize = args['page-size'] === undefined ? undefined : parsePositiveInt('--page-size', args['page-size']);
  const repository = await openRepo(args.repo, args);
  let page = 0;
  await repository.tags(
    (tags) => {
      page++;
      // Each page is printed as it arrives: a long listing shows progress and can be cut with head.
      if (out.json) out.result({ repository: repository.name, page, tags }, '');
      else if (tags.length > 0) out.result({}, tags.join('\n'));
    },
    { signal, ...(pageSize === undefined ? {} : { pageSize }), ...(args.last === undefined ? {} : { last: args.last }) },
  );
  if (out.json && page === 0) out.result({ repository: repository.name, page: 1, tags: [] }, '');
  return 0;
}
