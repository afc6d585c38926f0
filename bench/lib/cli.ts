/**
 * The comms CLI a benchmark runs. By default the CLI as users get it: the current working tree
 * compiled with tsconfig.build.json into bench/out/dist (a private copy, so the shared dist/ is
 * left alone) and started through a copy of bin/comms.js in bench/out/bin, with its Node flags. `--from-source` runs src/cli/run.ts through Node's
 * type stripping instead, as the tests do; that adds about 0.5 s of start-up and 30 MiB of RSS.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
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
  const r = spawnSync(tsc, ['-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', outDir, '--declaration', 'false', '--sourceMap', 'false'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (!existsSync(path.join(outDir, 'cli', 'main.js'))) throw new Error(`building the CLI failed:\n${r.stdout}${r.stderr}`);
  // bin/comms.js itself, beside the build as it sits beside dist/: what it sets up (the thread
  // pool's size) applies as it does for users.
  const entry = path.join(OUT_DIR, 'bin', 'comms.js');
  mkdirSync(path.dirname(entry), { recursive: true });
  copyFileSync(path.join(ROOT, 'bin', 'comms.js'), entry);
  // Type errors elsewhere in the working tree do not stop tsc from emitting; say so.
  const note = r.status === 0 ? '' : ' (tsc reported type errors in the working tree; JavaScript was emitted anyway)';
  const { env, flags } = shebang();
  // The shebang's environment assignments need env(1), as the shebang itself uses it.
  const head = env.length > 0 ? ['/usr/bin/env', ...env, process.execPath] : [process.execPath];
  return {
    argv: [...head, ...flags, entry],
    description: `the working tree built with tsconfig.build.json into bench/out/dist, run through a copy of bin/comms.js with its shebang's environment (${env.join(' ') || 'none'}) and Node flags (${flags.join(' ') || 'none'})${note}`,
  };
}

/**
 * What bin/comms.js's shebang (`#!/usr/bin/env -S [VAR=value…] node <flags>`) sets: environment
 * assignments before `node`, Node flags after it, so the bench runs what users run.
 */
function shebang(): { env: string[]; flags: string[] } {
  const first = readFileSync(path.join(ROOT, 'bin', 'comms.js'), 'utf8').split('\n')[0] ?? '';
  const words = first
    .replace(/^#!\S*\s*/, '')
    .split(/\s+/)
    .filter((w) => w !== '' && w !== '-S');
  const i = words.indexOf('node');
  if (i < 0) return { env: [], flags: [] };
  return { env: words.slice(0, i).filter((w) => /^[A-Z_][A-Z0-9_]*=/.test(w)), flags: words.slice(i + 1) };
}
