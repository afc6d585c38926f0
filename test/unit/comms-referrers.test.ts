import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { referrersTag } from '../../src/oci/remote/referrers.ts';
import { addToReferrersIndex, pushWithTagSchema } from '../../src/oci/remote/tag-schema.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { NotFoundError } from '../../src/errors.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';
import type { Repository } from '../../src/oci/target.ts';
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
