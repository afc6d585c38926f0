/**
 * RemoteRepository against in-process fakes, for what a real registry will not do on demand:
 * a connection dropped mid-download (Range resume, or restart), wrong bytes for a digest, a
 * wrong Docker-Content-Digest, a connection dropped mid-PATCH (resumed from the upload's Range,
 * never blindly replayed), oversized manifests, paginated tag and referrer lists, a Referrers
 * API with and without server-side filtering, and cancellation.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { AbortError, DigestMismatchError, ExitCode, ProtocolError } from '../../src/errors.ts';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { MediaType } from '../../src/oci/mediatypes.ts';
import { RegistryClient, type ClientOptions } from '../../src/oci/remote/index.ts';
import { rejection } from '../support/rejection.ts';

interface Fake {
  host: string;
  origin: string;
  /** `METHOD path` of every request, in arrival order. */
  log: string[];
  close(): Promise<void>;
}

/** A loopback server; the handler reads the request itself (so it can cut a body short). */
async function fake(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Fake> {
  const log: string[] = [];
  const server = createServer((req, res) => {
    log.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    origin: `http://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const blobDesc = (b: Uint8Array): Descriptor => ({ mediaType: 'application/octet-stream', digest: sha256(b), size: b.length });

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function client(extra: ClientOptions = {}): RegistryClient {
  return new RegistryClient({ plainHttp: true, retry: { baseDelayMs: 1, maxDelayMs: 5 }, ...extra });
}

async function using<T>(server: Fake, c: RegistryClient, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    await c.close();
    await server.close();
  }
}

describe('blob download', () => {
  const blob = randomBytes(1024 * 1024);
  const desc = blobDesc(blob);

  it('resumes with Range after the connection drops mid-download, continuing the same hash', async () => {
    const ranges: (string | undefined)[] = [];
    const server = await fake((req, res) => {
      ranges.push(req.headers.range);
      if (ranges.length === 1) {
        res.writeHead(200, { 'content-length': blob.length, 'accept-ranges': 'bytes' });
        res.write(blob.subarray(0, 300 * 1024), () => res.socket?.destroy());
        return;
      }
      const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1]);
      res.writeHead(206, { 'content-length': blob.length - start, 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}` });
      res.end(blob.subarray(start));
    });
    const c = client();
    await using(server, c, async () => {
      const progress: number[] = [];
      const stream = await c.repository(`${server.host}/a/b`).fetch(desc, { onProgress: (n) => progress.push(n) });
      assert.deepEqual(await readAll(stream), blob);
      assert.equal(ranges.length, 2);
      assert.equal(ranges[0], undefined);
      const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1]);
      assert.ok(resumedAt > 0 && resumedAt <= 300 * 1024, `resumed at ${ranges[1]}`);
      assert.equal(progress.at(-1), blob.length);
    });
  });

  it('without Accept-Ranges, starts over and skips what was already delivered', async () => {
    const ranges: (string | undefined)[] = [];
    const server = await fake((req, res) => {
      ranges.push(req.headers.range);
      res.writeHead(200, { 'content-length': blob.length });
      if (ranges.length === 1) res.write(blob.subarray(0, 200 * 1024), () => res.socket?.destroy());
      else res.end(blob);
    });
    const c = client();
    await using(server, c, async () => {
      assert.deepEqual(await readAll(await c.repository(`${server.host}/a/b`).fetch(desc)), blob);
      assert.deepEqual(ranges, [undefined, undefined]);
    });
  });

  it('rejects bytes that do not match the digest (exit 4), and a wrong announced length at once', async () => {
    const wrong = Buffer.from(blob);
    wrong[12345] = (wrong[12345] ?? 0) ^ 0xff;
    const server = await fake((req, res) => {
      if (req.url?.includes('short')) {
        res.writeHead(200, { 'content-length': 10 }).end('0123456789');
        return;
      }
      res.writeHead(200, { 'content-length': wrong.length }).end(wrong);
    });
    const c = client();
    await using(server, c, async () => {
      const repo = c.repository(`${server.host}/a/b`);
      const err = await rejection(readAll(await repo.fetch(desc)), 'expected a mismatch');
      assert.ok(err instanceof DigestMismatchError);
      assert.equal(err.exitCode, ExitCode.PROTOCOL);
      await assert.rejects(repo.fetch(blobDesc(Buffer.from('short' + 'x'.repeat(20)))).then(readAll), DigestMismatchError);
    });
  });

  it('aborts a download through its AbortSignal', async () => {
    const server = await fake((_req, res) => {
      res.writeHead(200, { 'content-length': blob.length });
      res.write(blob.subarray(0, 64 * 1024)); // and never more
    });
    const c = client();
    await using(server, c, async () => {
      const controller = new AbortController();
      const stream = await c.repository(`${server.host}/a/b`).fetch(desc, { signal: controller.signal });
      stream.once('data', () => controller.abort());
      await assert.rejects(readAll(stream), AbortError);
    });
  });
});

