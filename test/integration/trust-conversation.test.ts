/**
 * Trusted conversations, against docker-registry (tag-schema fallback) and comms serve (Referrers
 * API): alice asks bob; an attacker who can push to the mailbox (and holds mallory's key, which
 * the trust file binds to mallory) plants
 *   - an unsigned receipt and an unsigned reply claiming to be bob's, back-dated to 2000-01-01;
 *   - a reply and a receipt signed with mallory's trusted key but claiming `--sender bob`;
 *   - bob's genuine signed receipt for another message, re-pointed at alice's (a copy whose
 *     subject and receipt.for name alice's message, with bob's bundle moved onto it);
 *   - a receipt signed by mallory as mallory (someone other than the recipient).
 * None of them is returned by waitForReceipt / waitForReply, each is marked in thread() and
 * `comms thread` (unverified or INVALID with its reason), and `comms recv` refuses the forged
 * replies (exit 2) while delivering bob's genuine one. Bob's genuine signed receipt and reply are
 * returned, verified as bob, although the forgeries claim to be older. Also: the default sender
 * comes from the trust file (also keyless, with a trust-file line, against the Sigstore mock),
 * library calls refuse to push unsigned unless told, and `comms trust add|list|remove`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  ack,
  loadKeySigner,
  loadTrustFile,
  reply,
  send,
  thread,
  TimeoutError,
  UsageError,
  waitForReceipt,
  waitForReply,
  type MessageSigner,
  type ThreadNode,
  type TrustPolicy,
  type UnverifiedArtifact,
} from '../../src/index.ts';
import { Annotation, ArtifactType } from '../../src/protocol/constants.ts';
import { buildManifest } from '../../src/protocol/manifest.ts';
import { pushBundle } from '../../src/comms/bundle.ts';
import type { ImageManifest } from '../../src/oci/descriptor.ts';
import { generateKeyPair } from '../../src/trust/keygen.ts';
import type { SignedBundle } from '../../src/trust/signer.ts';
import { backendKinds, countingRepo, startBackend, type Backend, type CountingRepo } from '../support/referrers-backends.ts';
import { describeRun, runComms } from '../support/cli.ts';
import { mockIdentityToken, startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.ts';
import { tempDir, type TempDir } from '../support/tools.ts';

/** The CLI from source, in the suite's clean environment (no host trust file; sender "tester"), plus `env`. */
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runComms(args, { env });

const LONG_AGO = () => new Date('2000-01-01T00:00:00Z');
/** A forger back-dates and sets a TTL long enough that the artifact has not expired. */
const FOREVER = 60 * 365 * 86_400;
type Who = 'alice' | 'bob' | 'mallory';

let work: TempDir;
let trustFile: string;
const keyFile = (who: Who) => path.join(work.path, `${who}.key`);
const signers = {} as Record<Who, MessageSigner>;
let policy: TrustPolicy;

before(async () => {
  work = await tempDir('comms-trust-conv-');
  for (const who of ['alice', 'bob', 'mallory'] as const) {
    await generateKeyPair({ privateKeyPath: keyFile(who), publicKeyPath: path.join(work.path, `${who}.pub`) });
    signers[who] = await loadKeySigner(keyFile(who));
  }
  trustFile = path.join(work.path, 'trust');
  await writeFile(trustFile, '# the people of this test\nalice alice.pub\nbob bob.pub\nmallory mallory.pub\n');
  policy = { trust: await loadTrustFile(trustFile) };
});
after(async () => {
  await work?.cleanup();
});

/** Every node of a tree, depth first. */
function nodes(n: ThreadNode): ThreadNode[] {
  return [n, ...n.children.flatMap(nodes)];
}

