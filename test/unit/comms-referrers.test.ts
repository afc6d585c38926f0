import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { referrersTag } from '../../src/oci/remote/referrers.ts';
import { addToReferrersIndex, pushWithTagSchema, readReferrersIndex } from '../../src/oci/remote/tag-schema.ts';
import { pushArtifactManifest, referrerTagsOf } from '../../src/comms/push-manifest.ts';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { receiptTag, replyTag } from '../../src/protocol/tags.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { NotFoundError, ProtocolError } from '../../src/errors.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';
import type { ReferrerPushOptions, Repository } from '../../src/oci/target.ts';
import { buildManifest } from '../../src/protocol/manifest.ts';
import { ArtifactType } from '../../src/protocol/constants.ts';
import { EMPTY_JSON_BYTES, EMPTY_JSON_DIGEST, MediaType } from '../../src/oci/mediatypes.ts';

/**
 * A registry without the Referrers API whose tag-schema index another writer clobbers every time
 * (reads of it always come back empty): the referrer's own push must still succeed, reported as
 * recorded by its tag only, and must not throw (a caller would push a duplicate).
 */
test('a referrer whose index entry keeps being clobbered is stored and reported as tag-only, not thrown', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'comms-ref-'));
  try {
    const layout = await OciLayout.open(dir, { create: true });
    let indexWrites = 0;
    const clobbered: Repository = new Proxy(layout, {
      get(target, prop, receiver) {
        if (prop === 'pushManifest') {
          return async (...args: Parameters<Repository['pushManifest']>) => {
            const r = await target.pushManifest(...args);
            return { ...r, ociSubject: undefined }; // no Referrers API
          };
        }
        if (prop === 'fetchManifest') {
          return async (ref: string, o?: object) => {
            if (ref.startsWith('sha256-')) throw new NotFoundError(`${ref} clobbered`);
            return target.fetchManifest(ref, o);
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    await layout.push({ mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: 2 }, EMPTY_JSON_BYTES);
    const subject = buildManifest({ artifactType: ArtifactType.Message, layers: [], annotations: { a: '1' } });
    await layout.pushManifest(subject.descriptor, subject.bytes, 'subject');
    const receipt = buildManifest({ artifactType: ArtifactType.Receipt, layers: [], subject: subject.descriptor, annotations: { b: '2' } });
    const r = await pushWithTagSchema(clobbered, receipt.descriptor, receipt.bytes, subject.descriptor, 'receipt-x', {
      maxAttempts: 2,
      onIndexWrite: () => void indexWrites++,
    });
    assert.equal(r.indexedBy, 'tag-only');
    assert.equal(indexWrites, 2, 'it tried the index each attempt');
    assert.equal((await layout.resolve('receipt-x')).digest, receipt.descriptor.digest, 'the referrer and its own tag are stored');
    assert.equal(referrersTag(subject.descriptor.digest), `sha256-${subject.descriptor.digest.slice(7)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/**
 * The confirmation read. A stale writer (one that read the index before our update) can push its
 * copy after our read-back already saw our entry: one sighting is not enough. Here the first read
 * that shows our entry is followed at once by such a stale write; the writer must notice it on the
 * confirmation read and put the entry back, so the index ends up holding it.
 */
test('an index entry seen once and then clobbered by a stale writer is repaired (the confirmation read)', async () => {
  const entry = { mediaType: MediaType.ImageManifest, digest: `sha256:${'e'.repeat(64)}`, size: 10, artifactType: ArtifactType.Receipt };
  const other = { mediaType: MediaType.ImageManifest, digest: `sha256:${'0'.repeat(64)}`, size: 10, artifactType: ArtifactType.Receipt };
  const subjectDigest = `sha256:${'5'.repeat(64)}`;
  const tag = referrersTag(subjectDigest);
  const indexBytes = (manifests: object[]) => new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests }));
  // What the stale writer read before our update: the other writer's entry only.
  const stale = indexBytes([other]);
  let stored: Uint8Array = stale;
  let clobbers = 0;
  const holds = (bytes: Uint8Array) => new TextDecoder().decode(bytes).includes(entry.digest);
  const repo = {
    name: 'memory',
    async fetchManifest(ref: string) {
      assert.equal(ref, tag);
      const bytes = stored;
      if (clobbers === 0 && holds(bytes)) {
        // Our entry is seen for the first time; right after, the stale writer pushes its copy.
        clobbers++;
        stored = stale;
      }
      return { descriptor: { mediaType: MediaType.ImageIndex, digest: digestOf(bytes), size: bytes.length }, bytes };
    },
    async pushManifest(desc: object, bytes: Uint8Array, t?: string) {
      assert.equal(t, tag);
      stored = bytes;
      return { descriptor: desc, skipped: false };
    },
  } as unknown as Repository;
  await addToReferrersIndex(repo, subjectDigest, entry);
  assert.equal(clobbers, 1, 'the stale write happened after the first sighting');
  assert.ok(holds(stored), 'the entry is in the index in the end');
  assert.ok(new TextDecoder().decode(stored).includes(other.digest), "the other writer's entry is kept too");
});

/**
 * A registry without the Referrers API, in memory: manifests by digest, tags, a sorted tag list in
 * one page (as distribution 2.8 answers), and every call recorded, so a test can interleave two
 * writers exactly and count what each one asked.
 */
class MemoryRegistry {
  readonly manifests = new Map<string, { descriptor: Descriptor; bytes: Uint8Array }>();
  readonly tagged = new Map<string, string>();
  readonly calls: string[] = [];
  /** Set: every tag listing is refused with this error (a registry that will not list). */
  listError: Error | undefined;

  /** A view of the registry as one writer sees it; `beforeIndexWrite` may hold that writer's index PUT. */
  writer(name: string, beforeIndexWrite?: () => Promise<void>): Repository {
    const reg = this;
    const log = (what: string) => reg.calls.push(`${name} ${what}`);
    const repo = {
      name: 'memory',
      async pushManifest(desc: Descriptor, bytes: Uint8Array, tag?: string) {
        if (tag?.startsWith('sha256-') && beforeIndexWrite !== undefined) await beforeIndexWrite();
        log(`PUT ${tag ?? desc.digest}`);
        reg.manifests.set(desc.digest, { descriptor: desc, bytes });
        if (tag !== undefined) reg.tagged.set(tag, desc.digest);
        return { descriptor: desc, skipped: false };
      },
      async fetchManifest(ref: string) {
        log(`GET ${ref}`);
        const m = reg.manifests.get(reg.tagged.get(ref) ?? ref);
        if (m === undefined) throw new NotFoundError(`${ref} not found`);
        return m;
      },
      async resolve(ref: string) {
        log(`HEAD ${ref}`);
        const m = reg.manifests.get(reg.tagged.get(ref) ?? ref);
        if (m === undefined) throw new NotFoundError(`${ref} not found`);
        return m.descriptor;
      },
      async tags(visit: (page: string[]) => unknown, o: { last?: string } = {}) {
        log('LIST tags');
        if (reg.listError !== undefined) throw reg.listError;
        await visit([...reg.tagged.keys()].sort().filter((t) => o.last === undefined || t > o.last));
      },
      pushReferrer(desc: Descriptor, bytes: Uint8Array, subject: Descriptor, tag?: string, o?: ReferrerPushOptions) {
        return pushWithTagSchema(repo, desc, bytes, subject, tag, o);
      },
    } as unknown as Repository;
    return repo;
  }

  callsOf(name: string): string[] {
    return this.calls.filter((c) => c.startsWith(`${name} `)).map((c) => c.slice(name.length + 1));
  }
}

const subjectOf = (text: string) => buildManifest({ artifactType: ArtifactType.Message, layers: [], annotations: { text } });
const receiptFor = (subject: Descriptor, who: string) =>
  buildManifest({ artifactType: ArtifactType.Receipt, layers: [], subject, annotations: { 'dockercomms.sender': who } });

async function pushReceipt(repo: Repository, subject: Descriptor, receipt: { descriptor: Descriptor; bytes: Uint8Array }, rand: string, sleeps?: () => void) {
  return pushWithTagSchema(repo, receipt.descriptor, receipt.bytes, subject, receiptTag(subject.digest, new Date(1_700_000_000_000), rand), {
    referrerTags: referrerTagsOf(subject.digest),
    onBackoff: sleeps,
  });
}

async function indexDigests(reg: MemoryRegistry, subject: Descriptor): Promise<string[]> {
  const index = await readReferrersIndex(reg.writer('check'), referrersTag(subject.digest));
  return index.manifests.map((d) => d.digest);
}

/**
 * Runs writers A and B through `push` so that B reads the (empty) index first, then waits until A
 * has returned before writing its stale copy; returns [A's result, B's result].
 */
async function withStaleWriter<T>(reg: MemoryRegistry, push: (repo: Repository, who: 'A' | 'B') => Promise<T>): Promise<[T, T]> {
  let releaseB!: () => void;
  const aDone = new Promise<void>((r) => (releaseB = r));
  let bRead!: () => void;
  const bHasRead = new Promise<void>((r) => (bRead = r));
  let bWrites = 0;
  const bPush = push(
    reg.writer('B', async () => {
      if (bWrites++ > 0) return;
      bRead();
      await aDone;
    }),
    'B',
  );
  await bHasRead;
  const aResult = await push(reg.writer('A'), 'A');
  releaseB();
  return [aResult, await bPush];
}

/**
 * The interleaving that lost a receipt on docker-registry: writer B reads the index before A's
 * update and pushes its stale copy (without A's entry) only after A has finished checking. B's
 * check afterwards lists the receipt tags, sees A's tag missing from the index, resolves it and
 * writes it back: the index ends up holding both.
 */
test('a receipt dropped from the index by a stale writer after its own writer finished is put back by that stale writer', async () => {
  const reg = new MemoryRegistry();
  const subject = subjectOf('m1');
  await reg.writer('setup').pushManifest(subject.descriptor, subject.bytes, 'inbox-x');
  const a = receiptFor(subject.descriptor, 'a');
  const b = receiptFor(subject.descriptor, 'b');
  const [aResult, bResult] = await withStaleWriter(reg, (repo, who) =>
    who === 'A' ? pushReceipt(repo, subject.descriptor, a, 'aaaaaa') : pushReceipt(repo, subject.descriptor, b, 'bbbbbb'),
  );
  assert.equal(aResult.indexedBy, 'tag-schema');
  assert.equal(bResult.indexedBy, 'tag-schema');
  const digests = await indexDigests(reg, subject.descriptor);
  assert.ok(digests.includes(a.descriptor.digest), `A's receipt is in the index in the end (${digests.length} entries)`);
  assert.ok(digests.includes(b.descriptor.digest), "B's receipt is in the index in the end");
  const aTag = receiptTag(subject.descriptor.digest, new Date(1_700_000_000_000), 'aaaaaa');
  assert.ok(reg.callsOf('B').includes(`HEAD ${aTag}`), "B resolved A's tag when the tags outnumbered the index entries");
});

/**
 * The common case: earlier receipts are tagged and indexed, nobody else is writing. The writer
 * never waits and asks nothing beyond its tag, one read-modify-write, one tag listing and one
 * read: no HEAD of the other receipts' tags (as many tags as index entries of their kind).
 */
test('an uncontended receipt push never waits and resolves no other tag', async () => {
  const reg = new MemoryRegistry();
  const subject = subjectOf('m2');
  await reg.writer('setup').pushManifest(subject.descriptor, subject.bytes, 'inbox-x');
  for (const who of ['d', 'e', 'f']) await pushReceipt(reg.writer('setup'), subject.descriptor, receiptFor(subject.descriptor, who), who.repeat(6));
  let sleeps = 0;
  const c = receiptFor(subject.descriptor, 'c');
  const result = await pushReceipt(reg.writer('C'), subject.descriptor, c, 'cccccc', () => sleeps++);
  assert.equal(result.indexedBy, 'tag-schema');
  assert.equal(sleeps, 0, 'no wait at all');
  const cTag = receiptTag(subject.descriptor.digest, new Date(1_700_000_000_000), 'cccccc');
  const index = referrersTag(subject.descriptor.digest);
  assert.deepEqual(reg.callsOf('C'), [`PUT ${cTag}`, `GET ${index}`, `PUT ${index}`, 'LIST tags', `GET ${index}`]);
  assert.equal((await indexDigests(reg, subject.descriptor)).length, 4);
});

/**
 * Tags with a receipt prefix that name something else (a manifest whose subject is another
 * message, a manifest that is not one) outnumber the index entries; the writer resolves them once,
 * ignores them (nothing of theirs enters the index) and finishes without a wait.
 */
test('junk receipt tags are resolved once, ignored, and cost no wait', async () => {
  const reg = new MemoryRegistry();
  const subject = subjectOf('m3');
  const other = subjectOf('other');
  const setup = reg.writer('setup');
  await setup.pushManifest(subject.descriptor, subject.bytes, 'inbox-x');
  const foreign = receiptFor(other.descriptor, 'mallory');
  await setup.pushManifest(foreign.descriptor, foreign.bytes, receiptTag(subject.descriptor.digest, new Date(1_700_000_001_000), 'f00001'));
  await setup.pushManifest(other.descriptor, other.bytes, receiptTag(subject.descriptor.digest, new Date(1_700_000_001_000), 'f00002'));
  let sleeps = 0;
  const c = receiptFor(subject.descriptor, 'c');
  await pushReceipt(reg.writer('C'), subject.descriptor, c, 'cccccc', () => sleeps++);
  assert.equal(sleeps, 0);
  assert.deepEqual(await indexDigests(reg, subject.descriptor), [c.descriptor.digest]);
  assert.equal(reg.callsOf('C').filter((x) => x.startsWith('HEAD ')).length, 2, 'each junk tag resolved once');
});

/**
 * A registry that will not list the tags (here: a listing past the client's bound) cannot have the
 * update checked against them: the receipt, already stored under its tag, is still put in the
 * index, checked the way untagged referrers are (read back after a wait), and the push succeeds.
 */
test('a registry that refuses the tag listing gets the read-back instead, and the receipt push succeeds', async () => {
  const reg = new MemoryRegistry();
  reg.listError = new ProtocolError('list tags: still links to a next page after 1000 pages', { code: 'LIST_LIMIT' });
  const subject = subjectOf('m4');
  await reg.writer('setup').pushManifest(subject.descriptor, subject.bytes, 'inbox-x');
  let sleeps = 0;
  const c = receiptFor(subject.descriptor, 'c');
  const result = await pushReceipt(reg.writer('C'), subject.descriptor, c, 'cccccc', () => sleeps++);
  assert.equal(result.indexedBy, 'tag-schema');
  assert.deepEqual(await indexDigests(reg, subject.descriptor), [c.descriptor.digest]);
  assert.ok(sleeps >= 1, 'the read-back waited');
});

const replyTo = (subject: Descriptor, who: string) =>
  buildManifest({ artifactType: ArtifactType.Message, layers: [], subject, annotations: { 'dockercomms.sender': who } });

/** A reply as send() pushes it: its `reply-` tag, then its inbox tag with the index update. */
function pushReply(repo: Repository, subject: Descriptor, reply: { descriptor: Descriptor; bytes: Uint8Array }, rand: string) {
  return pushArtifactManifest(repo, reply, {
    subject,
    tag: `inbox-${rand}`,
    replyTag: replyTag(subject.digest, new Date(1_700_000_000_000), rand),
    configPresent: true,
  });
}

/**
 * A reply has a tag naming its subject (`reply-<hex12>-…`), pushed before its inbox tag and its
 * index update, so the update is checked against the tags like a receipt's: when nobody else
 * writes, nothing beyond its two tags, one read-modify-write, one listing and one read.
 */
test('an uncontended reply push is checked against the tags, not read back: its reply- tag, its inbox tag, one read-modify-write, one listing, one read', async () => {
  const reg = new MemoryRegistry();
  const subject = subjectOf('question');
  await reg.writer('setup').pushManifest(subject.descriptor, subject.bytes, 'inbox-q');
  await pushReply(reg.writer('setup'), subject.descriptor, replyTo(subject.descriptor, 'earlier'), 'eeeeee');
  const r = replyTo(subject.descriptor, 'r');
  assert.equal(await pushReply(reg.writer('R'), subject.descriptor, r, 'cccccc'), 'tag-schema');
  const rTag = replyTag(subject.descriptor.digest, new Date(1_700_000_000_000), 'cccccc');
  assert.match(rTag, /^reply-[0-9a-f]{12}-1700000000-cccccc$/);
  const index = referrersTag(subject.descriptor.digest);
  // The read-back would read the index twice more after waits, and list no tags.
  assert.deepEqual(reg.callsOf('R'), [`PUT ${rTag}`, 'PUT inbox-cccccc', `GET ${index}`, `PUT ${index}`, 'LIST tags', `GET ${index}`]);
  assert.equal(reg.tagged.get(rTag), r.descriptor.digest);
  assert.equal(reg.tagged.get('inbox-cccccc'), r.descriptor.digest);
  assert.equal((await indexDigests(reg, subject.descriptor)).length, 2);
});

/**
 * Two replies racing: B read the index before A's update and pushes its stale copy after A has
 * finished. B's check lists the reply- tags, finds A's reply missing, resolves it and writes it
 * back, so both replies end up in the index (the read-back with waits could not promise this).
 */
test("a reply dropped from the index by a stale writer is put back by that writer's tag check", async () => {
  const reg = new MemoryRegistry();
  const subject = subjectOf('q2');
  await reg.writer('setup').pushManifest(subject.descriptor, subject.bytes, 'inbox-q');
  const a = replyTo(subject.descriptor, 'a');
  const b = replyTo(subject.descriptor, 'b');
  const results = await withStaleWriter(reg, (repo, who) =>
    who === 'A' ? pushReply(repo, subject.descriptor, a, 'aaaaaa') : pushReply(repo, subject.descriptor, b, 'bbbbbb'),
  );
  assert.deepEqual(results, ['tag-schema', 'tag-schema']);
  const digests = await indexDigests(reg, subject.descriptor);
  assert.ok(digests.includes(a.descriptor.digest), "A's reply is in the index in the end");
  assert.ok(digests.includes(b.descriptor.digest), "B's reply is in the index in the end");
  const aTag = replyTag(subject.descriptor.digest, new Date(1_700_000_000_000), 'aaaaaa');
  assert.ok(reg.callsOf('B').includes(`HEAD ${aTag}`), "B resolved A's reply tag");
});
