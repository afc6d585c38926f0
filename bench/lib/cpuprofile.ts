/**
 * Summarises the V8 .cpuprofile files node writes with --cpu-prof: main-thread self time by
 * function, with idle and GC shown apart. zlib and hashing of streams run partly on libuv worker
 * threads, which the profile does not sample: their cost shows as main-thread idle time and in
 * the process CPU time GNU time reports.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, table } from './common.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The repository root as a file URL prefix, stripped from frame URLs so labels are repository paths. */
const ROOT_URL = `${pathToFileURL(ROOT).href}/`;

function label(n: ProfileNode): string {
  const { functionName, url, lineNumber } = n.callFrame;
  const name = functionName === '' ? '(anonymous)' : functionName;
  if (url === '') return name;
  const short = url.replace(ROOT_URL, '').replace(/^file:\/\/.*node_modules\//, 'node_modules/');
  return `${name} ${short}:${lineNumber + 1}`;
}

/** Top main-thread self-time entries of every profile in `dir`. */
export async function summarizeProfile(dir: string, top = 12): Promise<string> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  const out: string[] = [];
  for (const f of files) {
    const p = JSON.parse(await readFile(path.join(dir, f), 'utf8')) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const self = new Map<string, number>();
    let total = 0;
    for (let i = 0; i < p.samples.length; i++) {
      const n = byId.get(p.samples[i]!);
      const dt = p.timeDeltas[i] ?? 0;
      total += dt;
      if (n === undefined) continue;
      const k = label(n);
      self.set(k, (self.get(k) ?? 0) + dt);
    }
    const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
    out.push(`main thread, ${(total / 1e6).toFixed(1)} s sampled (${f}):`);
    out.push(
      table(
        ['self time', '%', 'function'],
        rows.map(([k, us]) => [`${(us / 1e3).toFixed(0)} ms`, ((us / total) * 100).toFixed(1), `\`${k}\``]),
      ),
    );
  }
  return out.join('\n');
}
