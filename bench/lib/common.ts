/**
 * Shared benchmark plumbing: run a command under GNU time (wall, CPU, peak RSS of the process
 * tree it waits for), medians, the machine description that goes into RESULTS.md, and Markdown
 * tables. Benchmarks print figures; they never assert (see ../../../shared/testing.md).
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const OUT_DIR = path.join(ROOT, 'bench', 'out');
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
const GNU_TIME = '/usr/bin/time';

export interface Measured {
  wallMs: number;
  /** User + system CPU seconds of the process and every descendant it waited for. */
  cpuS: number;
  /** Largest resident set of any single process in the tree, KiB (GNU time %M). */
  maxRssKiB: number;
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean;
}

/** Runs `cmd args` under /usr/bin/time; wall time is taken here, around the spawn. */
export async function measure(cmd: string, args: string[], options: RunOptions = {}): Promise<Measured> {
  if (!existsSync(GNU_TIME)) throw new Error(`${GNU_TIME} is needed for peak RSS (apt-get install time)`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'comms-bench-time-'));
  const timeFile = path.join(dir, 'time');
  try {
    const start = performance.now();
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(GNU_TIME, ['-f', '%e %U %S %M', '-o', timeFile, cmd, ...args], {
        cwd: options.cwd ?? ROOT,
        env: options.env ?? process.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.once('error', reject);
      child.once('close', (c) => resolve({ code: c ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    });
    const wallMs = performance.now() - start;
    const line = (await readFile(timeFile, 'utf8')).trim().split('\n').pop() ?? '';
    const [, user, sys, rss] = line.split(' ').map(Number);
    if (code !== 0 && options.allowFailure !== true) {
      throw new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${stderr.slice(-2000)}`);
    }
    return { wallMs, cpuS: (user ?? NaN) + (sys ?? NaN), maxRssKiB: rss ?? NaN, code, stdout, stderr };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Spread as (max - min) / median, in percent: a quick read of how noisy a series was. */
export function spreadPct(xs: number[]): number {
  const m = median(xs);
  return xs.length < 2 || m === 0 ? 0 : ((Math.max(...xs) - Math.min(...xs)) / m) * 100;
}

export const fmt = {
  s: (ms: number): string => `${(ms / 1000).toFixed(2)} s`,
  ms: (ms: number): string => `${ms.toFixed(0)} ms`,
  mib: (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`,
  rss: (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`,
  ratio: (x: number): string => `${x.toFixed(2)}×`,
  rate: (bytes: number, ms: number): string => `${(bytes / MiB / (ms / 1000)).toFixed(1)} MiB/s`,
  list: (xs: number[], f: (x: number) => string): string => xs.map(f).join(' / '),
};

/** A Markdown table. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]): string => `| ${cells.map(String).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

function sh(cmd: string, args: string[], trim = true): string {
  try {
    const out = execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8' });
    return trim ? out.trim() : out;
  } catch {
    return '?';
  }
}

/** Date, machine and source revision, for the head of each result block. */
export function machineInfo(): string {
  // Porcelain lines are `XY path`; untrimmed, so the first line keeps its leading status column.
  const dirty = sh('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src'], false).trimEnd();
  const lines = [
    `- date: ${new Date().toISOString()}`,
    `- machine: nproc ${sh('nproc', [])}, ${os.cpus()[0]?.model ?? '?'}; memory: ${sh('free', ['-h']).split('\n')[1]?.replace(/\s+/g, ' ') ?? '?'}`,
    `- node ${process.version}; docker-registry ${sh('docker-registry', ['--version']).split(' ').slice(-1)[0] ?? '?'}; zstd ${sh('zstd', ['-V']).match(/v[\d.]+/)?.[0] ?? '?'}; ${sh('gzip', ['--version']).split('\n')[0]}; curl ${sh('curl', ['--version']).split(' ')[1] ?? '?'}`,
    `- source: ${sh('git', ['rev-parse', '--short', 'HEAD'])}${
      dirty === ''
        ? ''
        : ` + uncommitted changes in ${dirty
            .split('\n')
            .map((l) => l.slice(3))
            .join(', ')}`
    }`,
    `- load average at start: ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(', ')} (other processes on the machine share its cores)`,
  ];
  return lines.join('\n');
}

export function loadNow(): string {
  return os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(', ');
}

/** Reads `--name value` / `--flag` style arguments. */
export function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

export function argFlag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}
