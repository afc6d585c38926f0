/**
 * Every artifact is pushed in SPEC §8's order — config, manifest by digest (when it has a subject),
 * its bundle, then its tag — and nothing twice: a signed send stores the empty config once and its
 * message only under its tag, after the bundle; a signed receipt's tag appears only after its
 * bundle exists (a reader must never find a signed artifact unsigned).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ack } from '../../src/comms/ack.ts';
import { send } from '../../src/comms/send.ts';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';
import { EMPTY_JSON_DIGEST } from '../../src/oci/mediatypes.ts';
import type { Repository } from '../../src/oci/target.ts';
import { ArtifactType } from '../../src/protocol/constants.ts';
import { loadKeySigner } from '../../src/trust/key-signer.ts';
import type { MessageSigner } from '../../src/trust/signer.ts';
import { TEST_KEY } from '../support/cli.ts';

type Write = { kind: 'blob'; digest: string } | { kind: 'manifest'; digest: string; tag: string | undefined; artifactType: string | undefined };

const artifactTypeOf = (bytes: Uint8Array) => (JSON.parse(new TextDecoder().decode(bytes)) as { artifactType?: string }).artifactType;

/** The layout store, recording every blob and manifest written through it, in order. */
function recording(inner: Repository, writes: Write[]): Repository {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'push') {
        return (desc: Descriptor, ...rest: unknown[]) => {
          writes.push({ kind: 'blob', digest: desc.digest });
          return (target.push as (...a: unknown[]) => unknown).call(target, desc, ...rest);
        };
      }
      if (prop === 'pushManifest') {
        return (desc: Descriptor, bytes: Uint8Array, tag: string | undefined, ...rest: unknown[]) => {
          writes.push({ kind: 'manifest', digest: desc.digest, tag, artifactType: artifactTypeOf(bytes) });
          return (target.pushManifest as (...a: unknown[]) => unknown).call(target, desc, bytes, tag, ...rest);
        };
      }
      if (prop === 'pushReferrer') {
        return (desc: Descriptor, bytes: Uint8Array, subject: Descriptor, tag: string | undefined, ...rest: unknown[]) => {
          writes.push({ kind: 'manifest', digest: desc.digest, tag, artifactType: artifactTypeOf(bytes) });
          return (target.pushReferrer as (...a: unknown[]) => unknown).call(target, desc, bytes, subject, tag, ...rest);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

let dir: string;
let signer: MessageSigner;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'comms-push-order-'));
  signer = await loadKeySigner(TEST_KEY);
});
after(() => rm(dir, { recursive: true, force: true }));

/** Index of the first write matching `pred`; fails when there is none. */
function indexOf(writes: Write[], what: string, pred: (w: Write) => boolean): number {
  const i = writes.findIndex(pred);
  assert.ok(i >= 0, `no write of ${what} in ${JSON.stringify(writes)}`);
  return i;
}

describe('the order artifacts are pushed in', () => {
  it('a signed send stores the empty config once, and stores the message only under its tag, after its bundle', async () => {
    const writes: Write[] = [];
    const repository = recording(await OciLayout.open(join(dir, 'send'), { create: true }), writes);
    const sent = await send({ repository, recipient: 'bob', sender: 'alice', input: { text: 'hi' }, signer });
    assert.equal(writes.filter((w) => w.kind === 'blob' && w.digest === EMPTY_JSON_DIGEST).length, 1, JSON.stringify(writes));
    assert.deepEqual(
      writes.filter((w) => w.kind === 'manifest' && w.digest === sent.digest).map((w) => w.kind === 'manifest' && w.tag),
      [sent.tag],
      'the message is written once, under its tag',
    );
    const bundle = indexOf(writes, 'the bundle', (w) => w.kind === 'manifest' && w.artifactType === ArtifactType.Bundle);
    const tagged = indexOf(writes, 'the inbox tag', (w) => w.kind === 'manifest' && w.digest === sent.digest && w.tag === sent.tag);
    assert.ok(bundle < tagged, JSON.stringify(writes));
  });

  it('a signed receipt is tagged only after its bundle is stored', async () => {
    const store = await OciLayout.open(join(dir, 'ack'), { create: true });
    const sent = await send({ unsigned: true, repository: store, recipient: 'bob', sender: 'alice', input: { text: 'hi' } });
    const writes: Write[] = [];
    const receipt = await ack({ repository: recording(store, writes), forDigest: sent.digest, status: 'accepted', sender: 'bob', signer });
    assert.ok(receipt.bundle !== undefined);
    assert.equal(writes.filter((w) => w.kind === 'blob' && w.digest === EMPTY_JSON_DIGEST).length, 1, JSON.stringify(writes));
    const bundle = indexOf(writes, 'the bundle', (w) => w.kind === 'manifest' && w.artifactType === ArtifactType.Bundle);
    const tagged = indexOf(writes, 'the receipt tag', (w) => w.kind === 'manifest' && w.digest === receipt.digest && w.tag === receipt.tag);
    assert.ok(bundle < tagged, JSON.stringify(writes));
  });

  it('an unsigned receipt goes in with its tag in one write', async () => {
    const store = await OciLayout.open(join(dir, 'ack-unsigned'), { create: true });
    const sent = await send({ unsigned: true, repository: store, recipient: 'bob', sender: 'alice', input: { text: 'hi' } });
    const writes: Write[] = [];
    const receipt = await ack({ unsigned: true, repository: recording(store, writes), forDigest: sent.digest, status: 'accepted', sender: 'bob' });
    assert.deepEqual(
      writes.filter((w) => w.kind === 'manifest'),
      [{ kind: 'manifest', digest: receipt.digest, tag: receipt.tag, artifactType: ArtifactType.Receipt }],
    );
  });
});
