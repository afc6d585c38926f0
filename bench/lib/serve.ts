/**
 * `comms serve` as a process of its own for benchmarks (the standalone entry beside the CLI the
 * benchmark runs), and the CPU time of any process from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './common.ts';
import type { Cli } from './cli.ts';

export interface CommsServe {
  child: ChildProcess;
  pid: number;
  /** `127.0.0.1:PORT` */
  host: string;
  url: string;
  stop(): Promise<void>;
}

/** The standalone server script matching `cli` (JavaScript when built, TypeScript from source). */
export function serveScriptFor(cli: Cli): string {
  const entry = cli.argv[cli.argv.length - 1]!;
  return entry.endsWith('.js') ? path.join(path.dirname(path.dirname(entry)), 'server', 'standalone.js') : path.join(ROOT, 'src', 'server', 'standalone.ts');
}

export async function startCommsServe(cli: Cli, root: string): Promise<CommsServe> {
  const child = spawn(cli.argv[0]!, [serveScriptFor(cli), '--root', root, '--addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => {
      rl.close();
      resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`comms serve exited ${code} before listening`)));
  });
  const { url, port } = JSON.parse(line) as { url: string; port: number };
  return {
    child,
    pid: child.pid!,
    host: `127.0.0.1:${port}`,
    url,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** utime + stime of a process so far, in seconds (fields 14 and 15 of /proc/<pid>/stat, 100 Hz). */
export async function cpuOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
