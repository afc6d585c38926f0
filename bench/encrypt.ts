/**
 * Encryption benchmark: `comms send` / `comms recv` of the same 1 GiB of mixed data, plain and
 * encrypted with age (`send --encrypt-to`, `recv --identity`), against one docker-registry, in one
 * run on one machine. Prints wall time, CPU time and peak RSS (GNU time) for each, medians over
 * --reps runs (plain and encrypted interleaved, their order alternating), and the ratios
 * encrypted / plain. Both are the CLI as users run it, with its defaults for the compression
 * chosen (encrypted gzip layers are stored, level 0: ciphertext does not compress).
 *
 *   node bench/encrypt.ts [--size-mib 1024] [--reps 3] [--chunk-mib 100] [--parallel 4]
 *                         [--compress gzip,zstd] [--from-source]
 *
 * Needs docker-registry, age-keygen, cmp and /usr/bin/time.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startRegistry } from '../test/support/registry.ts';
import { ensureMixedFile } from './lib/data.ts';
import { argValue, fmt, loadNow, machineInfo, measure, median, MiB, OUT_DIR, spreadPct, table, type Measured } from './lib/common.ts';
import { prepareCli } from './lib/cli.ts';

type Compression = 'gzip' | 'zstd';
type Kind = 'plain' | 'encrypted';

const sizeMiB = Number(argValue('size-mib') ?? 1024);
const reps = Number(argValue('reps') ?? 3);
const chunkBytes = Number(argValue('chunk-mib') ?? 100) * MiB;
const parallel = Number(argValue('parallel') ?? 4);
const compressions = (argValue('compress') ?? 'gzip,zstd').split(',') as Compression[];
const RECIPIENT = 'bench-recipient';

async function main(): Promise<void> {
  console.log(machineInfo());
  const cli = prepareCli();
  const node = cli.argv[0]!;
  const CLI = cli.argv[cli.argv.length - 1]!;
  const nodeFlags = cli.argv.slice(1, -1);
  console.log(`- comms CLI: ${cli.description}`);
  const file = await ensureMixedFile(path.join(OUT_DIR, `mixed-${sizeMiB}MiB.bin`), sizeMiB * MiB);
  const fileSize = (await stat(file)).size;
  const work = path.join(os.tmpdir(), `comms-bench-enc-${process.pid}`);
  await mkdir(work, { recursive: true });
  const identity = path.join(work, 'identity.txt');
  execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
  const ageRecipient = execFileSync('age-keygen', ['-y', identity], { encoding: 'utf8' }).trim();
  const registry = await startRegistry({ mode: 'plain' });
  console.log(`\npayload ${file} (${fmt.mib(fileSize)}), chunks of ${fmt.mib(chunkBytes)}, --parallel ${parallel}, ${reps} reps, registry ${registry.url}\n`);
  const comms = (args: string[]) => measure(node, [...nodeFlags, CLI, ...args]);
  const results = new Map<Compression, Record<Kind, { send: Measured[]; recv: Measured[] }>>();
  try {
    for (const comp of compressions) {
      const series: Record<Kind, { send: Measured[]; recv: Measured[] }> = { plain: { send: [], recv: [] }, encrypted: { send: [], recv: [] } };
      results.set(comp, series);
      for (let r = 0; r < reps; r++) {
        const order: Kind[] = r % 2 === 0 ? ['plain', 'encrypted'] : ['encrypted', 'plain'];
        const repo = (k: Kind) => `${registry.host}/bench/${k}-${comp}-${r}`;
        for (const k of order) {
          const enc = k === 'encrypted' ? ['--encrypt-to', ageRecipient] : [];
          const m = await comms([
            'send',
            file,
            '--repo',
            repo(k),
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
            ...enc,
          ]);
          series[k].send.push(m);
          console.log(`  ${comp} rep ${r + 1} send ${k}: ${fmt.s(m.wallMs)}, peak RSS ${fmt.rss(m.maxRssKiB)} (load ${loadNow()})`);
        }
        for (const k of order) {
          const outDir = path.join(work, `recv-${k}`);
          await rm(outDir, { recursive: true, force: true });
          await mkdir(outDir, { recursive: true });
          const id = k === 'encrypted' ? ['--identity', identity] : [];
          const m = await comms([
            'recv',
            '--repo',
            repo(k),
            '--me',
            RECIPIENT,
            '--plain-http',
            '--out',
            outDir,
            '--no-verify',
            '--parallel',
            String(parallel),
            '--json',
            ...id,
          ]);
          series[k].recv.push(m);
          const names = await readdir(outDir);
          if (names.length !== 1) throw new Error(`comms recv wrote ${names.length} files`);
          execFileSync('cmp', ['-s', file, path.join(outDir, names[0]!)]);
          await rm(outDir, { recursive: true, force: true });
          console.log(`  ${comp} rep ${r + 1} recv ${k}: ${fmt.s(m.wallMs)}, peak RSS ${fmt.rss(m.maxRssKiB)} (load ${loadNow()}), output identical`);
        }
      }
    }
    const report: string[] = [];
    for (const [comp, s] of results) {
      report.push(`\n### --compress ${comp} (plain: level ${comp === 'gzip' ? 6 : 3}; encrypted: level ${comp === 'gzip' ? 0 : 3})\n`);
      report.push(
        table(
          [
            '',
            'plain wall (median)',
            'encrypted wall (median)',
            'ratio encrypted/plain',
            'plain CPU s',
            'encrypted CPU s',
            'plain peak RSS',
            'encrypted peak RSS',
          ],
          (['send', 'recv'] as const).map((op) => {
            const p = s.plain[op];
            const e = s.encrypted[op];
            return [
              op,
              `${fmt.s(median(p.map((m) => m.wallMs)))} (${fmt.list(
                p.map((m) => m.wallMs),
                fmt.s,
              )})`,
              `${fmt.s(median(e.map((m) => m.wallMs)))} (${fmt.list(
                e.map((m) => m.wallMs),
                fmt.s,
              )})`,
              `**${fmt.ratio(median(e.map((m) => m.wallMs)) / median(p.map((m) => m.wallMs)))}**`,
              median(p.map((m) => m.cpuS)).toFixed(1),
              median(e.map((m) => m.cpuS)).toFixed(1),
              `max ${fmt.rss(Math.max(...p.map((m) => m.maxRssKiB)))}`,
              `max ${fmt.rss(Math.max(...e.map((m) => m.maxRssKiB)))}`,
            ];
          }),
        ),
      );
      report.push(
        `\nspread (max-min)/median: send ${spreadPct(s.plain.send.map((m) => m.wallMs)).toFixed(0)}% / ${spreadPct(s.encrypted.send.map((m) => m.wallMs)).toFixed(0)}%, ` +
          `recv ${spreadPct(s.plain.recv.map((m) => m.wallMs)).toFixed(0)}% / ${spreadPct(s.encrypted.recv.map((m) => m.wallMs)).toFixed(0)}% (plain / encrypted).`,
      );
    }
    report.push(`\nload average at end: ${loadNow()}`);
    console.log(report.join('\n'));
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
