/**
 * Start-up time of the CLI as users run it: `comms --version` and `comms --help` (bin/comms.js
 * over the built CLI, with the shim's Node flags) against `node -e 0` in the same run, interleaved so that load on
 * this shared machine hits both alike. Prints medians and the ratio (target: --version ≤ 3×).
 *
 *   node bench/startup.ts [--runs 21]
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { prepareCli } from './lib/cli.ts';
import { argValue, loadNow, machineInfo, median, OUT_DIR, ROOT, table } from './lib/common.ts';

const runs = Number(argValue('runs') ?? 21);
const cli = prepareCli();
// Through bin/comms.js itself (its Node-version check, then the CLI), next to the private dist/ copy.
const [node, ...nodeFlags] = cli.argv.slice(0, -1);
mkdirSync(path.join(OUT_DIR, 'bin'), { recursive: true });
copyFileSync(path.join(ROOT, 'bin', 'comms.js'), path.join(OUT_DIR, 'bin', 'comms.js'));
const cliArgs = [...nodeFlags, path.join(OUT_DIR, 'bin', 'comms.js')];

function timeOnce(args: string[]): number {
  const start = performance.now();
  const r = spawnSync(node!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = performance.now() - start;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

const cases: Array<{ name: string; args: string[] }> = [
  { name: 'node -e 0', args: ['-e', '0'] },
  { name: 'comms --version', args: [...cliArgs, '--version'] },
  { name: 'comms --help', args: [...cliArgs, '--help'] },
  { name: 'comms send --help', args: [...cliArgs, 'send', '--help'] },
];
const times = new Map<string, number[]>(cases.map((c) => [c.name, []]));
for (const c of cases) timeOnce(c.args); // warm the file cache
for (let i = 0; i < runs; i++) for (const c of cases) times.get(c.name)!.push(timeOnce(c.args));

const base = median(times.get('node -e 0')!);
console.log(`# CLI start-up (${new Date().toISOString()})\n`);
console.log(`${machineInfo()}; load ${loadNow()}; ${runs} runs each, interleaved; CLI: ${cli.description}\n`);
console.log(table(['command', 'median ms', 'ratio to node -e 0'], cases.map((c) => {
  const m = median(times.get(c.name)!);
  return [c.name, m.toFixed(1), `${(m / base).toFixed(2)}x`];
})));
