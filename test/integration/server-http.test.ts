/**
 * `comms serve` spoken to in raw HTTP (node:http, paths sent byte for byte), for what the
 * Distribution Spec v1.1 says in detail: referrers (filtering, OCI-Filters-Applied, the empty
 * answer, Link pagination), hostile requests that must be refused with the right status and OCI
 * error code while the store stays exactly as it was, uploads (chunked, streamed, Content-Range
 * order, mount, cancel, expiry), Range GETs, manifests and tags, Basic auth and the refusal to
 * listen publicly without TLS and auth.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { UsageError } from '../../src/errors.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { IndexModel, parseIndex, parseJournal } from '../../src/oci/layout/index-file.ts';
import { EMPTY_JSON_BYTES, EMPTY_JSON_DIGEST, MediaType } from '../../src/oci/mediatypes.ts';
import { RegistryClient } from '../../src/oci/remote/index.ts';
import { FixedCredentialStore } from '../../src/oci/auth/credentials.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { testPki } from '../support/certs.ts';
import { tempDir, type TempDir } from '../support/tools.ts';

const FIXTURES = new URL('../../fixtures/server/manifests/', import.meta.url).pathname;

// ---- raw HTTP --------------------------------------------------------------------------------

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface CallOptions {
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Send the body with chunked transfer encoding (no Content-Length). */
  chunked?: boolean;
  ca?: string;
}

