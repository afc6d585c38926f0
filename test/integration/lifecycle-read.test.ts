/**
 * Read state. One machine: recv twice into the same --out delivers each message once (the record
 * in the state file), --include-read delivers again. Every machine of a user: an accepted receipt
 * from me, signed by my key (or a signer the trust file binds to me), marks the message read; an
 * unsigned receipt, or one signed by somebody else, claiming to be from me does not. On
 * docker-registry, comms serve and an oci: folder.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { ack, loadKeySigner, receive, send } from '../../src/index.ts';
import { createKeySigner } from '../../src/trust/key-signer.ts';
import { backendKinds, mailboxFixture } from '../support/referrers-backends.ts';
import { runComms, TEST_KEY, TEST_PUB } from '../support/cli.ts';

type Kind = 'docker-registry' | 'comms-serve' | 'oci';
const kinds: Kind[] = [...backendKinds(), 'oci'];

for (const kind of kinds) {
  describe(`read state on ${kind}`, () => {
    const { freshRepo, scratch } = mailboxFixture(kind, 'read');

    it('a receipt signed by my key marks a message read on another machine; an unsigned or foreign-signed one claiming to be mine does not', async () => {
      const { repo } = await freshRepo();
      const alice = await loadKeySigner(TEST_KEY);
      const newKey = () => createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
      const myKey = newKey();
      const mallory = newKey();
      const policy = { trustedKeys: [await readFile(TEST_PUB, 'utf8')] };
      const readReceipts = { policy: { ...policy, trustedKeys: [...policy.trustedKeys, myKey.publicKeyPem, mallory.publicKeyPem] }, myKeyIds: [myKey.keyId] };
      const a = await send({ repository: repo, recipient: 'me', sender: 'alice', input: { text: 'a', filename: 'a.txt' }, signer: alice });
      const b = await send({ repository: repo, recipient: 'me', sender: 'alice', input: { text: 'b', filename: 'b.txt' }, signer: alice });
      const c = await send({ repository: repo, recipient: 'me', sender: 'alice', input: { text: 'c', filename: 'c.txt' }, signer: alice });
      // Machine 1 receives a with a signed receipt.
      // Machine 1 receives one of them, with a signed receipt.
      const first = await receive({
        repository: repo,
        me: 'me',
        outDir: join(scratch(), `m1-${kind}`),
        verify: policy,
        writeReceipt: true,
        signer: myKey,
        max: 1,
      });
      assert.equal(first.messages.length, 1);
      assert.ok(first.messages[0]!.receipt?.bundle, 'the receipt is signed');
      const read = first.messages[0]!.digest;
      const [x, y] = [a, b, c].map((m) => m.digest).filter((d) => d !== read) as [string, string];
      // Receipts from "me" that are not mine: unsigned (x), signed by someone else's key (y).
      await ack({ unsigned: true, repository: repo, forDigest: x, status: 'accepted', sender: 'me' });
      await ack({ repository: repo, forDigest: y, status: 'accepted', sender: 'me', signer: mallory });
      // Machine 2: the first is read; the other two are not.
      const second = await receive({ repository: repo, me: 'me', outDir: join(scratch(), `m2-${kind}`), verify: policy, readReceipts });
      assert.deepEqual(second.failures, []);
      assert.deepEqual(new Set(second.messages.map((m) => m.digest)), new Set([x, y]));
      // Without readReceipts, everything is delivered.
      const all = await receive({ repository: repo, me: 'me', outDir: join(scratch(), `m3-${kind}`), verify: policy });
      assert.equal(all.messages.length, 3);
    });

    if (kind === 'oci') {
      it('recv twice into the same --out delivers each message once; a new one alone on the third run; --include-read delivers all again', async () => {
        const { ref } = await freshRepo();
        const out = join(scratch(), 'out');
        const recv = (...extra: string[]) => runComms(['recv', '--repo', ref, '--me', 'me', '--out', out, '--no-verify', '--json', ...extra]);
        for (const t of ['one', 'two'])
          assert.equal((await runComms(['send', '--repo', ref, '--to', 'me', '--no-sign', '-m', t, '--filename', `${t}.txt`])).code, 0);
        const r1 = await recv();
        assert.equal(r1.code, 0, r1.stderr);
        assert.equal(r1.json.length, 2);
        const r2 = await recv();
        assert.equal(r2.code, 0, r2.stderr);
        assert.deepEqual(r2.json, [], 'nothing delivered twice');
        assert.equal((await runComms(['send', '--repo', ref, '--to', 'me', '--no-sign', '-m', 'three', '--filename', 'three.txt'])).code, 0);
        const r3 = await recv();
        assert.deepEqual(
          r3.json.map((j) => j['filename']),
          ['three.txt'],
        );
        assert.deepEqual((await readdir(out)).sort(), ['one.txt', 'three.txt', 'two.txt']);
        const again = await recv('--include-read');
        assert.equal(again.json.length, 3);
      });

      it('recv on a second machine (its own state) skips what the first acknowledged with a receipt signed by the same key', async () => {
        const { ref } = await freshRepo();
        const keys = ['--key', TEST_KEY, '--trusted-key', TEST_PUB];
        assert.equal((await runComms(['send', '--repo', ref, '--to', 'me', '--key', TEST_KEY, '-m', 'hello'])).code, 0);
        const m1 = await runComms(['recv', '--repo', ref, '--me', 'me', '--out', join(scratch(), 'pc1'), '--json', '--write-receipt', ...keys], {
          env: { XDG_STATE_HOME: join(scratch(), 'state1') },
        });
        assert.equal(m1.code, 0, m1.stderr);
        assert.equal(m1.json.length, 1);
        const m2 = await runComms(['recv', '--repo', ref, '--me', 'me', '--out', join(scratch(), 'pc2'), '--json', ...keys], {
          env: { XDG_STATE_HOME: join(scratch(), 'state2') },
        });
        assert.equal(m2.code, 0, m2.stderr);
        assert.deepEqual(m2.json, [], 'read on the first machine');
      });
    }
  });
}
