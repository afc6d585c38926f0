/**
 * Benchmark: HTTP requests and wall time of a recv over a busy repository — 5,000 foreign
 * tags and 10 signed messages for me — with comms' strategy (one tag listing per run, shared by
 * every message's bundle lookup) against v1.0's (a full tag listing per message to find its
 * `bundle-<hex12>-` tag). Both run in this process over the same remote client, with the same
 * verification and materialisation code; only the tag listing strategy differs. Requests are
 * counted with the client's onRequest hook, by kind. Against docker-registry (no Referrers API:
 * comms also reads the tag-schema index) and `comms serve` (Referrers API).
 *
 *   node bench/recv-requests.ts [--reps 3] [--foreign 5000] [--messages 10] [--from-source]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startRegistry } from '../test/support/registry.ts';
import { openRemoteRepository, type RequestEvent } from '../src/oci/remote/index.ts';
import type { Repository } from '../src/oci/target.ts';
import { send } from '../src/comms/send.ts';
import { receive } from '../src/comms/receive.ts';
import { TagSnapshot } from '../src/comms/tag-snapshot.ts';
import { verifyMessage } from '../src/comms/verify-message.ts';
import { materialize, openScratch } from '../src/comms/materialize.ts';
import { parseMessageManifest } from '../src/protocol/validate.ts';
import { inboxPrefix, inboxTag } from '../src/protocol/tags.ts';
import { ArtifactType } from '../src/protocol/constants.ts';
import { buildManifest } from '../src/protocol/manifest.ts';
import { loadKeySigner } from '../src/trust/key-signer.ts';
import type { TrustPolicy } from '../src/trust/verify.ts';
import { mapLimit } from '../src/util/pool.ts';
import { readFile } from 'node:fs/promises';
import { argValue, fmt, loadNow, machineInfo, median, ROOT, spreadPct, table } from './lib/common.ts';
import { prepareCli } from './lib/cli.ts';
import { startCommsServe } from './lib/serve.ts';

const reps = Number(argValue('reps') ?? 3);
const foreignCount = Number(argValue('foreign') ?? 5000);
const messageCount = Number(argValue('messages') ?? 10);
const ME = 'bench-me@example.org';
const PAGE_SIZE = 1000;

type Kind = 'tag pages' | 'manifests' | 'blobs' | 'referrers' | 'other';

class Counter {
  readonly byKind = new Map<Kind, number>();
  total = 0;
  add(e: RequestEvent): void {
    const kind: Kind = e.url.includes('/tags/list')
      ? 'tag pages'
      : e.url.includes('/referrers/')
        ? 'referrers'
        : e.url.includes('/manifests/')
          ? 'manifests'
          : e.url.includes('/blobs/')
            ? 'blobs'
            : 'other';
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + 1);
    this.total++;
  }
  get(k: Kind): number {
    return this.byKind.get(k) ?? 0;
  }
}

interface Run {
  requests: Counter;
  ms: number;
}

/** 10 signed messages for me, then `foreignCount` tags of other people's traffic. */
async function populate(ref: string): Promise<void> {
  const repo = openRemoteRepository(ref, { plainHttp: true });
  const signer = await loadKeySigner(path.join(ROOT, 'fixtures', 'keys', 'test-only-p256.key'));
  for (let i = 0; i < messageCount; i++) {
    await send({
      repository: repo,
      recipient: ME,
      sender: 'alice@example.org',
      input: { text: `message ${i} for the benchmark\n`, filename: `m${i}.txt` },
      signer,
    });
  }
  // One foreign manifest under many tags: inbox tags of 1,000 other recipients (80%), and bundle
  // and receipt tags of other messages (10% each), as a busy shared mailbox has.
  const foreign = buildManifest({ artifactType: ArtifactType.Message, layers: [], annotations: { 'dockercomms.version': '1.0' } });
  const tags: string[] = [];
  for (let i = 0; i < foreignCount; i++) {
    const r = i % 10;
    const hex = randomBytes(6).toString('hex');
    if (r < 8)
      tags.push(
        inboxTag({
          recipient: `user${i % 1000}@example.org`,
          date: new Date(Date.UTC(2025, 0, 1 + (i % 300))),
          sessionId: randomBytes(4).toString('hex'),
          messageId: randomBytes(4).toString('hex'),
        }),
      );
    else tags.push(`${r === 8 ? 'bundle' : 'receipt'}-${hex}-${1735689600 + i}-${randomBytes(3).toString('hex')}`);
  }
  await mapLimit(tags, 8, async (t) => {
    await repo.pushManifest(foreign.descriptor, foreign.bytes, t);
  });
}

async function policy(): Promise<TrustPolicy> {
  return { trustedKeys: [await readFile(path.join(ROOT, 'fixtures', 'keys', 'test-only-p256.pub'), 'utf8')] };
}

