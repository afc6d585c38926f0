/**
 * The registry client against a real docker-registry (plain HTTP on loopback): a 300 MiB
 * streamed blob in chunks and back, verified while streaming; content corrupted on the
 * registry's disk rejected (exit 4); 2,500 tags listed page by page with an early stop; the
 * missing Referrers API detected once per repository; a registry killed in the middle of an
 * upload; and the loopback scheme probe. Tag pagination done by a server is also shown on
 * `comms serve`, since distribution 2.8 ignores `n` and `last`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { CommsError, DigestMismatchError, ExitCode } from '../../src/errors.ts';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { EMPTY_JSON_BYTES, EMPTY_JSON_DIGEST, MediaType } from '../../src/oci/mediatypes.ts';
import { RegistryClient, type ClientOptions, type RequestEvent } from '../../src/oci/remote/index.ts';
import type { Repository } from '../../src/oci/target.ts';
import { startServer } from '../../src/server/index.ts';
import { forEachLimit } from '../../src/util/pool.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { requireTool, skipMessage, tempDir } from '../support/tools.ts';
import { rejection } from '../support/rejection.ts';

const MiB = 1024 * 1024;
const empty: Descriptor = { mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: 2 };

/**
 * `total` bytes as 1 MiB pieces of one random block, each stamped with its index (never held
 * whole). `reuse` hands out one buffer over and over, for consumers done with each piece at once.
 */
function* generated(total: number, block: Buffer, reuse = false): Generator<Buffer> {
  const shared = reuse ? Buffer.from(block) : undefined;
  for (let off = 0, i = 0; off < total; off += block.length, i++) {
    const n = Math.min(block.length, total - off);
    const piece = shared ? shared.subarray(0, n) : Buffer.from(block.subarray(0, n));
    piece.writeUInt32BE(i, 0);
    yield piece;
  }
}

/** The descriptor of generated(total, block), hashed without allocating. */
function generatedDesc(total: number, block: Buffer): Descriptor {
  const hash = createHash('sha256');
  for (const piece of generated(total, block, true)) hash.update(piece);
  return { mediaType: 'application/octet-stream', digest: `sha256:${hash.digest('hex')}`, size: total };
}

function smallManifest(note: string): { desc: Descriptor; bytes: Uint8Array } {
  const bytes = new TextEncoder().encode(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageManifest, config: empty, layers: [], annotations: { note } }),
  );
  return { desc: { mediaType: MediaType.ImageManifest, digest: digestOf(bytes), size: bytes.length }, bytes };
}

async function collectTags(repo: Repository, pageSize: number): Promise<string[][]> {
  const pages: string[][] = [];
  await repo.tags((p) => void pages.push(p), { pageSize });
  return pages;
}

/** Tags one manifest `count` times with bounded concurrency. */
async function tagMany(repo: Repository, count: number): Promise<string[]> {
  const m = smallManifest(`many ${repo.name}`);
  await repo.push(empty, EMPTY_JSON_BYTES);
  await repo.pushManifest(m.desc, m.bytes);
  const names = Array.from({ length: count }, (_, i) => `t${String(i).padStart(4, '0')}`);
  await forEachLimit(names, 8, (tag) => repo.pushManifest(m.desc, m.bytes, tag).then(() => undefined));
  return names;
}