describe('blob upload', () => {
  /** A registry upload endpoint that follows the spec, and drops the connection once mid-PATCH after `cutAt` bytes. */
  async function uploadServer(cutAt: number | undefined) {
    let stored = Buffer.alloc(0);
    let cut = false;
    const puts: string[] = [];
    const server = await fake((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'HEAD') return void res.writeHead(404).end();
      if (req.method === 'POST') return void res.writeHead(202, { location: `/v2/a/b/blobs/uploads/u1?_state=0`, range: '0-0' }).end();
      if (req.method === 'GET' && url.pathname.endsWith('/u1')) {
        return void res.writeHead(204, { location: `/v2/a/b/blobs/uploads/u1?_state=${stored.length}`, range: `0-${Math.max(0, stored.length - 1)}` }).end();
      }
      if (req.method === 'DELETE') return void res.writeHead(204).end();
      if (req.method === 'PATCH') {
        const start = Number(/^(\d+)-/.exec(String(req.headers['content-range']))?.[1]);
        if (start !== stored.length) return void res.writeHead(416).end();
        let got = 0;
        req.on('data', (c: Buffer) => {
          if (cut || cutAt === undefined || got + c.length < cutAt) {
            got += c.length;
            stored = Buffer.concat([stored, c]);
            return;
          }
          // Keep exactly cutAt bytes of this PATCH, then drop the connection.
          cut = true;
          stored = Buffer.concat([stored, c.subarray(0, cutAt - got)]);
          req.socket.destroy();
        });
        req.on('end', () => {
          res.writeHead(202, { location: `/v2/a/b/blobs/uploads/u1?_state=${stored.length}`, range: `0-${stored.length - 1}` }).end();
        });
        return;
      }
      if (req.method === 'PUT') {
        void readBody(req).then((body) => {
          stored = Buffer.concat([stored, body]);
          puts.push(url.searchParams.get('digest') ?? '');
          const ok = url.searchParams.get('digest') === sha256(stored);
          res.writeHead(ok ? 201 : 400, ok ? { 'docker-content-digest': sha256(stored) } : {}).end();
        });
        return;
      }
      res.writeHead(405).end();
    });
    return { server, stored: () => stored, puts };
  }

  it('a PATCH whose connection drops is not replayed: the client asks the upload Range and sends the rest', async () => {
    const blob = randomBytes(700 * 1024);
    const up = await uploadServer(100 * 1024);
    const c = client({ chunkSize: 256 * 1024, monolithicMaxBytes: 64 * 1024 });
    await using(up.server, c, async () => {
      const progress: number[] = [];
      const result = await c.repository(`${up.server.host}/a/b`).push(blobDesc(blob), Readable.from([blob.subarray(0, 5000), blob.subarray(5000)]), {
        onProgress: (n) => progress.push(n),
      });
      assert.equal(result.skipped, false);
      assert.deepEqual(up.stored(), blob);
      const methods = up.server.log.map((l) => l.split(' ')[0]);
      assert.deepEqual(methods, ['HEAD', 'POST', 'PATCH', 'GET', 'PATCH', 'PATCH', 'PATCH', 'PUT']);
      assert.equal(progress.at(-1), blob.length);
    });
  });

  it('a file stream is read in place, straight into the chunk buffer: its byte range arrives intact, the stream itself is never read', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'comms-upload-'));
    try {
      const file = path.join(dir, 'layer.bin');
      const whole = randomBytes(900 * 1024);
      await writeFile(file, whole);
      const blob = whole.subarray(1000, 1000 + 700 * 1024);
      const up = await uploadServer(undefined);
      const c = client({ chunkSize: 256 * 1024, monolithicMaxBytes: 64 * 1024 });
      await using(up.server, c, async () => {
        const stream = createReadStream(file, { start: 1000, end: 1000 + blob.length - 1 });
        const progress: number[] = [];
        const result = await c.repository(`${up.server.host}/a/b`).push(blobDesc(blob), stream, { onProgress: (n) => progress.push(n) });
        assert.equal(result.skipped, false);
        assert.deepEqual(up.stored(), blob);
        assert.equal(stream.bytesRead, 0, 'the upload read the file itself, not the stream');
        assert.ok(stream.destroyed, 'the unread stream was released');
        assert.deepEqual(progress, [256 * 1024, 512 * 1024, blob.length]);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a file longer than its descriptor says is refused before the blob is committed (exit 4)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'comms-upload-'));
    try {
      const file = path.join(dir, 'layer.bin');
      const blob = randomBytes(512 * 1024);
      await writeFile(file, Buffer.concat([blob, Buffer.from('x')]));
      const up = await uploadServer(undefined);
      const c = client({ chunkSize: 256 * 1024, monolithicMaxBytes: 64 * 1024 });
      await using(up.server, c, async () => {
        const err = await rejection(c.repository(`${up.server.host}/a/b`).push(blobDesc(blob), createReadStream(file)), 'expected a size mismatch');
        assert.ok(err instanceof DigestMismatchError);
        assert.deepEqual(up.puts, [], 'no PUT ?digest= was sent');
        assert.equal(up.server.log.at(-1)?.split(' ')[0], 'DELETE');
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a source that does not match its digest aborts the upload: session deleted, nothing committed (exit 4)', async () => {
    const blob = randomBytes(600 * 1024);
    const lie: Descriptor = { ...blobDesc(randomBytes(600 * 1024)) };
    const up = await uploadServer(undefined);
    const c = client({ chunkSize: 256 * 1024, monolithicMaxBytes: 64 * 1024 });
    await using(up.server, c, async () => {
      const err = await rejection(c.repository(`${up.server.host}/a/b`).push(lie, Readable.from([blob])), 'expected a mismatch');
      assert.ok(err instanceof DigestMismatchError);
      assert.equal(err.exitCode, ExitCode.PROTOCOL);
      assert.deepEqual(up.puts, [], 'no PUT ?digest= was sent');
      assert.equal(up.server.log.at(-1)?.split(' ')[0], 'DELETE');
      // The chunk completing the blob is held back until the digest is known.
      assert.ok(up.stored().length < blob.length);
    });
  });

  it('an upload aborted through its AbortSignal stops, and its session is deleted', async () => {
    const blob = randomBytes(900 * 1024);
    const up = await uploadServer(undefined);
    const c = client({ chunkSize: 256 * 1024, monolithicMaxBytes: 64 * 1024 });
    await using(up.server, c, async () => {
      const controller = new AbortController();
      let pulled = 0;
      // The source aborts the operation once two chunks' worth has been read.
      const source = Readable.from(
        (function* () {
          for (let off = 0; off < blob.length; off += 64 * 1024) {
            pulled += 64 * 1024;
            if (pulled > 512 * 1024) controller.abort();
            yield blob.subarray(off, off + 64 * 1024);
          }
        })(),
      );
      await assert.rejects(c.repository(`${up.server.host}/a/b`).push(blobDesc(blob), source, { signal: controller.signal }), AbortError);
      assert.deepEqual(up.puts, []);
      assert.equal(up.server.log.at(-1)?.split(' ')[0], 'DELETE');
    });
  });

  it('a blob mounted from another repository is not uploaded', async () => {
    const server = await fake((req, res) => {
      if (req.method === 'HEAD') return void res.writeHead(404).end();
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'POST' && url.searchParams.get('from') === 'other/repo') return void res.writeHead(201, { location: '/v2/a/b/blobs/x' }).end();
      res.writeHead(500).end();
    });
    const c = client();
    await using(server, c, async () => {
      const bytes = Buffer.from('mounted');
      const r = await c.repository(`${server.host}/a/b`).push(blobDesc(bytes), bytes, { mountFrom: 'other/repo' });
      assert.equal(r.skipped, true);
      assert.deepEqual(
        server.log.map((l) => l.split(' ')[0]),
        ['HEAD', 'POST'],
      );
      assert.ok(server.log[1]?.includes(`mount=${encodeURIComponent(sha256(bytes))}`));
    });
  });
});