/** comms: receive() as the CLI runs it. */
async function runComms(ref: string, trust: TrustPolicy): Promise<Run> {
  const requests = new Counter();
  const repo = openRemoteRepository(ref, { plainHttp: true, onRequest: (e) => requests.add(e) });
  const out = await mkdtemp(path.join(os.tmpdir(), 'comms-bench-rr-'));
  try {
    const start = performance.now();
    const r = await receive({ repository: repo, me: ME, outDir: out, verify: trust });
    const ms = performance.now() - start;
    if (r.messages.length !== messageCount || r.failures.length > 0)
      throw new Error(`comms received ${r.messages.length}, ${r.failures.length} failures: ${r.failures.map((f) => f.error.message).join('; ')}`);
    return { requests, ms };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/**
 * v1.0's strategy over the same client and code: one listing to find the inbox tags, then for
 * each message a fresh full listing to find its `bundle-<hex12>-` tags (no Referrers API, no
 * tag-schema index: v1.0 looks at tags only), then verification and materialisation as comms does.
 */
async function runV1(ref: string, trust: TrustPolicy): Promise<Run> {
  const requests = new Counter();
  const repo: Repository = openRemoteRepository(ref, { plainHttp: true, onRequest: (e) => requests.add(e) });
  const out = await mkdtemp(path.join(os.tmpdir(), 'comms-bench-rr-'));
  const scratch = await openScratch(out);
  try {
    const start = performance.now();
    const scratchDir = scratch.dir;
    const inbox = (await TagSnapshot.load(repo, { pageSize: PAGE_SIZE })).withPrefix(inboxPrefix(ME));
    const fetched = await mapLimit(inbox, 8, async (tag) => {
      const m = await repo.fetchManifest(tag);
      return { m, info: parseMessageManifest(m.bytes) };
    });
    fetched.sort((a, b) => a.info.createdAt.getTime() - b.info.createdAt.getTime());
    for (const { m, info } of fetched) {
      const perMessage = await TagSnapshot.load(repo, { pageSize: PAGE_SIZE });
      await verifyMessage(repo, m.descriptor, m.bytes, { policy: trust, sender: info.sender, snapshot: perMessage, source: 'tag' });
      await materialize(repo, info, { outDir: out, scratchDir });
    }
    const ms = performance.now() - start;
    if (fetched.length !== messageCount) throw new Error(`v1.0 strategy received ${fetched.length}`);
    return { requests, ms };
  } finally {
    await scratch.release();
    await rm(out, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(machineInfo());
  const cli = prepareCli();
  console.log(`- comms serve: ${cli.description}; the recv strategies run in this process from source`);
  console.log(`\n${foreignCount} foreign tags + ${messageCount} signed messages (each with its bundle) for me; tag pages of ${PAGE_SIZE}; ${reps} reps\n`);
  const trust = await policy();
  const registry = await startRegistry({ mode: 'plain' });
  const serveRoot = await mkdtemp(path.join(os.tmpdir(), 'comms-bench-rr-serve-'));
  const serve = await startCommsServe(cli, serveRoot);
  const servers = [
    { name: 'docker-registry (no Referrers API: tag-schema fallback)', ref: `${registry.host}/bench/busy` },
    { name: 'comms serve (Referrers API)', ref: `${serve.host}/bench/busy` },
  ];
  const report: string[] = [];
  try {
    for (const s of servers) {
      const t0 = performance.now();
      await populate(s.ref);
      console.log(`  ${s.name}: populated in ${fmt.s(performance.now() - t0)} (load ${loadNow()})`);
      const comms: Run[] = [];
      const v1: Run[] = [];
      for (let r = 0; r < reps; r++) {
        for (const who of r % 2 === 0 ? ['comms', 'v1'] : ['v1', 'comms']) {
          const run = who === 'comms' ? await runComms(s.ref, trust) : await runV1(s.ref, trust);
          (who === 'comms' ? comms : v1).push(run);
          console.log(`  ${s.name} rep ${r + 1} ${who}: ${run.requests.total} requests, ${fmt.ms(run.ms)}`);
        }
      }
      const row = (label: string, runs: Run[]): string[] => {
        const med = (f: (x: Run) => number): number => median(runs.map(f));
        return [
          label,
          String(med((x) => x.requests.total)),
          String(med((x) => x.requests.get('tag pages'))),
          String(med((x) => x.requests.get('manifests'))),
          String(med((x) => x.requests.get('blobs'))),
          String(med((x) => x.requests.get('referrers'))),
          String(med((x) => x.requests.get('other'))),
          `${fmt.ms(med((x) => x.ms))} (${fmt.list(
            runs.map((x) => x.ms),
            fmt.ms,
          )}; spread ${spreadPct(runs.map((x) => x.ms)).toFixed(0)}%)`,
        ];
      };
      const reqRatio = median(v1.map((x) => x.requests.total)) / median(comms.map((x) => x.requests.total));
      const timeRatio = median(v1.map((x) => x.ms)) / median(comms.map((x) => x.ms));
      const pages = median(comms.map((x) => x.requests.get('tag pages')));
      const perMessage = (median(comms.map((x) => x.requests.total)) - pages) / messageCount;
      report.push(`\n### ${s.name}\n`);
      report.push(
        table(
          ['strategy', 'requests', 'tag pages', 'manifests', 'blobs', 'referrers', 'other', 'wall (median; runs)'],
          [row('v1.0: full tag listing per message', v1), row('comms: one shared tag listing', comms)],
        ),
      );
      report.push(
        `\nv1.0 / comms: **${fmt.ratio(reqRatio)} requests**, **${fmt.ratio(timeRatio)} wall time**. comms: ${pages} tag page(s) + ${perMessage.toFixed(1)} requests per message (everything else, divided by ${messageCount}).`,
      );
    }
  } finally {
    await serve.stop();
    await registry.stop();
    await rm(serveRoot, { recursive: true, force: true });
  }
  report.push(`\nload average at end: ${loadNow()}`);
  console.log(report.join('\n'));
}

await main();
