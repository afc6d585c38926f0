/**
 * The Repository contract: one node:test suite that every implementation (OCI layout folder,
 * remote registry client, ...) must pass unchanged. It talks to the Repository interface only —
 * no HTTP, no filesystem — so a failure here is a behaviour difference between implementations.
 *
 * Usage:
 *   targetContract('OciLayout', async () => ({ repo, cleanup }), { referrersApi: true });
 * `make` is called once per test case and must return a fresh, empty repository.
 *
 * With `referrersApi: false` (a registry without the Referrers API, e.g. distribution 2.8) the
 * suite plays the caller's part of the OCI referrers tag schema: when a manifest push reports no
 * `ociSubject`, it maintains the `<alg>-<hex>` index tag itself, through the interface.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { DigestMismatchError, InvalidReferenceError, NotFoundError, ProtocolError } from '../../src/errors.ts';
import type { Descriptor, ImageIndex, ImageManifest } from '../../src/oci/descriptor.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { EMPTY_JSON_BYTES, EMPTY_JSON_DIGEST, MediaType } from '../../src/oci/mediatypes.ts';
import type { PushResult, Repository } from '../../src/oci/target.ts';

export interface ContractRepo {
  repo: Repository;
  cleanup(): Promise<void>;
}

export interface ContractOptions {
  /** Whether the implementation indexes referrers itself (Referrers API). Default true. */
  referrersApi?: boolean;
}

const EMPTY_DESC: Descriptor = { mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: EMPTY_JSON_BYTES.length };

function blobDesc(bytes: Uint8Array, mediaType = 'application/octet-stream'): Descriptor {
  return { mediaType, digest: digestOf(bytes), size: bytes.length };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** A Readable that records whether anything pulled bytes from it. */
function watchedStream(bytes: Uint8Array): { stream: Readable; wasRead: () => boolean } {
  let read = false;
  const stream = new Readable({
    read() {
      read = true;
      this.push(Buffer.from(bytes));
      this.push(null);
    },
  });
  return { stream, wasRead: () => read };
}

/** Deterministic pseudo-random chunks, so a large blob never sits in memory whole. */
function* pseudoRandomChunks(total: number, chunkSize: number, seed: string): Generator<Buffer> {
  let block = createHash('sha256').update(seed).digest();
  for (let sent = 0; sent < total; ) {
    const n = Math.min(chunkSize, total - sent);
    const chunk = Buffer.allocUnsafe(n);
    for (let off = 0; off < n; off += block.length) {
      block = createHash('sha256').update(block).digest();
      block.copy(chunk, off, 0, Math.min(block.length, n - off));
    }
    sent += n;
    yield chunk;
  }
}

interface BuiltManifest {
  desc: Descriptor;
  bytes: Uint8Array;
  manifest: ImageManifest;
}

/** An OCI artifact manifest with the empty config and one empty layer (which the suite pushes first). */
function buildManifest(fields: { artifactType?: string; subject?: Descriptor; annotations?: Record<string, string> }): BuiltManifest {
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ImageManifest,
    ...(fields.artifactType !== undefined ? { artifactType: fields.artifactType } : {}),
    config: EMPTY_DESC,
    layers: [EMPTY_DESC],
    ...(fields.subject !== undefined ? { subject: { mediaType: fields.subject.mediaType, digest: fields.subject.digest, size: fields.subject.size } } : {}),
    ...(fields.annotations !== undefined ? { annotations: fields.annotations } : {}),
  };
  const bytes = new TextEncoder().encode(JSON.stringify(manifest));
  return { desc: { mediaType: MediaType.ImageManifest, digest: digestOf(bytes), size: bytes.length }, bytes, manifest };
}

async function pushEmpty(repo: Repository): Promise<void> {
  await repo.push(EMPTY_DESC, EMPTY_JSON_BYTES);
}