describe('manifests', () => {
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageManifest, config: {}, layers: [] }));
  const desc: Descriptor = { mediaType: MediaType.ImageManifest, digest: sha256(manifest), size: manifest.length };

  it('a registry reporting another Docker-Content-Digest on PUT fails the push (exit 4)', async () => {
    const server = await fake((req, res) => {
      void readBody(req).then(() => res.writeHead(201, { 'docker-content-digest': sha256(Buffer.from('something else')) }).end());
    });
    const c = client();
    await using(server, c, async () => {
      const err = await rejection(c.repository(`${server.host}/a/b`).pushManifest(desc, manifest, 'v1'), 'expected ProtocolError');
      assert.ok(err instanceof ProtocolError);
      assert.equal(err.exitCode, ExitCode.PROTOCOL);
      assert.equal(err.code, 'REGISTRY_DIGEST_MISMATCH');
    });
  });

  it('reports OCI-Subject from the PUT and remembers that the Referrers API exists', async () => {
    const server = await fake((req, res) => {
      void readBody(req).then(() => res.writeHead(201, { 'docker-content-digest': desc.digest, 'oci-subject': 'sha256:' + 'a'.repeat(64) }).end());
    });
    const c = client();
    await using(server, c, async () => {
      const repo = c.repository(`${server.host}/a/b`);
      const r = await repo.pushManifest(desc, manifest);
      assert.equal(r.ociSubject, 'sha256:' + 'a'.repeat(64));
      assert.equal(await repo.referrersApiSupported(), true);
      assert.equal(server.log.length, 1, 'known from the PUT: no probe');
    });
  });

  it('sends the Accept list and checks the bytes: by digest they must match, by tag Docker-Content-Digest must match them', async () => {
    const accepts: string[] = [];
    const server = await fake((req, res) => {
      accepts.push(String(req.headers.accept));
      if (req.url?.endsWith('/liar')) {
        res.writeHead(200, { 'content-type': MediaType.ImageManifest, 'docker-content-digest': sha256(Buffer.from('other')) }).end(manifest);
        return;
      }
      if (req.url?.endsWith('/good')) {
        res.writeHead(200, { 'content-type': MediaType.ImageManifest, 'docker-content-digest': desc.digest }).end(manifest);
        return;
      }
      res.writeHead(200, { 'content-type': MediaType.ImageManifest }).end(Buffer.concat([manifest, Buffer.from(' ')]));
    });
    const c = client();
    await using(server, c, async () => {
      const repo = c.repository(`${server.host}/a/b`);
      const good = await repo.fetchManifest('good');
      assert.deepEqual(Buffer.from(good.bytes), manifest);
      assert.deepEqual(good.descriptor, desc);
      await assert.rejects(repo.fetchManifest('liar'), DigestMismatchError);
      await assert.rejects(repo.fetchManifest(desc.digest), DigestMismatchError);
      for (const t of [MediaType.ImageManifest, MediaType.ImageIndex, MediaType.DockerManifest, MediaType.DockerManifestList]) {
        assert.ok(accepts[0]?.includes(t), `Accept names ${t}`);
      }
    });
  });

  it('refuses a manifest over 4 MiB, by Content-Length and while reading', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    const server = await fake((req, res) => {
      if (req.url?.endsWith('/declared')) {
        res.writeHead(200, { 'content-type': MediaType.ImageManifest, 'content-length': big.length }).end(big);
        return;
      }
      res.writeHead(200, { 'content-type': MediaType.ImageManifest, 'transfer-encoding': 'chunked' });
      res.end(big);
    });
    const c = client();
    await using(server, c, async () => {
      const repo = c.repository(`${server.host}/a/b`);
      for (const tag of ['declared', 'streamed']) {
        const err = await rejection(repo.fetchManifest(tag), 'expected ProtocolError');
        assert.ok(err instanceof ProtocolError, tag);
        assert.equal(err.code, 'MANIFEST_TOO_LARGE', tag);
      }
    });
  });
});

