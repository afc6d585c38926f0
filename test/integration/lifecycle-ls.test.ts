/**
 * ls lists my messages without downloading them: digest, sender and whether it verifies (when a
 * policy is given), created, size, filename, expired, read (by a receipt signed by my key); expired
 * ones hidden unless asked; --since. Its cost is the tag pages plus a bounded number of requests per
 * message, and no chunk is fetched. On docker-registry, comms serve and an oci: folder.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listMessages, type ListedMessage } from '../../src/comms/list.ts';
import { ack, loadKeySigner, OciLayout, send, type Repository } from '../../src/index.ts';
import { createKeySigner } from '../../src/trust/key-signer.ts';
import { backendKinds, countingRepo, startBackend, type Backend, type CountingRepo } from '../support/referrers-backends.ts';
import { runComms, TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { tempDir, type TempDir } from '../support/tools.ts';

type Kind = 'docker-registry' | 'comms-serve' | 'oci';
const kinds: Kind[] = [...backendKinds(), 'oci'];
/** Requests per listed message, at most: manifest; bundle tag's manifest and blob (or a referrers lookup first); receipts lookup; my receipt's manifest and its bundle's manifest and blob, each possibly after a referrers lookup. */
const PER_MESSAGE = 12;

for (const kind of kinds) {
  describe(`ls on ${kind}`, () => {
    let backend: Backend | undefined;
    let folder: TempDir | undefined;
    before(async () => {
      folder = await tempDir('comms-ls-');
      if (kind !== 'oci') backend = await startBackend(kind);
    });
    after(async () => {
      await backend?.stop();
      await folder?.cleanup();
    });

    it('lists sender, verification, created, size, filename, expiry and read state; expired hidden unless asked; --since; bounded requests, no chunk fetched', async (t) => {
      let repo: Repository;
      let counting: CountingRepo | undefined;
      let ref: string;
      if (kind === 'oci') {
        ref = `oci:${join(folder!.path, 'box')}`;
        repo = await OciLayout.open(join(folder!.path, 'box'), { create: true });
      } else {
        ref = backend!.freshRepo('ls');
        counting = countingRepo(ref);
        repo = counting.repo;
      }
      try {
        const alice = await loadKeySigner(TEST_KEY);
        const myKey = createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
        const policy = { trustedKeys: [await readFile(TEST_PUB, 'utf8')] };
        const signed = await send({
          repository: repo,
          recipient: 'me',
          sender: 'alice',
          input: { text: 'signed!', filename: 'signed.txt' },
          signer: alice,
          now: () => new Date(Date.now() - 3_600_000),
        });
        const unsigned = await send({
          unsigned: true,
          repository: repo,
          recipient: 'me',
          sender: 'mallory',
          input: { text: 'unsigned', filename: 'unsigned.txt' },
        });
        const expired = await send({
          repository: repo,
          recipient: 'me',
          sender: 'alice',
          input: { text: 'old', filename: 'old.txt' },
          signer: alice,
          ttlSeconds: 60,
          now: () => new Date(Date.now() - 7_200_000),
        });
        await send({ unsigned: true, repository: repo, recipient: 'someone-else', sender: 'alice', input: { text: 'not mine' } });
        await ack({ repository: repo, forDigest: signed.digest, status: 'accepted', sender: 'me', signer: myKey });
        const readReceipts = { policy: { trustedKeys: [...policy.trustedKeys, myKey.publicKeyPem] }, myKeyIds: [myKey.keyId] };

        const pagesBefore = counting?.count('GET', /\/tags\/list$/) ?? 0;
        const before = counting?.requests.length ?? 0;
        const items = (await listMessages({ repository: repo, me: 'me', policy, readReceipts })) as ListedMessage[];
        const used = (counting?.requests.length ?? 0) - before;
        assert.deepEqual(
          items.map((i) => i.digest),
          [signed.digest, unsigned.digest],
          'oldest first, the expired one hidden',
        );
        const [s, u] = items as [ListedMessage, ListedMessage];
        assert.equal(s.sender, 'alice');
        assert.ok(s.verified !== false && s.verified !== null && s.verified.kind === 'key');
        assert.equal(s.filename, 'signed.txt');
        assert.equal(s.size, 7);
        assert.equal(s.expired, false);
        assert.equal(s.read, true);
        assert.equal(u.sender, 'mallory');
        assert.equal(u.verified, false);
        assert.equal(u.read, false);
        if (counting !== undefined) {
          const pages = counting.count('GET', /\/tags\/list$/) - pagesBefore;
          assert.ok(used <= pages + PER_MESSAGE * items.length + 1, `${used} requests for ${items.length} messages and ${pages} tag pages`);
          t.diagnostic(`${kind}: ${used} requests for ${items.length} messages (${pages} tag pages)`);
          const layerDigests = await Promise.all(
            [signed, unsigned].map(async (m) =>
              (JSON.parse(new TextDecoder().decode((await repo.fetchManifest(m.digest)).bytes)) as { layers: { digest: string }[] }).layers.map(
                (l) => l.digest,
              ),
            ),
          );
          const fetchedChunks = counting.requests.slice(before, before + used).filter((r) => layerDigests.flat().some((d) => r.url.includes(d)));
          assert.deepEqual(fetchedChunks, [], 'no chunk fetched');
        }

        const all = (await listMessages({ repository: repo, me: 'me', includeExpired: true })) as ListedMessage[];
        assert.deepEqual(
          all.map((i) => i.digest),
          [expired.digest, signed.digest, unsigned.digest],
        );
        assert.equal(all[0]!.expired, true);
        assert.equal(all[0]!.verified, null, 'not checked without a policy');
        assert.equal(all[0]!.read, null, 'unknown without a way to recognise my receipts');
        const recent = (await listMessages({ repository: repo, me: 'me', since: new Date(Date.now() - 600_000) })) as ListedMessage[];
        assert.deepEqual(
          recent.map((i) => i.digest),
          [unsigned.digest],
        );

        if (kind === 'oci') {
          const cli = await runComms(['ls', '--repo', ref, '--me', 'me', '--json', '--trusted-key', TEST_PUB, '--include-expired']);
          assert.equal(cli.code, 0, cli.stderr);
          assert.deepEqual(
            cli.json.map((j) => j['digest']),
            [expired.digest, signed.digest, unsigned.digest],
          );
          assert.deepEqual(
            cli.json.map((j) => j['expired']),
            [true, false, false],
          );
          assert.equal((cli.json[1]!['verified'] as { kind: string }).kind, 'key');
          assert.equal(cli.json[2]!['verified'], false);
          const human = await runComms(['ls', '--repo', ref, '--me', 'me']);
          assert.equal(human.code, 0, human.stderr);
          assert.match(human.stdout, /signed\.txt {2}from alice \(not checked\)/);
          assert.doesNotMatch(human.stdout, /old\.txt/);
        }
      } finally {
        await counting?.close();
      }
    });
  });
}
