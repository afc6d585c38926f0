/**
 * Local-key signing and verification: keygen, the key signer, verifyMessageBundle's refusals, and
 * proof that the bundle is a standard Sigstore bundle (checked with @sigstore/bundle and
 * @sigstore/verify directly, not through comms' wrapper).
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUNDLE_V03_MEDIA_TYPE, bundleFromJSON, isBundleWithMessageSignature, isBundleWithPublicKey } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { CommsError, ExitCode, NotFoundError, UsageError, VerificationError } from '../../src/errors.ts';
import { KeyError } from '../../src/trust/errors.ts';
import { keyIdOf } from '../../src/trust/key-id.ts';
import { createKeySigner, loadKeySigner } from '../../src/trust/key-signer.ts';
import { generateKeyPair } from '../../src/trust/keygen.ts';
import { checkTrustPolicy, senderMatches, verifyMessageBundle, type TrustPolicy } from '../../src/trust/verify.ts';
import { rejection } from '../support/rejection.ts';

const FIXTURES = new URL('../../fixtures/keys/', import.meta.url);
const manifest = new TextEncoder().encode('{"schemaVersion":2,"artifactType":"application/vnd.dockercomms.message.v1"}');
const digestOf = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let dir: string;
let alicePriv: string;
let alicePub: string;
let bobPub: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'comms-trust-key-'));
  alicePriv = join(dir, 'alice.key');
  alicePub = join(dir, 'alice.pub');
  await generateKeyPair({ privateKeyPath: alicePriv, publicKeyPath: alicePub });
  await generateKeyPair({ privateKeyPath: join(dir, 'bob.key'), publicKeyPath: join(dir, 'bob.pub') });
  bobPub = join(dir, 'bob.pub');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function expectVerificationError(p: Promise<unknown>, code: string, text: RegExp): Promise<VerificationError> {
  const err = await rejection(p, 'verification was expected to fail');
  assert.ok(err instanceof VerificationError, `expected VerificationError, got ${String(err)}`);
  assert.equal(err.exitCode, ExitCode.VERIFICATION);
  assert.equal(err.code, code, err.message);
  assert.match(err.message, text);
  return err;
}

describe('keygen', () => {
  it('writes a P-256 PKCS#8 private key with mode 0600 and an SPKI public key with mode 0644, and returns the key id', async () => {
    const priv = join(dir, 'k1.key');
    const pub = join(dir, 'k1.pub');
    const { keyId } = await generateKeyPair({ privateKeyPath: priv, publicKeyPath: pub });
    assert.equal((await stat(priv)).mode & 0o777, 0o600);
    assert.equal((await stat(pub)).mode & 0o777, 0o644);
    const privPem = await readFile(priv, 'utf8');
    const pubPem = await readFile(pub, 'utf8');
    assert.match(privPem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.match(pubPem, /^-----BEGIN PUBLIC KEY-----\n/);
    const key = createPublicKey(pubPem);
    assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const der = key.export({ format: 'der', type: 'spki' });
    assert.equal(keyId, createHash('sha256').update(der).digest('hex'));
  });

  it('refuses to overwrite an existing private key, and writes nothing at all', async () => {
    const sub = await mkdtemp(join(dir, 'exists-'));
    const priv = join(sub, 'k.key');
    await writeFile(priv, 'precious');
    const err = await generateKeyPair({ privateKeyPath: priv, publicKeyPath: join(sub, 'k.pub') }).catch((e: unknown) => e);
    assert.ok(err instanceof KeyError);
    assert.equal(err.code, 'KEY_EXISTS');
    assert.equal(err.exitCode, ExitCode.FAILURE);
    assert.equal(await readFile(priv, 'utf8'), 'precious');
    assert.deepEqual(await readdir(sub), ['k.key']);
  });

  it('refuses when only the public key exists, and removes nothing of the existing file nor leaves a private key', async () => {
    const sub = await mkdtemp(join(dir, 'pub-exists-'));
    const pub = join(sub, 'k.pub');
    await writeFile(pub, 'old public key');
    const err = await generateKeyPair({ privateKeyPath: join(sub, 'k.key'), publicKeyPath: pub }).catch((e: unknown) => e);
    assert.ok(err instanceof KeyError);
    assert.equal(err.code, 'KEY_EXISTS');
    assert.deepEqual(await readdir(sub), ['k.pub']);
    assert.equal(await readFile(pub, 'utf8'), 'old public key');
  });

  it('encrypts the private key when given a passphrase; the right passphrase loads it, a wrong or missing one fails clearly', async () => {
    const priv = join(dir, 'enc.key');
    const pub = join(dir, 'enc.pub');
    const { keyId } = await generateKeyPair({ privateKeyPath: priv, publicKeyPath: pub, passphrase: 'correct horse' });
    const pem = await readFile(priv, 'utf8');
    assert.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);

    const signer = await loadKeySigner(priv, { passphrase: 'correct horse' });
    assert.equal(signer.keyId, keyId);
    const signed = await signer.sign(manifest);
    const verified = await verifyMessageBundle(signed.bytes, manifest, digestOf(manifest), { trustedKeys: [await readFile(pub, 'utf8')] });
    assert.equal(verified.keyId, keyId);

    const wrong = await loadKeySigner(priv, { passphrase: 'battery staple' }).catch((e: unknown) => e);
    assert.ok(wrong instanceof KeyError);
    assert.equal(wrong.code, 'KEY_PASSPHRASE_WRONG');
    assertNoKeyMaterial(wrong, pem);

    const missing = await loadKeySigner(priv).catch((e: unknown) => e);
    assert.ok(missing instanceof KeyError);
    assert.equal(missing.code, 'KEY_PASSPHRASE_REQUIRED');
    assertNoKeyMaterial(missing, pem);
  });
});

describe('key signer', () => {
  it('refuses keys that are not ECDSA P-256, and garbage, with typed errors that never echo the key', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const ed = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    for (const [pem, code] of [
      [p384, 'KEY_UNSUPPORTED'],
      [ed, 'KEY_UNSUPPORTED'],
      [await readFile(alicePub, 'utf8'), 'KEY_INVALID'],
      ['-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', 'KEY_INVALID'],
    ] as const) {
      const err = (() => {
        try {
          createKeySigner(pem);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      assert.ok(err instanceof KeyError, `expected KeyError for ${code}`);
      assert.equal(err.code, code);
      assertNoKeyMaterial(err, pem);
    }
    const absent = await loadKeySigner(join(dir, 'no-such.key')).catch((e: unknown) => e);
    assert.ok(absent instanceof NotFoundError);
  });

  it('produces a v0.3 message-signature bundle over the manifest bytes, hinting the key id, with no tlog entry', async () => {
    const signer = await loadKeySigner(alicePriv);
    assert.equal(signer.kind, 'key');
    const signed = await signer.sign(manifest);
    assert.equal(signed.mediaType, BUNDLE_V03_MEDIA_TYPE);
    const json = signed.json as {
      mediaType: string;
      messageSignature: { messageDigest: { algorithm: string; digest: string } };
      verificationMaterial: { publicKey: { hint: string }; tlogEntries?: unknown[] };
    };
    assert.equal(json.mediaType, BUNDLE_V03_MEDIA_TYPE);
    assert.equal(json.messageSignature.messageDigest.algorithm, 'SHA2_256');
    assert.equal(`sha256:${Buffer.from(json.messageSignature.messageDigest.digest, 'base64').toString('hex')}`, digestOf(manifest));
    assert.equal(json.verificationMaterial.publicKey.hint, signer.keyId);
    // protobuf JSON omits an empty repeated field.
    assert.deepEqual(json.verificationMaterial.tlogEntries ?? [], []);
    // The blob is the canonical form of the JSON: re-parsing gives the same object.
    assert.deepEqual(JSON.parse(new TextDecoder().decode(signed.bytes)), JSON.parse(JSON.stringify(json)));
  });

  it('stops with AbortError when the signal is already aborted', async () => {
    const signer = await loadKeySigner(alicePriv);
    const err = await signer.sign(manifest, { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    assert.ok(err instanceof CommsError);
    assert.equal(err.code, 'ABORTED');
  });
});

describe('standard bundle (checked without comms)', () => {
  it('@sigstore/bundle accepts it and @sigstore/verify verifies it with the public key', async () => {
    const signer = await loadKeySigner(alicePriv);
    const signed = await signer.sign(manifest);
    const bundle = bundleFromJSON(JSON.parse(new TextDecoder().decode(signed.bytes)));
    assert.ok(isBundleWithMessageSignature(bundle));
    assert.ok(isBundleWithPublicKey(bundle));

    const publicKey = createPublicKey(await readFile(alicePub, 'utf8'));
    const keys = {
      [keyIdOf(publicKey)]: { rawBytes: publicKey.export({ format: 'der', type: 'spki' }), keyDetails: 5 /* PKIX_ECDSA_P256_SHA_256 */ },
    };
    const material = toTrustMaterial(TrustedRoot.fromJSON({}), keys);
    const verifier = new Verifier(material, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
    const signerInfo = verifier.verify(toSignedEntity(bundle, Buffer.from(manifest)));
    assert.ok(signerInfo.key.equals(publicKey));

    // The same direct check fails on other bytes, so it is a real check.
    assert.throws(() => verifier.verify(toSignedEntity(bundle, Buffer.from('something else'))));
  });
});

