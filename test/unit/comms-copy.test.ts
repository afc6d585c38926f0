/**
 * copy against sources and destinations no real server gives on demand: a source whose referrers
 * listing points back at the message (a cycle) and lists junk, a source that leads to more
 * manifests than allowed, and a destination that serves another digest after the push.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ack, copy, OciLayout, send, type Descriptor, type Repository } from '../../src/index.ts';
import { tempDir, type TempDir } from '../support/tools.ts';

/** A repository that behaves like `inner` except for the methods given. */
function wrap(inner: Repository, overrides: Partial<Repository>): Repository {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop in overrides) return (overrides as Record<string | symbol, unknown>)[prop];
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

describe('copy from hostile sources and to lying destinations', () => {
  let dir: TempDir;
  let source: OciLayout;
  let sent: Awaited<ReturnType<typeof send>>;
  let other: Awaited<ReturnType<typeof send>>;
  before(async () => {
    dir = await tempDir('comms-copy-unit-');
    source = await OciLayout.open(join(dir.path, 'src'), { create: true });
    sent = await send({ unsigned: true, repository: source, recipient: 'bob', sender: 'alice', input: { text: 'one' } });
    other = await send({ unsigned: true, repository: source, recipient: 'bob', sender: 'alice', input: { text: 'two' } });
  });
  after(async () => {
    await dir?.cleanup();
  });

  it('a referrers listing that names the message itself and an unrelated manifest ends, copying neither as a referrer', async () => {
    const self: Descriptor = { ...sent.descriptor, artifactType: 'application/vnd.dockercomms.receipt.v1' };
    const junk: Descriptor = { ...other.descriptor, artifactType: 'application/vnd.dockercomms.receipt.v1' };
    let listings = 0;
    const hostile = wrap(source, {
      referrers: async (_subject, visit) => {
        listings++;
        await visit([self, junk]);
      },
    });
    const destination = await OciLayout.open(join(dir.path, 'dst-cycle'), { create: true });
    const result = await copy({ source: hostile, destination, reference: sent.digest });
    assert.deepEqual(
      result.manifests.map((m) => m.digest),
      [sent.digest],
    );
    assert.equal(result.referrersIgnored, 1, 'the unrelated manifest is not copied as a referrer');
    assert.equal(listings, 1);
    await assert.rejects(destination.resolve(other.digest), (e: { exitCode?: number }) => e.exitCode === 5);
  });

  it('a chain of referrers longer than the manifest bound is refused (exit 4, COPY_TOO_MANY_MANIFESTS)', async () => {
    // A receipt for the message, a receipt for that receipt, and one for that: four manifests.
    let about = sent.digest;
    for (let i = 0; i < 3; i++)
      about = (await ack({ unsigned: true, repository: source, forDigest: about, status: 'accepted', sender: 'bob', recipient: 'alice' })).digest;
    const destination = await OciLayout.open(join(dir.path, 'dst-bound'), { create: true });
    await assert.rejects(
      copy({ source, destination, reference: sent.digest, maxManifests: 3 }),
      (e: { exitCode?: number; code?: string }) => e.exitCode === 4 && e.code === 'COPY_TOO_MANY_MANIFESTS',
    );
    const all = await copy({ source, destination, reference: sent.digest, maxManifests: 4 });
    assert.equal(all.manifests.length, 4, 'within the bound the whole chain is copied');
  });

  it('a destination tag names the copied root beside the inbox tag it carries; --digest equal to the source passes', async () => {
    const destination = await OciLayout.open(join(dir.path, 'dst-tag'), { create: true });
    const result = await copy({ source, destination, reference: sent.digest, tag: 'approved-v1', expectedDigest: sent.digest });
    assert.deepEqual(result.manifests[0]!.tags, ['approved-v1', sent.tag]);
    assert.equal((await destination.resolve('approved-v1')).digest, sent.digest);
    assert.equal((await destination.resolve(sent.tag)).digest, sent.digest);
    assert.deepEqual(Buffer.from((await destination.fetchManifest('approved-v1')).bytes), Buffer.from((await source.fetchManifest(sent.digest)).bytes));
  });

  it('a destination that serves another digest after the push fails the copy (exit 4, DESTINATION_DIGEST_MISMATCH)', async () => {
    const real = await OciLayout.open(join(dir.path, 'dst-lie'), { create: true });
    const lying = wrap(real, {
      resolve: async () => other.descriptor,
    });
    await assert.rejects(copy({ source, destination: lying, reference: sent.tag }), (e: { exitCode?: number; code?: string; message: string }) => {
      assert.equal(e.exitCode, 4);
      assert.equal(e.code, 'DESTINATION_DIGEST_MISMATCH');
      assert.match(e.message, new RegExp(other.digest));
      return true;
    });
  });

  it('--digest that the source does not have refuses before anything is pushed (SOURCE_DIGEST_MISMATCH)', async () => {
    const destination = await OciLayout.open(join(dir.path, 'dst-digest'), { create: true });
    let pushes = 0;
    const counting = wrap(destination, {
      push: async (...a: Parameters<Repository['push']>) => {
        pushes++;
        return destination.push(...a);
      },
      pushManifest: async (...a: Parameters<Repository['pushManifest']>) => {
        pushes++;
        return destination.pushManifest(...a);
      },
      pushReferrer: async (...a: Parameters<Repository['pushReferrer']>) => {
        pushes++;
        return destination.pushReferrer(...a);
      },
    });
    await assert.rejects(
      copy({ source, destination: counting, reference: sent.tag, expectedDigest: other.digest }),
      (e: { code?: string }) => e.code === 'SOURCE_DIGEST_MISMATCH',
    );
    assert.equal(pushes, 0);
  });
});