function call(server: RunningServer, method: string, path: string, options: CallOptions = {}): Promise<Reply> {
  const https = server.url.startsWith('https:');
  return new Promise((resolve, reject) => {
    const req = (https ? httpsRequest : httpRequest)(
      {
        host: '127.0.0.1',
        port: server.port,
        method,
        path,
        headers: options.headers ?? {},
        agent: false,
        ...(options.ca !== undefined ? { ca: options.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    if (body !== undefined && options.chunked === true) {
      req.write(body);
      req.end();
    } else {
      req.end(body);
    }
  });
}

function codes(reply: Reply): string[] {
  const doc = JSON.parse(reply.body.toString('utf8')) as { errors: { code: string }[] };
  return doc.errors.map((e) => e.code);
}

function json<T>(reply: Reply): T {
  return JSON.parse(reply.body.toString('utf8')) as T;
}

/**
 * What a repository's index says — index.json with its journal applied, entries in a stable
 * order — read again when the server folded the journal in meanwhile (it does so when idle).
 */
async function indexContent(dir: string): Promise<string> {
  for (;;) {
    const before = await stat(join(dir, 'index.json'), { bigint: true });
    const index = new IndexModel(parseIndex(await readFile(join(dir, 'index.json')), 'index.json'));
    const journal = await readFile(join(dir, 'index.json.journal')).catch(() => undefined);
    if (journal !== undefined) for (const op of parseJournal(journal, 'journal')) index.apply(op);
    const after = await stat(join(dir, 'index.json'), { bigint: true });
    if (before.ino === after.ino && before.mtimeNs === after.mtimeNs)
      return index
        .entries()
        .map((m) => JSON.stringify(m))
        .sort()
        .join('\n');
  }
}

/**
 * Every file and folder under `root` with the sha256 of each file (a repository's index by what
 * it says, however much of it is still in the journal; temp files and the lock left out): equal
 * snapshots, unchanged store.
 */
async function snapshot(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string, rel: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      const r = `${rel}/${entry.name}`;
      // The server's own bookkeeping comes and goes while it folds a journal in: the lock, its temp files.
      if (entry.name === 'index.json.journal' || entry.name === 'index.json.lock' || rel.endsWith('/.tmp')) continue;
      if (entry.isDirectory()) {
        out.push(`${r}/`);
        await walk(p, r);
      } else if (entry.name === 'index.json') {
        out.push(
          `${r} ${createHash('sha256')
            .update(await indexContent(dir))
            .digest('hex')}`,
        );
      } else {
        out.push(
          `${r} ${createHash('sha256')
            .update(await readFile(p))
            .digest('hex')}`,
        );
      }
    }
  }
  await walk(root, '');
  return out.sort();
}

// ---- content ---------------------------------------------------------------------------------

const EMPTY = { mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: EMPTY_JSON_BYTES.length };

interface Built {
  bytes: Buffer;
  digest: string;
}

function manifest(fields: {
  artifactType?: string;
  subject?: Built;
  annotations?: Record<string, string>;
  layers?: { mediaType: string; digest: string; size: number }[];
}): Built {
  const doc: Record<string, unknown> = { schemaVersion: 2, mediaType: MediaType.ImageManifest };
  if (fields.artifactType !== undefined) doc['artifactType'] = fields.artifactType;
  doc['config'] = EMPTY;
  doc['layers'] = fields.layers ?? [EMPTY];
  if (fields.subject !== undefined) doc['subject'] = { mediaType: MediaType.ImageManifest, digest: fields.subject.digest, size: fields.subject.bytes.length };
  if (fields.annotations !== undefined) doc['annotations'] = fields.annotations;
  const bytes = Buffer.from(JSON.stringify(doc));
  return { bytes, digest: digestOf(bytes) };
}

async function pushBlob(server: RunningServer, name: string, bytes: Buffer | Uint8Array): Promise<string> {
  const digest = digestOf(bytes);
  const r = await call(server, 'POST', `/v2/${name}/blobs/uploads/?digest=${digest}`, {
    body: Buffer.from(bytes),
    headers: { 'content-type': 'application/octet-stream' },
  });
  assert.equal(r.status, 201, r.body.toString());
  return digest;
}

async function putManifest(server: RunningServer, name: string, reference: string, m: Built, mediaType: string = MediaType.ImageManifest): Promise<Reply> {
  return call(server, 'PUT', `/v2/${name}/manifests/${reference}`, { body: m.bytes, headers: { 'content-type': mediaType } });
}

/** Follows `Link: <…>; rel="next"` from `path` and returns every page. */
async function followLinks<T>(server: RunningServer, path: string, pick: (r: Reply) => T[]): Promise<T[][]> {
  const pages: T[][] = [];
  let next: string | undefined = path;
  for (let i = 0; next !== undefined; i++) {
    assert.ok(i < 50, 'the Link chain does not end');
    const r = await call(server, 'GET', next);
    assert.equal(r.status, 200, r.body.toString());
    pages.push(pick(r));
    const link = r.headers.link as string | undefined;
    if (link === undefined) {
      next = undefined;
    } else {
      const m = /^<([^>]+)>;\s*rel="next"$/.exec(link);
      assert.ok(m, `malformed Link ${link}`);
      next = m[1];
    }
  }
  return pages;
}

// ---- the server under test -------------------------------------------------------------------

let dir: TempDir;
let server: RunningServer;

before(async () => {
  dir = await tempDir('comms-serve-http-');
  server = await startServer({ root: dir.path, port: 0 });
});
after(async () => {
  await server?.close();
  await dir?.cleanup();
});

describe('ping and routing', () => {
  it('GET /v2/ answers 200 {} with the API version header', async () => {
    const r = await call(server, 'GET', '/v2/');
    assert.equal(r.status, 200);
    assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.deepEqual(json(r), {});
  });

  it('an unknown route is 404 with an OCI error body, a wrong method 405', async () => {
    const r = await call(server, 'GET', '/v2/x/nothing-here');
    assert.equal(r.status, 404);
    assert.equal(codes(r).length, 1);
    assert.equal((await call(server, 'GET', '/elsewhere')).status, 404);
    const m = await call(server, 'POST', '/v2/x/manifests/latest');
    assert.equal(m.status, 405);
    assert.deepEqual(codes(m), ['UNSUPPORTED']);
  });
});

describe('referrers', () => {
  const name = 'refs/app';
  const typeA = 'application/vnd.example.signature';
  const typeB = 'application/vnd.example.sbom';
  let subject: Built;
  let refs: Built[];

  before(async () => {
    await pushBlob(server, name, EMPTY_JSON_BYTES);
    subject = manifest({ annotations: { role: 'subject' } });
    assert.equal((await putManifest(server, name, 'v1', subject)).status, 201);
    refs = [
      manifest({ artifactType: typeA, subject, annotations: { n: '1' } }),
      manifest({ artifactType: typeA, subject, annotations: { n: '2' } }),
      manifest({ artifactType: typeB, subject, annotations: { n: '3' } }),
    ];
    for (const r of refs) {
      const put = await putManifest(server, name, r.digest, r);
      assert.equal(put.status, 201);
      assert.equal(put.headers['oci-subject'], subject.digest, 'a PUT with a subject answers OCI-Subject');
      assert.equal(put.headers['docker-content-digest'], r.digest);
    }
  });

  it('lists all 3 referrers as an image index of descriptors with artifactType and annotations', async () => {
    const r = await call(server, 'GET', `/v2/${name}/referrers/${subject.digest}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], MediaType.ImageIndex);
    assert.equal(r.headers['oci-filters-applied'], undefined, 'no filter asked, none reported');
    const index = json<{ schemaVersion: number; mediaType: string; manifests: Record<string, unknown>[] }>(r);
    assert.equal(index.schemaVersion, 2);
    assert.equal(index.mediaType, MediaType.ImageIndex);
    const expected = refs
      .map((m, i) => ({
        mediaType: MediaType.ImageManifest,
        digest: m.digest,
        size: m.bytes.length,
        artifactType: i < 2 ? typeA : typeB,
        annotations: { n: String(i + 1) },
      }))
      .sort((a, b) => (a.digest < b.digest ? -1 : 1));
    assert.deepEqual(index.manifests, expected);
  });

  it('filters by artifactType and says so with OCI-Filters-Applied', async () => {
    const a = await call(server, 'GET', `/v2/${name}/referrers/${subject.digest}?artifactType=${encodeURIComponent(typeA)}`);
    assert.equal(a.status, 200);
    assert.equal(a.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual(
      json<{ manifests: { digest: string }[] }>(a)
        .manifests.map((d) => d.digest)
        .sort(),
      [refs[0]!.digest, refs[1]!.digest].sort(),
    );
    const b = await call(server, 'GET', `/v2/${name}/referrers/${subject.digest}?artifactType=${encodeURIComponent(typeB)}`);
    assert.equal(b.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual(
      json<{ manifests: { digest: string }[] }>(b).manifests.map((d) => d.digest),
      [refs[2]!.digest],
    );
  });

  it('answers 200 with an empty index for a digest nothing refers to, and for a repository that does not exist', async () => {
    const unknown = digestOf('nobody refers to this');
    for (const path of [`/v2/${name}/referrers/${unknown}`, `/v2/no/such/repo/referrers/${subject.digest}`]) {
      const r = await call(server, 'GET', path);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers['content-type'], MediaType.ImageIndex);
      assert.deepEqual(json(r), { schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [] });
    }
  });

  it('paginates with n and a Link chain that covers every referrer exactly once', async () => {
    const pages = await followLinks(server, `/v2/${name}/referrers/${subject.digest}?n=1`, (r) =>
      json<{ manifests: { digest: string }[] }>(r).manifests.map((d) => d.digest),
    );
    assert.deepEqual(
      pages.map((p) => p.length),
      [1, 1, 1],
    );
    assert.deepEqual(pages.flat(), refs.map((r) => r.digest).sort());
    const two = await followLinks(server, `/v2/${name}/referrers/${subject.digest}?n=2`, (r) =>
      json<{ manifests: { digest: string }[] }>(r).manifests.map((d) => d.digest),
    );
    assert.deepEqual(
      two.map((p) => p.length),
      [2, 1],
    );
    // The filter survives pagination, and every page says it was applied.
    const filtered: Reply[] = [];
    const fpages = await followLinks(server, `/v2/${name}/referrers/${subject.digest}?n=1&artifactType=${encodeURIComponent(typeA)}`, (r) => {
      filtered.push(r);
      return json<{ manifests: { digest: string }[] }>(r).manifests.map((d) => d.digest);
    });
    assert.deepEqual(fpages.flat(), [refs[0]!.digest, refs[1]!.digest].sort());
    for (const r of filtered) assert.equal(r.headers['oci-filters-applied'], 'artifactType');
  });

  it('a malformed subject digest is 400 DIGEST_INVALID', async () => {
    const r = await call(server, 'GET', `/v2/${name}/referrers/sha256:xyz`);
    assert.equal(r.status, 400);
    assert.deepEqual(codes(r), ['DIGEST_INVALID']);
  });

  it('deleting a referrer removes it from the list', async () => {
    const extra = manifest({ artifactType: typeB, subject, annotations: { n: 'temporary' } });
    assert.equal((await putManifest(server, name, extra.digest, extra)).status, 201);
    const with4 = json<{ manifests: unknown[] }>(await call(server, 'GET', `/v2/${name}/referrers/${subject.digest}`));
    assert.equal(with4.manifests.length, 4);
    assert.equal((await call(server, 'DELETE', `/v2/${name}/manifests/${extra.digest}`)).status, 202);
    const back = json<{ manifests: unknown[] }>(await call(server, 'GET', `/v2/${name}/referrers/${subject.digest}`));
    assert.equal(back.manifests.length, 3);
  });
});

describe('hostile requests get the right 4xx and OCI code, and leave the store unchanged', () => {
  const name = 'hostile/target';
  let layer: Buffer;
  let layerDigest: string;

  before(async () => {
    await pushBlob(server, name, EMPTY_JSON_BYTES);
    layer = Buffer.from('a layer that exists');
    layerDigest = await pushBlob(server, name, layer);
    assert.equal((await putManifest(server, name, 'v1', manifest({ annotations: { ok: 'yes' } }))).status, 201);
  });

  async function refused(method: string, path: string, status: number, code: string, options: CallOptions = {}): Promise<void> {
    const before = await snapshot(dir.path);
    const r = await call(server, method, path, options);
    assert.equal(r.status, status, `${method} ${path}: ${r.body.toString().slice(0, 300)}`);
    if (method !== 'HEAD') assert.ok(codes(r).includes(code), `${method} ${path}: expected ${code}, got ${r.body.toString().slice(0, 300)}`);
    assert.deepEqual(await snapshot(dir.path), before, `${method} ${path} changed the store`);
  }

  it('path traversal and invalid names are NAME_INVALID', async () => {
    const body = { body: 'x', headers: { 'content-type': 'application/octet-stream' } };
    const d = digestOf('x');
    await refused('GET', `/v2/../x/blobs/${layerDigest}`, 400, 'NAME_INVALID');
    await refused('GET', `/v2/${name}/../../etc/blobs/${layerDigest}`, 400, 'NAME_INVALID');
    await refused('POST', `/v2/../../escaped/blobs/uploads/?digest=${d}`, 400, 'NAME_INVALID', body);
    await refused('POST', `/v2/%2e%2e/%2e%2e/escaped/blobs/uploads/?digest=${d}`, 400, 'NAME_INVALID', body);
    await refused('POST', `/v2/a%2f..%2fb/blobs/uploads/?digest=${d}`, 400, 'NAME_INVALID', body);
    await refused('PUT', `/v2/..%2F..%2Fetc/manifests/latest`, 400, 'NAME_INVALID', {
      body: manifest({}).bytes,
      headers: { 'content-type': MediaType.ImageManifest },
    });
    await refused('POST', `/v2/Hostile/Upper/blobs/uploads/`, 400, 'NAME_INVALID');
    await refused('POST', `/v2//abs/blobs/uploads/`, 400, 'NAME_INVALID');
    // A nested name may not walk into a repository's own layout folders.
    await refused('POST', `/v2/${name}/blobs/blobs/uploads/?digest=${d}`, 400, 'NAME_INVALID', body);
    await refused('GET', `/v2/${name}/referrers/referrers/${layerDigest}`, 400, 'NAME_INVALID');
    await refused('HEAD', `/v2/${name}/.tmp/blobs/${layerDigest}`, 400, 'NAME_INVALID');
  });

  it('a blob whose bytes do not match its digest is DIGEST_INVALID, monolithic or chunked', async () => {
    const wrong = digestOf('something else');
    await refused('POST', `/v2/${name}/blobs/uploads/?digest=${wrong}`, 400, 'DIGEST_INVALID', {
      body: 'the real bytes',
      headers: { 'content-type': 'application/octet-stream' },
    });
    await refused('POST', `/v2/fresh/repo/blobs/uploads/?digest=${wrong}`, 400, 'DIGEST_INVALID', {
      body: 'the real bytes',
      headers: { 'content-type': 'application/octet-stream' },
    });

    const before = await snapshot(dir.path);
    const start = await call(server, 'POST', `/v2/${name}/blobs/uploads/`);
    assert.equal(start.status, 202);
    const location = start.headers.location as string;
    assert.equal((await call(server, 'PATCH', location, { body: 'chunk one ', headers: { 'content-range': '0-9' } })).status, 202);
    const put = await call(server, 'PUT', `${location}?digest=${wrong}`, { body: 'chunk two', headers: { 'content-range': '10-18' } });
    assert.equal(put.status, 400);
    assert.deepEqual(codes(put), ['DIGEST_INVALID']);
    // The failed upload is over (the spec: a 4xx ends it), and nothing of it is left.
    assert.deepEqual(codes(await call(server, 'GET', location)), ['BLOB_UPLOAD_UNKNOWN']);
    assert.deepEqual(await snapshot(dir.path), before);
    assert.equal((await call(server, 'HEAD', `/v2/${name}/blobs/${digestOf('chunk one chunk two')}`)).status, 404);
  });

  it('a manifest whose body does not match its digest reference is DIGEST_INVALID', async () => {
    const m = manifest({ annotations: { a: 'b' } });
    const other = manifest({ annotations: { a: 'c' } });
    await refused('PUT', `/v2/${name}/manifests/${other.digest}`, 400, 'DIGEST_INVALID', {
      body: m.bytes,
      headers: { 'content-type': MediaType.ImageManifest },
    });
  });

  it('an oversize manifest is 413 SIZE_INVALID, with or without Content-Length', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    await refused('PUT', `/v2/${name}/manifests/big`, 413, 'SIZE_INVALID', { body: big, headers: { 'content-type': MediaType.ImageManifest } });
    await refused('PUT', `/v2/${name}/manifests/big`, 413, 'SIZE_INVALID', { body: big, chunked: true, headers: { 'content-type': MediaType.ImageManifest } });
  });

  it('a manifest referencing a missing blob is MANIFEST_BLOB_UNKNOWN, naming each missing digest', async () => {
    const missingA = { mediaType: 'application/octet-stream', digest: digestOf('not uploaded A'), size: 14 };
    const missingB = { mediaType: 'application/octet-stream', digest: digestOf('not uploaded B'), size: 14 };
    const m = manifest({ layers: [{ mediaType: 'application/octet-stream', digest: layerDigest, size: layer.length }, missingA, missingB] });
    const before = await snapshot(dir.path);
    const r = await putManifest(server, name, 'broken', m);
    assert.equal(r.status, 400);
    const errors = json<{ errors: { code: string; detail: { digest: string } }[] }>(r).errors;
    assert.deepEqual(
      errors.map((e) => e.code),
      ['MANIFEST_BLOB_UNKNOWN', 'MANIFEST_BLOB_UNKNOWN'],
    );
    assert.deepEqual(
      errors.map((e) => e.detail.digest),
      [missingA.digest, missingB.digest],
    );
    assert.deepEqual(await snapshot(dir.path), before);
    // Into a repository that does not exist: refused, and no folder appears for it.
    await refused('PUT', `/v2/never/created/manifests/v1`, 400, 'MANIFEST_BLOB_UNKNOWN', {
      body: m.bytes,
      headers: { 'content-type': MediaType.ImageManifest },
    });
    // An index whose child manifest is missing.
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ImageIndex,
        manifests: [{ mediaType: MediaType.ImageManifest, digest: digestOf('no such manifest'), size: 10 }],
      }),
    );
    await refused('PUT', `/v2/${name}/manifests/idx`, 400, 'MANIFEST_BLOB_UNKNOWN', { body: index, headers: { 'content-type': MediaType.ImageIndex } });
  });

  it('an unknown digest algorithm is DIGEST_INVALID wherever a digest goes', async () => {
    const md5 = 'md5:d41d8cd98f00b204e9800998ecf8427e';
    await refused('GET', `/v2/${name}/blobs/${md5}`, 400, 'DIGEST_INVALID');
    await refused('DELETE', `/v2/${name}/blobs/${md5}`, 400, 'DIGEST_INVALID');
    await refused('POST', `/v2/${name}/blobs/uploads/?digest=${md5}`, 400, 'DIGEST_INVALID', {
      body: '',
      headers: { 'content-type': 'application/octet-stream' },
    });
    await refused('PUT', `/v2/${name}/manifests/${md5}`, 400, 'DIGEST_INVALID', {
      body: manifest({}).bytes,
      headers: { 'content-type': MediaType.ImageManifest },
    });
    await refused('GET', `/v2/${name}/referrers/${md5}`, 400, 'DIGEST_INVALID');
    await refused('GET', `/v2/${name}/blobs/sha256:..%2F..%2F..%2Fetc%2Fpasswd`, 400, 'DIGEST_INVALID');
  });

  it('every hostile manifest body in fixtures/server/manifests is MANIFEST_INVALID', async () => {
    const files = (await readdir(FIXTURES)).filter((f) => f.endsWith('.json'));
    assert.ok(files.length >= 10);
    for (const f of files) {
      await refused('PUT', `/v2/${name}/manifests/fixture`, 400, 'MANIFEST_INVALID', {
        body: await readFile(join(FIXTURES, f)),
        headers: { 'content-type': MediaType.ImageManifest },
      });
    }
  });

  it('malformed manifests are MANIFEST_INVALID', async () => {
    const ct = { 'content-type': MediaType.ImageManifest };
    await refused('PUT', `/v2/${name}/manifests/bad`, 400, 'MANIFEST_INVALID', { body: manifest({}).bytes, headers: { 'content-type': 'application/json' } });
    await refused('PUT', `/v2/${name}/manifests/bad`, 400, 'MANIFEST_INVALID', { body: '{not json', headers: ct });
    await refused('PUT', `/v2/${name}/manifests/bad`, 400, 'MANIFEST_INVALID', {
      body: JSON.stringify({ schemaVersion: 1, config: EMPTY, layers: [] }),
      headers: ct,
    });
    await refused('PUT', `/v2/${name}/manifests/bad`, 400, 'MANIFEST_INVALID', {
      body: JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageIndex, config: EMPTY, layers: [] }),
      headers: ct,
    });
    await refused('PUT', `/v2/${name}/manifests/bad`, 400, 'MANIFEST_INVALID', {
      body: JSON.stringify({ schemaVersion: 2, config: { digest: 'sha256:zz', size: 2 }, layers: [] }),
      headers: ct,
    });
    await refused('PUT', `/v2/${name}/manifests/-bad-tag`, 400, 'MANIFEST_INVALID', { body: manifest({}).bytes, headers: ct });
  });
});

