/**
 * Signing and verification through the real CLI (src/cli/run.ts as a child process), against
 * docker-registry (plain HTTP, no Referrers API: the tag-schema index is used) and an `oci:` layout:
 *
 * - `comms keygen`: a 0600 private key; a second keygen on the same name is refused, nothing changed.
 * - key-signed round trip: `send --key`, `recv --trusted-key` materialises the file.
 * - refusals, each exit 2 with an empty --out and (with --write-receipt) a `rejected` receipt whose
 *   reason says why: another key; no bundle (`send --no-sign`); a bundle whose signature covers
 *   another manifest; a tampered manifest pushed under the inbox tag (the old bundle's subject no
 *   longer matches), and the same with a bundle re-pointed at the tampered digest.
 * - `send` with no signer at all stops, naming the three ways forward, and pushes nothing.
 * - `comms verify --bundle auto|referrers|tag` on both stores.
 * - the bundle comms pushed verifies with @sigstore/verify called directly.
 * - the private key never appears in any output of these runs, nor in the registry's storage or
 *   the layout folders.
 * - keyless: `send` with SIGSTORE_ID_TOKEN against local Fulcio/Rekor stand-ins (@sigstore/mock),
 *   `recv` with identity and issuer policies and a trusted root built from the mock.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleFromJSON, isBundleWithMessageSignature } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { pushBundle } from '../../src/comms/bundle.ts';
import type { Descriptor, ImageManifest } from '../../src/oci/descriptor.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { MediaType } from '../../src/oci/mediatypes.ts';
import { openRepository } from '../../src/oci/open.ts';
import type { Repository } from '../../src/oci/target.ts';
import { Annotation, ArtifactType } from '../../src/protocol/constants.ts';
import { goManifest } from '../../src/protocol/go-json.ts';
import { bundleManifest } from '../../src/protocol/manifest.ts';
import { bundleTag } from '../../src/protocol/tags.ts';
import { keyIdOf } from '../../src/trust/key-id.ts';
import { loadKeySigner } from '../../src/trust/key-signer.ts';
import type { MessageSigner, SignedBundle } from '../../src/trust/signer.ts';
import { cleanEnv, listAll } from '../support/hostile-cli.ts';
import { jsonLines, runComms, type CliResult } from '../support/cli.ts';
import { plantLayoutManifest } from '../support/hostile-store.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { mockIdentityToken, startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.ts';
import { requireTool, skipMessage, tempDir, type TempDir } from '../support/tools.ts';

const PAYLOAD = 'quarterly numbers: 42\n';
const ISSUER = 'https://token.actions.githubusercontent.com';
const IDENTITY = 'https://github.com/acme/app/.github/workflows/notify.yml@refs/heads/main';

let registry: RegistryServer | undefined;
let work: TempDir;
let env: Record<string, string>;
let keys: string;
let payloadFile: string;
/** Every run's output, checked at the end for the private key. */
const transcript: CliResult[] = [];

before(async () => {
  work = await tempDir('comms-signing-');
  keys = path.join(work.path, 'keys');
  await mkdir(keys, { recursive: true });
  await mkdir(path.join(work.path, 'docker'), { recursive: true });
  // The compile cache only spares the children re-parsing the sources; it changes no behaviour.
  env = { ...cleanEnv(path.join(work.path, 'tmp'), path.join(work.path, 'docker')), NODE_COMPILE_CACHE: path.join(work.path, 'ncc') };
  payloadFile = path.join(work.path, 'numbers.txt');
  await writeFile(payloadFile, PAYLOAD);
  if (requireTool('docker-registry')) registry = await startRegistry({ mode: 'plain' });
});

after(async () => {
  await registry?.stop();
  await work?.cleanup();
});

async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
  const r = await runComms(args, { baseEnv: { ...env, ...extraEnv } });
  transcript.push(r);
  return r;
}

function oneJson(r: CliResult): Record<string, unknown> {
  const lines = jsonLines(r.stdout);
  assert.equal(lines.length, 1, r.stdout + r.stderr);
  return lines[0]!;
}

