/**
 * Chunk layers: writeChunks → readChunk round trips at the size edges, for gzip and zstd, with
 * and without a known total; the raw layer format as other tools read it; byte identity with
 * v1.0's tar; backpressure, cancellation and clean-up; and the reader's refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync, zstdDecompressSync } from 'node:zlib';
import { AbortError, ProtocolError, UsageError } from '../../src/errors.ts';
import { readChunk } from '../../src/protocol/chunk-reader.ts';
import { totalChunks, writeChunks, type SpooledChunk, type WriteChunksOptions } from '../../src/protocol/chunk-writer.ts';
import { Annotation, ChunkMediaType, type Compression } from '../../src/protocol/constants.ts';
import { chunkRawSize } from '../../src/protocol/sizes.ts';
import { END_OF_ARCHIVE, encodeTarHeader, paddingFor } from '../../src/protocol/tar.ts';

const V1 = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/v1');
const CB = 4096;

function spoolDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'comms-proto-test-'));
}

/** A byte stream delivered in uneven pieces, so chunk borders fall inside input pieces. */
function piecewise(data: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let off = 0, n = 1; off < data.length; off += n, n = (n * 7 + 3) % 3001 || 1) pieces.push(data.subarray(off, off + n));
  return Readable.from(pieces, { objectMode: false });
}

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of r) parts.push(b as Buffer);
  return Buffer.concat(parts);
}