describe('uploads', () => {
  const name = 'uploads/repo';

  it('chunked with Content-Range: 202 + Range after each chunk, 416 out of order, status GET, final chunk in the PUT', async () => {
    const data = Buffer.from('0123456789abcdefghij');
    const start = await call(server, 'POST', `/v2/${name}/blobs/uploads/`);
    assert.equal(start.status, 202);
    const location = start.headers.location as string;
    assert.match(location, new RegExp(`^/v2/${name}/blobs/uploads/[0-9a-f-]{36}$`));
    assert.equal(start.headers.range, '0-0');
    assert.equal(start.headers['docker-upload-uuid'], location.split('/').at(-1));

    const first = await call(server, 'PATCH', location, {
      body: data.subarray(0, 8),
      headers: { 'content-range': '0-7', 'content-type': 'application/octet-stream' },
    });
    assert.equal(first.status, 202);
    assert.equal(first.headers.range, '0-7');
    // Replaying the same chunk, skipping ahead, and nonsense ranges are all 416 with the current Range.
    for (const range of ['0-7', '10-12', '7-9', 'garbage', '9-8']) {
      const r = await call(server, 'PATCH', location, { body: 'xx', headers: { 'content-range': range } });
      assert.equal(r.status, 416, `Content-Range ${range}`);
      assert.equal(r.headers.range, '0-7');
    }
    const status = await call(server, 'GET', location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, '0-7');
    assert.equal(status.headers.location, location);

    // A chunk shorter than its Content-Range is refused and leaves the upload where it was.
    const short = await call(server, 'PATCH', location, { body: 'ab', chunked: true, headers: { 'content-range': '8-12' } });
    assert.equal(short.status, 400);
    assert.equal((await call(server, 'GET', location)).headers.range, '0-7');

    assert.equal((await call(server, 'PATCH', location, { body: data.subarray(8, 15), headers: { 'content-range': '8-14' } })).headers.range, '0-14');
    const done = await call(server, 'PUT', `${location}?digest=${digestOf(data)}`, { body: data.subarray(15), headers: { 'content-range': '15-19' } });
    assert.equal(done.status, 201, done.body.toString());
    assert.equal(done.headers.location, `/v2/${name}/blobs/${digestOf(data)}`);
    assert.equal(done.headers['docker-content-digest'], digestOf(data));
    assert.deepEqual((await call(server, 'GET', `/v2/${name}/blobs/${digestOf(data)}`)).body, data);
    assert.deepEqual(codes(await call(server, 'GET', location)), ['BLOB_UPLOAD_UNKNOWN'], 'a finished session is gone');
  });

  it('streamed PATCHes without Content-Range, then a PUT with an empty body', async () => {
    const parts = ['streamed ', 'in three ', 'pieces'];
    const start = await call(server, 'POST', `/v2/${name}/blobs/uploads/`);
    let location = start.headers.location as string;
    let held = 0;
    for (const p of parts) {
      const r = await call(server, 'PATCH', location, { body: p, chunked: true });
      assert.equal(r.status, 202);
      held += p.length;
      assert.equal(r.headers.range, `0-${held - 1}`);
      location = r.headers.location as string;
    }
    const all = Buffer.from(parts.join(''));
    const done = await call(server, 'PUT', `${location}?digest=${digestOf(all)}`);
    assert.equal(done.status, 201);
    assert.deepEqual((await call(server, 'GET', `/v2/${name}/blobs/${digestOf(all)}`)).body, all);
  });

  it('PUT without a digest is refused; DELETE cancels; a session cannot be used from another repository', async () => {
    const start = await call(server, 'POST', `/v2/${name}/blobs/uploads/`);
    const location = start.headers.location as string;
    const id = location.split('/').at(-1) as string;
    assert.deepEqual(codes(await call(server, 'PUT', location)), ['DIGEST_INVALID']);
    const foreign = await call(server, 'GET', `/v2/other/repo/blobs/uploads/${id}`);
    assert.equal(foreign.status, 404);
    assert.deepEqual(codes(foreign), ['BLOB_UPLOAD_UNKNOWN']);
    assert.equal((await call(server, 'DELETE', location)).status, 204);
    const gone = await call(server, 'PATCH', location, { body: 'late' });
    assert.equal(gone.status, 404);
    assert.deepEqual(codes(gone), ['BLOB_UPLOAD_UNKNOWN']);
    assert.equal((await call(server, 'GET', `/v2/${name}/blobs/uploads/not-a-session-id`)).status, 404);
  });

  it('cross-repository mount: 201 when the source has the blob, else a normal 202 upload session', async () => {
    const data = Buffer.from('mount me');
    const digest = await pushBlob(server, 'mount/source', data);
    const ok = await call(server, 'POST', `/v2/mount/target/blobs/uploads/?mount=${digest}&from=mount/source`);
    assert.equal(ok.status, 201);
    assert.equal(ok.headers.location, `/v2/mount/target/blobs/${digest}`);
    assert.equal(ok.headers['docker-content-digest'], digest);
    assert.deepEqual((await call(server, 'GET', `/v2/mount/target/blobs/${digest}`)).body, data);

    for (const query of [
      `mount=${digestOf('absent')}&from=mount/source`,
      `mount=${digest}&from=no/such/repo`,
      `mount=${digest}&from=../escape`,
      `mount=md5:00&from=mount/source`,
    ]) {
      const r = await call(server, 'POST', `/v2/mount/other/blobs/uploads/?${query}`);
      assert.equal(r.status, 202, query);
      assert.match(r.headers.location as string, /^\/v2\/mount\/other\/blobs\/uploads\//);
      assert.equal((await call(server, 'DELETE', r.headers.location as string)).status, 204);
    }
  });

  it('abandoned uploads are swept after the TTL', async () => {
    const sweptDir = await tempDir('comms-serve-sweep-');
    const short = await startServer({ root: sweptDir.path, port: 0, uploadTtlMs: 100 });
    try {
      const start = await call(short, 'POST', `/v2/${name}/blobs/uploads/`);
      const location = start.headers.location as string;
      assert.equal((await call(short, 'PATCH', location, { body: 'abandoned' })).status, 202);
      const deadline = Date.now() + 20_000;
      let files = await readdir(join(sweptDir.path, '_uploads'));
      assert.equal(files.length, 2);
      while (files.length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        files = await readdir(join(sweptDir.path, '_uploads'));
      }
      assert.deepEqual(files, [], 'the sweeper removed the session files');
      assert.deepEqual(codes(await call(short, 'GET', location)), ['BLOB_UPLOAD_UNKNOWN']);
    } finally {
      await short.close();
      await sweptDir.cleanup();
    }
  });
});

describe('blobs', () => {
  const name = 'blobs/repo';
  const data = Buffer.from('0123456789');
  let digest: string;
  before(async () => {
    digest = await pushBlob(server, name, data);
  });

  it('HEAD and GET carry Content-Length, Docker-Content-Digest and Accept-Ranges', async () => {
    const head = await call(server, 'HEAD', `/v2/${name}/blobs/${digest}`);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '10');
    assert.equal(head.headers['docker-content-digest'], digest);
    assert.equal(head.headers['accept-ranges'], 'bytes');
    assert.equal(head.body.length, 0);
    const get = await call(server, 'GET', `/v2/${name}/blobs/${digest}`);
    assert.deepEqual(get.body, data);
    assert.equal(get.headers['content-length'], '10');
  });

  it('Range GET answers 206 with Content-Range; an unsatisfiable range is 416', async () => {
    const cases: [string, string, string][] = [
      ['bytes=2-5', '2345', 'bytes 2-5/10'],
      ['bytes=7-', '789', 'bytes 7-9/10'],
      ['bytes=-3', '789', 'bytes 7-9/10'],
      ['bytes=8-100', '89', 'bytes 8-9/10'],
    ];
    for (const [range, body, contentRange] of cases) {
      const r = await call(server, 'GET', `/v2/${name}/blobs/${digest}`, { headers: { range } });
      assert.equal(r.status, 206, range);
      assert.equal(r.body.toString(), body, range);
      assert.equal(r.headers['content-range'], contentRange, range);
      assert.equal(r.headers['content-length'], String(body.length), range);
    }
    const bad = await call(server, 'GET', `/v2/${name}/blobs/${digest}`, { headers: { range: 'bytes=10-' } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-range'], 'bytes */10');
  });

  it('a blob of several send buffers comes whole, and any slice of it by Range, with HEAD answering the same headers', async () => {
    const big = Buffer.alloc(1_300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >>> 9)) & 0xff;
    const d = await pushBlob(server, name, big);
    const whole = await call(server, 'GET', `/v2/${name}/blobs/${d}`);
    assert.equal(whole.status, 200);
    assert.ok(whole.body.equals(big), 'the whole blob, byte for byte');
    for (const [start, end] of [
      [0, 0],
      [1, 524_288],
      [524_287, 1_048_577],
      [1_000_000, 1_299_999],
    ] as const) {
      const range = `bytes=${start}-${end}`;
      const r = await call(server, 'GET', `/v2/${name}/blobs/${d}`, { headers: { range } });
      assert.equal(r.status, 206, range);
      assert.ok(r.body.equals(big.subarray(start, end + 1)), range);
      assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${big.length}`, range);
      const head = await call(server, 'HEAD', `/v2/${name}/blobs/${d}`, { headers: { range } });
      assert.equal(head.status, 206, range);
      assert.equal(head.headers['content-length'], String(end - start + 1), range);
      assert.equal(head.body.length, 0, range);
    }
  });

  it('unknown blobs are 404 BLOB_UNKNOWN, unknown repositories 404 NAME_UNKNOWN; DELETE is 202 then 404', async () => {
    const unknown = await call(server, 'GET', `/v2/${name}/blobs/${digestOf('never')}`);
    assert.equal(unknown.status, 404);
    assert.deepEqual(codes(unknown), ['BLOB_UNKNOWN']);
    assert.deepEqual(codes(await call(server, 'GET', `/v2/nope/blobs/${digest}`)), ['NAME_UNKNOWN']);
    const doomed = await pushBlob(server, name, Buffer.from('doomed'));
    assert.equal((await call(server, 'DELETE', `/v2/${name}/blobs/${doomed}`)).status, 202);
    assert.equal((await call(server, 'HEAD', `/v2/${name}/blobs/${doomed}`)).status, 404);
    assert.deepEqual(codes(await call(server, 'DELETE', `/v2/${name}/blobs/${doomed}`)), ['BLOB_UNKNOWN']);
  });
});

describe('manifests and tags', () => {
  const name = 'manifests/repo';
  let m: Built;
  before(async () => {
    await pushBlob(server, name, EMPTY_JSON_BYTES);
    m = manifest({ annotations: { which: 'm' } });
    const put = await putManifest(server, name, 'v1', m);
    assert.equal(put.status, 201);
    assert.equal(put.headers.location, `/v2/${name}/manifests/${m.digest}`);
    assert.equal(put.headers['docker-content-digest'], m.digest);
    assert.equal(put.headers['oci-subject'], undefined, 'no subject, no OCI-Subject');
  });

  it('GET, HEAD and DELETE by a reference that cannot be a tag answer 404 MANIFEST_UNKNOWN (as the conformance suite asks)', async () => {
    for (const method of ['GET', 'HEAD', 'DELETE']) {
      const r = await call(server, method, `/v2/${name}/manifests/.INVALID_MANIFEST_NAME`);
      assert.equal(r.status, 404, method);
      if (method !== 'HEAD') assert.deepEqual(codes(r), ['MANIFEST_UNKNOWN']);
    }
  });

  it('GET and HEAD by tag and digest return the stored media type, digest and exact bytes', async () => {
    for (const ref of ['v1', m.digest]) {
      const get = await call(server, 'GET', `/v2/${name}/manifests/${ref}`);
      assert.equal(get.status, 200);
      assert.equal(get.headers['content-type'], MediaType.ImageManifest);
      assert.equal(get.headers['docker-content-digest'], m.digest);
      assert.deepEqual(get.body, m.bytes);
      const head = await call(server, 'HEAD', `/v2/${name}/manifests/${ref}`);
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], String(m.bytes.length));
      assert.equal(head.body.length, 0);
    }
    const missing = await call(server, 'GET', `/v2/${name}/manifests/nope`);
    assert.equal(missing.status, 404);
    assert.deepEqual(codes(missing), ['MANIFEST_UNKNOWN']);
  });

  it('an image index whose children exist is accepted', async () => {
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ImageIndex,
        manifests: [{ mediaType: MediaType.ImageManifest, digest: m.digest, size: m.bytes.length }],
      }),
    );
    const r = await putManifest(server, name, 'multi', { bytes: index, digest: digestOf(index) }, MediaType.ImageIndex);
    assert.equal(r.status, 201, r.body.toString());
    assert.equal((await call(server, 'GET', `/v2/${name}/manifests/multi`)).headers['content-type'], MediaType.ImageIndex);
  });

  it('DELETE by tag untags (the manifest stays); DELETE by digest removes it and every tag on it', async () => {
    const other = manifest({ annotations: { which: 'other' } });
    assert.equal((await putManifest(server, name, 'a', other)).status, 201);
    assert.equal((await putManifest(server, name, 'b', other)).status, 201);
    assert.equal((await call(server, 'DELETE', `/v2/${name}/manifests/a`)).status, 202);
    assert.equal((await call(server, 'GET', `/v2/${name}/manifests/a`)).status, 404);
    assert.equal((await call(server, 'GET', `/v2/${name}/manifests/${other.digest}`)).status, 200);
    assert.equal((await call(server, 'GET', `/v2/${name}/manifests/b`)).status, 200);
    assert.deepEqual(codes(await call(server, 'DELETE', `/v2/${name}/manifests/a`)), ['MANIFEST_UNKNOWN']);
    assert.equal((await call(server, 'DELETE', `/v2/${name}/manifests/${other.digest}`)).status, 202);
    assert.equal((await call(server, 'GET', `/v2/${name}/manifests/b`)).status, 404);
    assert.equal((await call(server, 'GET', `/v2/${name}/manifests/${other.digest}`)).status, 404);
  });

  it("starts a tag list after any `last`, a tag or not (a recipient's inbox prefix), and pages on from there with n and Link", async () => {
    const tags = [
      'inbox-bob-20261201-2',
      'inbox-amy-20261201-1',
      'inbox-bob-20261130-9',
      'inbox-bob-20261201-1',
      'inbox-cy-20261201-1',
      'inbox-bob-20261201-3',
    ];
    await pushBlob(server, 'tags/prefix', EMPTY_JSON_BYTES);
    for (const t of tags) assert.equal((await putManifest(server, 'tags/prefix', t, manifest({ annotations: { t } }))).status, 201);
    const bob = ['inbox-bob-20261201-1', 'inbox-bob-20261201-2', 'inbox-bob-20261201-3'];
    const fromPrefix = json<{ tags: string[] }>(await call(server, 'GET', '/v2/tags/prefix/tags/list?last=inbox-bob-20261201-'));
    assert.deepEqual(fromPrefix.tags, [...bob, 'inbox-cy-20261201-1']);
    const pages = await followLinks(server, '/v2/tags/prefix/tags/list?n=2&last=inbox-bob-20261201-', (r) => json<{ tags: string[] }>(r).tags);
    assert.deepEqual(pages, [bob.slice(0, 2), [bob[2], 'inbox-cy-20261201-1']]);
    const first = await call(server, 'GET', '/v2/tags/prefix/tags/list?n=2&last=inbox-bob-20261201-');
    assert.equal(first.headers.link, '</v2/tags/prefix/tags/list?n=2&last=inbox-bob-20261201-2>; rel="next"');
    assert.deepEqual(json<{ tags: string[] }>(await call(server, 'GET', '/v2/tags/prefix/tags/list?last=inbox-zz')).tags, [], 'after every tag: an empty page');
    assert.deepEqual(
      json<{ tags: string[] }>(await call(server, 'GET', '/v2/tags/prefix/tags/list?last=')).tags,
      [...tags].sort(),
      'an empty last starts at the beginning',
    );
  });

  it('lists tags in lexical order with n, last and a Link chain', async () => {
    const tags = ['t03', 'A0', 't01', 'z9', 't02', '_x'];
    await pushBlob(server, 'tags/repo', EMPTY_JSON_BYTES);
    for (const t of tags) assert.equal((await putManifest(server, 'tags/repo', t, m)).status, 201);
    const expected = [...tags].sort();
    const all = json<{ name: string; tags: string[] }>(await call(server, 'GET', '/v2/tags/repo/tags/list'));
    assert.deepEqual(all, { name: 'tags/repo', tags: expected });
    const pages = await followLinks(server, '/v2/tags/repo/tags/list?n=4', (r) => json<{ tags: string[] }>(r).tags);
    assert.deepEqual(pages, [expected.slice(0, 4), expected.slice(4)]);
    const after = json<{ tags: string[] }>(await call(server, 'GET', '/v2/tags/repo/tags/list?last=t01'));
    assert.deepEqual(
      after.tags,
      expected.filter((t) => t > 't01'),
    );
    assert.deepEqual(json<{ tags: string[] }>(await call(server, 'GET', '/v2/tags/repo/tags/list?n=0')).tags, []);
    assert.equal((await call(server, 'GET', '/v2/tags/repo/tags/list?n=-1')).status, 400);
    assert.deepEqual(codes(await call(server, 'GET', '/v2/no/such/tags/list')), ['NAME_UNKNOWN']);
  });
});

/** Sends `head` and the first bytes of a body on a raw socket, then stalls; resolves with all the server answered. */
function stalledRequest(server: RunningServer, head: string, partialBody: string): Promise<{ text: string; closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(server.port, '127.0.0.1', () => socket.write(head + partialBody));
    let text = '';
    socket.on('data', (b: Buffer) => (text += b.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve({ text, closedAfterMs: Date.now() - started }));
  });
}

describe('resource limits: upload sessions, blob size, stalled bodies', () => {
  let limitsDir: TempDir;
  let limited: RunningServer;

  before(async () => {
    limitsDir = await tempDir('comms-serve-limits-');
    limited = await startServer({ root: limitsDir.path, port: 0, maxUploadSessions: 3, maxUploadSessionsTotal: 5, maxBlobBytes: 1000, bodyIdleTimeoutMs: 300 });
  });
  after(async () => {
    await limited?.close();
    await limitsDir?.cleanup();
  });

  it('more open upload sessions than the per-repository and total limits: 429 TOOMANYREQUESTS; a finished one frees a place', async () => {
    const opened: string[] = [];
    const open = async (repo: string): Promise<Reply> => {
      const r = await call(limited, 'POST', `/v2/${repo}/blobs/uploads/`);
      if (r.status === 202) opened.push(r.headers.location as string);
      return r;
    };
    const first = [await open('limits/a'), await open('limits/a'), await open('limits/a')];
    for (const r of first) assert.equal(r.status, 202);
    const refused = await open('limits/a');
    assert.equal(refused.status, 429);
    assert.deepEqual(codes(refused), ['TOOMANYREQUESTS']);
    assert.match(json<{ errors: { message: string }[] }>(refused).errors[0]?.message ?? '', /limits\/a already has 3 upload sessions open/);
    // A monolithic upload needs a session too.
    assert.equal((await call(limited, 'POST', `/v2/limits/a/blobs/uploads/?digest=${digestOf('m')}`, { body: 'm' })).status, 429);
    // Another repository has places of its own, up to the total.
    assert.equal((await open('limits/b')).status, 202);
    assert.equal((await open('limits/b')).status, 202);
    const total = await open('limits/c');
    assert.equal(total.status, 429);
    assert.match(json<{ errors: { message: string }[] }>(total).errors[0]?.message ?? '', /5 upload sessions open, its limit/);
    // Cancelling one session and completing another frees their places.
    assert.equal((await call(limited, 'DELETE', first[0]?.headers.location as string)).status, 204);
    assert.equal((await call(limited, 'PUT', `${first[1]?.headers.location as string}?digest=${digestOf('done')}`, { body: 'done' })).status, 201);
    assert.equal((await open('limits/a')).status, 202);
    assert.equal((await open('limits/c')).status, 202);
    for (const location of opened) await call(limited, 'DELETE', location);
  });

  it('a blob larger than the limit: 413 SIZE_INVALID, whether announced or streamed, and nothing is stored', async () => {
    const big = Buffer.alloc(1001, 7);
    const before = await snapshot(limitsDir.path);
    const mono = await call(limited, 'POST', `/v2/limits/size/blobs/uploads/?digest=${digestOf(big)}`, { body: big });
    assert.equal(mono.status, 413);
    assert.deepEqual(codes(mono), ['SIZE_INVALID']);
    const streamed = await call(limited, 'POST', `/v2/limits/size/blobs/uploads/?digest=${digestOf(big)}`, { body: big, chunked: true });
    assert.equal(streamed.status, 413);
    assert.deepEqual(codes(streamed), ['SIZE_INVALID']);
    assert.deepEqual(await snapshot(limitsDir.path), before, 'no blob and no session left behind');

    const session = await call(limited, 'POST', '/v2/limits/size/blobs/uploads/');
    const location = session.headers.location as string;
    assert.equal((await call(limited, 'PATCH', location, { body: big.subarray(0, 600) })).status, 202);
    const ranged = await call(limited, 'PATCH', location, { body: big.subarray(600), headers: { 'content-range': '600-1000' } });
    assert.equal(ranged.status, 413);
    const chunked = await call(limited, 'PATCH', location, { body: big.subarray(600), chunked: true });
    assert.equal(chunked.status, 413);
    assert.match(json<{ errors: { message: string }[] }>(chunked).errors[0]?.message ?? '', /above this registry's limit of 1000 bytes per blob/);
    // The refused chunks left the session as it was; exactly the limit is accepted.
    assert.equal((await call(limited, 'GET', location)).headers.range, '0-599');
    assert.equal((await call(limited, 'PUT', `${location}?digest=${digestOf(big.subarray(0, 1000))}`, { body: big.subarray(600, 1000) })).status, 201);
  });

  it("a request body on which nothing arrives is cut off after the idle timeout: 408 with the endpoint's code, connection closed", async () => {
    const session = await call(limited, 'POST', '/v2/limits/idle/blobs/uploads/');
    const location = session.headers.location as string;
    const patch = await stalledRequest(limited, `PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n`, 'ten bytes!');
    assert.match(patch.text, /^HTTP\/1\.1 408 /);
    assert.match(patch.text, /"code":"BLOB_UPLOAD_INVALID"/);
    assert.match(patch.text, /idle timeout/);
    assert.equal((await call(limited, 'GET', location)).headers.range, '0-0', 'the cut-off chunk is not kept');
    const manifest = await stalledRequest(
      limited,
      `PUT /v2/limits/idle/manifests/t HTTP/1.1\r\nHost: x\r\nContent-Type: ${MediaType.ImageManifest}\r\nContent-Length: 100\r\n\r\n`,
      '{"schema',
    );
    assert.match(manifest.text, /^HTTP\/1\.1 408 /);
    assert.match(manifest.text, /"code":"MANIFEST_INVALID"/);
  });
});

describe('Basic auth', () => {
  let authDir: TempDir;
  let secured: RunningServer;
  const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

  before(async () => {
    authDir = await tempDir('comms-serve-auth-');
    // Apache htpasswd -B writes $2y$; bcryptjs writes $2a$ (or $2b$): both must be accepted.
    const file = join(authDir.path, 'htpasswd');
    await writeFile(file, `alice:${bcrypt.hashSync('wonderland', 4).replace(/^\$2[ab]\$/, '$2y$')}\n# a comment\nbob:${bcrypt.hashSync('builder', 4)}\n`);
    secured = await startServer({ root: join(authDir.path, 'root'), port: 0, htpasswd: file });
  });
  after(async () => {
    await secured?.close();
    await authDir?.cleanup();
  });

  it('without or with wrong credentials: 401 UNAUTHORIZED with WWW-Authenticate Basic', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: basic('alice', 'wrong') },
      { authorization: basic('mallory', 'wonderland') },
      { authorization: 'Bearer abc' },
    ];
    for (const headers of attempts) {
      const r = await call(secured, 'GET', '/v2/', { headers });
      assert.equal(r.status, 401);
      assert.equal(r.headers['www-authenticate'], 'Basic realm="comms"');
      assert.deepEqual(codes(r), ['UNAUTHORIZED']);
    }
    const upload = await call(secured, 'POST', `/v2/x/blobs/uploads/?digest=${digestOf('x')}`, { body: 'x' });
    assert.equal(upload.status, 401);
    assert.equal(await stat(join(authDir.path, 'root', 'x')).catch(() => undefined), undefined, 'nothing stored for an unauthenticated push');
  });

  it('every route (blobs, manifests, tags, referrers, upload sessions) answers 401 without credentials, and serves with them', async () => {
    const auth = { authorization: basic('bob', 'builder') };
    // Real content first, so that each route would have something to answer without the check.
    const blob = Buffer.from('guarded blob');
    const digest = digestOf(blob);
    assert.equal((await call(secured, 'POST', `/v2/guard/repo/blobs/uploads/?digest=${digest}`, { body: blob, headers: auth })).status, 201);
    assert.equal(
      (await call(secured, 'POST', `/v2/guard/repo/blobs/uploads/?digest=${EMPTY_JSON_DIGEST}`, { body: Buffer.from(EMPTY_JSON_BYTES), headers: auth })).status,
      201,
    );
    const m = manifest({ layers: [{ mediaType: 'application/octet-stream', digest, size: blob.length }] });
    const ct = { 'content-type': MediaType.ImageManifest };
    assert.equal((await call(secured, 'PUT', `/v2/guard/repo/manifests/v1`, { body: m.bytes, headers: { ...ct, ...auth } })).status, 201);
    const session = await call(secured, 'POST', '/v2/guard/repo/blobs/uploads/', { headers: auth });
    assert.equal(session.status, 202);
    const upload = session.headers.location as string;
    const other = Buffer.from('unauthenticated bytes');
    const routes: [string, string, CallOptions?][] = [
      ['GET', '/v2/'],
      ['GET', `/v2/guard/repo/blobs/${digest}`],
      ['HEAD', `/v2/guard/repo/blobs/${digest}`],
      ['GET', `/v2/guard/repo/blobs/${digest}`, { headers: { range: 'bytes=0-3' } }],
      ['DELETE', `/v2/guard/repo/blobs/${digest}`],
      ['GET', '/v2/guard/repo/manifests/v1'],
      ['HEAD', '/v2/guard/repo/manifests/v1'],
      ['GET', `/v2/guard/repo/manifests/${m.digest}`],
      ['HEAD', `/v2/guard/repo/manifests/${m.digest}`],
      ['PUT', '/v2/guard/repo/manifests/v2', { body: m.bytes, headers: ct }],
      ['DELETE', '/v2/guard/repo/manifests/v1'],
      ['DELETE', `/v2/guard/repo/manifests/${m.digest}`],
      ['GET', '/v2/guard/repo/tags/list'],
      ['GET', `/v2/guard/repo/referrers/${m.digest}`],
      ['POST', '/v2/guard/repo/blobs/uploads/'],
      ['POST', `/v2/guard/repo/blobs/uploads/?digest=${digestOf(other)}`, { body: other }],
      ['POST', `/v2/guard/copy/blobs/uploads/?mount=${digest}&from=guard/repo`],
      ['PATCH', upload, { body: other }],
      ['PUT', `${upload}?digest=${digestOf(other)}`, { body: other }],
      ['GET', upload],
      ['DELETE', upload],
      ['GET', '/v2/_catalog'],
    ];
    const before = await snapshot(join(authDir.path, 'root'));
    for (const [method, path, options] of routes) {
      const r = await call(secured, method, path, options);
      assert.equal(r.status, 401, `${method} ${path} without credentials`);
      assert.equal(r.headers['www-authenticate'], 'Basic realm="comms"', `${method} ${path}`);
    }
    assert.deepEqual(await snapshot(join(authDir.path, 'root')), before, 'nothing changed by unauthenticated requests');
    // The same requests with credentials reach their handlers (proof the paths above are real routes).
    assert.equal((await call(secured, 'GET', `/v2/guard/repo/blobs/${digest}`, { headers: auth })).body.toString(), 'guarded blob');
    assert.equal((await call(secured, 'GET', '/v2/guard/repo/manifests/v1', { headers: auth })).status, 200);
    assert.deepEqual(json<{ tags: string[] }>(await call(secured, 'GET', '/v2/guard/repo/tags/list', { headers: auth })).tags, ['v1']);
    assert.equal((await call(secured, 'GET', `/v2/guard/repo/referrers/${m.digest}`, { headers: auth })).status, 200);
    assert.equal((await call(secured, 'GET', upload, { headers: auth })).status, 204);
    assert.equal((await call(secured, 'DELETE', upload, { headers: auth })).status, 204);
  });

  it('with a valid user ($2y$ and $2a$ entries): served', async () => {
    assert.equal((await call(secured, 'GET', '/v2/', { headers: { authorization: basic('alice', 'wonderland') } })).status, 200);
    assert.equal((await call(secured, 'GET', '/v2/', { headers: { authorization: basic('bob', 'builder') } })).status, 200);
  });

  it('the remote client pushes and reads through Basic auth, and is refused without credentials', async () => {
    const client = new RegistryClient({ plainHttp: true, credentials: new FixedCredentialStore({ username: 'bob', password: 'builder' }) });
    const anonymous = new RegistryClient({ plainHttp: true });
    try {
      const repo = client.repository(`127.0.0.1:${secured.port}/auth/repo`);
      const bytes = new TextEncoder().encode('behind basic auth');
      const desc = { mediaType: 'application/octet-stream', digest: digestOf(bytes), size: bytes.length };
      await repo.push(desc, bytes);
      assert.equal(await repo.exists(desc), true);
      await assert.rejects(
        anonymous.repository(`127.0.0.1:${secured.port}/auth/repo`).exists(desc),
        (err: Error & { exitCode?: number }) => err.exitCode === 3,
      );
    } finally {
      await client.close();
      await anonymous.close();
    }
  });
});

