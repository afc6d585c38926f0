/**
 * Benchmark: `comms send` / `comms recv` (CLI child processes) against a baseline of
 * standard tools (split, zstd -3 / gzip -6, sha256sum, curl) moving the same 1 GiB of mixed data
 * to the same docker-registry, in one run on one machine. Prints wall time, CPU time and peak RSS
 * (GNU time) for each, medians over --reps runs (baseline and comms interleaved, their order
 * alternating), and the ratios comms / baseline.
 *
 *   node bench/send-recv.ts [--size-mib 1024] [--reps 3] [--chunk-mib 100] [--parallel 4]
 *                           [--compress gzip,zstd] [--profile] [--from-source]
 *
 * --profile adds, per compression, one comms send and recv under --cpu-prof (main-thread
 * summary) and stage timings of the send path (see lib/stages.ts). Needs docker-registry, zstd,
 * gzip, curl, jq, bc and /usr/bin/time.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startRegistry } from '../test/support/registry.ts';
import { ensureMixedFile } from './lib/data.ts';
import { argFlag, argValue, fmt, loadNow, machineInfo, measure, median, MiB, OUT_DIR, ROOT, spreadPct, table, type Measured } from './lib/common.ts';
import { summarizeProfile } from './lib/cpuprofile.ts';
import { runStages } from './lib/stages.ts';
import { prepareCli } from './lib/cli.ts';

type Compression = 'gzip' | 'zstd';

const sizeMiB = Number(argValue('size-mib') ?? 1024);
const reps = Number(argValue('reps') ?? 3);
const chunkBytes = Number(argValue('chunk-mib') ?? 100) * MiB;
const parallel = Number(argValue('parallel') ?? 4);
const compressions = (argValue('compress') ?? 'gzip,zstd').split(',') as Compression[];
const profile = argFlag('profile');
const RECIPIENT = 'bench-recipient';

interface Series {
  send: Measured[];
  recv: Measured[];
  compressedBytes: number[];
}

async function cmpFiles(a: string, b: string): Promise<void> {
  execFileSync('cmp', ['-s', a, b]);
}

async function main(): Promise<void> {
  const header = machineInfo();
  console.log(header);
  const cli = prepareCli();
  // argv: [node, ...bin/comms.js's Node flags, the built entry]
  const node = cli.argv[0]!;
  const CLI = cli.argv[cli.argv.length - 1]!;
  const nodeFlags = cli.argv.slice(1, -1);
  console.log(`- comms CLI: ${cli.description}`);
  const file = await ensureMixedFile(path.join(OUT_DIR, `mixed-${sizeMiB}MiB.bin`), sizeMiB * MiB);
  const fileSize = (await stat(file)).size;
  const work = path.join(os.tmpdir(), `comms-bench-sr-${process.pid}`);
  await mkdir(work, { recursive: true });
  const registry = await startRegistry({ mode: 'plain' });
  console.log(`\npayload ${file} (${fmt.mib(fileSize)}), chunks of ${fmt.mib(chunkBytes)}, --parallel ${parallel}, ${reps} reps, registry ${registry.url}\n`);
  const results = new Map<Compression, { base: Series; comms: Series }>();
  try {
    for (const comp of compressions) {
      const base: Series = { send: [], recv: [], compressedBytes: [] };
      const comms: Series = { send: [], recv: [], compressedBytes: [] };
      results.set(comp, { base, comms });
      for (let r = 0; r < reps; r++) {
        const order = r % 2 === 0 ? (['base', 'comms'] as const) : (['comms', 'base'] as const);
        // Sends first (each into a fresh repository, so no blob is skipped), then the receives.
        const repos = { base: `bench/base-${comp}-${r}`, comms: `bench/comms-${comp}-${r}` };
        for (const who of order) {
          if (who === 'base') {
            const m = await measure('bash', [
              path.join(ROOT, 'bench/lib/baseline-send.sh'),
              file,
              registry.url,
              repos.base,
              'msg',
              String(chunkBytes),
              comp,
              String(parallel),
              path.join(work, 'split'),
            ]);
            base.send.push(m);
            base.compressedBytes.push(await manifestBytes(registry.url, repos.base, 'msg'));
          } else {
            const m = await measure(node, [
              ...nodeFlags,
              CLI,
              'send',
              file,
              '--repo',
              `${registry.host}/${repos.comms}`,
              '--sender',
              'bench-sender',
              '--recipient',
              RECIPIENT,
              '--plain-http',
              '--no-sign',
              '--compress',
              comp,
              '--chunk-bytes',
              String(chunkBytes),
              '--parallel',
              String(parallel),
              '--json',
            ]);
            comms.send.push(m);
            const sent = JSON.parse(m.stdout.trim().split('\n').pop()!) as { tag: string };
            comms.compressedBytes.push(await manifestBytes(registry.url, repos.comms, sent.tag));
          }
          console.log(`  ${comp} rep ${r + 1} send ${who}: ${fmt.s((who === 'base' ? base : comms).send.at(-1)!.wallMs)} (load ${loadNow()})`);
        }
        for (const who of order) {
          const outDir = path.join(work, `recv-${who}`);
          await rm(outDir, { recursive: true, force: true });
          await mkdir(outDir, { recursive: true });
          let m: Measured;
          let received: string;
          if (who === 'base') {
            received = path.join(outDir, 'payload.bin');
            m = await measure('bash', [
              path.join(ROOT, 'bench/lib/baseline-recv.sh'),
              registry.url,
              repos.base,
              'msg',
              String(chunkBytes),
              comp,
              String(parallel),
              received,
            ]);
            base.recv.push(m);
          } else {
            m = await measure(node, [
              ...nodeFlags,
              CLI,
              'recv',
              '--repo',
              `${registry.host}/${repos.comms}`,
              '--me',
              RECIPIENT,
              '--plain-http',
              '--out',
              outDir,
              '--no-verify',
              '--parallel',
              String(parallel),
              '--json',
            ]);
            comms.recv.push(m);
            const names = await readdir(outDir);
            if (names.length !== 1) throw new Error(`comms recv wrote ${names.length} files`);
            received = path.join(outDir, names[0]!);
          }
          await cmpFiles(file, received);
          await rm(outDir, { recursive: true, force: true });
          console.log(`  ${comp} rep ${r + 1} recv ${who}: ${fmt.s(m.wallMs)} (load ${loadNow()}), output identical`);
        }
      }
    }

    const report: string[] = [];
    for (const [comp, { base, comms }] of reps > 0 ? results : []) {
      report.push(
        `\n### ${comp} (baseline: ${comp === 'zstd' ? 'zstd -3' : 'gzip -6'}, xargs -P ${parallel}; comms --compress ${comp} --parallel ${parallel})\n`,
      );
      report.push(
        table(
          ['', 'baseline wall (median)', 'comms wall (median)', 'ratio comms/baseline', 'baseline CPU s', 'comms CPU s', 'baseline peak RSS', 'comms peak RSS'],
          (['send', 'recv'] as const).map((k) => {
            const b = base[k];
            const c = comms[k];
            return [
              k,
              `${fmt.s(median(b.map((m) => m.wallMs)))} (${fmt.list(
                b.map((m) => m.wallMs),
                fmt.s,
              )})`,
              `${fmt.s(median(c.map((m) => m.wallMs)))} (${fmt.list(
                c.map((m) => m.wallMs),
                fmt.s,
              )})`,
              `**${fmt.ratio(median(c.map((m) => m.wallMs)) / median(b.map((m) => m.wallMs)))}**`,
              median(b.map((m) => m.cpuS)).toFixed(1),
              median(c.map((m) => m.cpuS)).toFixed(1),
              fmt.rss(median(b.map((m) => m.maxRssKiB))),
              `max ${fmt.rss(Math.max(...c.map((m) => m.maxRssKiB)))} (${fmt.list(
                c.map((m) => m.maxRssKiB),
                (k) => (k / 1024).toFixed(1),
              )})`,
            ];
          }),
        ),
      );
      const splitS = base.send.map((m) => Number(/split_s ([\d.]+)/.exec(m.stdout)?.[1] ?? NaN));
      report.push(
        `\ncompressed: baseline ${fmt.mib(median(base.compressedBytes))}, comms ${fmt.mib(median(comms.compressedBytes))} ` +
          `(ratio ${(fileSize / median(comms.compressedBytes)).toFixed(2)}:1); ` +
          `baseline split step ${median(splitS).toFixed(2)} s of its send; send wall without split: ${fmt.s(median(base.send.map((m, i) => m.wallMs - splitS[i]! * 1000)))} ` +
          `(comms/that ${fmt.ratio(median(comms.send.map((m) => m.wallMs)) / median(base.send.map((m, i) => m.wallMs - splitS[i]! * 1000)))}); ` +
          `spread (max-min)/median: send ${spreadPct(base.send.map((m) => m.wallMs)).toFixed(0)}% / ${spreadPct(comms.send.map((m) => m.wallMs)).toFixed(0)}%, ` +
          `recv ${spreadPct(base.recv.map((m) => m.wallMs)).toFixed(0)}% / ${spreadPct(comms.recv.map((m) => m.wallMs)).toFixed(0)}% (baseline / comms).`,
      );
    }
    report.push(`\nload average at end: ${loadNow()}`);
    console.log(report.join('\n'));

    if (profile) {
      for (const comp of compressions) {
        console.log(`\n### where the time goes: ${comp}\n`);
        const profDir = path.join(OUT_DIR, `prof-${comp}`);
        await rm(profDir, { recursive: true, force: true });
        const repo = `bench/prof-${comp}`;
        const s = await measure(process.execPath, [
          '--cpu-prof',
          '--cpu-prof-dir',
          path.join(profDir, 'send'),
          CLI,
          'send',
          file,
          '--repo',
          `${registry.host}/${repo}`,
          '--sender',
          'bench-sender',
          '--recipient',
          RECIPIENT,
          '--plain-http',
          '--no-sign',
          '--compress',
          comp,
          '--chunk-bytes',
          String(chunkBytes),
          '--parallel',
          String(parallel),
          '--json',
        ]);
        console.log(`comms send under --cpu-prof: ${fmt.s(s.wallMs)}, CPU ${s.cpuS.toFixed(1)} s (main thread + zlib/hash worker threads)`);
        console.log(await summarizeProfile(path.join(profDir, 'send')));
        const outDir = path.join(work, 'prof-recv');
        await rm(outDir, { recursive: true, force: true });
        const rcv = await measure(process.execPath, [
          '--cpu-prof',
          '--cpu-prof-dir',
          path.join(profDir, 'recv'),
          CLI,
          'recv',
          '--repo',
          `${registry.host}/${repo}`,
          '--me',
          RECIPIENT,
          '--plain-http',
          '--out',
          outDir,
          '--no-verify',
          '--parallel',
          String(parallel),
          '--json',
        ]);
        await rm(outDir, { recursive: true, force: true });
        console.log(`\ncomms recv under --cpu-prof: ${fmt.s(rcv.wallMs)}, CPU ${rcv.cpuS.toFixed(1)} s`);
        console.log(await summarizeProfile(path.join(profDir, 'recv')));
        console.log('');
        console.log(await runStages({ file, comp, chunkBytes, parallel, registry, work }));
        console.log(`\npeak RSS of comms under variants (${comp}, one run each), to see what the RSS is made of:`);
        console.log(await rssVariants(process.execPath, CLI, file, comp, registry.host, work));
      }
    }
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * comms send and recv once each under variants that move one memory knob: glibc's malloc arenas
 * (zlib and fs work run on libuv threads, each may get an arena) and V8's young generation
 * (short-lived Buffers and their wrappers); plus the floor, `comms --help`.
 */