if (!requireTool('docker-registry')) {
  it('registry client on docker-registry', (t) => t.skip(skipMessage('docker-registry')));
} else {
  describe('registry client on docker-registry', () => {
    let server: RegistryServer;
    const clients: RegistryClient[] = [];
    const events: RequestEvent[] = [];
    const open = (options: ClientOptions = {}): RegistryClient => {
      const c = new RegistryClient({ plainHttp: true, onRequest: (e) => events.push(e), ...options });
      clients.push(c);
      return c;
    };
    const count = (pred: (e: RequestEvent) => boolean): number => events.filter(pred).length;

    before(async () => {
      server = await startRegistry({ mode: 'plain' });
    });
    after(async () => {
      for (const c of clients) await c.close();
      await server.stop();
    });

    it('uploads a 300 MiB stream in chunks and downloads it verified while streaming', async (t) => {
      const size = 300 * MiB;
      const block = randomBytes(MiB);
      const desc = generatedDesc(size, block);
      const repo = open().repository(`${server.host}/big/blob`);

      const baseline = process.memoryUsage().rss;
      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss);
      }, 50);
      try {
        const before = events.length;
        const t0 = performance.now();
        let progressed = 0;
        const result = await repo.push(desc, Readable.from(generated(size, block)), { onProgress: (n) => (progressed = n) });
        const upMs = performance.now() - t0;
        assert.equal(result.skipped, false);
        assert.equal(progressed, size);
        const patches = events.slice(before).filter((e) => e.method === 'PATCH');
        assert.ok(patches.length >= size / (16 * MiB), `chunked: ${patches.length} PATCH requests`);
        assert.ok(patches.every((e) => e.status === 202));

        const t1 = performance.now();
        let received = 0;
        for await (const chunk of await repo.fetch(desc)) received += (chunk as Buffer).length;
        const downMs = performance.now() - t1;
        assert.equal(received, size);
        t.diagnostic(
          `300 MiB: upload ${(upMs / 1000).toFixed(1)} s in ${patches.length} PATCHes, download+verify ${(downMs / 1000).toFixed(1)} s, ` +
            `RSS ${(baseline / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB`,
        );
        // Bounded memory: the blob was never held whole, either way.
        assert.ok(peak < size, `peak RSS ${(peak / MiB).toFixed(0)} MiB`);
      } finally {
        clearInterval(sampler);
      }
      // The same blob again is not sent again.
      assert.equal((await repo.push(desc, Readable.from(generated(size, block)))).skipped, true);
      await repo.delete(desc);
    });

    it('rejects a blob whose bytes on the registry no longer match its digest (exit 4)', async () => {
      const repo = open().repository(`${server.host}/corrupt/blob`);
      const data = randomBytes(64 * 1024);
      const desc: Descriptor = { mediaType: 'application/octet-stream', digest: digestOf(data), size: data.length };
      await repo.push(desc, data);
      const hex = desc.digest.slice('sha256:'.length);
      const onDisk = join(server.storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
      const tampered = Buffer.from(data);
      tampered[1000] = (tampered[1000] ?? 0) ^ 1;
      await writeFile(onDisk, tampered);
      const err = await rejection(
        (async () => {
          for await (const _ of await repo.fetch(desc)) void _;
        })(),
        'expected DigestMismatchError',
      );
      assert.ok(err instanceof DigestMismatchError);
      assert.equal(err.exitCode, ExitCode.PROTOCOL);
    });

    it('lists 2,500 tags in pages, and an early stop sends no further request', async () => {
      const repo = open({ maxConcurrency: 8 }).repository(`${server.host}/many/tags`);
      const names = await tagMany(repo, 2500);
      const isList = (e: RequestEvent): boolean => e.method === 'GET' && e.url.includes('/many/tags/tags/list');
      const before = count(isList);
      const pages = await collectTags(repo, 100);
      assert.deepEqual(pages.flat(), names);
      assert.equal(pages.length, 25);
      // distribution 2.8 ignores `n`: one response carries every tag and the client pages it.
      assert.equal(count(isList) - before, 1);

      const beforeStop = count(isList);
      let visits = 0;
      await repo.tags(() => ++visits < 1, { pageSize: 100 });
      assert.equal(visits, 1);
      assert.equal(count(isList) - beforeStop, 1, 'no request after the visitor stopped');
    });

    it('detects the missing Referrers API (404) once per repository and falls back to the tag schema', async () => {
      const repo = open().repository(`${server.host}/refs/app`);
      const isReferrers = (e: RequestEvent): boolean => e.url.includes('/refs/app/referrers/');
      assert.equal(await repo.referrersApiSupported(), false);
      assert.equal(await repo.referrersApiSupported(), false);
      assert.equal(count(isReferrers), 1);
      const m = smallManifest('subject');
      await repo.push(empty, EMPTY_JSON_BYTES);
      await repo.pushManifest(m.desc, m.bytes);
      const found: Descriptor[] = [];
      await repo.referrers(m.desc, (p) => void found.push(...p));
      assert.deepEqual(found, []);
      assert.equal(count(isReferrers), 1, 'the cached answer is used: no second referrers request');
      assert.ok(events.some((e) => e.url.endsWith(`/refs/app/manifests/sha256-${m.desc.digest.slice(7)}`) && e.status === 404));
    });

    it('without plainHttp, a loopback registry is probed over HTTPS once, then spoken to over HTTP', async () => {
      const c = open({ plainHttp: undefined });
      const repo = c.repository(`${server.host}/probe/a`);
      await repo.push(empty, EMPTY_JSON_BYTES);
      await repo.exists(empty);
      const mine = events.filter((e) => e.url.includes(server.host) && (e.url.includes('/probe/a/') || e.url.endsWith('/v2/')));
      assert.equal(mine.filter((e) => e.url.startsWith('https:')).length, 1);
      assert.ok(mine.slice(1).every((e) => e.url.startsWith('http:')));
    });

    it('survives the registry being killed and restarted in the middle of a chunked upload', async (t) => {
      const size = 24 * MiB;
      const block = randomBytes(MiB);
      const desc = generatedDesc(size, block);
      let restarting: Promise<void> | undefined;
      const c = open({
        chunkSize: 4 * MiB,
        retry: { maxAttempts: 8, baseDelayMs: 250, maxDelayMs: 2000 },
        onRequest: (e) => {
          events.push(e);
          // After the second chunk is in, the registry dies and comes back on the same storage.
          if (
            e.method === 'PATCH' &&
            e.status === 202 &&
            restarting === undefined &&
            events.filter((x) => x.method === 'PATCH' && x.url.includes('/fault/')).length === 2
          ) {
            restarting = server.kill().then(() => server.restart());
          }
        },
      });
      const repo = c.repository(`${server.host}/fault/upload`);
      let first: unknown;
      try {
        await repo.push(desc, Readable.from(generated(size, block)));
      } catch (err) {
        first = err;
      }
      await restarting;
      assert.ok(restarting !== undefined, 'the registry was restarted mid-upload');
      // It either finished through the outage, or failed cleanly (typed) and a re-run finishes.
      t.diagnostic(first === undefined ? 'the upload went through the outage' : `the upload failed cleanly (${(first as CommsError).code}); re-run`);
      if (first !== undefined) {
        assert.ok(first instanceof CommsError, `a typed error, got ${String(first)}`);
        await repo.push(desc, Readable.from(generated(size, block)));
      }
      let received = 0;
      for await (const chunk of await repo.fetch(desc)) received += (chunk as Buffer).length;
      assert.equal(received, size);
    });
  });
}

