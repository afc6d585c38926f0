/**
 * Memory does not grow with the chunk size: 256 MiB is written and read back through
 * writeChunks/readChunk in 8 MiB chunks and in 64 MiB chunks, each in a fresh process, and the
 * peak RSS growth is compared. A memory bound, not a timing.
 *
 * Why a comparison and not only a fixed bound: V8 frees short-lived Buffers only after tens of
 * MiB of them have piled up, so every streaming run shows a few tens of MiB of growth whatever
 * the chunk size. What would betray buffering is the difference: holding one chunk costs 56 MiB
 * more at 64 MiB than at 8 MiB (112 MiB raw plus compressed, as dockercomms v1.0 does).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { readChunk } from '../../src/protocol/chunk-reader.ts';
import { writeChunks, type WriteChunksOptions } from '../../src/protocol/chunk-writer.ts';
import type { Compression } from '../../src/protocol/constants.ts';

const MiB = 1024 * 1024;
const TOTAL = 256 * MiB;

/**
 * TOTAL pseudo-random (incompressible) bytes, hashed as produced. Pieces come from a ring of
 * reused buffers so that the test's own garbage does not swamp what is measured; were a buffer
 * reused before the writer consumed it, the hash comparison would fail.
 */
function generated(hash: ReturnType<typeof createHash>): Readable {
  const ring = Array.from({ length: 64 }, () => Buffer.allocUnsafe(64 * 1024));
  let produced = 0;
  let turn = 0;
  return new Readable({
    highWaterMark: 64 * 1024,
    read() {
      if (produced >= TOTAL) {
        this.push(null);
        return;
      }
      const piece = randomFillSync(ring[turn++ % ring.length]!);
      produced += piece.length;
      hash.update(piece);
      this.push(piece);
    },
  });
}

interface Run {
  compression: Compression;
  chunkBytes: number;
  knownTotal: boolean;
}

/** In the child: write TOTAL bytes, read each chunk back, check the bytes; print peak RSS growth. */
async function child(run: Run): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'comms-proto-mem-'));
  try {
    const base: WriteChunksOptions = { chunkBytes: MiB, compression: run.compression, spoolDir: dir };
    if (run.compression === 'gzip') base.level = 1;
    // Warm up the compressor and stream machinery so their one-time allocations are not counted.
    for await (const c of writeChunks(Readable.from([Buffer.alloc(2 * MiB)]), base)) {
      for await (const _ of readChunk(createReadStream(c.path), { index: c.index, chunkBytes: MiB, compression: run.compression }));
      await c.dispose();
    }
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sample = (): void => {
      peak = Math.max(peak, process.memoryUsage().rss);
    };
    const timer = setInterval(sample, 10);
    const inHash = createHash('sha256');
    const outHash = createHash('sha256');
    let chunks = 0;
    const options: WriteChunksOptions = { ...base, chunkBytes: run.chunkBytes };
    if (run.knownTotal) options.totalBytes = TOTAL;
    for await (const c of writeChunks(generated(inHash), options)) {
      sample();
      for await (const b of readChunk(createReadStream(c.path), {
        index: c.index,
        chunkBytes: run.chunkBytes,
        compression: run.compression,
        expectedBytes: c.rawBytes,
      })) {
        outHash.update(b as Buffer);
      }
      sample();
      await c.dispose();
      chunks++;
    }
    clearInterval(timer);
    if (chunks !== TOTAL / run.chunkBytes) throw new Error(`${chunks} chunks`);
    if (outHash.digest('hex') !== inHash.digest('hex')) throw new Error('the bytes read back differ from the bytes written');
    process.stdout.write(JSON.stringify({ growth: peak - baseline, baseline }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function measure(run: Run): number {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url)], { env: { ...process.env, COMMS_MEMORY_CHILD: JSON.stringify(run) } });
  return (JSON.parse(out.toString()) as { growth: number }).growth;
}

const fmt = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;

if (process.env['COMMS_MEMORY_CHILD'] !== undefined) {
  await child(JSON.parse(process.env['COMMS_MEMORY_CHILD']) as Run);
} else {
  test('256 MiB in 64 MiB chunks takes no more memory than in 8 MiB chunks, and less than a chunk and a half', (t) => {
    // zstd with an unknown total: raw pieces are spooled, then compressed (the path for stdin).
    const small = measure({ compression: 'zstd', chunkBytes: 8 * MiB, knownTotal: false });
    const large = measure({ compression: 'zstd', chunkBytes: 64 * MiB, knownTotal: false });
    // gzip with a known total: the single-pass path.
    const gzip = measure({ compression: 'gzip', chunkBytes: 64 * MiB, knownTotal: true });
    t.diagnostic(`peak RSS growth for 256 MiB: zstd 8 MiB chunks ${fmt(small)}, zstd 64 MiB chunks ${fmt(large)}, gzip 64 MiB chunks ${fmt(gzip)}`);
    assert.ok(large - small < 32 * MiB, `64 MiB chunks cost ${fmt(large - small)} more than 8 MiB chunks`);
    assert.ok(large < 96 * MiB, `RSS grew ${fmt(large)} with 64 MiB chunks`);
    assert.ok(gzip < 96 * MiB, `RSS grew ${fmt(gzip)} with 64 MiB gzip chunks`);
  });
}
