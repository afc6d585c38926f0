/**
 * readMessage: a message read into memory, verified under the trust policy first, bounded by
 * maxBytes before anything is downloaded, decrypted in memory when identities are given.
 * Against a real oci: layout store (the same Target a registry mailbox implements).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  Annotation,
  ExtensionAnnotation,
  generateAgeIdentity,
  generateKeyPair,
  loadKeySigner,
  loadTrustFile,
  openRepository,
  readMessage,
  send,
  VerificationError,
  type Repository,
  type TrustPolicy,
} from '../../src/index.ts';

import { runComms } from '../support/cli.ts';

const ALICE_KEY = path.resolve('fixtures/keys/test-only-p256.key');
const ALICE_PUB = path.resolve('fixtures/keys/test-only-p256.pub');

describe('readMessage', () => {
  let dir: string;
  let repo: Repository;
  let policy: TrustPolicy;
  let bobKey: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'comms-read-'));
    bobKey = path.join(dir, 'bob.key');
    await generateKeyPair({ privateKeyPath: bobKey, publicKeyPath: path.join(dir, 'bob.pub') });
    await writeFile(path.join(dir, 'trust'), `alice ${ALICE_PUB}\nbob bob.pub\n`);
    policy = { trust: await loadTrustFile(path.join(dir, 'trust')) };
    repo = await openRepository(`oci:${path.join(dir, 'box')}`, { create: true });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('returns a signed JSON message verified, with its content type, sender and content', async () => {
    const signer = await loadKeySigner(ALICE_KEY);
    const sent = await send({ repository: repo, recipient: 'bob', sender: 'alice', input: { json: { task: 'deploy', version: 3 } }, signer });
    const m = await readMessage(repo, sent.digest, { verify: policy });
    assert.equal(m.verified, true);
    assert.equal(m.verifiedSender, 'alice');
    assert.equal(m.digest, sent.digest);
    assert.equal(m.contentType, 'application/json');
    assert.equal(m.filename, 'message.json');
    assert.deepEqual(m.json(), { task: 'deploy', version: 3 });
    const streamed: Buffer[] = [];
    for await (const c of m.stream()) streamed.push(c as Buffer);
    assert.equal(Buffer.concat(streamed).toString('utf8'), m.text());
    const t = await send({ repository: repo, recipient: 'bob', sender: 'alice', input: { text: 'hello' }, signer });
    const text = await readMessage(repo, t.digest, { verify: policy });
    assert.equal(text.contentType, 'text/plain; charset=utf-8');
    assert.equal(text.text(), 'hello');
    assert.throws(() => text.json(), { code: 'PAYLOAD_NOT_JSON' });
  });

  it('a JSON message reaches a file reader (recv) as message.json, its content type in an annotation a v1.0 reader ignores', async () => {
    const box = path.join(dir, 'jsonbox');
    const r = await openRepository(`oci:${box}`, { create: true });
    const sent = await send({ repository: r, recipient: 'dana', sender: 'alice', input: { json: ['a', 1, null] }, signer: await loadKeySigner(ALICE_KEY) });
    const manifest = JSON.parse(Buffer.from((await r.fetchManifest(sent.digest)).bytes).toString('utf8')) as { annotations: Record<string, string> };
    assert.equal(manifest.annotations[Annotation.Filename], 'message.json');
    assert.equal(manifest.annotations[ExtensionAnnotation.ContentType], 'application/json');
    const out = path.join(dir, 'dana-in');
    const recv = await runComms(['recv', '--repo', `oci:${box}`, '--me', 'dana', '--out', out, '--trusted-key', ALICE_PUB]);
    assert.equal(recv.code, 0, recv.stderr);
    assert.deepEqual(await readdir(out), ['message.json']);
    assert.deepEqual(JSON.parse(await readFile(path.join(out, 'message.json'), 'utf8')), ['a', 1, null]);
  });

  it('refuses a message larger than maxBytes before fetching a chunk', async () => {
    const signer = await loadKeySigner(ALICE_KEY);
    const sent = await send({ repository: repo, recipient: 'bob', sender: 'alice', input: { text: 'x'.repeat(1000) }, signer });
    let fetches = 0;
    const counting = new Proxy(repo, {
      get(target, prop, receiver) {
        if (prop === 'fetch') {
          return (...args: Parameters<Repository['fetch']>) => {
            fetches++;
            return target.fetch(...args);
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    await assert.rejects(readMessage(counting, sent.digest, { verify: policy, maxBytes: 999 }), { code: 'TOTAL_TOO_LARGE' });
    assert.equal(fetches, 0, 'no blob was fetched');
    assert.equal((await readMessage(counting, sent.digest, { verify: policy, maxBytes: 1000 })).size, 1000);
  });

  it('refuses an unsigned message, and returns it unverified only when allowUnverified is passed', async () => {
    const sent = await send({ unsigned: true, repository: repo, recipient: 'bob', sender: 'alice', input: { text: 'trust me' } });
    await assert.rejects(readMessage(repo, sent.digest, { verify: policy }), VerificationError);
    await assert.rejects(readMessage(repo, sent.digest, { verify: false }), { code: 'NO_TRUST_POLICY' });
    const m = await readMessage(repo, sent.digest, { verify: policy, allowUnverified: true });
    assert.equal(m.verified, false);
    assert.equal(m.signer, null);
    assert.equal(m.verifiedSender, null);
    assert.equal(m.text(), 'trust me');
  });

  it('refuses a message claiming to be from alice but signed by the key bound to bob', async () => {
    const sent = await send({ repository: repo, recipient: 'carol', sender: 'alice', input: { text: 'forged' }, signer: await loadKeySigner(bobKey) });
    await assert.rejects(readMessage(repo, sent.digest, { verify: policy }), VerificationError);
  });

  it('decrypts an encrypted message in memory with the identities given', async () => {
    const { identity, recipient } = await generateAgeIdentity();
    const sent = await send({
      repository: repo,
      recipient: 'bob',
      sender: 'alice',
      input: { text: 'secret', filename: 'note.txt' },
      encryptTo: [recipient],
      signer: await loadKeySigner(ALICE_KEY),
    });
    const m = await readMessage(repo, sent.digest, { verify: policy, identities: [identity] });
    assert.equal(m.decrypted, true);
    assert.equal(m.filename, 'note.txt');
    assert.equal(m.text(), 'secret');
    const still = await readMessage(repo, sent.digest, { verify: policy });
    assert.equal(still.encrypted, true);
    assert.equal(still.decrypted, false);
    assert.throws(() => still.text(), { code: 'AGE_NO_IDENTITY' });
  });
});
