/**
 * Keyless signing and verification end to end, offline: @sigstore/mock's Fulcio and Rekor request
 * handlers (its own CA, CT log and transparency log, with real keys and signatures) are served by a
 * node:http server on loopback, and the signer reaches them over HTTP exactly as it reaches the
 * public-good instance. The TrustedRoot is built from the mock's CA certificate and log keys.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BUNDLE_V03_MEDIA_TYPE, bundleFromJSON, isBundleWithCertificateChain, isBundleWithMessageSignature } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { AbortError, ExitCode, VerificationError } from '../../src/errors.ts';
import { SigningError } from '../../src/trust/errors.ts';
import { createKeySigner } from '../../src/trust/key-signer.ts';
import { keylessSignerFromEnv } from '../../src/trust/keyless-signer.ts';
import type { SignedBundle } from '../../src/trust/signer.ts';
import { verifyMessageBundle, type TrustPolicy } from '../../src/trust/verify.ts';
import { mockIdentityToken, serveStub, startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.ts';
import { rejection } from '../support/rejection.ts';

const ISSUER = 'https://token.actions.githubusercontent.com';
const IDENTITY = 'https://github.com/acme/app/.github/workflows/notify.yml@refs/heads/main';
const manifest = new TextEncoder().encode('{"schemaVersion":2,"artifactType":"application/vnd.dockercomms.message.v1","n":1}');
const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;

let mock: SigstoreMock;
let trustedRoot: object;
let otherRoot: object;

before(async () => {
  mock = await startSigstoreMock();
  trustedRoot = mock.trustedRoot;
  // Same logs, but a CA that never issued anything: the certificate chain must not verify.
  otherRoot = await mock.strangerRoot();
});

after(() => mock?.close());

async function signKeyless(env: Record<string, string>): Promise<SignedBundle> {
  const signer = keylessSignerFromEnv({ fulcioURL: mock.fulcioURL, rekorURL: mock.rekorURL, env });
  assert.ok(signer, 'a token source was expected');
  assert.equal(signer.kind, 'keyless');
  return signer.sign(manifest);
}

async function refused(policy: TrustPolicy, bundle: Uint8Array, code: string, text: RegExp): Promise<void> {
  const err = await rejection(verifyMessageBundle(bundle, manifest, digest, policy), 'verification was expected to fail');
  assert.ok(err instanceof VerificationError, `expected VerificationError, got ${String(err)}`);
  assert.equal(err.exitCode, ExitCode.VERIFICATION);
  assert.equal(err.code, code, err.message);
  assert.match(err.message, text);
}

describe('keyless signing against local Fulcio and Rekor', () => {
  let signed: SignedBundle;
  before(async () => {
    signed = await signKeyless({ SIGSTORE_ID_TOKEN: mockIdentityToken({ iss: ISSUER, sub: IDENTITY }) });
  });

  it('asks Fulcio for a certificate and Rekor for a log entry, and packages a v0.3 bundle with the leaf certificate', () => {
    assert.ok(mock.fulcioRequests.includes('POST /api/v2/signingCert'));
    assert.ok(mock.rekorRequests.includes('POST /api/v1/log/entries'));
    assert.equal(signed.mediaType, BUNDLE_V03_MEDIA_TYPE);
    const bundle = bundleFromJSON(JSON.parse(new TextDecoder().decode(signed.bytes)));
    assert.ok(isBundleWithMessageSignature(bundle));
    assert.ok(!isBundleWithCertificateChain(bundle), 'v0.3 carries the single leaf certificate, not a chain');
    assert.equal(bundle.verificationMaterial.content.$case, 'certificate');
    assert.equal(bundle.verificationMaterial.tlogEntries.length, 1);
    assert.equal(bundle.verificationMaterial.tlogEntries[0]?.kindVersion?.kind, 'hashedrekord');
  });

  it('verifies with the right identity and issuer', async () => {
    const verified = await verifyMessageBundle(signed.bytes, manifest, digest, { certificateIdentity: IDENTITY, certificateOidcIssuer: ISSUER, trustedRoot });
    assert.deepEqual(verified, { kind: 'keyless', identity: IDENTITY, certificateIdentity: IDENTITY, bound: false, boundTo: [], issuer: ISSUER });
  });

  it('verifies with an identity regexp that matches', async () => {
    const verified = await verifyMessageBundle(signed.bytes, manifest, digest, {
      certificateIdentityRegexp: '^https://github\\.com/acme/app/\\.github/workflows/[^/]+@refs/heads/main$',
      certificateOidcIssuer: ISSUER,
      trustedRoot,
    });
    assert.equal(verified.identity, IDENTITY);
  });

  it('refuses a wrong identity', async () => {
    await refused(
      { certificateIdentity: 'https://github.com/evil/app/.github/workflows/notify.yml@refs/heads/main', certificateOidcIssuer: ISSUER, trustedRoot },
      signed.bytes,
      'IDENTITY_MISMATCH',
      /identity mismatch: signed by "https:\/\/github.com\/acme\/app/,
    );
  });

  it('refuses a wrong issuer', async () => {
    await refused(
      { certificateIdentity: IDENTITY, certificateOidcIssuer: 'https://accounts.google.com', trustedRoot },
      signed.bytes,
      'ISSUER_MISMATCH',
      /issuer mismatch/,
    );
  });

  it('refuses an identity regexp that does not match', async () => {
    await refused(
      { certificateIdentityRegexp: '^https://github\\.com/other-org/', certificateOidcIssuer: ISSUER, trustedRoot },
      signed.bytes,
      'IDENTITY_MISMATCH',
      /does not match "\^https:\/\/github\\\\\.com\/other-org\/"/,
    );
  });

  it('refuses a certificate from a CA the trusted root does not name', async () => {
    await refused(
      { certificateIdentity: IDENTITY, certificateOidcIssuer: ISSUER, trustedRoot: otherRoot },
      signed.bytes,
      'SIGNATURE_INVALID',
      /does not verify against the trusted root/,
    );
  });

  it('refuses a bundle whose transparency-log entry was removed', async () => {
    const json = JSON.parse(new TextDecoder().decode(signed.bytes));
    json.verificationMaterial.tlogEntries = [];
    await refused(
      { certificateIdentity: IDENTITY, certificateOidcIssuer: ISSUER, trustedRoot },
      new TextEncoder().encode(JSON.stringify(json)),
      'SIGNATURE_INVALID',
      /TIMESTAMP_ERROR|TLOG/,
    );
  });

  it('refuses without a trusted root, and refuses when the policy trusts only keys', async () => {
    await refused({ certificateIdentity: IDENTITY, certificateOidcIssuer: ISSUER }, signed.bytes, 'TRUSTED_ROOT_UNAVAILABLE', /trusted root/);
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await refused(
      { trustedKeys: [publicKey.export({ format: 'pem', type: 'spki' }).toString()], trustedRoot },
      signed.bytes,
      'POLICY_MISMATCH',
      new RegExp(`signed keylessly \\(certificate for "${IDENTITY.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"\\)`),
    );
  });

  it('refuses an identity without an issuer', async () => {
    await refused({ certificateIdentity: IDENTITY, trustedRoot }, signed.bytes, 'POLICY_INCOMPLETE', /certificateOidcIssuer/);
  });

  it('is a standard bundle: @sigstore/verify, called directly, verifies it with the trusted root and policy', () => {
    const bundle = bundleFromJSON(JSON.parse(new TextDecoder().decode(signed.bytes)));
    const verifier = new Verifier(toTrustMaterial(TrustedRoot.fromJSON(trustedRoot)));
    const signer = verifier.verify(toSignedEntity(bundle, Buffer.from(manifest)), { subjectAlternativeName: IDENTITY, extensions: { issuer: ISSUER } });
    assert.equal(signer.identity?.subjectAlternativeName, IDENTITY);
    assert.throws(() => verifier.verify(toSignedEntity(bundle, Buffer.from(manifest)), { subjectAlternativeName: 'someone-else' }));
  });
});

describe('identity token sources', () => {
  it('finds no keyless signer when the environment has no token source', () => {
    assert.equal(keylessSignerFromEnv({ env: {} }), undefined);
    assert.equal(keylessSignerFromEnv({ env: { ACTIONS_ID_TOKEN_REQUEST_URL: 'http://127.0.0.1:9/x' } }), undefined);
  });

  it('prefers an explicit token, then SIGSTORE_ID_TOKEN, then GitHub Actions', () => {
    const gha = { ACTIONS_ID_TOKEN_REQUEST_URL: 'http://127.0.0.1:9/x', ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'r' };
    assert.equal(keylessSignerFromEnv({ identityToken: 'a.b.c', env: { SIGSTORE_ID_TOKEN: 'x', ...gha } })?.tokenSource, 'explicit');
    assert.equal(keylessSignerFromEnv({ env: { SIGSTORE_ID_TOKEN: 'x', ...gha } })?.tokenSource, 'SIGSTORE_ID_TOKEN');
    assert.equal(keylessSignerFromEnv({ env: gha })?.tokenSource, 'github-actions');
  });

  it('defaults to the public-good Fulcio and Rekor', () => {
    const signer = keylessSignerFromEnv({ env: { SIGSTORE_ID_TOKEN: 'x' } });
    assert.equal(signer?.fulcioURL, 'https://fulcio.sigstore.dev');
    assert.equal(signer?.rekorURL, 'https://rekor.sigstore.dev');
  });

  it('signs with the GitHub Actions ambient OIDC token (audience sigstore, bearer request token)', async () => {
    const token = mockIdentityToken({ iss: ISSUER, sub: IDENTITY });
    const oidc = await serveStub(async (req) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.headers.authorization !== 'Bearer request-secret' || url.searchParams.get('audience') !== 'sigstore') return { status: 403, body: 'no' };
      return { status: 200, body: JSON.stringify({ value: token }), type: 'application/json' };
    });
    try {
      const signed = await signKeyless({ ACTIONS_ID_TOKEN_REQUEST_URL: `${oidc.url}/token?api-version=2.0`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'request-secret' });
      assert.equal(oidc.requests.length, 1);
      const verified = await verifyMessageBundle(signed.bytes, manifest, digest, { certificateIdentity: IDENTITY, certificateOidcIssuer: ISSUER, trustedRoot });
      assert.equal(verified.identity, IDENTITY);

      // A refused request token is a typed error that names the endpoint, not the secret.
      const err = await signKeyless({ ACTIONS_ID_TOKEN_REQUEST_URL: `${oidc.url}/token`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'wrong-secret' }).catch(
        (e: unknown) => e,
      );
      assert.ok(err instanceof SigningError);
      assert.equal(err.code, 'IDENTITY_TOKEN_FETCH');
      assert.equal(err.status, 403);
      assert.ok(!err.message.includes('wrong-secret'));
    } finally {
      oidc.server.close();
    }
  });

  it('rejects a malformed token before contacting Fulcio, without echoing it', async () => {
    const before = mock.fulcioRequests.length;
    const secret = 'not-a-jwt-but-secret-looking-0123456789';
    const err = await signKeyless({ SIGSTORE_ID_TOKEN: secret }).catch((e: unknown) => e);
    assert.ok(err instanceof SigningError);
    assert.equal(err.code, 'IDENTITY_TOKEN_INVALID');
    assert.ok(!err.message.includes(secret));
    const unverifiedEmail = mockIdentityToken({ iss: ISSUER, sub: 'x', email: 'alice@example.com', email_verified: false });
    const err2 = await signKeyless({ SIGSTORE_ID_TOKEN: unverifiedEmail }).catch((e: unknown) => e);
    assert.ok(err2 instanceof SigningError);
    assert.equal(err2.code, 'IDENTITY_TOKEN_INVALID');
    assert.equal(mock.fulcioRequests.length, before);
  });

  it('reports a Fulcio that refuses, as FULCIO_FAILED, with the token redacted', async () => {
    const token = mockIdentityToken({ iss: ISSUER, sub: IDENTITY });
    const broken = await serveStub(async (_req, body) => ({
      status: 400,
      body: JSON.stringify({ message: `bad request: ${body}` }),
      type: 'application/json',
    }));
    try {
      const signer = keylessSignerFromEnv({ fulcioURL: broken.url, rekorURL: mock.rekorURL, identityToken: token });
      const err = await signer!.sign(manifest).catch((e: unknown) => e);
      assert.ok(err instanceof SigningError);
      assert.equal(err.code, 'FULCIO_FAILED');
      assert.ok(!err.message.includes(token), 'the token must not appear in the message');
      for (let e: unknown = err.cause; e instanceof Error; e = e.cause) assert.ok(!e.message.includes(token), 'nor in a cause');
    } finally {
      broken.server.close();
    }
  });
});

describe('key signing with the opt-in Rekor witness', () => {
  it('records the key signature in Rekor; with a trusted root the entry is verified, without one the key alone decides', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const before = mock.rekorRequests.length;
    const signer = createKeySigner(privateKey.export({ format: 'pem', type: 'pkcs8' }), { rekorURL: mock.rekorURL });
    const signed = await signer.sign(manifest);
    assert.equal(mock.rekorRequests.length, before + 1);
    const json = signed.json as { verificationMaterial: { tlogEntries?: unknown[] } };
    assert.equal(json.verificationMaterial.tlogEntries?.length, 1);

    assert.equal((await verifyMessageBundle(signed.bytes, manifest, digest, { trustedKeys: [pem], trustedRoot })).keyId, signer.keyId);
    assert.equal((await verifyMessageBundle(signed.bytes, manifest, digest, { trustedKeys: [pem] })).keyId, signer.keyId);
    // A root whose log is not the one that recorded the entry: the entry does not verify.
    const foreign = JSON.parse(JSON.stringify(trustedRoot));
    foreign.tlogs[0].publicKey.rawBytes = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .publicKey.export({ format: 'der', type: 'spki' })
      .toString('base64');
    await assert.rejects(verifyMessageBundle(signed.bytes, manifest, digest, { trustedKeys: [pem], trustedRoot: foreign }), (err: unknown) => {
      assert.ok(err instanceof VerificationError);
      assert.equal(err.code, 'SIGNATURE_INVALID');
      assert.match(err.message, /TLOG/);
      return true;
    });
  });
});

describe('cancellation', () => {
  it('abandons a keyless signing whose token request hangs, as soon as the signal fires', async () => {
    let arrived!: () => void;
    const requested = new Promise<void>((resolve) => (arrived = resolve));
    const hanging = await serveStub(() => {
      arrived();
      return new Promise(() => {});
    });
    try {
      const signer = keylessSignerFromEnv({
        fulcioURL: mock.fulcioURL,
        rekorURL: mock.rekorURL,
        env: { ACTIONS_ID_TOKEN_REQUEST_URL: `${hanging.url}/t`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'r' },
      });
      const controller = new AbortController();
      const pending = signer!.sign(manifest, { signal: controller.signal });
      await requested;
      controller.abort();
      await assert.rejects(pending, AbortError);
    } finally {
      hanging.server.closeAllConnections();
      hanging.server.close();
    }
  });
});
