/**
 * Throughput of `comms serve` against docker-registry on the same machine, with the same blobs
 * and the same clients: 10 × 64 MiB and 500 × 64 KiB blobs, each pushed then pulled, by comms'
 * remote client (a separate process) and by curl; and 1,000 tag pushes (small distinct manifests,
 * one curl process, one at a time and 4 at once). Each rep starts both servers afresh on fresh
 * storage (so no upload is skipped or deduplicated), runs the workloads against them in
 * alternating order, and records client wall time and the server process's CPU time
 * (/proc/<pid>/stat). Medians over --reps; the time ratio is comms serve / registry.
 * `--seed N` then pushes N tags (8 at once) into one repository of each server: how long seeding
 * a big mailbox takes.
 *
 *   node bench/serve-throughput.ts [--reps 3] [--parallel 4] [--large 10] [--small 500] [--tags 1000]
 *     [--seed 50000] [--only tags] [--from-source]
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
const tagCount = Number(argValue('tags') ?? 1000);
const seedCount = Number(argValue('seed') ?? 0);
/** `tags`: only the tag pushes (and --seed), no blobs. */
const onlyTags = argValue('only') === 'tags';
const LARGE = 64 * MiB;
const SMALL = 64 * 1024;
const CLIENT = path.join(ROOT, 'bench', 'lib', 'serve-client.ts');
const CURL = path.join(ROOT, 'bench', 'lib', 'curl-blobs.sh');
const CURL_TAGS = path.join(ROOT, 'bench', 'lib', 'curl-tags.sh');
const EMPTY = Buffer.from('{}');
const EMPTY_DIGEST = `sha256:${createHash('sha256').update(EMPTY).digest('hex')}`;

/**
 * `count` distinct small manifests (an empty config and layer, an annotation) and the list file
 * curl-tags.sh reads: "path tag" lines, tags as comms names inbox tags.
 */
async function makeManifests(dir: string, count: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  const lines: string[] = [];
  const empty = { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY_DIGEST, size: EMPTY.length };
  for (let i = 0; i < count; i++) {
    const doc = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.example.bench',
      config: empty,
      layers: [empty],
      annotations: { n: String(i) },
    };
    const file = path.join(dir, `m${i}.json`);
    await writeFile(file, JSON.stringify(doc));
    lines.push(`${file} inbox-r${String(i % 97).padStart(2, '0')}-20261201-${String(i).padStart(6, '0')}`);
  }
  const list = path.join(dir, 'list.txt');
  await writeFile(list, `${lines.join('\n')}\n`);
  return list;
}

/** The empty blob every bench manifest references, pushed with curl (POST + PUT, as distribution 2.8 needs). */
async function pushEmptyBlob(url: string, repo: string, work: string): Promise<void> {
  const file = path.join(work, 'empty.json');
  await writeFile(file, EMPTY);
  const list = path.join(work, 'empty.txt');
  await writeFile(list, `${file} ${EMPTY_DIGEST}\n`);
  await measure('bash', [CURL, 'push', url, repo, '1', list]);
}

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
      await src.read(buf, 0, LARGE, (i * 100 * MiB) % (1024 * MiB - LARGE));
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
type Workload = 'push large' | 'pull large' | 'push small' | 'pull small' | 'push tags, 1 at a time' | 'push tags, 4 at once';
type Client = 'comms client' | 'curl';
const BLOB_WORKLOADS: Workload[] = onlyTags ? [] : ['push large', 'pull large', 'push small', 'pull small'];
const TAG_WORKLOADS: Workload[] = ['push tags, 1 at a time', 'push tags, 4 at once'];
const workloadsOf = (client: Client): Workload[] => (client === 'curl' ? [...BLOB_WORKLOADS, ...TAG_WORKLOADS] : BLOB_WORKLOADS);

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
  // The comms client is a bench script run by this Node (cli.argv may start with env(1)).
  const node = process.execPath;
  const { large, small } = onlyTags ? { large: [], small: [] } : await makeBlobs();
  const tagList = await makeManifests(path.join(OUT_DIR, `serve-manifests-${tagCount}`), tagCount);
  const work = path.join(os.tmpdir(), `comms-bench-serve-${process.pid}`);
  await mkdir(work, { recursive: true });
  const lists: Record<'large' | 'small', { json: string; txt: string; bytes: number; count: number }> = {
    large: { json: path.join(work, 'large.json'), txt: path.join(work, 'large.txt'), bytes: large.length * LARGE, count: large.length },
    small: { json: path.join(work, 'small.json'), txt: path.join(work, 'small.txt'), bytes: small.length * SMALL, count: small.length },
  };
  for (const [k, blobs] of [
    ['large', large],
    ['small', small],
  ] as const) {
    await writeFile(lists[k].json, JSON.stringify(blobs));
    await writeFile(lists[k].txt, blobs.map((b) => `${b.path} ${b.digest}`).join('\n') + '\n');
  }
  console.log(
    `\nblobs: ${large.length} × ${fmt.mib(LARGE)} and ${small.length} × ${SMALL / 1024} KiB; ${parallel} transfers at once; ${tagCount} tag pushes; ${reps} reps\n`,
  );

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
            for (const w of workloadsOf(client)) {
              const [op, size] = w.split(' ') as ['push' | 'pull', 'large' | 'small' | 'tags,'];
              let tagsRepo = '';
              if (size === 'tags,') {
                // Each tag workload gets a repository of its own holding only the empty blob.
                tagsRepo = `${repo}-tags-${w.includes('4') ? 4 : 1}`;
                await pushEmptyBlob(s.url, tagsRepo, work);
              }
              const before = await cpuOf(s.pid);
              const m =
                size === 'tags,'
                  ? await measure('bash', [CURL_TAGS, s.url, tagsRepo, w.includes('4') ? '4' : '1', tagList])
                  : client === 'curl'
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
    for (const w of workloadsOf(client)) {
      const size = w.endsWith('large') ? 'large' : w.endsWith('small') ? 'small' : 'tags';
      const reg = samples.get(key(client, 'docker-registry', w)) ?? [];
      const srv = samples.get(key(client, 'comms serve', w)) ?? [];
      const wr = median(reg.map((x) => x.wallMs));
      const ws = median(srv.map((x) => x.wallMs));
      const rate = (ms: number): string =>
        size === 'large'
          ? fmt.rate(lists[size].bytes, ms)
          : size === 'small'
            ? `${(lists[size].count / (ms / 1000)).toFixed(0)} blobs/s`
            : `${(tagCount / (ms / 1000)).toFixed(0)} tags/s`;
      rows.push([
        w,
        `${rate(wr)} (${fmt.s(wr)}; ${fmt.list(
          reg.map((x) => x.wallMs),
          fmt.s,
        )})`,
        `${rate(ws)} (${fmt.s(ws)}; ${fmt.list(
          srv.map((x) => x.wallMs),
          fmt.s,
        )})`,
        `**${fmt.ratio(ws / wr)}**`,
        `${median(reg.map((x) => x.serverCpuS)).toFixed(2)} / ${median(srv.map((x) => x.serverCpuS)).toFixed(2)}`,
        `${spreadPct(reg.map((x) => x.wallMs)).toFixed(0)}% / ${spreadPct(srv.map((x) => x.wallMs)).toFixed(0)}%`,
        client === 'curl' ? '' : `${median(reg.map((x) => x.requests ?? NaN))} / ${median(srv.map((x) => x.requests ?? NaN))}`,
      ]);
    }
    out.push(
      table(
        [
          'workload',
          'docker-registry: throughput (median wall; runs)',
          'comms serve: throughput (median wall; runs)',
          'time ratio serve / registry (target ≤ 1.1)',
          'server CPU s registry / serve',
          'spread registry / serve',
          'requests registry / serve',
        ],
        rows,
      ),
    );
  }
  out.push(`\ntime ratio < 1: comms serve was faster than docker-registry. load average at end: ${loadNow()}`);
  console.log(out.join('\n'));
  if (seedCount > 0) await seed(cli);
}