/** The caller's half of the referrers tag schema, used only when the repository did not index the subject. */
async function addToReferrersTag(repo: Repository, subject: Descriptor, referrer: BuiltManifest): Promise<void> {
  const [alg, hex] = subject.digest.split(':') as [string, string];
  const tag = `${alg}-${hex}`;
  let index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [] };
  try {
    const existing = await repo.fetchManifest(tag);
    index = JSON.parse(new TextDecoder().decode(existing.bytes)) as ImageIndex;
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  const entry: Descriptor = { ...referrer.desc };
  const artifactType = referrer.manifest.artifactType ?? referrer.manifest.config.mediaType;
  entry.artifactType = artifactType;
  if (referrer.manifest.annotations !== undefined) entry.annotations = referrer.manifest.annotations;
  index.manifests.push(entry);
  const bytes = new TextEncoder().encode(JSON.stringify(index));
  await repo.pushManifest({ mediaType: MediaType.ImageIndex, digest: digestOf(bytes), size: bytes.length }, bytes, tag);
}

async function collect<T>(list: (visit: (page: T[]) => void) => Promise<void>): Promise<T[][]> {
  const pages: T[][] = [];
  await list((page) => {
    pages.push([...page]);
  });
  return pages;
}

export function targetContract(name: string, make: () => Promise<ContractRepo>, options: ContractOptions = {}): void {
  const referrersApi = options.referrersApi ?? true;

  async function withRepo(fn: (repo: Repository) => Promise<void>): Promise<void> {
    const { repo, cleanup } = await make();
    try {
      await fn(repo);
    } finally {
      await cleanup();
    }
  }

  /** Pushes a referrer and, where the repository does not index subjects, maintains the tag schema. */
  async function pushReferrer(repo: Repository, subject: Descriptor, referrer: BuiltManifest): Promise<PushResult> {
    const result = await repo.pushManifest(referrer.desc, referrer.bytes);
    if (referrersApi) {
      assert.equal(result.ociSubject, subject.digest, 'a repository with the Referrers API reports the subject it indexed');
    } else if (result.ociSubject === undefined) {
      await addToReferrersTag(repo, subject, referrer);
    }
    return result;
  }

  describe(`Repository contract: ${name}`, () => {
    it('pushes a blob, reports it exists, and fetches the same bytes back', async () => {
      await withRepo(async (repo) => {
        const bytes = new TextEncoder().encode(`hello ${name} ${Date.now()}`);
        const desc = blobDesc(bytes);
        assert.equal(await repo.exists(desc), false);
        const result = await repo.push(desc, bytes);
        assert.equal(result.skipped, false);
        assert.equal(result.descriptor.digest, desc.digest);
        assert.equal(await repo.exists(desc), true);
        assert.deepEqual(await readAll(await repo.fetch(desc)), Buffer.from(bytes));
      });
    });

    it('skips a push of a blob that already exists', async () => {
      await withRepo(async (repo) => {
        const bytes = new TextEncoder().encode('already here');
        const desc = blobDesc(bytes);
        await repo.push(desc, bytes);
        const again = watchedStream(bytes);
        const result = await repo.push(desc, again.stream);
        assert.equal(result.skipped, true);
        assert.deepEqual(await readAll(await repo.fetch(desc)), Buffer.from(bytes));
      });
    });

    it('rejects a blob whose bytes do not match its digest, and keeps nothing', async () => {
      await withRepo(async (repo) => {
        const bytes = new TextEncoder().encode('the real bytes');
        const lie: Descriptor = { ...blobDesc(new TextEncoder().encode('other bytes!!!')), size: bytes.length };
        await assert.rejects(repo.push(lie, bytes), DigestMismatchError);
        assert.equal(await repo.exists(lie), false);
        await assert.rejects(async () => readAll(await repo.fetch(lie)), NotFoundError);
        // Still pushable correctly afterwards: the failed attempt left no debris in the way.
        const good = blobDesc(bytes);
        assert.equal((await repo.push(good, Readable.from([Buffer.from(bytes)]))).skipped, false);
      });
    });

    it('rejects a blob whose size differs from its descriptor', async () => {
      await withRepo(async (repo) => {
        const bytes = new TextEncoder().encode('sized content');
        const tooShort: Descriptor = { ...blobDesc(bytes), size: bytes.length + 5 };
        await assert.rejects(repo.push(tooShort, Readable.from([Buffer.from(bytes)])), DigestMismatchError);
        assert.equal(await repo.exists(blobDesc(bytes)), false);
      });
    });

    it('fetch of an unknown digest is NotFoundError', async () => {
      await withRepo(async (repo) => {
        const desc = blobDesc(new TextEncoder().encode('never pushed'));
        await assert.rejects(async () => readAll(await repo.fetch(desc)), NotFoundError);
        await assert.rejects(repo.resolve(desc.digest), NotFoundError);
        await assert.rejects(repo.resolve('no-such-tag'), NotFoundError);
        await assert.rejects(repo.fetchManifest('no-such-tag'), NotFoundError);
      });
    });

    it('deletes a blob', async () => {
      await withRepo(async (repo) => {
        const bytes = new TextEncoder().encode('short-lived');
        const desc = blobDesc(bytes);
        await repo.push(desc, bytes);
        await repo.delete(desc);
        assert.equal(await repo.exists(desc), false);
        await assert.rejects(async () => readAll(await repo.fetch(desc)), NotFoundError);
      });
    });

    it('streams a multi-MiB blob in and out, verified', async () => {
      await withRepo(async (repo) => {
        const size = 5 * 1024 * 1024 + 123;
        const hash = createHash('sha256');
        for (const chunk of pseudoRandomChunks(size, 64 * 1024, name)) hash.update(chunk);
        const desc: Descriptor = { mediaType: 'application/octet-stream', digest: `sha256:${hash.digest('hex')}`, size };
        const progress: number[] = [];
        const result = await repo.push(desc, Readable.from(pseudoRandomChunks(size, 64 * 1024, name)), {
          onProgress: (n) => progress.push(n),
        });
        assert.equal(result.skipped, false);
        if (progress.length > 0) assert.equal(progress.at(-1), size);
        const back = createHash('sha256');
        let count = 0;
        for await (const chunk of await repo.fetch(desc)) {
          back.update(chunk as Buffer);
          count += (chunk as Buffer).length;
        }
        assert.equal(count, size);
        assert.equal(`sha256:${back.digest('hex')}`, desc.digest);
      });
    });

    it('pushes a manifest under a tag, resolves it by tag and digest, and returns its exact bytes', async () => {
      await withRepo(async (repo) => {
        await pushEmpty(repo);
        // Non-canonical spacing: the repository must hand back these bytes, not a re-serialisation.
        const manifest = buildManifest({ artifactType: 'application/vnd.example.contract', annotations: { n: '1' } });
        const spaced = new TextEncoder().encode(JSON.stringify(manifest.manifest, null, 3) + '\n');
        const desc: Descriptor = { mediaType: MediaType.ImageManifest, digest: digestOf(spaced), size: spaced.length };
        const result = await repo.pushManifest(desc, spaced, 'v1');
        assert.equal(result.descriptor.digest, desc.digest);

        for (const ref of ['v1', desc.digest]) {
          const resolved = await repo.resolve(ref);
          assert.equal(resolved.digest, desc.digest, `resolve ${ref}`);
          assert.equal(resolved.size, desc.size, `resolve ${ref}`);
          assert.equal(resolved.mediaType, MediaType.ImageManifest, `resolve ${ref}`);
          const fetched = await repo.fetchManifest(ref);
          assert.deepEqual(Buffer.from(fetched.bytes), Buffer.from(spaced), `fetchManifest ${ref}`);
          assert.equal(fetched.descriptor.digest, desc.digest);
        }
        assert.equal(await repo.exists(desc), true);
        assert.deepEqual(await readAll(await repo.fetch(desc)), Buffer.from(spaced));
      });
    });

    it('push() of a manifest media type stores a manifest that resolves by digest', async () => {
      await withRepo(async (repo) => {
        await pushEmpty(repo);
        const m = buildManifest({ annotations: { via: 'push' } });
        const result = await repo.push(m.desc, Readable.from([Buffer.from(m.bytes)]));
        assert.equal(result.skipped, false);
        assert.equal((await repo.resolve(m.desc.digest)).digest, m.desc.digest);
        await repo.tag(m.desc, 'pushed');
        assert.deepEqual(Buffer.from((await repo.fetchManifest('pushed')).bytes), Buffer.from(m.bytes));
      });
    });

    it('rejects a manifest whose bytes do not match its digest', async () => {
      await withRepo(async (repo) => {
        await pushEmpty(repo);
        const m = buildManifest({ annotations: { a: 'b' } });
        const other = buildManifest({ annotations: { a: 'c' } });
        await assert.rejects(repo.pushManifest({ ...other.desc, size: m.bytes.length }, m.bytes, 'bad'), DigestMismatchError);
        await assert.rejects(repo.resolve('bad'), NotFoundError);
      });
    });

    it('re-tagging moves the tag and keeps the old manifest reachable by digest', async () => {
      await withRepo(async (repo) => {
        await pushEmpty(repo);
        const a = buildManifest({ annotations: { version: 'a' } });
        const b = buildManifest({ annotations: { version: 'b' } });
        await repo.pushManifest(a.desc, a.bytes, 'latest');
        await repo.pushManifest(b.desc, b.bytes);
        assert.equal((await repo.resolve('latest')).digest, a.desc.digest);
        await repo.tag(b.desc, 'latest');
        assert.equal((await repo.resolve('latest')).digest, b.desc.digest);
        assert.deepEqual(Buffer.from((await repo.fetchManifest('latest')).bytes), Buffer.from(b.bytes));
        assert.equal((await repo.resolve(a.desc.digest)).digest, a.desc.digest);
        // Re-tagging via pushManifest works the same way.
        await repo.pushManifest(a.desc, a.bytes, 'latest');
        assert.equal((await repo.resolve('latest')).digest, a.desc.digest);
      });
    });

    it('deleting a manifest makes it NotFoundError by digest and by tag', async () => {
      await withRepo(async (repo) => {
        await pushEmpty(repo);
        const m = buildManifest({ annotations: { doomed: 'yes' } });
        await repo.pushManifest(m.desc, m.bytes, 'doomed');
        await repo.delete(m.desc);
        await assert.rejects(repo.resolve(m.desc.digest), NotFoundError);
        await assert.rejects(repo.fetchManifest(m.desc.digest), NotFoundError);
        await assert.rejects(repo.resolve('doomed'), NotFoundError);
        assert.equal(await repo.exists(m.desc), false);
      });
    });

    it('lists ~25 tags in lexical order, page by page, from `last`, and stops when the visitor says so', async () => {
      await withRepo(async (repo) => {
        await pushEmpty(repo);
        const m = buildManifest({ annotations: { tags: 'many' } });
        const names = Array.from({ length: 22 }, (_, i) => `t${String(i).padStart(2, '0')}`).concat(['A1', '_under', 'z.last']);
        const first = names[0] as string;
        await repo.pushManifest(m.desc, m.bytes, first);
        for (const t of names.slice(1)) await repo.tag(m.desc, t);
        const expected = [...names].sort();

        const pages = await collect<string>((visit) => repo.tags(visit, { pageSize: 4 }));
        assert.deepEqual(pages.flat(), expected);
        assert.ok(pages.length >= Math.ceil(expected.length / 4), `expected at least 7 pages, got ${pages.length}`);
        for (const page of pages) assert.ok(page.length <= 4, `page of ${page.length} exceeds pageSize 4`);

        const after = await collect<string>((visit) => repo.tags(visit, { pageSize: 10, last: 't10' }));
        assert.deepEqual(
          after.flat(),
          expected.filter((t) => t > 't10'),
        );

        let visited = 0;
        await repo.tags(
          () => {
            visited += 1;
            return visited < 2 ? undefined : false;
          },
          { pageSize: 4 },
        );
        assert.equal(visited, 2, 'the listing stops after the visitor returns false');
      });
    });

    it('pushReferrer stores a referrer under its tag, lists it, and says how it was indexed', async () => {
      await withRepo(async (repo) => {
        await pushEmpty(repo);
        const subject = buildManifest({ annotations: { role: 'noted' } });
        await repo.pushManifest(subject.desc, subject.bytes, 'noted');
        const note = buildManifest({ artifactType: 'application/vnd.example.note', subject: subject.desc, annotations: { n: 'x' } });
        const pushed = await repo.pushReferrer(note.desc, note.bytes, subject.desc, 'a-note');
        assert.equal(pushed.indexedBy, referrersApi ? 'registry' : 'tag-schema');
        assert.equal((await repo.resolve('a-note')).digest, note.desc.digest);
        const all = (await collect<Descriptor>((visit) => repo.referrers(subject.desc, visit))).flat();
        assert.deepEqual(
          all.map((d) => d.digest),
          [note.desc.digest],
        );
      });
    });

    it('finds referrers of a subject, filtered by artifactType', async () => {
      await withRepo(async (repo) => {
        assert.equal(await repo.referrersApiSupported(), referrersApi);
        await pushEmpty(repo);
        const subject = buildManifest({ annotations: { role: 'subject' } });
        await repo.pushManifest(subject.desc, subject.bytes, 'subject');
        const typeA = 'application/vnd.example.signature';
        const typeB = 'application/vnd.example.receipt';
        const refs = [
          buildManifest({ artifactType: typeA, subject: subject.desc, annotations: { n: '1' } }),
          buildManifest({ artifactType: typeA, subject: subject.desc, annotations: { n: '2' } }),
          buildManifest({ artifactType: typeB, subject: subject.desc, annotations: { n: '3' } }),
        ];
        for (const r of refs) await pushReferrer(repo, subject.desc, r);

        const all = (await collect<Descriptor>((visit) => repo.referrers(subject.desc, visit))).flat();
        assert.deepEqual(all.map((d) => d.digest).sort(), refs.map((r) => r.desc.digest).sort());
        for (const r of refs) {
          const found = all.find((d) => d.digest === r.desc.digest);
          assert.ok(found);
          assert.equal(found.mediaType, MediaType.ImageManifest);
          assert.equal(found.size, r.desc.size);
          assert.equal(found.artifactType, r.manifest.artifactType);
          assert.deepEqual(found.annotations, r.manifest.annotations);
        }

        const onlyA = (await collect<Descriptor>((visit) => repo.referrers(subject.desc, visit, { artifactType: typeA }))).flat();
        assert.deepEqual(
          onlyA.map((d) => d.digest).sort(),
          refs
            .slice(0, 2)
            .map((r) => r.desc.digest)
            .sort(),
        );
        const onlyB = (await collect<Descriptor>((visit) => repo.referrers(subject.desc, visit, { artifactType: typeB }))).flat();
        assert.deepEqual(
          onlyB.map((d) => d.digest),
          [refs[2]!.desc.digest],
        );

        const stranger = blobDesc(new TextEncoder().encode('nobody refers to me'), MediaType.ImageManifest);
        const none = (await collect<Descriptor>((visit) => repo.referrers(stranger, visit))).flat();
        assert.deepEqual(none, []);
      });
    });

    it('refuses malformed tags and digests with InvalidReferenceError', async () => {
      await withRepo(async (repo) => {
        await pushEmpty(repo);
        const m = buildManifest({ annotations: { hostile: 'input' } });
        await repo.pushManifest(m.desc, m.bytes);
        const badTags = ['-leading-dash', '.dot', 'has space', 'a/b', 'x'.repeat(129), '../../etc', ''];
        for (const t of badTags) {
          await assert.rejects(repo.tag(m.desc, t), InvalidReferenceError, `tag ${JSON.stringify(t)}`);
          await assert.rejects(repo.pushManifest(m.desc, m.bytes, t), InvalidReferenceError, `pushManifest tag ${JSON.stringify(t)}`);
        }
        for (const ref of ['has space', 'a/b', '../x', 'sha256:xyz', 'md5:d41d8cd98f00b204e9800998ecf8427e', 'sha256:../../../../etc/passwd']) {
          await assert.rejects(repo.resolve(ref), InvalidReferenceError, `resolve ${JSON.stringify(ref)}`);
          await assert.rejects(repo.fetchManifest(ref), InvalidReferenceError, `fetchManifest ${JSON.stringify(ref)}`);
        }
        const badDigests = ['sha256:../../../../etc/passwd', `sha256:${'A'.repeat(64)}`, `sha256:${'0'.repeat(63)}`, `md5:${'0'.repeat(32)}`, 'sha256'];
        for (const digest of badDigests) {
          const desc: Descriptor = { mediaType: 'application/octet-stream', digest, size: 2 };
          await assert.rejects(async () => readAll(await repo.fetch(desc)), InvalidReferenceError, `fetch ${digest}`);
          await assert.rejects(repo.exists(desc), InvalidReferenceError, `exists ${digest}`);
          await assert.rejects(repo.push(desc, EMPTY_JSON_BYTES), InvalidReferenceError, `push ${digest}`);
          await assert.rejects(repo.delete(desc), InvalidReferenceError, `delete ${digest}`);
        }
        // A digest-mismatch or reference error is also a ProtocolError (exit 4) for callers that branch coarsely.
        await assert.rejects(repo.resolve('a/b'), ProtocolError);
      });
    });
  });
}