/** A copy of `signed`'s subject manifest pointed at `target`, with the original bundle moved onto it (a replay). */
async function repointReceipt(
  c: CountingRepo,
  genuine: { digest: string },
  genuineBundle: SignedBundle,
  target: { digest: string; size: number; mediaType: string },
): Promise<string> {
  const original = JSON.parse(new TextDecoder().decode((await c.repo.fetchManifest(genuine.digest)).bytes)) as ImageManifest;
  const annotations = { ...original.annotations, [Annotation.ReceiptFor]: target.digest };
  const forged = buildManifest({ artifactType: ArtifactType.Receipt, layers: [], subject: target, annotations });
  await c.repo.pushReferrer(forged.descriptor, forged.bytes, target);
  // bob's real bundle, re-pointed at the copy: its signature still covers bob's original receipt.
  const replay: MessageSigner = { kind: 'key', sign: async () => genuineBundle };
  await pushBundle(c.repo, forged.descriptor, forged.bytes, replay);
  return forged.descriptor.digest;
}

for (const kind of backendKinds()) {
  describe(`trusted conversations on ${kind}`, () => {
    let backend: Backend;
    let c: CountingRepo;
    let ref: string;
    let question: Awaited<ReturnType<typeof send>>;
    const forged: Record<string, string> = {};

    before(async () => {
      backend = await startBackend(kind);
      ref = backend.freshRepo('trust');
      c = countingRepo(ref);
      question = await send({ repository: c.repo, recipient: 'bob', sender: 'alice', input: { text: 'may I deploy?' }, signer: signers.alice });
      const about = { repository: c.repo, inReplyTo: question.digest };

      // Unsigned, back-dated, claiming to be bob.
      forged['unsignedReceipt'] = (
        await ack({
          repository: c.repo,
          forDigest: question.digest,
          status: 'rejected',
          verified: true,
          reason: 'malware found',
          sender: 'bob',
          unsigned: true,
          now: LONG_AGO,
          ttlSeconds: FOREVER,
        })
      ).digest;
      forged['unsignedReply'] = (
        await reply({ ...about, sender: 'bob', recipient: 'alice', input: { text: 'no, stop' }, unsigned: true, now: LONG_AGO, ttlSeconds: FOREVER })
      ).digest;
      // Signed with mallory's trusted key, claiming to be bob.
      forged['malloryAsBobReply'] = (
        await reply({
          ...about,
          sender: 'bob',
          recipient: 'alice',
          input: { text: 'no, stop (signed)' },
          signer: signers.mallory,
          now: LONG_AGO,
          ttlSeconds: FOREVER,
        })
      ).digest;
      forged['malloryAsBobReceipt'] = (
        await ack({
          repository: c.repo,
          forDigest: question.digest,
          status: 'rejected',
          reason: 'signed lie',
          sender: 'bob',
          signer: signers.mallory,
          now: LONG_AGO,
          ttlSeconds: FOREVER,
        })
      ).digest;
      // bob's genuine receipt for another message, re-pointed at the question.
      const other = await send({ repository: c.repo, recipient: 'bob', sender: 'alice', input: { text: 'another question' }, signer: signers.alice });
      let bobBundle: SignedBundle | undefined;
      const capturing: MessageSigner = { kind: 'key', sign: async (bytes) => (bobBundle = await signers.bob.sign(bytes)) };
      const otherReceipt = await ack({
        repository: c.repo,
        forDigest: other.digest,
        status: 'rejected',
        reason: 'for the other one',
        sender: 'bob',
        signer: capturing,
      });
      forged['repointedReceipt'] = await repointReceipt(c, otherReceipt, bobBundle!, question.descriptor);
      // Honestly signed by mallory, as mallory: but mallory is not the recipient.
      forged['strangerReceipt'] = (
        await ack({
          repository: c.repo,
          forDigest: question.digest,
          status: 'accepted',
          sender: 'mallory',
          signer: signers.mallory,
          now: LONG_AGO,
          ttlSeconds: FOREVER,
        })
      ).digest;
    });
    after(async () => {
      await c?.close();
      await backend?.stop();
    });

    it('waits return none of the forgeries: each is skipped and reported, and the wait times out', async () => {
      const seen: UnverifiedArtifact[] = [];
      await assert.rejects(
        waitForReceipt(c.repo, question.digest, { policy, timeoutMs: 300, intervalMs: 100, onUnverified: (u) => seen.push(u) }),
        TimeoutError,
      );
      const byDigest = new Map(seen.map((u) => [u.descriptor.digest, u.verdict]));
      assert.equal(byDigest.get(forged['unsignedReceipt']!)?.status, 'unsigned');
      assert.equal(byDigest.get(forged['malloryAsBobReceipt']!)?.code, 'VERIFICATION_FAILED');
      assert.match(byDigest.get(forged['malloryAsBobReceipt']!)?.reason ?? '', /claims to be from "bob".*binds to "mallory"/);
      assert.equal(byDigest.get(forged['repointedReceipt']!)?.status, 'invalid');
      assert.match(byDigest.get(forged['strangerReceipt']!)?.reason ?? '', /signed by mallory, not by the message's recipient bob/);
      const replies: UnverifiedArtifact[] = [];
      await assert.rejects(
        waitForReply(c.repo, question.digest, { policy, timeoutMs: 300, intervalMs: 100, onUnverified: (u) => replies.push(u) }),
        TimeoutError,
      );
      assert.deepEqual(new Set(replies.map((u) => u.descriptor.digest)), new Set([forged['unsignedReply'], forged['malloryAsBobReply']]));
      // With allowUnverified the unsigned reply may be taken; the invalid one never is.
      const taken = await waitForReply(c.repo, question.digest, { policy, allowUnverified: true, timeoutMs: 300, intervalMs: 100 });
      assert.equal(taken.descriptor.digest, forged['unsignedReply']);
      assert.equal(taken.verdict.status, 'unsigned');
      assert.equal(taken.identity, undefined);
    });

    it('a wait needs a policy, unless unverified artifacts are accepted explicitly', async () => {
      await assert.rejects(
        waitForReceipt(c.repo, question.digest, { timeoutMs: 100 }),
        (e: unknown) => e instanceof UsageError && e.code === 'NO_TRUST_POLICY',
      );
    });

    it("bob's genuine signed receipt and reply win over older forgeries, verified as bob", async () => {
      const receipt = await ack({ repository: c.repo, forDigest: question.digest, status: 'accepted', sender: 'bob', signer: signers.bob });
      const answer = await reply({ repository: c.repo, inReplyTo: question.digest, policy, input: { text: 'yes, go' }, sender: 'bob', signer: signers.bob });
      assert.equal(answer.recipient, 'alice', 'the reply goes to the verified sender');
      const gotReceipt = await waitForReceipt(c.repo, question.digest, { policy, timeoutMs: 10_000, intervalMs: 100 });
      assert.equal(gotReceipt.descriptor.digest, receipt.digest);
      assert.equal(gotReceipt.identity, 'bob');
      const gotReply = await waitForReply(c.repo, question.digest, { policy, timeoutMs: 10_000, intervalMs: 100 });
      assert.equal(gotReply.descriptor.digest, answer.digest);
      assert.equal(gotReply.identity, 'bob');
      forged['genuineReceipt'] = receipt.digest;
      forged['genuineReply'] = answer.digest;
    });

    it('thread() marks every node: verified as bob, unverified (unsigned), INVALID with the reason', async () => {
      const root = await thread(c.repo, question.digest, { policy });
      const of = new Map(nodes(root).map((n) => [n.digest, n]));
      assert.equal(root.verified, true);
      assert.equal(root.signer, 'alice');
      assert.equal(of.get(forged['genuineReceipt']!)?.signer, 'bob');
      assert.equal(of.get(forged['genuineReply']!)?.signer, 'bob');
      assert.equal(of.get(forged['unsignedReceipt']!)?.trust, 'unsigned');
      assert.equal(of.get(forged['unsignedReply']!)?.trust, 'unsigned');
      for (const k of ['malloryAsBobReply', 'malloryAsBobReceipt', 'repointedReceipt', 'strangerReceipt']) {
        const n = of.get(forged[k]!);
        assert.equal(n?.trust, 'invalid', `${k}: ${JSON.stringify(n)}`);
        assert.equal(n?.verified, false);
        assert.equal(n?.signer, undefined);
        assert.ok(n?.reason, k);
      }
      const onlyVerified = await thread(c.repo, question.digest, { policy, verifiedOnly: true });
      const kept = nodes(onlyVerified)
        .filter((n) => n.kind !== 'bundle')
        .map((n) => n.digest)
        .sort();
      assert.deepEqual(kept, [question.digest, forged['genuineReceipt'], forged['genuineReply']].sort());
    });

    it('comms thread --trust shows the verdicts in the tree and in --json; --verified-only hides the rest', async () => {
      const tree = await cli(['thread', question.digest, '--repo', ref, '--trust', trustFile, '--plain-http']);
      assert.equal(tree.code, 0, describeRun(tree));
      assert.match(tree.stdout, /reply\s+sha256:\S+\s+\[verified as bob\]\s+from bob/);
      assert.match(tree.stdout, /receipt\s+sha256:\S+\s+\[unverified \(unsigned\)\]\s+claims from bob/);
      assert.match(tree.stdout, /\[INVALID \(.*binds to "mallory"/);
      const json = await cli(['thread', question.digest, '--repo', ref, '--trust', trustFile, '--json', '--plain-http']);
      assert.equal(json.code, 0, describeRun(json));
      const all = nodes(json.json[0] as unknown as ThreadNode);
      const genuine = all.find((n) => n.digest === forged['genuineReply']);
      assert.equal(genuine?.verified, true);
      assert.equal(genuine?.signer, 'bob');
      const lie = all.find((n) => n.digest === forged['malloryAsBobReply']);
      assert.equal(lie?.verified, false);
      assert.match(lie?.reason ?? '', /claims to be from "bob"/);
      const only = await cli(['thread', question.digest, '--repo', ref, '--trust', trustFile, '--verified-only', '--json', '--plain-http']);
      assert.ok(
        nodes(only.json[0] as unknown as ThreadNode).every((n) => n.kind === 'bundle' || n.verified),
        only.stdout,
      );
      const discover = await cli([
        'discover',
        question.digest,
        '--repo',
        ref,
        '--trust',
        trustFile,
        '--artifact-type',
        ArtifactType.Receipt,
        '--json',
        '--plain-http',
      ]);
      assert.equal(discover.code, 0, describeRun(discover));
      const rows = new Map(discover.json.map((r) => [r['digest'] as string, r]));
      assert.equal(rows.get(forged['genuineReceipt']!)?.['signer'], 'bob');
      assert.equal(rows.get(forged['unsignedReceipt']!)?.['verified'], false);
      assert.equal(rows.get(forged['strangerReceipt']!)?.['verified'], false);
    });

    it("comms recv delivers bob's genuine reply and refuses the forged ones (exit 2), naming why", async () => {
      const out = path.join(work.path, `recv-${kind}`);
      const r = await cli(['recv', '--repo', ref, '--me', 'alice', '--out', out, '--trust', trustFile, '--json', '--plain-http']);
      assert.equal(r.code, 2, describeRun(r));
      const delivered = r.json.filter((l) => l['path'] !== undefined);
      assert.deepEqual(
        delivered.map((l) => l['digest']),
        [forged['genuineReply']],
      );
      assert.equal((delivered[0]!['verified'] as { identity?: string }).identity, 'bob');
      const refused = new Map(
        r.json.filter((l) => l['error'] !== undefined).map((l) => [l['digest'] as string, l['error'] as { message: string; exitCode: number }]),
      );
      assert.equal(refused.get(forged['unsignedReply']!)?.exitCode, 2);
      assert.match(refused.get(forged['malloryAsBobReply']!)?.message ?? '', /claims to be from "bob".*binds to "mallory"/);
      assert.deepEqual(await readdir(out).then((f) => f.filter((n) => !n.startsWith('.'))), ['message.txt']);
      assert.equal(await readFile(path.join(out, 'message.txt'), 'utf8'), 'yes, go');
    });
  });
}

describe('senders, signing and the trust command', () => {
  let backend: Backend;
  let mock: SigstoreMock;
  before(async () => {
    backend = await startBackend('comms-serve');
    mock = await startSigstoreMock();
  });
  after(async () => {
    await mock?.close();
    await backend?.stop();
  });

  it('library send/ack/reply refuse to push unsigned unless told unsigned: true', async () => {
    const c = countingRepo(backend.freshRepo('unsigned'));
    try {
      await assert.rejects(
        send({ repository: c.repo, recipient: 'bob', sender: 'alice', input: { text: 'x' } }),
        (e: unknown) => e instanceof UsageError && e.code === 'NO_SIGNER',
      );
      assert.equal(c.count('PUT', /./), 0, 'the refused send pushed nothing');
      const m = await send({ repository: c.repo, recipient: 'bob', sender: 'alice', input: { text: 'x' }, signer: signers.alice });
      const pushed = c.count('PUT', /./) + c.count('POST', /./);
      await assert.rejects(
        ack({ repository: c.repo, forDigest: m.digest, status: 'accepted', sender: 'bob' }),
        (e: unknown) => e instanceof UsageError && e.code === 'NO_SIGNER',
      );
      await assert.rejects(
        reply({ repository: c.repo, inReplyTo: m.digest, recipient: 'alice', sender: 'bob', input: { text: 'y' } }),
        (e: unknown) => e instanceof UsageError && e.code === 'NO_SIGNER',
      );
      assert.equal(c.count('PUT', /./) + c.count('POST', /./), pushed, 'the refused ack and reply pushed nothing');
    } finally {
      await c.close();
    }
  });

  it('the CLI default sender is the identity the trust file binds the key to; with none, it refuses (no user@host); ack signs by default', async () => {
    const ref = backend.freshRepo('sender');
    const noSender = { COMMS_SENDER: '' };
    const s = await cli(
      ['send', '--repo', ref, '--to', 'bob', '--message', 'hi', '--key', keyFile('alice'), '--trust', trustFile, '--json', '--plain-http'],
      noSender,
    );
    assert.equal(s.code, 0, describeRun(s));
    const digest = s.json[0]?.['digest'] as string;
    const c = countingRepo(ref);
    try {
      const m = JSON.parse(new TextDecoder().decode((await c.repo.fetchManifest(digest)).bytes)) as ImageManifest;
      assert.equal(m.annotations?.[Annotation.Sender], 'alice');
    } finally {
      await c.close();
    }
    const none = await cli(['send', '--repo', ref, '--to', 'bob', '--message', 'hi', '--key', keyFile('alice'), '--json', '--plain-http'], noSender);
    assert.equal(none.code, 4, describeRun(none));
    assert.match(none.stderr, /--sender is unknown: name it, set COMMS_SENDER, or bind the signing key to an identity in the trust file/);
    const unsignedAck = await cli(['ack', '--repo', ref, '--for', digest, '--status', 'accepted', '--trust', trustFile, '--json', '--plain-http'], noSender);
    assert.equal(unsignedAck.code, 4, `ack without a signer and without --no-sign refuses: ${describeRun(unsignedAck)}`);
    const a = await cli(
      ['ack', '--repo', ref, '--for', digest, '--status', 'accepted', '--key', keyFile('bob'), '--trust', trustFile, '--json', '--plain-http'],
      noSender,
    );
    assert.equal(a.code, 0, describeRun(a));
    assert.equal(a.json[0]?.['signed'], true);
    const t = await cli(['thread', digest, '--repo', ref, '--trust', trustFile, '--plain-http']);
    assert.match(t.stdout, /receipt\s+sha256:\S+\s+\[verified as bob\]\s+from bob/, t.stdout + t.stderr);
  });

  it('keyless with a trust-file line: the default sender is the bound identity, and recv verifies it as such', async () => {
    const ISSUER = 'https://token.actions.githubusercontent.com';
    const SAN = 'https://github.com/acme/app/.github/workflows/notify.yml@refs/heads/main';
    const dir = path.join(work.path, 'keyless');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'trust');
    await writeFile(file, `ci keyless issuer=${ISSUER} identity-regexp=^https://github.com/acme/\nbob ../bob.pub\n`);
    const root = path.join(dir, 'root.json');
    await writeFile(root, JSON.stringify(mock.trustedRoot));
    const ref = backend.freshRepo('keyless');
    const env = { COMMS_SENDER: '', SIGSTORE_ID_TOKEN: mockIdentityToken({ iss: ISSUER, sub: SAN }) };
    const s = await cli(
      [
        'send',
        '--repo',
        ref,
        '--to',
        'bob',
        '--message',
        'deployed',
        '--trust',
        file,
        '--fulcio-url',
        mock.fulcioURL,
        '--rekor-url',
        mock.rekorURL,
        '--json',
        '--plain-http',
      ],
      env,
    );
    assert.equal(s.code, 0, describeRun(s));
    const out = path.join(dir, 'in');
    const r = await cli(['recv', '--repo', ref, '--me', 'bob', '--out', out, '--trust', file, '--trusted-root', root, '--json', '--plain-http'], {
      COMMS_SENDER: '',
    });
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.json[0]?.['sender'], 'ci');
    assert.equal((r.json[0]!['verified'] as { identity?: string }).identity, 'ci');
    // The same message, with a trust file that binds acme's workflows to no one, is refused.
    const other = path.join(dir, 'trust-other');
    await writeFile(other, `ci keyless issuer=${ISSUER} identity-regexp=^https://github.com/other/\n`);
    const refused = await cli([
      'recv',
      '--repo',
      ref,
      '--me',
      'bob',
      '--out',
      path.join(dir, 'in2'),
      '--trust',
      other,
      '--trusted-root',
      root,
      '--json',
      '--plain-http',
    ]);
    assert.equal(refused.code, 2, describeRun(refused));
  });

  it('comms trust add, list and remove edit the file', async () => {
    const file = path.join(work.path, 'cli-trust', 'trust');
    const env = { COMMS_TRUST: file };
    const add = await cli(['trust', 'add', 'alice@example.com', path.join(work.path, 'alice.pub'), '--json'], env);
    assert.equal(add.code, 0, describeRun(add));
    const again = await cli(['trust', 'add', 'alice@example.com', path.join(work.path, 'alice.pub')], env);
    assert.match(again.stdout, /already bound/);
    const ci = await cli(
      ['trust', 'add', 'ci', '--keyless', '--issuer', 'https://i', '--certificate-identity-regexp', '^https://github.com/acme/', '--json'],
      env,
    );
    assert.equal(ci.code, 0, describeRun(ci));
    assert.equal(await readFile(file, 'utf8'), 'alice@example.com ../alice.pub\nci keyless issuer=https://i identity-regexp=^https://github.com/acme/\n');
    const list = await cli(['trust', 'list', '--json'], env);
    const entries = list.json[0]?.['entries'] as { identities: string[]; kind: string; keyId?: string }[];
    assert.deepEqual(
      entries.map((e) => [e.identities[0], e.kind]),
      [
        ['alice@example.com', 'key'],
        ['ci', 'keyless'],
      ],
    );
    assert.equal(entries[0]?.keyId, (signers.alice as { keyId?: string }).keyId);
    const rm = await cli(['trust', 'remove', 'alice@example.com', '--json'], env);
    assert.equal(rm.code, 0, describeRun(rm));
    const missing = await cli(['trust', 'remove', 'alice@example.com', '--json'], env);
    assert.equal(missing.code, 5, describeRun(missing));
    assert.equal(await readFile(file, 'utf8'), 'ci keyless issuer=https://i identity-regexp=^https://github.com/acme/\n');
  });
});
