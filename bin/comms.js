#!/usr/bin/env -S node --max-semi-space-size=1
// The young-generation cap keeps peak RSS of large transfers well under 200 MiB (bench/RESULTS.md):
// short-lived stream buffers are collected early instead of piling up.
// node-check.js runs first (an older Node gets one line and exit 1); the CLI is loaded after it.
import '../dist/node-check.js';

const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
