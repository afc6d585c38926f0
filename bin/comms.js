#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=1
// Peak RSS of large transfers stays under 200 MiB (bench/RESULTS.md) through two settings here:
// the young-generation cap collects short-lived stream buffers early instead of letting them pile
// up, and two glibc malloc arenas (instead of up to eight per core) keep the thread pool's zlib
// and file work from each holding freed memory of its own: 10-15 MiB less at the peak of a
// 1 GiB encrypted receive, no measurable time. Both apply when the CLI is started as `comms`.
import module from 'node:module';
import os from 'node:os';
import path from 'node:path';

// libuv's thread pool runs zlib (a send compresses one chunk per core) and every file read and
// write; with its default 4 threads, uploads' file reads and spool writes queue behind the
// compressors (bench/RESULTS.md). It is sized on first use, so this runs before any file I/O;
// an explicit UV_THREADPOOL_SIZE is kept.
process.env.UV_THREADPOOL_SIZE ??= '8';

// Node keeps the compiled code of the CLI's modules between runs, in the user's own cache folder
// (never a shared temporary one): about a fifth less CPU for a short command. NODE_DISABLE_COMPILE_CACHE=1
// turns it off; a folder that cannot be written only loses the saving.
try {
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  module.enableCompileCache?.(path.join(cache, 'comms', 'node-compile-cache'));
} catch {
  // No home folder, or an older Node: run without the cache.
}

// node-check.js runs first (an older Node gets one line and exit 1); the CLI is loaded after it.
await import('../dist/node-check.js');
const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