describe('tags', () => {
  const all = Array.from({ length: 10 }, (_, i) => `t${i}`);
  /** Paginates as the spec says: n, last, Link rel="next". */
  const paginating = (): Promise<Fake> =>
    fake((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const n = Number(url.searchParams.get('n') ?? 1000);
      const last = url.searchParams.get('last');
      const rest = all.filter((t) => last === null || t > last);
      const page = rest.slice(0, n);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (rest.length > n) headers.link = `</v2/a/b/tags/list?n=${n}&last=${page.at(-1)}>; rel="next"`;
      res.writeHead(200, headers).end(JSON.stringify({ name: 'a/b', tags: page }));
    });

  it('follows Link rel="next" page by page', async () => {
    const server = await paginating();
    const c = client();
    await using(server, c, async () => {
      const pages: string[][] = [];
      await c.repository(`${server.host}/a/b`).tags((p) => void pages.push(p), { pageSize: 3 });
      assert.deepEqual(pages, [['t0', 't1', 't2'], ['t3', 't4', 't5'], ['t6', 't7', 't8'], ['t9']]);
      assert.deepEqual(server.log, [
        'GET /v2/a/b/tags/list?n=3',
        'GET /v2/a/b/tags/list?n=3&last=t2',
        'GET /v2/a/b/tags/list?n=3&last=t5',
        'GET /v2/a/b/tags/list?n=3&last=t8',
      ]);
    });
  });

  it('sends no further request once the visitor returns false', async () => {
    const server = await paginating();
    const c = client();
    await using(server, c, async () => {
      let visits = 0;
      await c.repository(`${server.host}/a/b`).tags(() => ++visits < 2 && undefined, { pageSize: 3 });
      assert.equal(visits, 2);
      assert.equal(server.log.length, 2);
    });
  });
});

