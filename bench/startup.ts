/**
 * Start-up time of the CLI as users run it: `comms --version` and `comms --help` (bin/comms.js
 * over the built CLI, with the shim's Node flags) against `node -e 0` in the same run, interleaved so that load on
 * this shared machine hits both alike. Prints medians and the ratio (target: --version ≤ 3×).
 *
 *   node bench/startup.ts [--runs 21]
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { prepareCli } from './lib/cli.ts';
import { argValue, loadNow, machineInfo, measure, median, OUT_DIR, ROOT, table } from './lib/common.ts';

const runs = Number(argValue('runs') ?? 21);
const cli = prepareCli();
// Through bin/comms.js itself (its Node-version check, then the CLI), next to the private dist/ copy,
// started as its shebang starts it (environment, then node and its flags).
const head = cli.argv.slice(0, -1);
mkdirSync(path.join(OUT_DIR, 'bin'), { recursive: true });
copyFileSync(path.join(ROOT, 'bin', 'comms.js'), path.join(OUT_DIR, 'bin', 'comms.js'));
const comms = [...head, path.join(OUT_DIR, 'bin', 'comms.js')];

/** Wall time, and CPU time (user + system, from GNU time), which load on the machine disturbs far less. */
async function timeOnce(argv: string[]): Promise<{ wallMs: number; cpuMs: number }> {
  const m = await measure(argv[0]!, argv.slice(1));
  return { wallMs: m.wallMs, cpuMs: m.cpuS * 1000 };
}

const cases: Array<{ name: string; argv: string[] }> = [
  { name: 'node -e 0', argv: [process.execPath, '-e', '0'] },
  { name: 'comms --version', argv: [...comms, '--version'] },
  { name: 'comms --help', argv: [...comms, '--help'] },
  { name: 'comms send --help', argv: [...comms, 'send', '--help'] },
];
const wall = new Map<string, number[]>(cases.map((c) => [c.name, []]));
const cpu = new Map<string, number[]>(cases.map((c) => [c.name, []]));
for (const c of cases) await timeOnce(c.argv); // warm the file cache
for (let i = 0; i < runs; i++) {
  for (const c of cases) {
    const t = await timeOnce(c.argv);
    wall.get(c.name)!.push(t.wallMs);
    cpu.get(c.name)!.push(t.cpuMs);
  }
}

const baseWall = median(wall.get('node -e 0')!);
const baseCpu = median(cpu.get('node -e 0')!);
console.log(`# CLI start-up (${new Date().toISOString()})\n`);
console.log(`${machineInfo()}\n- ${runs} runs each, interleaved; load at the end ${loadNow()}; CLI: ${cli.description}\n`);
console.log(
  table(
    ['command', 'median wall ms', 'wall ratio to node -e 0', 'median CPU ms', 'CPU ratio'],
    cases.map((c) => {
      const w = median(wall.get(c.name)!);
      const u = median(cpu.get(c.name)!);
      return [c.name, w.toFixed(1), `${(w / baseWall).toFixed(2)}x`, u.toFixed(0), `${(u / baseCpu).toFixed(2)}x`];
    }),
  ),
);
