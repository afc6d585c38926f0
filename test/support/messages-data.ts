/**
 * Payload files for the message tests: "mixed compressible data" (repeating pseudo-random blocks
 * interleaved with log-like text), written as a stream to a file and hashed while written, so a
 * 1 GiB payload never sits in memory. The same seed and size give the same bytes.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';

const PIECE = 1024 * 1024;
const BLOCK = 64 * 1024;
const POOL = 24;

/** A small deterministic PRNG (mulberry32): the same seed gives the same file on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Text lines in the style of a log file, `size` bytes of them. */
function textBlock(size: number, rand: () => number): Buffer {
  const b = Buffer.alloc(size);
  let p = 0;
  while (p < size) {
    const n = Math.floor(rand() * 1000003);
    p += b.write(`INFO worker-${n % 7} processed item ${n} in ${n % 997} ms; status=ok queue=${n % 13}\n`, p, 'latin1');
  }
  return b;
}

/**
 * 1 MiB pieces of 64 KiB units: one in four drawn from a pool of random blocks (incompressible for
 * gzip, whose window is 32 KiB), the rest from a pool of text blocks (very compressible) — the
 * same 1/4 random, 3/4 text mix as bench/lib/data.ts. Each unit is stamped with its position, so
 * no two units of the file are equal.
 */
function* mixedPieces(totalBytes: number, seed: number): Generator<Buffer> {
  const rand = prng(seed);
  const randomPool = Array.from({ length: POOL }, () => {
    const b = Buffer.allocUnsafe(BLOCK);
    for (let i = 0; i < BLOCK; i += 4) b.writeUInt32LE(Math.floor(rand() * 4294967296), i);
    return b;
  });
  const textPool = Array.from({ length: POOL }, () => textBlock(BLOCK, rand));
  let unit = 0;
  for (let off = 0; off < totalBytes; off += PIECE) {
    const piece = Buffer.allocUnsafe(PIECE);
    for (let p = 0; p < PIECE; p += BLOCK, unit++) {
      const pool = unit % 4 === 0 ? randomPool : textPool;
      pool[Math.floor(rand() * POOL)]!.copy(piece, p);
      piece.write(`#${String(unit).padStart(10, '0')}\n`, p, 'latin1');
    }
    yield piece.subarray(0, Math.min(PIECE, totalBytes - off));
  }
}

/** Writes `totalBytes` of mixed data to `path`; resolves the hex sha256 of what was written. */
export async function writeMixedFile(path: string, totalBytes: number, seed = 1): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(path, { flags: 'wx' });
  const failed = once(out, 'error').then(([e]) => Promise.reject(e as Error));
  failed.catch(() => {});
  for (const piece of mixedPieces(totalBytes, seed)) {
    hash.update(piece);
    if (!out.write(piece)) await Promise.race([once(out, 'drain'), failed]);
  }
  out.end();
  await Promise.race([once(out, 'finish'), failed]);
  return hash.digest('hex');
}

/** The hex sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const b of createReadStream(path, { highWaterMark: PIECE })) hash.update(b as Buffer);
  return hash.digest('hex');
}

/** The hex sha256 of bytes. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}