let outCount = 0;
async function freshOut(): Promise<string> {
  const out = path.join(work.path, 'out', String(outCount++));
  await mkdir(out, { recursive: true });
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('comms keygen', () => {
  it('writes a P-256 key pair, the private key with mode 0600, and prints no key material', async () => {
    for (const who of ['alice', 'eve']) {
      const r = await cli(['keygen', '--out', path.join(keys, who), '--json']);
      assert.equal(r.code, 0, r.stderr);
      const res = oneJson(r);
      assert.equal(res['privateKey'], path.join(keys, `${who}.key`));
      assert.equal(res['encrypted'], false);
      assert.equal((await stat(path.join(keys, `${who}.key`))).mode & 0o777, 0o600);
      const pub = createPublicKey(await readFile(path.join(keys, `${who}.pub`), 'utf8'));
      assert.equal(pub.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      assert.equal(res['keyId'], keyIdOf(pub));
    }
  });

  it('refuses to overwrite an existing key: exit 1 (KEY_EXISTS), both files unchanged', async () => {
    const priv = path.join(keys, 'alice.key');
    const pub = path.join(keys, 'alice.pub');
    const before = await Promise.all([priv, pub].map(async (f) => ({ text: await readFile(f, 'utf8'), st: await stat(f) })));
    for (const json of [false, true]) {
      const r = await cli(['keygen', '--out', path.join(keys, 'alice'), ...(json ? ['--json'] : [])]);
      assert.equal(r.code, 1, r.stderr);
      if (json) {
        const e = jsonLines(r.stderr)[0]!['error'] as { code: string; exitCode: number };
        assert.equal(e.code, 'KEY_EXISTS');
        assert.equal(e.exitCode, 1);
      } else {
        assert.match(r.stderr, /alice\.key already exists: keygen never overwrites a key/);
      }
    }
    const afterwards = await Promise.all([priv, pub].map(async (f) => ({ text: await readFile(f, 'utf8'), st: await stat(f) })));
    for (const [i, a] of afterwards.entries()) {
      assert.equal(a.text, before[i]!.text);
      assert.equal(a.st.mode, before[i]!.st.mode);
      assert.equal(a.st.mtimeMs, before[i]!.st.mtimeMs);
      assert.equal(a.st.ino, before[i]!.st.ino);
    }
    assert.deepEqual((await listAll(keys)).sort(), ['alice.key', 'alice.pub', 'eve.key', 'eve.pub']);
  });
});

// ---------------------------------------------------------------------------------------------

interface Store {
  label: string;
  available(): boolean;
  /** The --repo string of a fresh mailbox for one scenario. */
  ref(scenario: string): string;
  /** Where all its bytes live, for the private-key search. */
  storage(): string;
}

const stores: Store[] = [
  {
    label: 'docker-registry',
    available: () => registry !== undefined,
    ref: (s) => `${registry!.host}/signing/${s}`,
    storage: () => registry!.storageDir,
  },
  {
    label: 'oci: layout',
    available: () => true,
    ref: (s) => `oci:${path.join(work.path, 'layouts', s)}`,
    storage: () => path.join(work.path, 'layouts'),
  },
];

interface Sent {
  digest: string;
  tag: string;
  bundle?: { digest: string; tag: string };
}

async function sendSigned(repo: string, extra: string[] = ['--key', path.join(keys, 'alice.key')], extraEnv: Record<string, string> = {}): Promise<Sent> {
  const r = await cli(['send', payloadFile, '--repo', repo, '--to', 'bob', '--sender', 'alice@example.com', '--json', ...extra], extraEnv);
  assert.equal(r.code, 0, r.stderr);
  return oneJson(r) as unknown as Sent;
}

async function fetchJson(repo: Repository, ref: string): Promise<{ desc: Descriptor; bytes: Uint8Array; manifest: ImageManifest }> {
  const m = await repo.fetchManifest(ref);
  return { desc: m.descriptor, bytes: m.bytes, manifest: JSON.parse(new TextDecoder().decode(m.bytes)) as ImageManifest };
}

async function readBlob(repo: Repository, d: Descriptor): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of await repo.fetch(d)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A signer that hands back a bundle made elsewhere: what an attacker can push without a key. */
function replaying(bundle: () => Promise<SignedBundle>): MessageSigner {
  return { kind: 'key', sign: () => bundle() };
}

/** recv with alice's key trusted and --write-receipt; asserts exit 2, the message, an empty --out. */
async function expectRefused(repoRef: string, says: RegExp, trusted = 'alice.pub'): Promise<CliResult> {
  const out = await freshOut();
  const r = await cli(['recv', '--repo', repoRef, '--me', 'bob', '--out', out, '--trusted-key', path.join(keys, trusted), '--write-receipt']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /comms: refused sha256:[0-9a-f]{64}: /);
  assert.match(r.stderr, says);
  assert.doesNotMatch(r.stdout, /received/);
  assert.deepEqual(await listAll(out), [], '--out stays empty');
  return r;
}

/** The rejected receipt for `digest`, read back through `comms discover --json`. */
async function rejectedReceipt(repoRef: string, digest: string): Promise<Record<string, string>> {
  const r = await cli(['discover', digest, '--repo', repoRef, '--artifact-type', ArtifactType.Receipt, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const receipts = jsonLines(r.stdout).map((l) => l['annotations'] as Record<string, string>);
  assert.equal(receipts.length, 1, r.stdout);
  const a = receipts[0]!;
  assert.equal(a[Annotation.ReceiptStatus], 'rejected');
  assert.equal(a[Annotation.ReceiptVerified], 'false');
  assert.equal(a[Annotation.ReceiptFor], digest);
  assert.equal(a[Annotation.Sender], 'bob');
  return a;
}

for (const store of stores) {
  describe(`key-signed messages through ${store.label}`, () => {
    let sent: Sent;
    let repoRef: string;
    let repo: Repository;

    before(async () => {
      if (!store.available()) return;
      repoRef = store.ref('signed');
      sent = await sendSigned(repoRef);
      repo = await openRepository(repoRef);
    });

    it('send --key pushes a bundle; recv --trusted-key verifies it and materialises the file', async (t) => {
      if (!store.available()) return t.skip(skipMessage('docker-registry'));
      assert.ok(sent.bundle, 'send reports the bundle');
      assert.match(sent.bundle.tag, new RegExp(`^bundle-${sent.digest.slice(7, 19)}-\\d+-[0-9a-f]{6}$`));
      const out = await freshOut();
      const r = await cli([
        'recv',
        '--repo',
        repoRef,
        '--me',
        'bob',
        '--out',
        out,
        '--trusted-key',
        path.join(keys, 'eve.pub'),
        '--trusted-key',
        path.join(keys, 'alice.pub'),
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const m = oneJson(r);
      assert.equal(m['digest'], sent.digest);
      const alice = createPublicKey(await readFile(path.join(keys, 'alice.pub'), 'utf8'));
      assert.deepEqual(m['verified'], { kind: 'key', identity: keyIdOf(alice) });
      assert.deepEqual(await listAll(out), ['numbers.txt']);
      assert.equal(await readFile(path.join(out, 'numbers.txt'), 'utf8'), PAYLOAD);
    });

    it('the pushed bundle verifies with @sigstore/verify called directly, over the manifest bytes', async (t) => {
      if (!store.available()) return t.skip(skipMessage('docker-registry'));
      const message = await fetchJson(repo, sent.digest);
      const b = await fetchJson(repo, sent.bundle!.digest);
      assert.equal(b.manifest.artifactType, ArtifactType.Bundle);
      assert.equal(b.manifest.subject?.digest, sent.digest);
      const layer = b.manifest.layers[0]!;
      assert.equal(layer.mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
      const json = JSON.parse((await readBlob(repo, layer)).toString('utf8')) as { messageSignature: { messageDigest: { digest: string } } };
      assert.equal(
        `sha256:${Buffer.from(json.messageSignature.messageDigest.digest, 'base64').toString('hex')}`,
        sent.digest,
        'the signed digest is the manifest digest',
      );

      const bundle = bundleFromJSON(json);
      assert.ok(isBundleWithMessageSignature(bundle));
      const alice = createPublicKey(await readFile(path.join(keys, 'alice.pub'), 'utf8'));
      const material = toTrustMaterial(TrustedRoot.fromJSON({}), {
        [keyIdOf(alice)]: { rawBytes: alice.export({ format: 'der', type: 'spki' }), keyDetails: 5 /* PKIX_ECDSA_P256_SHA_256 */ },
      });
      const verifier = new Verifier(material, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
      const signer = verifier.verify(toSignedEntity(bundle, Buffer.from(message.bytes)));
      assert.ok(signer.key.equals(alice));
      const altered = Buffer.from(message.bytes);
      altered[altered.length - 3]! ^= 1;
      assert.throws(() => verifier.verify(toSignedEntity(bundle, altered)), 'and fails on other bytes');
    });

    it('recv trusting ANOTHER key: exit 2, --out empty, a rejected receipt says which key signed', async (t) => {
      if (!store.available()) return t.skip(skipMessage('docker-registry'));
      await expectRefused(repoRef, /which is not one of the trusted keys/, 'eve.pub');
      const receipt = await rejectedReceipt(repoRef, sent.digest);
      assert.match(receipt[Annotation.ReceiptReason]!, /^verification failed: .*which is not one of the trusted keys/);
    });

    it('comms verify --bundle auto|referrers|tag finds and verifies the bundle; another key is exit 2', async (t) => {
      if (!store.available()) return t.skip(skipMessage('docker-registry'));
      for (const source of ['auto', 'referrers', 'tag']) {
        const r = await cli([
          'verify',
          '--repo',
          repoRef,
          '--digest',
          sent.digest,
          '--trusted-key',
          path.join(keys, 'alice.pub'),
          '--bundle',
          source,
          '--json',
        ]);
        assert.equal(r.code, 0, `${source}: ${r.stderr}`);
        const v = oneJson(r);
        assert.equal(v['verified'], true);
        assert.equal(v['kind'], 'key');
        assert.equal(v['bundle'], sent.bundle!.digest, source);
      }
      const r = await cli(['verify', '--repo', repoRef, '--digest', sent.digest, '--trusted-key', path.join(keys, 'eve.pub')]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /not one of the trusted keys/);
    });

    if (store.label === 'docker-registry') {
      it('on docker-registry, "referrers" is the tag-schema index (no Referrers API), "tag" the bundle- tags: each source is its own', async (t) => {
        if (!store.available()) return t.skip(skipMessage('docker-registry'));
        const api = await fetch(`${registry!.url}/v2/signing/signed/referrers/${sent.digest}`);
        await api.arrayBuffer();
        assert.equal(api.status, 404, 'docker-registry has no Referrers API');
        const tags = (await (await fetch(`${registry!.url}/v2/signing/signed/tags/list`)).json()) as { tags: string[] };
        assert.ok(tags.tags.includes(`sha256-${sent.digest.slice(7)}`), 'the tag-schema index exists');

        // A bundle reachable ONLY through its bundle- tag (no index entry): `tag` finds it, `referrers` does not.
        const tagOnlyRef = store.ref('tag-only');
        const unsigned = await sendSigned(tagOnlyRef, ['--no-sign']);
        const tagOnly = await openRepository(tagOnlyRef);
        const message = await fetchJson(tagOnly, unsigned.digest);
        const signed = await (await loadKeySigner(path.join(keys, 'alice.key'))).sign(message.bytes);
        const layer: Descriptor = { mediaType: ArtifactType.Bundle, digest: digestOf(signed.bytes), size: signed.bytes.length };
        await tagOnly.push(layer, signed.bytes);
        const built = bundleManifest(layer, message.desc);
        await tagOnly.pushManifest(built.descriptor, built.bytes, bundleTag(unsigned.digest, new Date()));
        const verify = (source: string) =>
          cli(['verify', '--repo', tagOnlyRef, '--digest', unsigned.digest, '--trusted-key', path.join(keys, 'alice.pub'), '--bundle', source]);
        assert.equal((await verify('tag')).code, 0);
        assert.equal((await verify('auto')).code, 0);
        const viaIndex = await verify('referrers');
        assert.equal(viaIndex.code, 2, viaIndex.stderr);
        assert.match(viaIndex.stderr, /no signature bundle refers to/);
      });
    }

    it('a message sent with --no-sign (no bundle): exit 2, --out empty, rejected receipt', async (t) => {
      if (!store.available()) return t.skip(skipMessage('docker-registry'));
      const ref = store.ref('unsigned');
      const s = await sendSigned(ref, ['--no-sign']);
      assert.equal(s.bundle, undefined);
      await expectRefused(ref, /no signature bundle refers to sha256:/);
      assert.match((await rejectedReceipt(ref, s.digest))[Annotation.ReceiptReason]!, /^verification failed: no signature bundle refers to/);
    });

    it('a bundle whose subject is this message but whose signature (by the trusted key) covers another manifest: exit 2', async (t) => {
      if (!store.available()) return t.skip(skipMessage('docker-registry'));
      const ref = store.ref('other-digest');
      const s = await sendSigned(ref, ['--no-sign']);
      const r = await openRepository(ref);
      const message = await fetchJson(r, s.digest);
      // A genuine signature of alice's over a different manifest (the one she signed above).
      const otherBytes = (await fetchJson(repo, sent.digest)).bytes;
      const alice = await loadKeySigner(path.join(keys, 'alice.key'));
      await pushBundle(
        r,
        message.desc,
        message.bytes,
        replaying(() => alice.sign(otherBytes)),
      );
      await expectRefused(ref, new RegExp(`the bundle covers ${sent.digest} but the message is ${s.digest}: it is the signature of another message`));
      assert.match((await rejectedReceipt(ref, s.digest))[Annotation.ReceiptReason]!, /signature of another message/);
    });

    for (const repoint of [false, true]) {
      it(`a tampered manifest under the inbox tag${repoint ? ', with the bundle re-pointed at it' : ' (the bundle still names the original)'}: exit 2`, async (t) => {
        if (!store.available()) return t.skip(skipMessage('docker-registry'));
        const ref = store.ref(repoint ? 'tampered-repointed' : 'tampered');
        const s = await sendSigned(ref);
        const r = await openRepository(ref);
        const original = await fetchJson(r, s.digest);
        // The attacker rewrites who it is from and what it is called, and re-tags it.
        const m = structuredClone(original.manifest);
        m.annotations = { ...m.annotations, [Annotation.Sender]: 'ceo@example.com', [Annotation.Filename]: 'invoice.pdf' };
        const bytes = new TextEncoder().encode(goManifest(m));
        const desc: Descriptor = { mediaType: MediaType.ImageManifest, digest: digestOf(bytes), size: bytes.length };
        await r.pushManifest(desc, bytes, s.tag);
        assert.equal((await r.resolve(s.tag)).digest, desc.digest, 'the inbox tag now names the tampered manifest');
        if (repoint) {
          // The original bundle blob, now under a bundle manifest whose subject is the tampered digest.
          const b = await fetchJson(r, s.bundle!.digest);
          const blob = await readBlob(r, b.manifest.layers[0]!);
          await pushBundle(
            r,
            desc,
            bytes,
            replaying(async () => ({ json: JSON.parse(blob.toString('utf8')) as object, bytes: blob, mediaType: b.manifest.layers[0]!.mediaType })),
          );
          await expectRefused(ref, new RegExp(`the bundle covers ${s.digest} but the message is ${desc.digest}`));
          assert.match((await rejectedReceipt(ref, desc.digest))[Annotation.ReceiptReason]!, /signature of another message/);
        } else {
          await expectRefused(ref, new RegExp(`no signature bundle refers to ${desc.digest}`));
          assert.match((await rejectedReceipt(ref, desc.digest))[Annotation.ReceiptReason]!, /no signature bundle refers to/);
        }
      });
    }

    it('a forged copy with the same message id, sorting first, does not suppress the genuine message', async (t) => {
      if (!store.available()) return t.skip(skipMessage('docker-registry'));
      const ref = store.ref('same-id');
      const s = await sendSigned(ref);
      const r = await openRepository(ref);
      const original = await fetchJson(r, s.digest);
      // Same dockercomms.message.id, an hour older, under an inbox tag that lists first.
      const m = structuredClone(original.manifest);
      const created = new Date(Date.parse(m.annotations![Annotation.CreatedAt]!) - 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      m.annotations = { ...m.annotations, [Annotation.Filename]: 'invoice.pdf', [Annotation.CreatedAt]: created };
      const bytes = new TextEncoder().encode(goManifest(m));
      const forged: Descriptor = { mediaType: MediaType.ImageManifest, digest: digestOf(bytes), size: bytes.length };
      const forgedTag = s.tag.replace(/-[0-9a-f]{8}-([0-9a-f]{8})$/, '-00000000-$1');
      assert.ok(forgedTag < s.tag);
      await r.pushManifest(forged, bytes, forgedTag);

      const out = await freshOut();
      const res = await cli(['recv', '--repo', ref, '--me', 'bob', '--out', out, '--trusted-key', path.join(keys, 'alice.pub'), '--json']);
      assert.equal(res.code, 2, 'the forgery is reported');
      const lines = jsonLines(res.stdout);
      const refused = lines.filter((l) => 'error' in l);
      const received = lines.filter((l) => !('error' in l));
      assert.deepEqual(
        refused.map((l) => l['digest']),
        [forged.digest],
      );
      assert.match((refused[0]!['error'] as { message: string }).message, /no signature bundle refers to/);
      assert.deepEqual(
        received.map((l) => l['digest']),
        [s.digest],
        'the genuine message is still delivered',
      );
      assert.deepEqual(await listAll(out), ['numbers.txt']);
      assert.equal(await readFile(path.join(out, 'numbers.txt'), 'utf8'), PAYLOAD);
    });

    it('a bundle whose blob is gone is a refusal of that message (exit 2), not the end of the run', async (t) => {
      if (!store.available()) return t.skip(skipMessage('docker-registry'));
      const ref = store.ref('bundle-blob-gone');
      const good = await sendSigned(ref);
      const orphan = await sendSigned(ref, ['--no-sign']);
      const r = await openRepository(ref);
      const message = await fetchJson(r, orphan.digest);
      const pushed = await pushBundle(r, message.desc, message.bytes, await loadKeySigner(path.join(keys, 'alice.key')));
      const layer = (await fetchJson(r, pushed.digest)).manifest.layers[0]!;
      // Deleted after the bundle manifest was pushed: a registry with deletion on allows it.
      await r.delete(layer);
      assert.equal(await r.exists(layer), false);

      const out = await freshOut();
      const res = await cli(['recv', '--repo', ref, '--me', 'bob', '--out', out, '--trusted-key', path.join(keys, 'alice.pub'), '--json']);
      assert.equal(res.code, 2, res.stdout + res.stderr);
      const lines = jsonLines(res.stdout);
      assert.deepEqual(
        lines.filter((l) => !('error' in l)).map((l) => l['digest']),
        [good.digest],
      );
      const refused = lines.filter((l) => 'error' in l);
      assert.deepEqual(
        refused.map((l) => l['digest']),
        [orphan.digest],
      );
      assert.equal((refused[0]!['error'] as { exitCode: number }).exitCode, 2);
      assert.deepEqual(await listAll(out), ['numbers.txt']);
    });

    if (store.label === 'oci: layout') {
      it('junk planted under bundle- tags of the message (not JSON, over 4 MiB) does not block the genuine bundle', async () => {
        const ref = store.ref('junk-bundle-tags');
        const s = await sendSigned(ref);
        const root = ref.slice('oci:'.length);
        const hex12 = s.digest.slice(7, 19);
        await plantLayoutManifest(root, `bundle-${hex12}-1-000000`, new TextEncoder().encode('this is not JSON'));
        await plantLayoutManifest(root, `bundle-${hex12}-1-000001`, new TextEncoder().encode(`{"schemaVersion":2,"pad":"${'x'.repeat(5 * 1024 * 1024)}"}`));
        const out = await freshOut();
        const r = await cli(['recv', '--repo', ref, '--me', 'bob', '--out', out, '--trusted-key', path.join(keys, 'alice.pub'), '--json']);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.equal(oneJson(r)['digest'], s.digest);
        assert.deepEqual(await listAll(out), ['numbers.txt']);
      });
    }

    it('send with no signer at all stops, naming --key, keyless in CI and --no-sign, and pushes nothing', async (t) => {
      if (!store.available()) return t.skip(skipMessage('docker-registry'));
      const ref = store.ref('no-signer');
      const r = await cli(['send', payloadFile, '--repo', ref, '--to', 'bob']);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /--key/);
      assert.match(r.stderr, /keylessly in CI \(SIGSTORE_ID_TOKEN, or GitHub Actions/);
      assert.match(r.stderr, /--no-sign/);
      if (store.label === 'docker-registry') {
        const tags = await fetch(`${registry!.url}/v2/signing/no-signer/tags/list`);
        await tags.arrayBuffer();
        assert.equal(tags.status, 404, 'the repository was never created');
      } else {
        assert.deepEqual(await listAll(path.join(work.path, 'layouts', 'no-signer')), []);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------

describe('keyless signing through the CLI against local Fulcio and Rekor (docker-registry)', () => {
  let mock: SigstoreMock;
  let rootFile: string;
  let repoRef: string;
  let sent: Sent;

  before(async () => {
    if (registry === undefined) return;
    mock = await startSigstoreMock();
    rootFile = path.join(work.path, 'trusted_root.json');
    await writeFile(rootFile, JSON.stringify(mock.trustedRoot));
    repoRef = `${registry.host}/signing/keyless`;
    sent = await sendSigned(repoRef, ['--fulcio-url', mock.fulcioURL, '--rekor-url', mock.rekorURL], {
      SIGSTORE_ID_TOKEN: mockIdentityToken({ iss: ISSUER, sub: IDENTITY }),
    });
  });
  after(async () => {
    await mock?.close();
  });

  const keylessRecv = async (identity: string[], issuer: string) => {
    const out = await freshOut();
    const r = await cli([
      'recv',
      '--repo',
      repoRef,
      '--me',
      'bob',
      '--out',
      out,
      ...identity,
      '--certificate-oidc-issuer',
      issuer,
      '--trusted-root',
      rootFile,
      '--json',
    ]);
    return { r, out };
  };

  it('send signs keylessly with the OIDC token from SIGSTORE_ID_TOKEN (Fulcio certificate, Rekor entry)', (t) => {
    if (registry === undefined) return t.skip(skipMessage('docker-registry'));
    assert.ok(sent.bundle);
    assert.ok(mock.fulcioRequests.includes('POST /api/v2/signingCert'));
    assert.ok(mock.rekorRequests.includes('POST /api/v1/log/entries'));
  });

  it('recv with the right identity and issuer materialises the file', async (t) => {
    if (registry === undefined) return t.skip(skipMessage('docker-registry'));
    const { r, out } = await keylessRecv(['--certificate-identity', IDENTITY], ISSUER);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(oneJson(r)['verified'], { kind: 'keyless', identity: IDENTITY, issuer: ISSUER });
    assert.equal(await readFile(path.join(out, 'numbers.txt'), 'utf8'), PAYLOAD);

    const re = await keylessRecv(['--certificate-identity-regexp', '^https://github\\.com/acme/app/'], ISSUER);
    assert.equal(re.r.code, 0, re.r.stderr);
  });

  const refusals: [string, string[], string, RegExp][] = [
    ['a wrong identity', ['--certificate-identity', 'https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main'], ISSUER, /identity mismatch/],
    ['an identity regexp that does not match', ['--certificate-identity-regexp', '^https://github\\.com/other-org/'], ISSUER, /identity mismatch/],
    ['a wrong issuer', ['--certificate-identity', IDENTITY], 'https://accounts.google.com', /issuer mismatch/],
  ];
  for (const [what, identity, issuer, says] of refusals) {
    it(`recv with ${what}: exit 2, --out empty`, async (t) => {
      if (registry === undefined) return t.skip(skipMessage('docker-registry'));
      const { r, out } = await keylessRecv(identity, issuer);
      assert.equal(r.code, 2, r.stderr);
      const error = oneJson(r)['error'] as { code: string; message: string; exitCode: number };
      assert.equal(error.exitCode, 2);
      assert.match(error.message, says);
      assert.deepEqual(await listAll(out), []);
    });
  }

  it('comms verify accepts the keyless bundle with the right policy and refuses a wrong identity', async (t) => {
    if (registry === undefined) return t.skip(skipMessage('docker-registry'));
    const ok = await cli([
      'verify',
      '--repo',
      repoRef,
      '--digest',
      sent.digest,
      '--certificate-identity',
      IDENTITY,
      '--certificate-oidc-issuer',
      ISSUER,
      '--trusted-root',
      rootFile,
      '--json',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(oneJson(ok)['identity'], IDENTITY);
    const bad = await cli([
      'verify',
      '--repo',
      repoRef,
      '--digest',
      sent.digest,
      '--certificate-identity',
      'someone@example.com',
      '--certificate-oidc-issuer',
      ISSUER,
      '--trusted-root',
      rootFile,
    ]);
    assert.equal(bad.code, 2, bad.stderr);
  });
});

// ---------------------------------------------------------------------------------------------

describe('the private key stays private', () => {
  it('a damaged key file is refused without echoing its contents', async () => {
    const pem = await readFile(path.join(keys, 'alice.key'), 'utf8');
    const damaged = path.join(keys, 'damaged.key');
    const lines = pem.split('\n');
    lines[1] = `${lines[1]!.slice(0, 10)}!!${lines[1]!.slice(12)}`;
    await writeFile(damaged, lines.join('\n'), { mode: 0o600 });
    const r = await cli(['send', payloadFile, '--repo', `oci:${path.join(work.path, 'layouts', 'damaged')}`, '--to', 'bob', '--key', damaged]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /damaged\.key/);
    assert.ok(!r.stderr.includes(lines[1]!.slice(12)), 'no key text in the error');
  });

  it("alice's private key appears in no output of this suite and nowhere in the registry's storage or the layouts", async () => {
    const pem = await readFile(path.join(keys, 'alice.key'), 'utf8');
    const body = pem.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));
    const d = createPrivateKey(pem).export({ format: 'jwk' }).d!;
    const scalar = Buffer.from(d, 'base64url');
    // The PEM body, its first two lines (they carry the secret scalar), and the scalar itself in
    // every encoding it could have been written in.
    const needles: Buffer[] = [body.join(''), body[0]!, body[1]!, d, scalar.toString('base64'), scalar.toString('hex')]
      .map((s) => Buffer.from(s))
      .concat([scalar]);
    // The needles are right: the PEM holds its body lines, the joined body is the DER in base64,
    // and the DER holds the scalar.
    for (const n of needles.slice(1, 3)) assert.ok(Buffer.from(pem).includes(n));
    const der = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
    assert.equal(body.join(''), der.toString('base64'));
    assert.ok(der.includes(scalar));
    assert.ok(transcript.length >= 20, `${transcript.length} runs recorded`);
    for (const r of transcript) {
      for (const n of needles) assert.ok(!Buffer.from(r.stdout + r.stderr).includes(n), 'a run printed the private key');
    }
    const roots = [path.join(work.path, 'layouts'), ...(registry ? [registry.storageDir] : [])];
    let files = 0;
    for (const root of roots) {
      for (const rel of await listAll(root)) {
        const file = path.join(root, rel);
        if (!(await stat(file)).isFile()) continue;
        files++;
        const content = await readFile(file);
        for (const n of needles) assert.ok(!content.includes(n), `${file} holds the private key`);
      }
    }
    assert.ok(files > 20, `${files} stored files searched`);
  });
});