describe('tag pagination done by the server (comms serve)', () => {
  it('follows Link rel="next" page after page, and an early stop sends no further request', async () => {
    const dir = await tempDir('comms-remote-tags-');
    const served = await startServer({ root: dir.path, port: 0 });
    const events: RequestEvent[] = [];
    const c = new RegistryClient({ plainHttp: true, onRequest: (e) => events.push(e) });
    try {
      const repo = c.repository(`127.0.0.1:${served.port}/many/tags`);
      // The layout store behind comms serve rewrites its index per tag: fewer tags keep this quick.
      const names = await tagMany(repo, 600);
      const lists = (): RequestEvent[] => events.filter((e) => e.url.includes('/tags/list'));
      const pages = await collectTags(repo, 250);
      assert.deepEqual(pages.flat(), names);
      assert.deepEqual(
        pages.map((p) => p.length),
        [250, 250, 100],
      );
      assert.equal(lists().length, 3, 'one request per page, following the Link header');
      assert.ok(lists()[1]?.url.includes('last=t0249'));

      let visits = 0;
      await repo.tags(() => ++visits < 2, { pageSize: 250 });
      assert.equal(visits, 2);
      assert.equal(lists().length, 3 + 2, 'the third page is never asked for');
    } finally {
      await c.close();
      await served.close();
      await dir.cleanup();
    }
  });
});