describe('verifyMessageBundle with keys', () => {
  let signed: Uint8Array;
  let alicePem: string;
  let bobPem: string;
  before(async () => {
    signed = (await (await loadKeySigner(alicePriv)).sign(manifest)).bytes;
    alicePem = await readFile(alicePub, 'utf8');
    bobPem = await readFile(bobPub, 'utf8');
  });

  it('accepts the signature with the right public key, among others', async () => {
    const verified = await verifyMessageBundle(signed, manifest, digestOf(manifest), { trustedKeys: [bobPem, alicePem] });
    assert.equal(verified.kind, 'key');
    assert.equal(verified.keyId, keyIdOf(createPublicKey(alicePem)));
    assert.equal(verified.identity, verified.keyId);
  });

  it('refuses a signature by a key that is not trusted', async () => {
    await expectVerificationError(
      verifyMessageBundle(signed, manifest, digestOf(manifest), { trustedKeys: [bobPem] }),
      'UNTRUSTED_KEY',
      /not one of the trusted keys/,
    );
  });

  it('refuses a bundle made for other bytes: the bundle covers another digest', async () => {
    const other = new TextEncoder().encode('{"schemaVersion":2,"other":true}');
    const err = await expectVerificationError(
      verifyMessageBundle(signed, other, digestOf(other), { trustedKeys: [alicePem] }),
      'BUNDLE_DIGEST_MISMATCH',
      /the bundle covers sha256:[0-9a-f]{64} but the message is sha256:[0-9a-f]{64}/,
    );
    assert.ok(err.message.includes(digestOf(manifest)) && err.message.includes(digestOf(other)));
  });

  it('refuses tampered manifest bytes that no longer hash to the message digest', async () => {
    const tampered = Uint8Array.from(manifest);
    tampered[5] = tampered[5]! ^ 1;
    await expectVerificationError(
      verifyMessageBundle(signed, tampered, digestOf(manifest), { trustedKeys: [alicePem] }),
      'ARTIFACT_DIGEST_MISMATCH',
      /manifest was altered/,
    );
  });

  it('refuses a bundle whose digest was rewritten to match tampered bytes: the signature does not verify', async () => {
    const tampered = Uint8Array.from(manifest);
    tampered[5] = tampered[5]! ^ 1;
    const json = JSON.parse(new TextDecoder().decode(signed));
    json.messageSignature.messageDigest.digest = createHash('sha256').update(tampered).digest('base64');
    const forged = new TextEncoder().encode(JSON.stringify(json));
    await expectVerificationError(
      verifyMessageBundle(forged, tampered, digestOf(tampered), { trustedKeys: [alicePem] }),
      'SIGNATURE_INVALID',
      /does not verify/,
    );
  });

  it('refuses corrupted bundle JSON, a bundle with fields missing, and a non-bundle', async () => {
    const text = new TextDecoder().decode(signed);
    await expectVerificationError(
      verifyMessageBundle(new TextEncoder().encode(text.slice(0, -7)), manifest, digestOf(manifest), { trustedKeys: [alicePem] }),
      'BUNDLE_MALFORMED',
      /not JSON/,
    );
    const json = JSON.parse(text);
    delete json.messageSignature.signature;
    await expectVerificationError(
      verifyMessageBundle(new TextEncoder().encode(JSON.stringify(json)), manifest, digestOf(manifest), { trustedKeys: [alicePem] }),
      'BUNDLE_MALFORMED',
      /not a valid Sigstore bundle/,
    );
    await expectVerificationError(
      verifyMessageBundle(new TextEncoder().encode('[1,2,3]'), manifest, digestOf(manifest), { trustedKeys: [alicePem] }),
      'BUNDLE_MALFORMED',
      /not a valid Sigstore bundle/,
    );
  });

  it('refuses to verify with an empty policy, or one that names an issuer without an identity', async () => {
    for (const policy of [{}, { trustedKeys: [] }, { certificateOidcIssuer: 'https://issuer.example' }] as TrustPolicy[]) {
      await expectVerificationError(verifyMessageBundle(signed, manifest, digestOf(manifest), policy), 'POLICY_EMPTY', /./);
    }
  });

  it('a private key, an encrypted key or garbage as a trusted key: checkTrustPolicy refuses it (exit 4), and verification never half-uses it', async () => {
    const privatePem = await readFile(alicePriv, 'utf8');
    const encPriv = join(dir, 'enc-trusted.key');
    await generateKeyPair({ privateKeyPath: encPriv, publicKeyPath: join(dir, 'enc-trusted.pub'), passphrase: 'pw' });
    const cases: [string, RegExp][] = [
      [privatePem, /trusted key #1 is a private key, not a public key/],
      [await readFile(encPriv, 'utf8'), /trusted key #1 is an encrypted private key/],
      ['not a key', /trusted key #1 is not a PEM public key/],
    ];
    for (const [pem, why] of cases) {
      assert.throws(
        () => checkTrustPolicy({ trustedKeys: [pem] }),
        (e: unknown) => e instanceof UsageError && e.exitCode === ExitCode.PROTOCOL && e.code === 'POLICY_INVALID' && why.test(e.message),
      );
      // Before: a private key was quietly reduced to its public half, so this verified.
      await expectVerificationError(verifyMessageBundle(signed, manifest, digestOf(manifest), { trustedKeys: [pem] }), 'POLICY_INVALID', why);
    }
    assert.doesNotThrow(() => checkTrustPolicy({ trustedKeys: [alicePem] }));
  });

  it('refuses a key-signed bundle when the policy trusts only keyless identities', async () => {
    await expectVerificationError(
      verifyMessageBundle(signed, manifest, digestOf(manifest), { certificateIdentity: 'alice@example.com', certificateOidcIssuer: 'https://issuer.example' }),
      'POLICY_MISMATCH',
      /trusts no keys/,
    );
  });

  it('checks the claimed sender against the key id when asked, and refuses a missing sender', async () => {
    const policy: TrustPolicy = { trustedKeys: [alicePem], requireSenderMatch: true };
    const id = keyIdOf(createPublicKey(alicePem));
    const ok = await verifyMessageBundle(signed, manifest, digestOf(manifest), policy, { sender: `sha256:${id}` });
    assert.equal(ok.keyId, id);
    await expectVerificationError(
      verifyMessageBundle(signed, manifest, digestOf(manifest), policy, { sender: 'mallory' }),
      'SENDER_MISMATCH',
      /claims to be from "mallory"/,
    );
    await expectVerificationError(verifyMessageBundle(signed, manifest, digestOf(manifest), policy, {}), 'SENDER_UNKNOWN', /names no sender/);
  });
});

describe('senderMatches', () => {
  const keyId = 'ab'.repeat(32);
  it('matches a key signer only by its key id', () => {
    assert.equal(senderMatches({ kind: 'key', identity: keyId, keyId, bound: false, boundTo: [] }, keyId), true);
    assert.equal(senderMatches({ kind: 'key', identity: keyId, keyId, bound: false, boundTo: [] }, `sha256:${keyId.toUpperCase()}`), true);
    assert.equal(senderMatches({ kind: 'key', identity: keyId, keyId, bound: false, boundTo: [] }, 'alice'), false);
    assert.equal(senderMatches({ kind: 'key', identity: keyId, keyId, bound: false, boundTo: [] }, ''), false);
  });
  it('matches a keyless signer by its exact identity; emails ignore case, URIs do not', () => {
    const email = { kind: 'keyless', identity: 'Alice@Example.com', issuer: 'https://accounts.example', bound: false, boundTo: [] as string[] } as const;
    assert.equal(senderMatches(email, 'alice@example.com'), true);
    assert.equal(senderMatches(email, 'bob@example.com'), false);
    const uri = {
      kind: 'keyless',
      identity: 'https://github.com/acme/repo/.github/workflows/ci.yml@refs/heads/main',
      issuer: 'x',
      bound: false,
      boundTo: [] as string[],
    } as const;
    assert.equal(senderMatches(uri, uri.identity), true);
    assert.equal(senderMatches(uri, uri.identity.toUpperCase()), false);
    assert.equal(senderMatches(uri, 'https://github.com/acme/repo'), false);
  });
});

describe('committed test fixture', () => {
  it('fixtures/keys holds a test-only P-256 pair whose halves belong together', async () => {
    const signer = await loadKeySigner(new URL('test-only-p256.key', FIXTURES).pathname);
    const pub = await readFile(new URL('test-only-p256.pub', FIXTURES), 'utf8');
    const signed = await signer.sign(manifest);
    const verified = await verifyMessageBundle(signed.bytes, manifest, digestOf(manifest), { trustedKeys: [pub] });
    assert.equal(verified.keyId, signer.keyId);
  });
});

/** The private key's PEM body (and any 16-character slice of it) must not appear in what an error says. */
function assertNoKeyMaterial(err: unknown, pem: string): void {
  const body = pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  const texts: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) texts.push(e.message, e.stack ?? '', JSON.stringify(e));
  const all = texts.join('\n');
  for (let i = 0; i + 16 <= body.length; i += 8) {
    assert.ok(!all.includes(body.slice(i, i + 16)), 'an error message contains key material');
  }
}
