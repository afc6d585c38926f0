/**
 * Benchmark: blob upload and download throughput of `comms serve` against docker-registry
 * on the same machine, with the same blobs and the same clients: 10 × 64 MiB and 500 × 64 KiB,
 * each pushed then pulled, by comms' remote client (a separate process) and by curl. Each rep
 * starts both servers afresh on fresh storage (so no upload is skipped or deduplicated), runs the
 * workloads against them in alternating order, and records client wall time and the server
 * process's CPU time (/proc/<pid>/stat). Medians over --reps; ratio = comms serve / registry.
 *
 *   node bench/serve-throughput.ts [--reps 3] [--parallel 4] [--large 10] [--small 500] [--from-source]
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startRegistry } from '../test/support/registry.ts';
import { ensureMixedFile, Prng } from './lib/data.ts';
import { argValue, fmt, loadNow, machineInfo, measure, median, MiB, OUT_DIR, ROOT, spreadPct, table } from './lib/common.ts';
import { prepareCli } from './lib/cli.ts';
import { cpuOf, startCommsServe } from './lib/serve.ts';

const reps = Number(argValue('reps') ?? 3);
const parallel = Number(argValue('parallel') ?? 4);
const largeCount = Number(argValue('large') ?? 10);
const smallCount = Number(argValue('small') ?? 500);
const LARGE = 64 * MiB;
const SMALL = 64 * 1024;
const CLIENT = path.join(ROOT, 'bench', 'lib', 'serve-client.ts');
const CURL = path.join(ROOT, 'bench', 'lib', 'curl-blobs.sh');

interface Blob {
  path: string;
  digest: string;
  size: number;
}

/** Large blobs are slices of the mixed payload; small ones pseudo-random. Made once, then reused. */
async function makeBlobs(): Promise<{ large: Blob[]; small: Blob[] }> {
  const dir = path.join(OUT_DIR, 'serve-blobs');
  await mkdir(dir, { recursive: true });
  const source = await ensureMixedFile(path.join(OUT_DIR, 'mixed-1024MiB.bin'), 1024 * MiB);
  const large: Blob[] = [];
  const src = await open(source, 'r');
  try {
    for (let i = 0; i < largeCount; i++) {
      const p = path.join(dir, `large-${i}.bin`);
      // Slices of 64 MiB taken 100 MiB apart (wrapping), so the blobs differ from each other.
      const buf = Buffer.allocUnsafe(LARGE);
      await src.read(buf, 0, LARGE, ((i * 100 * MiB) % (1024 * MiB - LARGE)));
      await writeFile(p, buf);
      large.push({ path: p, digest: `sha256:${createHash('sha256').update(buf).digest('hex')}`, size: LARGE });
    }
  } finally {
    await src.close();
  }
  const prng = new Prng(0x5e4e);
  const small: Blob[] = [];
  for (let i = 0; i < smallCount; i++) {
    const p = path.join(dir, `small-${i}.bin`);
    const buf = prng.bytes(SMALL);
    await writeFile(p, buf);
    small.push({ path: p, digest: `sha256:${createHash('sha256').update(buf).digest('hex')}`, size: SMALL });
  }
  return { large, small };
}

type ServerName = 'docker-registry' | 'comms serve';
type Workload = 'push large' | 'pull large' | 'push small' | 'pull small';
type Client = 'comms client' | 'curl';
const WORKLOADS: Workload[] = ['push large', 'pull large', 'push small', 'pull small'];

interface Sample {
  wallMs: number;
  serverCpuS: number;
  clientCpuS: number;
  requests?: number;
}