describe('referrers', () => {
  const subject: Descriptor = { mediaType: MediaType.ImageManifest, digest: sha256(Buffer.from('subject')), size: 7 };
  const ref = (n: number, artifactType: string): Descriptor => ({
    mediaType: MediaType.ImageManifest,
    digest: sha256(Buffer.from(`ref${n}`)),
    size: 100 + n,
    artifactType,
    annotations: { n: String(n) },
  });
  const refs = [ref(1, 'application/x.sig'), ref(2, 'application/x.receipt'), ref(3, 'application/x.sig')];

  it('uses the Referrers API: pagination, and client-side filtering unless OCI-Filters-Applied says otherwise', async () => {
    const server = await fake((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const type = url.searchParams.get('artifactType');
      const headers: Record<string, string> = { 'content-type': MediaType.ImageIndex };
      let manifests = refs;
      if (type === 'application/x.receipt') {
        // This registry filters receipts itself (and says so); it ignores other filters.
        manifests = refs.filter((r) => r.artifactType === type);
        headers['oci-filters-applied'] = 'artifactType';
      } else if (url.searchParams.get('page') === '2') {
        manifests = refs.slice(2);
      } else {
        manifests = refs.slice(0, 2);
        headers.link = `<${url.pathname}?page=2${type ? `&artifactType=${encodeURIComponent(type)}` : ''}>; rel="next"`;
      }
      res.writeHead(200, headers).end(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests }));
    });
    const c = client();
    await using(server, c, async () => {
      const repo = c.repository(`${server.host}/a/b`);
      const pages: Descriptor[][] = [];
      await repo.referrers(subject, (p) => void pages.push(p));
      assert.deepEqual(pages, [refs.slice(0, 2), refs.slice(2)]);
      const sigs: Descriptor[] = [];
      await repo.referrers(subject, (p) => void sigs.push(...p), { artifactType: 'application/x.sig' });
      assert.deepEqual(sigs, [refs[0], refs[2]], 'filtered by the client when the server did not');
      const receipts: Descriptor[] = [];
      await repo.referrers(subject, (p) => void receipts.push(...p), { artifactType: 'application/x.receipt' });
      assert.deepEqual(receipts, [refs[1]]);
      assert.equal(await repo.referrersApiSupported(), true);
    });
  });

  it('a plain 404 means no Referrers API: remembered per repository, then the tag schema is read', async () => {
    const tag = `sha256-${subject.digest.slice('sha256:'.length)}`;
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: refs }));
    const server = await fake((req, res) => {
      if (req.url?.includes('/referrers/')) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found');
      if (req.url === `/v2/a/b/manifests/${tag}`) return void res.writeHead(200, { 'content-type': MediaType.ImageIndex }).end(index);
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
    });
    const c = client();
    await using(server, c, async () => {
      const repo = c.repository(`${server.host}/a/b`);
      const found: Descriptor[] = [];
      await repo.referrers(subject, (p) => void found.push(...p), { artifactType: 'application/x.sig' });
      assert.deepEqual(found, [refs[0], refs[2]]);
      assert.equal(await repo.referrersApiSupported(), false);
      await repo.referrers(subject, () => {});
      assert.equal(server.log.filter((l) => l.includes('/referrers/')).length, 1, 'detected once, then remembered');
      // Another repository of the same client is detected on its own.
      assert.equal(await c.repository(`${server.host}/a/c`).referrersApiSupported(), false);
      assert.equal(server.log.filter((l) => l.includes('/referrers/')).length, 2);
    });
  });
});