describe('listening', () => {
  it('refuses a non-loopback address without TLS and auth (typed UsageError)', async () => {
    const root = join(dir.path, 'never');
    await assert.rejects(startServer({ root, host: '0.0.0.0', port: 0 }), (err: unknown) => err instanceof UsageError && err.code === 'INSECURE_LISTEN');
    await assert.rejects(startServer({ root, host: '::', port: 0 }), (err: unknown) => err instanceof UsageError && err.code === 'INSECURE_LISTEN');
    const pki = await testPki();
    // One of the two is not enough: TLS alone lets anyone write, auth alone sends passwords in clear.
    await assert.rejects(startServer({ root, host: '0.0.0.0', port: 0, tls: { cert: pki.serverCertFile, key: pki.serverKeyFile } }), UsageError);
    assert.equal(await stat(root).catch(() => undefined), undefined, 'a refused start creates nothing');
  });

  it("closing the server folds every repository's index journal into index.json (a plain OCI layout again)", async () => {
    const rootDir = await tempDir('comms-serve-close-');
    const s = await startServer({ root: rootDir.path, port: 0 });
    try {
      await pushBlob(s, 'close/repo', EMPTY_JSON_BYTES);
      for (const t of ['x', 'y', 'z']) assert.equal((await putManifest(s, 'close/repo', t, manifest({ annotations: { t } }))).status, 201);
    } finally {
      await s.close();
    }
    try {
      await assert.rejects(stat(join(rootDir.path, 'close', 'repo', 'index.json.journal')), { code: 'ENOENT' });
      const index = JSON.parse(await readFile(join(rootDir.path, 'close', 'repo', 'index.json'), 'utf8')) as {
        manifests: { annotations?: Record<string, string> }[];
      };
      assert.deepEqual(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).sort(), ['x', 'y', 'z']);
    } finally {
      await rootDir.cleanup();
    }
  });

  it('serves HTTPS with --tls-cert/--tls-key; the client needs the CA', async () => {
    const pki = await testPki();
    const tlsDir = await tempDir('comms-serve-tls-');
    const secure = await startServer({ root: tlsDir.path, port: 0, tls: { cert: pki.serverCertFile, key: pki.serverKeyFile } });
    try {
      assert.match(secure.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const r = await call(secure, 'GET', '/v2/', { ca: pki.caPem });
      assert.equal(r.status, 200);
      await assert.rejects(call(secure, 'GET', '/v2/'), /self.signed|unable to verify|certificate/i);
    } finally {
      await secure.close();
      await tlsDir.cleanup();
    }
  });
});
