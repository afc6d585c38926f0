/**
 * The comms CLI a benchmark runs. By default the CLI as users get it: the current working tree
 * compiled with tsconfig.build.json into bench/out/dist (a private copy, so the shared dist/ is
 * left alone) and run as plain JavaScript. `--from-source` runs src/cli/run.ts through Node's
 * type stripping instead, as the tests do; that adds about 0.5 s of start-up and 30 MiB of RSS.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { argFlag, OUT_DIR, ROOT } from './common.ts';

export interface Cli {
  /** Command and leading arguments: `[node, script]`. */
  argv: string[];
  description: string;
}

export function prepareCli(): Cli {
  if (argFlag('from-source')) {
    return { argv: [process.execPath, path.join(ROOT, 'src', 'cli', 'run.ts')], description: 'src/cli/run.ts run from source (type stripping)' };
  }
  const outDir = path.join(OUT_DIR, 'dist');
  const tsc = path.join(ROOT, 'node_modules', '.bin', 'tsc');
  const r = spawnSync(tsc, ['-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', outDir, '--declaration', 'false', '--sourceMap', 'false'], { cwd: ROOT, encoding: 'utf8' });
  const entry = path.join(outDir, 'cli', 'run.js');
  if (!existsSync(entry)) throw new Error(`building the CLI failed:\n${r.stdout}${r.stderr}`);
  // Type errors in files other sessions are editing do not stop tsc from emitting; say so.
  const note = r.status === 0 ? '' : ' (tsc reported type errors in the working tree; JavaScript was emitted anyway)';
  return { argv: [process.execPath, entry], description: `the working tree built with tsconfig.build.json into bench/out/dist, run as JavaScript${note}` };
}