async function rssVariants(node: string, cli: string, file: string, comp: Compression, host: string, work: string): Promise<string> {
  const floor = await measure(node, [cli, '--help']);
  const rows: string[][] = [['`comms --help` (start-up floor)', '—', fmt.rss(floor.maxRssKiB), '—', '—']];
  const variants: [string, NodeJS.ProcessEnv, string[]][] = [
    ['default', {}, []],
    ['MALLOC_ARENA_MAX=2', { MALLOC_ARENA_MAX: '2' }, []],
    ['node --max-semi-space-size=1', {}, ['--max-semi-space-size=1']],
  ];
  let i = 0;
  for (const [label, env, flags] of variants) {
    const repo = `${host}/bench/rss-${comp}-${i++}`;
    const e = { ...process.env, ...env };
    const s = await measure(
      node,
      [
        ...flags,
        cli,
        'send',
        file,
        '--repo',
        repo,
        '--sender',
        'bench-sender',
        '--recipient',
        RECIPIENT,
        '--plain-http',
        '--no-sign',
        '--compress',
        comp,
        '--chunk-bytes',
        String(chunkBytes),
        '--parallel',
        String(parallel),
        '--json',
      ],
      { env: e },
    );
    const outDir = path.join(work, 'rss-recv');
    await rm(outDir, { recursive: true, force: true });
    const r = await measure(
      node,
      [...flags, cli, 'recv', '--repo', repo, '--me', RECIPIENT, '--plain-http', '--out', outDir, '--no-verify', '--parallel', String(parallel), '--json'],
      { env: e },
    );
    await rm(outDir, { recursive: true, force: true });
    rows.push([label, fmt.s(s.wallMs), fmt.rss(s.maxRssKiB), fmt.s(r.wallMs), fmt.rss(r.maxRssKiB)]);
  }
  return table(['variant', 'send wall', 'send peak RSS', 'recv wall', 'recv peak RSS'], rows);
}

/** Sum of the layer sizes of the manifest at `tag`. */
async function manifestBytes(url: string, repo: string, tag: string): Promise<number> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  const m = (await res.json()) as { layers: { size: number }[] };
  return m.layers.reduce((a, l) => a + l.size, 0);
}

await main();
