/**
 * Threads and referrers, run against docker-registry (no Referrers API: the tag-schema fallback)
 * and comms serve (the Referrers API): a message with three replies, a receipt and its signature
 * bundle is shown whole by thread() and `comms thread`, `comms discover --artifact-type` filters,
 * the API path writes no tag-schema index while the fallback does, a v1.0 reader finds the
 * receipt by its tag and in the index, and a reply goes back to the original sender's inbox.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { ack, findReferrers, loadKeySigner, reply, send, thread, type MessageSigner } from '../../src/index.ts';
import { inboxPrefix } from '../../src/protocol/tags.ts';
import { ArtifactType, ExtensionAnnotation } from '../../src/protocol/constants.ts';
import { EMPTY_JSON_BYTES, EMPTY_JSON_DIGEST, MediaType } from '../../src/oci/mediatypes.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { backendKinds, countingRepo, startBackend, type Backend } from '../support/referrers-backends.ts';
import { describeRun, runComms, TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { tempDir } from '../support/tools.ts';

const hexOf = (digest: string) => digest.slice('sha256:'.length);

for (const kind of backendKinds()) {
  describe(`referrers on ${kind}`, () => {
    let backend: Backend;
    let signer: MessageSigner;
    before(async () => {
      backend = await startBackend(kind);
      signer = await loadKeySigner(TEST_KEY);
    });
    after(async () => {
      await backend?.stop();
    });

    it('a message with 3 replies, a receipt and a bundle: thread shows all five, discover filters by type, index writes only without the API', async () => {
      const ref = backend.freshRepo('thread');
      const c = countingRepo(ref);
      try {
        const repo = c.repo;
        const message = await send({ repository: repo, recipient: 'bob', sender: 'alice', input: { text: 'question' }, signer });
        assert.ok(message.bundle, 'the message is signed, so it has a bundle');
        const replies = [];
        for (const text of ['one', 'two', 'three'])
          replies.push(await reply({ unsigned: true, unverifiedRecipient: true, repository: repo, to: message.digest, sender: 'bob', input: { text } }));
        const receipt = await ack({ unsigned: true, repository: repo, forDigest: message.digest, status: 'accepted', sender: 'bob' });
        const expected = {
          [ArtifactType.Message]: new Set(replies.map((r) => r.digest)),
          [ArtifactType.Receipt]: new Set([receipt.digest]),
          [ArtifactType.Bundle]: new Set([message.bundle.digest]),
        };
        const all = new Set([...replies.map((r) => r.digest), receipt.digest, message.bundle.digest]);

        // Library: thread() puts all five directly under the message, each with its kind.
        const root = await thread(repo, message.digest);
        assert.equal(root.kind, 'message');
        assert.equal(root.digest, message.digest);
        assert.deepEqual(new Set(root.children.map((n) => n.digest)), all);
        const kindOf = new Map(root.children.map((n) => [n.digest, n.kind]));
        for (const r of replies) assert.equal(kindOf.get(r.digest), 'reply');
        assert.equal(kindOf.get(receipt.digest), 'receipt');
        assert.equal(kindOf.get(message.bundle.digest), 'bundle');
        assert.equal(root.children.find((n) => n.digest === receipt.digest)?.status, 'accepted');
        for (const r of replies) assert.equal(root.children.find((n) => n.digest === r.digest)?.sender, 'bob');

        // Library: findReferrers with an artifactType returns exactly that type.
        for (const [type, digests] of Object.entries(expected)) {
          const found = await findReferrers(repo, message.descriptor, { artifactType: type, replyRecipients: ['alice', 'bob'] });
          assert.deepEqual(new Set(found.map((d) => d.digest)), digests, `findReferrers --artifact-type ${type}`);
          for (const d of found) assert.equal(d.artifactType, type);
        }

        if (backend.referrersApi) {
          // The registry indexed every referrer itself (OCI-Subject): not one tag-schema write or read.
          assert.equal(receipt.indexedBy, 'registry');
          assert.equal(c.tagSchemaWrites(), 0, 'no PUT to /manifests/sha256-<hex> on the API path');
          assert.equal(c.count('GET', /\/manifests\/sha256-[0-9a-f]{64}$/), 0, 'discovery used /referrers/, not the tag-schema index');
          assert.ok(c.count('GET', /\/referrers\/sha256:[0-9a-f]{64}$/) > 0, 'discovery went through the Referrers API');
        } else {
          assert.equal(receipt.indexedBy, 'tag-schema');
          assert.ok(c.tagSchemaWrites() >= all.size, `one index write at least per referrer, saw ${c.tagSchemaWrites()}`);
          // The index itself, read raw, lists all five with their artifactType.
          const index = await rawManifest(backend.host, ref, `sha256-${hexOf(message.digest)}`, MediaType.ImageIndex);
          const entries = new Map((index.manifests as { digest: string; artifactType?: string }[]).map((d) => [d.digest, d.artifactType]));
          for (const [type, digests] of Object.entries(expected)) for (const d of digests) assert.equal(entries.get(d), type, `index entry of ${d}`);
        }

        // CLI: `comms thread --json` prints the same tree.
        const t = await runComms(['thread', '--repo', ref, message.digest, '--json', '--plain-http']);
        assert.equal(t.code, 0, describeRun(t));
        assert.equal(t.json.length, 1);
        const tree = t.json[0] as { digest: string; kind: string; children: { digest: string; kind: string }[] };
        assert.equal(tree.digest, message.digest);
        assert.deepEqual(new Set(tree.children.map((n) => n.digest)), all);

        // CLI: `comms discover --artifact-type T --json` prints one descriptor per line, only of type T.
        for (const [type, digests] of Object.entries(expected)) {
          const d = await runComms(['discover', '--repo', ref, message.digest, '--artifact-type', type, '--json', '--plain-http']);
          assert.equal(d.code, 0, describeRun(d));
          assert.equal(d.json.length, digests.size, `one line per ${type} referrer:\n${d.stdout}`);
          assert.deepEqual(new Set(d.json.map((l) => l['digest'])), digests);
          for (const line of d.json) {
            assert.equal(line['artifactType'], type);
            assert.equal(line['mediaType'], MediaType.ImageManifest);
            assert.equal(typeof line['size'], 'number');
            assert.equal(typeof line['annotations'], 'object');
          }
        }
        const everything = await runComms(['discover', '--repo', ref, message.digest, '--json', '--plain-http']);
        assert.equal(everything.code, 0, describeRun(everything));
        assert.deepEqual(new Set(everything.json.map((l) => l['digest'])), all);
        assert.equal(everything.json.length, all.size, 'deduplicated by digest');
      } finally {
        await c.close();
      }
    });

    it('thread nests replies recursively: a reply to a reply, and a receipt for a reply, sit under that reply', async () => {
      const c = countingRepo(backend.freshRepo('nested'));
      try {
        const repo = c.repo;
        const m = await send({ unsigned: true, repository: repo, recipient: 'bob', sender: 'alice', input: { text: 'm' } });
        const r1 = await reply({ unsigned: true, unverifiedRecipient: true, repository: repo, to: m.digest, sender: 'bob', input: { text: 'r1' } });
        assert.equal(r1.recipient, 'alice');
        const r2 = await reply({ unsigned: true, unverifiedRecipient: true, repository: repo, to: r1.digest, sender: 'alice', input: { text: 'r2' } });
        assert.equal(r2.recipient, 'bob', "a reply to bob's reply goes back to bob");
        const r3 = await reply({ unsigned: true, unverifiedRecipient: true, repository: repo, to: r2.digest, sender: 'bob', input: { text: 'r3' } });
        const receipt = await ack({ unsigned: true, repository: repo, forDigest: r1.digest, status: 'accepted', sender: 'alice' });
        const root = await thread(repo, m.digest);
        assert.deepEqual(
          root.children.map((n) => [n.kind, n.digest]),
          [['reply', r1.digest]],
        );
        const n1 = root.children[0]!;
        assert.deepEqual(new Set(n1.children.map((n) => n.digest)), new Set([r2.digest, receipt.digest]));
        const n2 = n1.children.find((n) => n.digest === r2.digest)!;
        assert.deepEqual(
          n2.children.map((n) => [n.kind, n.digest]),
          [['reply', r3.digest]],
        );
        if (backend.referrersApi) assert.equal(c.tagSchemaWrites(), 0);
      } finally {
        await c.close();
      }
    });

    it('comms reply: the recipient defaults to the verified original sender, the reply has its own inbox tag, and that sender receives it', async () => {
      const ref = backend.freshRepo('reply');
      const c = countingRepo(ref);
      const out = await tempDir('comms-reply-recv-');
      try {
        const message = await send({ repository: c.repo, recipient: 'bob', sender: 'alice', input: { text: 'ping' }, signer });
        // The test key speaks for both in this trust file: the original is verified as alice.
        const trustFile = join(out.path, 'trust');
        await writeFile(trustFile, `alice,bob ${TEST_PUB}\n`);
        const r = await runComms([
          'reply',
          '--repo',
          ref,
          '--in-reply-to',
          message.digest,
          '--message',
          'pong',
          '--sender',
          'bob',
          '--key',
          TEST_KEY,
          '--trust',
          trustFile,
          '--json',
          '--plain-http',
        ]);
        assert.equal(r.code, 0, describeRun(r));
        const result = r.json[0] as { digest: string; tag: string; recipient: string; inReplyTo: string };
        assert.equal(result.recipient, 'alice');
        assert.equal(result.inReplyTo, message.digest);
        assert.ok(result.tag.startsWith(inboxPrefix('alice')), `the reply is in alice's inbox: ${result.tag}`);

        // The reply is a message about the original: subject and reply.to point at it.
        const fetched = await c.repo.fetchManifest(result.tag);
        assert.equal(fetched.descriptor.digest, result.digest);
        const manifest = JSON.parse(new TextDecoder().decode(fetched.bytes)) as { subject?: { digest: string }; annotations: Record<string, string> };
        assert.equal(manifest.subject?.digest, message.digest);
        assert.equal(manifest.annotations[ExtensionAnnotation.ReplyTo], message.digest);

        const recv = await runComms(['recv', '--repo', ref, '--me', 'alice', '--out', out.path, '--trusted-key', TEST_PUB, '--json', '--plain-http']);
        assert.equal(recv.code, 0, describeRun(recv));
        assert.equal(recv.json.length, 1, recv.stdout);
        const got = recv.json[0] as { digest: string; sender: string; path: string; verified: unknown };
        assert.equal(got.digest, result.digest);
        assert.equal(got.sender, 'bob');
        assert.notEqual(got.verified, null, 'the signed reply verified');
        assert.equal(await readFile(got.path, 'utf8'), 'pong');
        // Bob, the original recipient, is not sent his own reply.
        const bobOut = join(out.path, 'bob');
        const bob = await runComms(['recv', '--repo', ref, '--me', 'bob', '--out', bobOut, '--no-verify', '--json', '--plain-http']);
        assert.equal(bob.code, 0, describeRun(bob));
        assert.deepEqual(
          bob.json.map((l) => l['digest']),
          [message.digest],
        );
      } finally {
        await c.close();
        await out.cleanup();
      }
    });

    if (kind === 'docker-registry') {
      it('an index clobbered by a racing writer loses nothing: the receipt, bundle and reply tags still name them', async () => {
        const ref = backend.freshRepo('clobber');
        const c = countingRepo(ref);
        try {
          const repo = c.repo;
          const m = await send({ repository: repo, recipient: 'bob', sender: 'alice', input: { text: 'm' }, signer });
          const r = await reply({ unsigned: true, unverifiedRecipient: true, repository: repo, to: m.digest, sender: 'bob', input: { text: 'r' } });
          const receipt = await ack({ unsigned: true, repository: repo, forDigest: m.digest, status: 'accepted', sender: 'bob' });
          const all = new Set([m.bundle!.digest, r.digest, receipt.digest]);
          // What a writer that read the index before all of these would push back: an index without them.
          const empty = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [] }));
          await repo.pushManifest({ mediaType: MediaType.ImageIndex, digest: digestOf(empty), size: empty.length }, empty, `sha256-${hexOf(m.digest)}`);
          assert.deepEqual(await findReferrers(repo, m.descriptor, { source: 'referrers' }), [], 'the index lists nothing now');

          const root = await thread(repo, m.digest);
          assert.deepEqual(new Set(root.children.map((n) => n.digest)), all);
          const d = await runComms(['discover', '--repo', ref, m.digest, '--json', '--plain-http']);
          assert.equal(d.code, 0, describeRun(d));
          assert.deepEqual(new Set(d.json.map((l) => l['digest'])), all, 'comms discover finds the reply through the inbox tags too');
          const found = await findReferrers(repo, m.descriptor, { replyRecipients: ['alice'] });
          assert.deepEqual(new Set(found.map((x) => x.digest)), all);
        } finally {
          await c.close();
        }
      });

      it('a sha512 subject: the index is written under sha512-<hex[:64]>, the tag the spec names and the client reads', async () => {
        const c = countingRepo(backend.freshRepo('sha512'));
        try {
          const repo = c.repo;
          const config = { mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: EMPTY_JSON_BYTES.length };
          await repo.push(config, EMPTY_JSON_BYTES);
          // The subject need not be stored (distribution refuses sha512 manifests); only its digest matters.
          const subject = { mediaType: MediaType.ImageManifest, digest: `sha512:${createHash('sha512').update('a subject').digest('hex')}`, size: 9 };
          const bytes = new TextEncoder().encode(
            JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageManifest, artifactType: 'application/vnd.example.note', config, layers: [], subject }),
          );
          const desc = { mediaType: MediaType.ImageManifest, digest: digestOf(bytes), size: bytes.length };
          const pushed = await repo.pushReferrer(desc, bytes, subject, 'a-note');
          assert.equal(pushed.indexedBy, 'tag-schema');
          assert.equal(c.count('PUT', new RegExp(`/manifests/sha512-${subject.digest.slice(7, 7 + 64)}$`)), 1);
          const found = await findReferrers(repo, subject, { source: 'referrers' });
          assert.deepEqual(
            found.map((d) => d.digest),
            [desc.digest],
          );
        } finally {
          await c.close();
        }
      });

      it("a v1.0 reader's view: after ack, a receipt-<hex12>- tag names the receipt and the sha256-<hex> index lists it", async () => {
        const ref = backend.freshRepo('v10');
        const c = countingRepo(ref);
        try {
          const message = await send({ unsigned: true, repository: c.repo, recipient: 'bob', sender: 'alice', input: { text: 'hello v1.0' } });
          const receipt = await ack({ unsigned: true, repository: c.repo, forDigest: message.digest, status: 'accepted', sender: 'bob' });
          const hex = hexOf(message.digest);

          // Raw HTTP, as a reader that knows nothing of comms: the tag list has the receipt tag…
          const tags = (await rawJson(`http://${backend.host}/v2/${repoPath(ref)}/tags/list`)).tags as string[];
          const receiptTags = tags.filter((t) => t.startsWith(`receipt-${hex.slice(0, 12)}-`));
          assert.deepEqual(receiptTags, [receipt.tag]);
          assert.match(receipt.tag, /^receipt-[0-9a-f]{12}-\d+-[a-z0-9]{6}$/);
          // …which names a receipt for this message…
          const viaTag = await rawManifest(backend.host, ref, receipt.tag, MediaType.ImageManifest);
          assert.equal(viaTag.artifactType, ArtifactType.Receipt);
          assert.equal((viaTag.annotations as Record<string, string>)['dockercomms.receipt.for'], message.digest);
          assert.equal((viaTag.annotations as Record<string, string>)['dockercomms.receipt.status'], 'accepted');
          // …and the referrers tag schema's index lists it, with its artifactType and annotations.
          assert.ok(tags.includes(`sha256-${hex}`), 'the sha256-<hex> tag exists');
          const index = await rawManifest(backend.host, ref, `sha256-${hex}`, MediaType.ImageIndex);
          assert.equal(index.mediaType, MediaType.ImageIndex);
          const entry = (index.manifests as { digest: string; artifactType: string; annotations: Record<string, string> }[]).find(
            (d) => d.digest === receipt.digest,
          );
          assert.ok(entry, `the index lists the receipt ${receipt.digest}`);
          assert.equal(entry.artifactType, ArtifactType.Receipt);
          assert.equal(entry.annotations['dockercomms.receipt.for'], message.digest);
        } finally {
          await c.close();
        }
      });
    }
  });
}

function repoPath(ref: string): string {
  return ref.slice(ref.indexOf('/') + 1);
}

async function rawJson(url: string, accept = 'application/json'): Promise<Record<string, unknown>> {
  const res = await request(url, { headers: { accept } });
  const text = await res.body.text();
  assert.equal(res.statusCode, 200, `GET ${url}: ${res.statusCode} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

function rawManifest(host: string, ref: string, reference: string, accept: string): Promise<Record<string, unknown>> {
  return rawJson(`http://${host}/v2/${repoPath(ref)}/manifests/${reference}`, accept);
}
