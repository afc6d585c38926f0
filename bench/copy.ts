/**
 * `comms copy` against `skopeo copy --preserve-digests` moving the same message (one manifest,
 * its chunk layers) between two docker-registry instances, in one run on one machine: wall time,
 * CPU and peak RSS, medians over --reps runs (the two tools interleaved, their order alternating),
 * and the ratio comms / skopeo (a fresh destination registry per rep). Also a re-run of comms copy onto a destination that already has
 * everything (only HEADs and manifest PUTs), and a copy between two repositories of one registry
 * (blobs mounted, not sent).
 *
 *   node bench/copy.ts [--size-mib 256] [--reps 3] [--chunk-mib 32]
 *
 * Needs docker-registry, skopeo and /usr/bin/time.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { openRepository, send } from '../src/index.ts';
import { startRegistry } from '../test/support/registry.ts';
import { ensureMixedFile } from './lib/data.ts';
import { argValue, fmt, loadNow, machineInfo, measure, median, MiB, OUT_DIR, table, type Measured } from './lib/common.ts';
import { prepareCli } from './lib/cli.ts';

const sizeMiB = Number(argValue('size-mib') ?? 256);
const reps = Number(argValue('reps') ?? 3);
const chunkBytes = Number(argValue('chunk-mib') ?? 32) * MiB;

async function main(): Promise<void> {
  console.log(machineInfo());
  const cli = prepareCli();
  console.log(`- comms CLI: ${cli.description}`);
  const file = await ensureMixedFile(path.join(OUT_DIR, `mixed-${sizeMiB}MiB.bin`), sizeMiB * MiB);
  const a = await startRegistry({ mode: 'plain' });
  try {
    const source = `${a.host}/bench/source`;
    const sent = await send({
      unsigned: true,
      repository: await openRepository(source),
      recipient: 'bench',
      sender: 'bench',
      input: { path: file },
      chunkBytes,
      compression: 'gzip',
      level: 1,
    });
    const manifest = await (await openRepository(source)).fetchManifest(sent.digest);
    const layers = (JSON.parse(new TextDecoder().decode(manifest.bytes)) as { layers: { size: number }[] }).layers;
    const bytes = layers.reduce((n, l) => n + l.size, 0);
    console.log(`\nmessage ${sent.digest}: ${layers.length} layers, ${fmt.mib(bytes)} compressed (payload ${sizeMiB} MiB), ${reps} reps, load ${loadNow()}\n`);

    const comms: Measured[] = [];
    const skopeo: Measured[] = [];
    const rerun: Measured[] = [];
    const mount: Measured[] = [];
    const runComms = (dst: string) => measure(cli.argv[0]!, [...cli.argv.slice(1), 'copy', `${source}@${sent.digest}`, dst, '--digest', sent.digest]);
    const runSkopeo = (dst: string) =>
      measure('skopeo', [
        'copy',
        '--preserve-digests',
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${source}:${sent.tag}`,
        `docker://${dst}:${sent.tag}`,
      ]);
    for (let i = 0; i < reps; i++) {
      // A fresh destination registry per rep: skopeo's blob-info cache remembers where blobs were
      // pushed and mounts them on the next copy to the same registry, which would not be a copy.
      const b = await startRegistry({ mode: 'plain' });
      try {
        const order = i % 2 === 0 ? ['comms', 'skopeo'] : ['skopeo', 'comms'];
        for (const tool of order) {
          if (tool === 'comms') {
            const dst = `${b.host}/bench/comms`;
            comms.push(await runComms(dst));
            rerun.push(await runComms(dst));
          } else {
            skopeo.push(await runSkopeo(`${b.host}/bench/skopeo`));
          }
        }
      } finally {
        await b.stop();
        await rm(b.storageDir, { recursive: true, force: true }).catch(() => undefined);
      }
      mount.push(await runComms(`${a.host}/bench/mount${i}`));
    }
    const row = (name: string, m: Measured[]) => [
      name,
      fmt.s(median(m.map((x) => x.wallMs))),
      fmt.rate(bytes, median(m.map((x) => x.wallMs))),
      `${median(m.map((x) => x.cpuS)).toFixed(2)} s`,
      fmt.rss(median(m.map((x) => x.maxRssKiB))),
    ];
    console.log(
      table(
        ['copy', 'wall (median)', 'rate', 'CPU', 'peak RSS'],
        [
          row('skopeo copy --preserve-digests (registry → registry)', skopeo),
          row('comms copy (registry → registry)', comms),
          row('comms copy again (destination has everything)', rerun),
          row('comms copy within one registry (blobs mounted)', mount),
        ],
      ),
    );
    const ratio = median(comms.map((x) => x.wallMs)) / median(skopeo.map((x) => x.wallMs));
    console.log(
      `\ncomms / skopeo wall time: ${fmt.ratio(ratio)}; runs comms ${fmt.list(
        comms.map((x) => x.wallMs),
        fmt.s,
      )}, skopeo ${fmt.list(
        skopeo.map((x) => x.wallMs),
        fmt.s,
      )}`,
    );
  } finally {
    await a.stop();
    await rm(a.storageDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

await main();
