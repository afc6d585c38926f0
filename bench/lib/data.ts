/**
 * The benchmark payload: mixed compressible data, generated once and cached (same bytes on every
 * run, so figures from different days compare). Each 1 MiB segment is 1/4 fresh pseudo-random
 * bytes (incompressible) and 3/4 log-like text (4–6× compressible), which makes the whole about
 * 2–3× compressible by `zstd -3` and `gzip -6`, like a typical build artefact or log bundle.
 */
import { createCipheriv } from 'node:crypto';
import { open, rename, stat, mkdir } from 'node:fs/promises';
import path from 'node:path';

const SEGMENT = 1024 * 1024;
const RANDOM_PART = SEGMENT / 4;
const TEXT_CORPUS = 32 * 1024 * 1024;

/** A deterministic byte stream: AES-128-CTR over zeros with a fixed key. */
export class Prng {
  readonly #cipher;
  constructor(seed: number) {
    const key = Buffer.alloc(16);
    key.writeUInt32BE(seed >>> 0, 0);
    this.#cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  }
  bytes(n: number): Buffer {
    return this.#cipher.update(Buffer.alloc(n));
  }
  /** Uniform integers in [0, n) from 4 bytes each (bias negligible for small n). */
  ints(count: number, n: number): number[] {
    const b = this.bytes(count * 4);
    const out: number[] = [];
    for (let i = 0; i < count; i++) out.push(b.readUInt32LE(i * 4) % n);
    return out;
  }
}

const LEVELS = ['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN', 'ERROR'];
const WORDS = [
  'upload',
  'chunk',
  'manifest',
  'registry',
  'digest',
  'layer',
  'retry',
  'session',
  'worker',
  'request',
  'response',
  'tag',
  'blob',
  'index',
  'referrer',
];
const PATHS = ['/v2/', '/v2/acme/mailbox/blobs/uploads/', '/v2/acme/mailbox/manifests/', '/v2/acme/mailbox/tags/list', '/api/v1/items/', '/healthz'];

function textCorpus(prng: Prng, size: number): Buffer {
  const parts: string[] = [];
  let len = 0;
  let t = Date.UTC(2025, 0, 1);
  // One batch of random words per 4096 lines: a cipher call per line would dominate the time.
  let r: Uint32Array = new Uint32Array(0);
  let k = 0;
  const next = (): number => {
    if (k >= r.length) {
      const b = prng.bytes(4 * 9 * 4096);
      r = new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
      k = 0;
    }
    return r[k++]!;
  };
  while (len < size) {
    t += next() % 1500;
    const line =
      `${new Date(t).toISOString()} ${LEVELS[next() % LEVELS.length]} worker-${next() % 32} ${WORDS[next() % WORDS.length]} ` +
      `${WORDS[next() % WORDS.length]} id=${next().toString(16).padStart(8, '0')} path=${PATHS[next() % PATHS.length]}${next() % 100000} ` +
      `status=${[200, 200, 201, 202, 404, 500][next() % 6]} bytes=${next() % 10_000_000} dur=${next() % 5000}ms\n`;
    parts.push(line);
    len += line.length;
  }
  return Buffer.from(parts.join(''), 'latin1').subarray(0, size);
}

/** Writes `bytes` of mixed data to `file` (via a temp file and rename) unless it is already there. */
export async function ensureMixedFile(file: string, bytes: number): Promise<string> {
  const existing = await stat(file).catch(() => undefined);
  if (existing?.size === bytes) return file;
  await mkdir(path.dirname(file), { recursive: true });
  const prng = new Prng(0xc0ffee);
  const corpus = textCorpus(prng, TEXT_CORPUS);
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    for (let off = 0; off < bytes; off += SEGMENT) {
      const n = Math.min(SEGMENT, bytes - off);
      const seg = Buffer.allocUnsafe(n);
      const rnd = Math.min(RANDOM_PART, n);
      prng.bytes(rnd).copy(seg, 0);
      const textLen = n - rnd;
      if (textLen > 0) {
        const at = prng.ints(1, TEXT_CORPUS - textLen)[0]!;
        corpus.copy(seg, rnd, at, at + textLen);
      }
      await fh.write(seg, 0, n);
    }
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  return file;
}
