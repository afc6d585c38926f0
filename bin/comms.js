#!/usr/bin/env -S node --max-semi-space-size=1
// The young-generation cap keeps peak RSS of large transfers well under 200 MiB (bench/RESULTS.md):
// short-lived stream buffers are collected early instead of piling up.
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