/** Where seeding reports its rate so far (those below --seed, then --seed itself). */
const SEED_STAGES = [10_000, 25_000, 50_000];

/**
 * Pushes --seed tags, 8 at once from one curl process, into a fresh repository of each server,
 * in stages (up to 10,000, 25,000, 50,000 tags): the rate within each stage shows whether a push
 * slows down as the repository grows.
 */
async function seed(cli: ReturnType<typeof prepareCli>): Promise<void> {
  const list = await makeManifests(path.join(OUT_DIR, `serve-seed-${seedCount}`), seedCount);
  const work = path.join(os.tmpdir(), `comms-bench-seed-${process.pid}`);
  await mkdir(work, { recursive: true });
  const lines = (await readFile(list, 'utf8')).split('\n').filter((l) => l !== '');
  const ends = [...SEED_STAGES.filter((n) => n < seedCount), seedCount];
  const parts: { from: number; to: number; file: string }[] = [];
  for (let i = 0, from = 0; i < ends.length; from = ends[i] as number, i++) {
    const file = path.join(work, `part-${i}.txt`);
    await writeFile(file, `${lines.slice(from, ends[i]).join('\n')}\n`);
    parts.push({ from, to: ends[i] as number, file });
  }
  const registry = await startRegistry({ mode: 'plain' });
  const serve = await startCommsServe(cli, path.join(work, 'serve-root'));
  const rows: string[][] = [];
  const times: Record<string, number> = {};
  try {
    for (const [name, url, pid] of [
      ['docker-registry', registry.url, registry.pid],
      ['comms serve', serve.url, serve.pid],
    ] as const) {
      await pushEmptyBlob(url, 'bench/seed', work);
      let total = 0;
      for (const part of parts) {
        const before = await cpuOf(pid);
        const m = await measure('bash', [CURL_TAGS, url, 'bench/seed', '8', part.file]);
        const cpu = (await cpuOf(pid)) - before;
        total += m.wallMs;
        const count = part.to - part.from;
        rows.push([
          name,
          `${part.from}–${part.to}`,
          fmt.s(m.wallMs),
          `${(count / (m.wallMs / 1000)).toFixed(0)} tags/s`,
          `${((cpu * 1000) / count).toFixed(2)} ms`,
          fmt.s(total),
          loadNow(),
        ]);
        console.log(`  ${name}: tags ${part.from}–${part.to} in ${fmt.s(m.wallMs)}, server CPU ${cpu.toFixed(2)} s (load ${loadNow()})`);
      }
      const check = await measure('curl', ['-fsS', `${url}/v2/bench/seed/tags/list`]);
      const listed = (JSON.parse(check.stdout) as { tags: string[] }).tags.length;
      times[name] = total;
      console.log(`  seeded ${seedCount} tags into ${name} in ${fmt.s(total)}; ${listed} tags on the first page of the list`);
    }
  } finally {
    await serve.stop();
    await registry.stop();
    await rm(work, { recursive: true, force: true });
    await rm(registry.storageDir, { recursive: true, force: true });
  }
  console.log(`\n### seeding ${seedCount} tags (8 at once, one curl process)\n`);
  console.log(table(['server', 'tags', 'wall', 'rate', 'server CPU per tag', 'total wall so far', 'load after'], rows));
  console.log(`\ntime ratio serve / registry: **${fmt.ratio((times['comms serve'] ?? NaN) / (times['docker-registry'] ?? NaN))}**`);
}

await main();