async function roundTrip(data: Buffer, compression: Compression, knownTotal: boolean): Promise<{ chunks: number; out: Buffer }> {
  const dir = spoolDir();
  try {
    const options: WriteChunksOptions = { chunkBytes: CB, compression, spoolDir: dir };
    if (knownTotal) options.totalBytes = data.length;
    const stream = writeChunks(piecewise(data), options);
    const parts: Buffer[] = [];
    let chunks = 0;
    for await (const chunk of stream) {
      assert.equal(chunk.index, chunks);
      assert.equal(chunk.rawBytes, chunkRawSize(data.length, CB, chunk.index));
      const layer = readFileSync(chunk.path);
      assert.deepEqual(chunk.descriptor, {
        mediaType: compression === 'gzip' ? ChunkMediaType.Gzip : ChunkMediaType.Zstd,
        digest: `sha256:${createHash('sha256').update(layer).digest('hex')}`,
        size: layer.length,
        annotations: { [Annotation.ChunkIndex]: String(chunk.index) },
      });
      parts.push(await collect(readChunk(createReadStream(chunk.path), { index: chunk.index, chunkBytes: CB, compression, expectedBytes: chunk.rawBytes })));
      await chunk.dispose();
      chunks++;
    }
    assert.deepEqual(stream.stats, { chunkCount: chunks, rawBytes: data.length, compressedBytes: stream.stats.compressedBytes, done: true });
    assert.deepEqual(readdirSync(dir), [], 'every spool file is gone after dispose');
    return { chunks, out: Buffer.concat(parts) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const compression of ['gzip', 'zstd'] as const) {
  for (const knownTotal of [true, false]) {
    test(`round trip ${compression}, ${knownTotal ? 'known' : 'unknown'} total: 0 B, 1 B, one chunk, one chunk + 1, several chunks`, async () => {
      for (const size of [0, 1, CB, CB + 1, 3 * CB + 17]) {
        const data = randomBytes(size);
        const { chunks, out } = await roundTrip(data, compression, knownTotal);
        assert.equal(chunks, totalChunks(size, CB), `${size} bytes`);
        assert.ok(out.equals(data), `${size} bytes come back unchanged`);
      }
    });
  }
}

test('the same input gives the same layer digests, however the input arrives (deterministic tar and compression)', async () => {
  const data = randomBytes(2 * CB + 5);
  const slow = (): Readable =>
    Readable.from(
      (async function* () {
        for (let off = 0; off < data.length; off += 700) {
          await new Promise((r) => setTimeout(r, 1));
          yield data.subarray(off, off + 700);
        }
      })(),
      { objectMode: false },
    );
  for (const compression of ['gzip', 'zstd'] as const) {
    const runs: string[][] = [];
    for (const [input, knownTotal] of [
      [() => Readable.from([data]), true],
      [() => piecewise(data), false],
      [slow, true],
      [slow, false],
    ] as const) {
      const dir = spoolDir();
      const digests: string[] = [];
      const opts: WriteChunksOptions = { chunkBytes: CB, compression, spoolDir: dir };
      if (knownTotal) opts.totalBytes = data.length;
      for await (const c of writeChunks(input(), opts)) {
        digests.push(c.descriptor.digest);
        await c.dispose();
      }
      rmSync(dir, { recursive: true, force: true });
      runs.push(digests);
    }
    for (const r of runs.slice(1)) assert.deepEqual(r, runs[0], compression);
  }
});

test('raw format: tar and zstd CLIs read the layers as one regular file chunk_<i>.bin, 0644, uid/gid 0, mtime 0', async () => {
  const dir = spoolDir();
  try {
    for (const compression of ['gzip', 'zstd'] as const) {
      const data = randomBytes(CB + 100);
      const listings: string[] = [];
      for await (const c of writeChunks(Readable.from([data]), { chunkBytes: CB, compression, spoolDir: dir })) {
        const tar = compression === 'gzip' ? execFileSync('gzip', ['-dc', c.path]) : execFileSync('zstd', ['-dcq', c.path]);
        listings.push(
          execFileSync('tar', ['--numeric-owner', '-tvf', '-'], { input: tar, env: { ...process.env, TZ: 'UTC' } })
            .toString()
            .trim(),
        );
        const extracted = path.join(dir, `x-${compression}-${c.index}`);
        mkdirSync(extracted);
        execFileSync('tar', ['-xf', '-', '-C', extracted], { input: tar });
        assert.deepEqual(readdirSync(extracted), [`chunk_${c.index}.bin`]);
        assert.ok(readFileSync(path.join(extracted, `chunk_${c.index}.bin`)).equals(data.subarray(c.index * CB, (c.index + 1) * CB)));
        await c.dispose();
      }
      assert.match(listings[0]!, /^-rw-r--r-- 0\/0 +4096 1970-01-01 00:00 chunk_0\.bin$/);
      assert.match(listings[1]!, /^-rw-r--r-- 0\/0 +100 1970-01-01 00:00 chunk_1\.bin$/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the uncompressed layer is byte-identical to v1.0's (Go archive/tar) and v1.0's layer reads back", async () => {
  const manifest = JSON.parse(readFileSync(path.join(V1, 'message/manifest.json'), 'utf8')) as { layers: { digest: string }[] };
  const goLayerPath = path.join(V1, 'message/blobs', manifest.layers[0]!.digest.slice(7));
  const goTar = gunzipSync(readFileSync(goLayerPath));
  const payload = Buffer.from('hello from dockercomms v1.0\n');
  assert.ok(Buffer.concat([encodeTarHeader('chunk_0.bin', payload.length), payload, Buffer.alloc(paddingFor(payload.length)), END_OF_ARCHIVE]).equals(goTar));
  const dir = spoolDir();
  try {
    for (const compression of ['gzip', 'zstd'] as const) {
      for await (const c of writeChunks(Readable.from([payload]), { chunkBytes: 104857600, compression, spoolDir: dir })) {
        const layer = readFileSync(c.path);
        assert.ok((compression === 'gzip' ? gunzipSync(layer) : zstdDecompressSync(layer)).equals(goTar), compression);
        await c.dispose();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const back = await collect(readChunk(createReadStream(goLayerPath), { index: 0, chunkBytes: 28, compression: 'gzip', expectedBytes: 28 }));
  assert.ok(back.equals(payload));
});

test('layers made by GNU tar (ustar and gnu formats, record padding) are read', async () => {
  const dir = spoolDir();
  try {
    const data = randomBytes(1000);
    writeFileSync(path.join(dir, 'chunk_3.bin'), data);
    for (const format of ['ustar', 'gnu']) {
      const tar = execFileSync('tar', [`--format=${format}`, '-cf', '-', '-C', dir, 'chunk_3.bin']);
      assert.equal(tar.length % 10240, 0);
      const out = await collect(readChunk(Readable.from([gzipSync(tar)]), { index: 3, chunkBytes: 1000, compression: 'gzip' }));
      assert.ok(out.equals(data), format);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('backpressure: the next chunk is not produced until the consumer asks for it', async () => {
  const dir = spoolDir();
  try {
    let pulled = 0;
    const total = 8 * CB;
    const input = new Readable({
      highWaterMark: 1024,
      read() {
        if (pulled >= total) this.push(null);
        else {
          pulled += 1024;
          this.push(randomBytes(1024));
        }
      },
    });
    const stream = writeChunks(input, { chunkBytes: CB, compression: 'gzip', spoolDir: dir, totalBytes: total });
    const first = (await stream.next()).value as SpooledChunk;
    assert.equal(first.index, 0);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(readdirSync(dir), [path.basename(first.path)], 'only the handed-over chunk is on disk');
    assert.ok(pulled < total / 2, `the input is not read ahead (${pulled} of ${total} bytes pulled)`);
    // Stopping early: the consumer's chunk stays theirs, nothing else is left, the input is released.
    await stream.return(undefined as never);
    assert.deepEqual(readdirSync(dir), [path.basename(first.path)]);
    assert.ok(input.destroyed);
    await first.dispose();
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cancellation through AbortSignal: AbortError, no spool files left', async () => {
  for (const knownTotal of [true, false]) {
    const dir = spoolDir();
    try {
      const controller = new AbortController();
      const data = randomBytes(6 * CB);
      const opts: WriteChunksOptions = { chunkBytes: CB, compression: 'zstd', spoolDir: dir, signal: controller.signal };
      if (knownTotal) opts.totalBytes = data.length;
      const seen: SpooledChunk[] = [];
      await assert.rejects(
        (async () => {
          for await (const c of writeChunks(piecewise(data), opts)) {
            seen.push(c);
            await c.dispose();
            if (c.index === 1) controller.abort();
          }
        })(),
        AbortError,
      );
      assert.equal(seen.length, 2);
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('an input that does not match the announced total fails with INPUT_CHANGED and leaves nothing', async () => {
  for (const [actual, announced] of [
    [CB * 2, CB * 2 + 10],
    [CB * 2 + 10, CB * 2],
    [5, 0],
  ] as const) {
    const dir = spoolDir();
    try {
      await assert.rejects(
        (async () => {
          for await (const c of writeChunks(Readable.from([randomBytes(actual)]), {
            chunkBytes: CB,
            compression: 'gzip',
            spoolDir: dir,
            totalBytes: announced,
          }))
            await c.dispose();
        })(),
        (err: { code?: string }) => err.code === 'INPUT_CHANGED',
      );
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('an input stream that fails mid-way fails the writer with its own error and leaves nothing', async () => {
  for (const knownTotal of [true, false]) {
    const dir = spoolDir();
    try {
      const failure = new Error('disk read error');
      let sent = 0;
      const input = new Readable({
        read() {
          if (sent < 3 * CB) {
            sent += 1000;
            this.push(randomBytes(1000));
          } else this.destroy(failure);
        },
      });
      const opts: WriteChunksOptions = { chunkBytes: CB, compression: 'gzip', spoolDir: dir };
      if (knownTotal) opts.totalBytes = 10 * CB;
      await assert.rejects(
        (async () => {
          for await (const c of writeChunks(input, opts)) await c.dispose();
        })(),
        (err) => err === failure,
      );
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('more chunks than allowed is refused (before reading, when the total is known)', async () => {
  const dir = spoolDir();
  try {
    const data = randomBytes(3 * CB);
    const known = writeChunks(Readable.from([data]), { chunkBytes: CB, compression: 'gzip', spoolDir: dir, totalBytes: data.length, maxChunks: 2 });
    await assert.rejects(known.next(), (err: UsageError) => err instanceof UsageError && err.code === 'TOO_MANY_CHUNKS');
    let produced = 0;
    await assert.rejects(
      (async () => {
        for await (const c of writeChunks(Readable.from([data]), { chunkBytes: CB, compression: 'gzip', spoolDir: dir, maxChunks: 2 })) {
          produced++;
          await c.dispose();
        }
      })(),
      (err: UsageError) => err.code === 'TOO_MANY_CHUNKS',
    );
    assert.equal(produced, 2);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writer options are checked', async () => {
  const bad: Partial<WriteChunksOptions>[] = [
    { chunkBytes: 0 },
    { chunkBytes: 1.5 },
    { chunkBytes: 2 ** 33 },
    { compression: 'brotli' as Compression },
    { level: 10 },
    { compression: 'zstd', level: 0 },
  ];
  for (const b of bad) {
    const opts = { chunkBytes: CB, compression: 'gzip' as Compression, spoolDir: os.tmpdir(), ...b };
    await assert.rejects(writeChunks(Readable.from([Buffer.from('x')]), opts).next(), UsageError, JSON.stringify(b));
  }
});

function layerOf(entryName: string, data: Buffer, compression: Compression = 'gzip'): Buffer {
  const tar = Buffer.concat([encodeTarHeader(entryName, data.length), data, Buffer.alloc(paddingFor(data.length)), END_OF_ARCHIVE]);
  return compression === 'gzip' ? gzipSync(tar) : Buffer.from(execFileSync('zstd', ['-cq'], { input: tar }));
}

async function readFails(layer: Buffer, options: Parameters<typeof readChunk>[1], code: string): Promise<void> {
  await assert.rejects(collect(readChunk(Readable.from([layer]), options)), (err: ProtocolError) => {
    assert.ok(err instanceof ProtocolError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  });
}

test('reader refusals: wrong index, size mismatch, output cap, corrupt or mislabelled compression, empty layer', async () => {
  const data = randomBytes(300);
  await readFails(layerOf('chunk_0.bin', data), { index: 1, chunkBytes: 300, compression: 'gzip' }, 'TAR_ENTRY_NAME');
  await readFails(layerOf('./chunk_0.bin', data), { index: 0, chunkBytes: 300, compression: 'gzip' }, 'TAR_ENTRY_NAME');
  await readFails(layerOf('chunk_0.bin', data), { index: 0, chunkBytes: 300, compression: 'gzip', expectedBytes: 299 }, 'CHUNK_SIZE_MISMATCH');
  await readFails(layerOf('chunk_0.bin', data), { index: 0, chunkBytes: 299, compression: 'gzip' }, 'CHUNK_TOO_LARGE');
  await readFails(layerOf('chunk_0.bin', data), { index: 0, chunkBytes: 300, compression: 'gzip', maxOutput: 600 }, 'CHUNK_TOO_LARGE');
  const corrupt = layerOf('chunk_0.bin', data);
  corrupt[corrupt.length - 12]! ^= 0xff;
  await readFails(corrupt, { index: 0, chunkBytes: 300, compression: 'gzip' }, 'DECOMPRESSION_FAILED');
  await readFails(layerOf('chunk_0.bin', data, 'zstd'), { index: 0, chunkBytes: 300, compression: 'gzip' }, 'DECOMPRESSION_FAILED');
  await readFails(layerOf('chunk_0.bin', data), { index: 0, chunkBytes: 300, compression: 'zstd' }, 'DECOMPRESSION_FAILED');
  await readFails(Buffer.alloc(0), { index: 0, chunkBytes: 300, compression: 'gzip' }, 'DECOMPRESSION_FAILED');
  await readFails(gzipSync(Buffer.alloc(0)), { index: 0, chunkBytes: 300, compression: 'gzip' }, 'TAR_EMPTY');
  await readFails(gzipSync(Buffer.from(END_OF_ARCHIVE)), { index: 0, chunkBytes: 300, compression: 'gzip' }, 'TAR_EMPTY');
  const badSum = gunzipSync(layerOf('chunk_0.bin', data));
  badSum[0] = 0x43; // 'C': the checksum no longer matches
  await readFails(gzipSync(badSum), { index: 0, chunkBytes: 300, compression: 'gzip' }, 'TAR_HEADER_INVALID');
  assert.ok((await collect(readChunk(Readable.from([layerOf('chunk_0.bin', data, 'zstd')]), { index: 0, chunkBytes: 300, compression: 'zstd' }))).equals(data));
  assert.throws(() => readChunk(Readable.from([]), { index: -1, chunkBytes: 1, compression: 'gzip' }), UsageError);
});

test("errors of the compressed source come through unchanged, and the reader's destruction releases it", async () => {
  const failure = new Error('network reset');
  let sent = false;
  const source = new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(layerOf('chunk_0.bin', randomBytes(100)).subarray(0, 20));
      } else this.destroy(failure);
    },
  });
  await assert.rejects(collect(readChunk(source, { index: 0, chunkBytes: 100, compression: 'gzip' })), (err) => err === failure);
  const source2 = Readable.from([layerOf('chunk_0.bin', randomBytes(100_000))]);
  const raw = readChunk(source2, { index: 0, chunkBytes: 100_000, compression: 'gzip' });
  raw.destroy();
  await new Promise((r) => setImmediate(r));
  assert.ok(source2.destroyed);
});
