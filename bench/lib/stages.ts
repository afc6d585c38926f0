/**
 * The send path taken apart, each stage alone in its own process, to show where `comms send`
 * spends its time: the single-process CLI compressor over the whole payload (the floor for
 * compressing on one core), comms' chunk writer as send calls it (payload size not passed, so
 * each raw chunk is spooled to disk first) and with the size given (one pass), and the upload of
 * the spooled layers by comms' remote client against curl.
 */
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { RegistryServer } from '../../test/support/registry.ts';
import { fmt, measure, ROOT, table, type Measured } from './common.ts';

export interface StageOptions {
  file: string;
  comp: 'gzip' | 'zstd';
  chunkBytes: number;
  parallel: number;
  registry: RegistryServer;
  work: string;
}

const CHILD = path.join(ROOT, 'bench', 'lib', 'stage-child.ts');

export async function runStages(o: StageOptions): Promise<string> {
  const size = (await stat(o.file)).size;
  const spool = path.join(o.work, `stage-spool-${o.comp}`);
  await rm(spool, { recursive: true, force: true });
  await mkdir(spool, { recursive: true });
  const rows: [string, Measured, number][] = [];
  const cli = o.comp === 'zstd' ? `zstd -3 -T1 -q -c '${o.file}' > /dev/null` : `gzip -6 -c '${o.file}' > /dev/null`;
  rows.push([`\`${o.comp === 'zstd' ? 'zstd -3 -T1' : 'gzip -6'}\` over the whole payload, one process`, await measure('bash', ['-c', cli]), size]);
  rows.push([
    'comms chunk writer as send calls it (size unknown: raw chunk spooled, then compressed)',
    await measure(process.execPath, [CHILD, 'chunks', o.file, o.comp, String(o.chunkBytes), spool, 'unknown', 'drop']),
    size,
  ]);
  rows.push([
    'comms chunk writer with totalBytes given (one pass, no raw spool)',
    await measure(process.execPath, [CHILD, 'chunks', o.file, o.comp, String(o.chunkBytes), spool, 'known', 'keep']),
    size,
  ]);
  const layers = JSON.parse(await readFile(path.join(spool, 'layers.json'), 'utf8')) as { descriptor: { size: number }; path: string }[];
  const compressed = layers.reduce((a, l) => a + l.descriptor.size, 0);
  rows.push([
    `comms remote client: push the spooled layers, ${o.parallel} at once (HEAD, POST, 8 MiB PATCHes, PUT)`,
    await measure(process.execPath, [CHILD, 'push', `${o.registry.host}/bench/stage-comms-${o.comp}`, String(o.parallel), spool]),
    compressed,
  ]);
  rows.push([
    `curl: the same layer files, ${o.parallel} at once (sha256sum, POST, one PUT)`,
    await measure('bash', [
      path.join(ROOT, 'bench', 'lib', 'baseline-upload.sh'),
      o.registry.url,
      `bench/stage-curl-${o.comp}`,
      String(o.parallel),
      ...layers.map((l) => l.path),
    ]),
    compressed,
  ]);
  // node:zlib alone: its default 16 KiB output pieces against 1 MiB ones, 64 KiB against 1 MiB reads.
  const probes: [string, Measured, number][] = [];
  for (const [read, zc] of [
    [64 * 1024, 16 * 1024],
    [1024 * 1024, 16 * 1024],
    [1024 * 1024, 1024 * 1024],
  ] as const) {
    probes.push([
      `node:zlib ${o.comp} compress, ${read / 1024} KiB reads, chunkSize ${zc / 1024} KiB`,
      await measure(process.execPath, [CHILD, 'compress', o.file, o.comp, String(read), String(zc)]),
      size,
    ]);
  }
  const outFile = path.join(o.work, `stage-out-${o.comp}`);
  for (const zc of [16 * 1024, 1024 * 1024]) {
    probes.push([
      `node:zlib ${o.comp} decompress the layers, chunkSize ${zc / 1024} KiB, one awaited write per piece`,
      await measure(process.execPath, [CHILD, 'decompress', o.comp, String(zc), outFile, ...layers.map((l) => l.path)]),
      size,
    ]);
    await rm(outFile, { force: true });
  }
  const decompressCli = o.comp === 'zstd' ? 'zstd -d -q -c' : 'gzip -d -c';
  probes.push([
    `\`${decompressCli}\` of the same layers into one file`,
    await measure('bash', ['-c', `for f in ${layers.map((l) => `'${l.path}'`).join(' ')}; do ${decompressCli} "$f"; done > '${outFile}'`]),
    size,
  ]);
  await rm(outFile, { force: true });
  await rm(spool, { recursive: true, force: true });
  const render = (rs: [string, Measured, number][]): string =>
    table(
      ['stage', 'wall', 'rate (bytes in)', 'CPU s', 'peak RSS'],
      rs.map(([name, m, bytes]) => [name, fmt.s(m.wallMs), fmt.rate(bytes, m.wallMs), m.cpuS.toFixed(1), fmt.rss(m.maxRssKiB)]),
    );
  return [`stages of the send path (${o.comp}), each alone:`, render(rows), '', `node:zlib buffer sizes (${o.comp}), each alone:`, render(probes)].join('\n');
}