async function main(): Promise<void> {
  console.log(machineInfo());
  const cli = prepareCli();
  console.log(`- comms CLI: ${cli.description}`);
  const node = cli.argv[0]!;
  const { large, small } = await makeBlobs();
  const work = path.join(os.tmpdir(), `comms-bench-serve-${process.pid}`);
  await mkdir(work, { recursive: true });
  const lists: Record<'large' | 'small', { json: string; txt: string; bytes: number; count: number }> = {
    large: { json: path.join(work, 'large.json'), txt: path.join(work, 'large.txt'), bytes: large.length * LARGE, count: large.length },
    small: { json: path.join(work, 'small.json'), txt: path.join(work, 'small.txt'), bytes: small.length * SMALL, count: small.length },
  };
  for (const [k, blobs] of [['large', large], ['small', small]] as const) {
    await writeFile(lists[k].json, JSON.stringify(blobs));
    await writeFile(lists[k].txt, blobs.map((b) => `${b.path} ${b.digest}`).join('\n') + '\n');
  }
  console.log(`\nblobs: ${large.length} × ${fmt.mib(LARGE)} and ${small.length} × ${SMALL / 1024} KiB; ${parallel} transfers at once; ${reps} reps\n`);

  const samples = new Map<string, Sample[]>();
  const key = (c: Client, s: ServerName, w: Workload): string => `${c}|${s}|${w}`;
  const add = (k: string, v: Sample): void => {
    samples.set(k, [...(samples.get(k) ?? []), v]);
  };
  try {
    for (let r = 0; r < reps; r++) {
      const registry = await startRegistry({ mode: 'plain' });
      const serveRoot = path.join(work, `serve-root-${r}`);
      const serve = await startCommsServe(cli, serveRoot);
      const servers: Record<ServerName, { host: string; url: string; pid: number }> = {
        'docker-registry': { host: registry.host, url: registry.url, pid: registry.pid },
        'comms serve': { host: serve.host, url: serve.url, pid: serve.pid },
      };
      const order: ServerName[] = r % 2 === 0 ? ['docker-registry', 'comms serve'] : ['comms serve', 'docker-registry'];
      try {
        for (const client of ['comms client', 'curl'] as Client[]) {
          for (const name of order) {
            const s = servers[name];
            const repo = `bench/${client === 'curl' ? 'curl' : 'client'}-${r}`;
            for (const w of WORKLOADS) {
              const [op, size] = w.split(' ') as ['push' | 'pull', 'large' | 'small'];
              const before = await cpuOf(s.pid);
              const m =
                client === 'curl'
                  ? await measure('bash', [CURL, op, s.url, repo, String(parallel), lists[size].txt])
                  : await measure(node, [CLIENT, op, `${s.host}/${repo}`, String(parallel), lists[size].json]);
              const serverCpuS = (await cpuOf(s.pid)) - before;
              // The comms client times its transfers itself (node start-up left out); curl's figure is the whole command.
              const reported = client === 'curl' ? undefined : (JSON.parse(m.stdout.trim()) as { requests: number; ms: number });
              const wallMs = reported?.ms ?? m.wallMs;
              add(key(client, name, w), { wallMs, serverCpuS, clientCpuS: m.cpuS, ...(reported !== undefined ? { requests: reported.requests } : {}) });
              console.log(`  rep ${r + 1} ${client} → ${name}: ${w} ${fmt.s(wallMs)}, server CPU ${serverCpuS.toFixed(2)} s (load ${loadNow()})`);
            }
          }
        }
      } finally {
        await serve.stop();
        await registry.stop();
        await rm(serveRoot, { recursive: true, force: true });
        await rm(registry.storageDir, { recursive: true, force: true });
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }

  const out: string[] = [];
  for (const client of ['comms client', 'curl'] as Client[]) {
    out.push(
      `\n### client: ${client === 'curl' ? 'curl (push: POST + monolithic PUT per blob, two curl processes per blob under xargs -P, whole command timed; pull: one curl -Z process)' : "comms' remote client (openRemoteRepository, one process, transfer time measured inside it)"}\n`,
    );
    const rows: string[][] = [];
    for (const w of WORKLOADS) {
      const size = w.endsWith('large') ? 'large' : 'small';
      const reg = samples.get(key(client, 'docker-registry', w)) ?? [];
      const srv = samples.get(key(client, 'comms serve', w)) ?? [];
      const wr = median(reg.map((x) => x.wallMs));
      const ws = median(srv.map((x) => x.wallMs));
      const rate = (ms: number): string => (size === 'large' ? fmt.rate(lists[size].bytes, ms) : `${(lists[size].count / (ms / 1000)).toFixed(0)} blobs/s`);
      rows.push([
        w,
        `${rate(wr)} (${fmt.s(wr)}; ${fmt.list(reg.map((x) => x.wallMs), fmt.s)})`,
        `${rate(ws)} (${fmt.s(ws)}; ${fmt.list(srv.map((x) => x.wallMs), fmt.s)})`,
        `**${fmt.ratio(wr / ws)}**`,
        `${median(reg.map((x) => x.serverCpuS)).toFixed(2)} / ${median(srv.map((x) => x.serverCpuS)).toFixed(2)}`,
        `${spreadPct(reg.map((x) => x.wallMs)).toFixed(0)}% / ${spreadPct(srv.map((x) => x.wallMs)).toFixed(0)}%`,
        client === 'curl' ? '' : `${median(reg.map((x) => x.requests ?? NaN))} / ${median(srv.map((x) => x.requests ?? NaN))}`,
      ]);
    }
    out.push(
      table(
        ['workload', 'docker-registry: throughput (median wall; runs)', 'comms serve: throughput (median wall; runs)', 'throughput ratio serve/registry', 'server CPU s registry / serve', 'spread registry / serve', 'requests registry / serve'],
        rows,
      ),
    );
  }
  out.push(`\nratio > 1: comms serve moved the blobs faster than docker-registry. load average at end: ${loadNow()}`);
  console.log(out.join('\n'));
}

await main();
