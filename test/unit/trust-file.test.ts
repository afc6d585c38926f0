/**
 * The trust file: parsing (comments, quoting, key paths relative to the file, keyless and age
 * lines, errors naming file and line), lookups, editing as text, and verification with it: a
 * bound signer is "verified as X" only when the artifact claims X; a bound signer claiming someone
 * else is refused naming both; a signer trusted by the flags alone is verified as its key id.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ExitCode, VerificationError } from '../../src/errors.ts';
import { TrustFileError } from '../../src/trust/errors.ts';
import { createKeySigner } from '../../src/trust/key-signer.ts';
import { keylessSignerFromEnv } from '../../src/trust/keyless-signer.ts';
import { generateKeyPair } from '../../src/trust/keygen.ts';
import { appendTrustLine, removeTrustIdentity, writeTrustText } from '../../src/trust/trust-edit.ts';
import { defaultTrustFilePath, findTrustFile, formatTrustLine, loadTrustFile, parseTrustFile } from '../../src/trust/trust-file.ts';
import { verifyMessageBundle, type TrustPolicy } from '../../src/trust/verify.ts';
import { mockIdentityToken, startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.ts';

const AGE = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
const manifest = new TextEncoder().encode('{"schemaVersion":2,"artifactType":"application/vnd.dockercomms.message.v1"}');
const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;

let dir: string;
let keys: Record<'alice' | 'mallory', { priv: string; pub: string; id: string }>;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'comms-trust-file-'));
  await mkdir(path.join(dir, 'keys'));
  const make = async (name: string) => {
    const priv = path.join(dir, 'keys', `${name}.key`);
    const pub = path.join(dir, 'keys', `${name}.pub`);
    const { keyId } = await generateKeyPair({ privateKeyPath: priv, publicKeyPath: pub });
    return { priv, pub, id: keyId };
  };
  keys = { alice: await make('alice'), mallory: await make('mallory') };
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function parseError(text: string, line: number, pattern: RegExp): void {
  assert.throws(
    () => parseTrustFile(text, '/etc/trust'),
    (err: unknown) => {
      assert.ok(err instanceof TrustFileError, String(err));
      assert.equal(err.code, 'TRUST_FILE_INVALID');
      assert.equal(err.exitCode, ExitCode.PROTOCOL);
      assert.match(err.message, new RegExp(`^/etc/trust:${line}: `));
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('parseTrustFile', () => {
  it('reads key, keyless and age lines, skipping comments and blank lines; key paths are relative to the file', () => {
    const t = parseTrustFile(
      [
        '# who speaks for whom',
        '',
        'alice@example.com   keys/alice.pub   # a PEM public key',
        'ci   keyless issuer=https://token.actions.githubusercontent.com identity-regexp=^https://github.com/acme/',
        '  bob,robert keyless issuer=https://accounts.example identity="bob@example.com"',
        `bob ${AGE}`,
        '"x"#not-a-comment-start is still part of nothing: see below',
      ]
        .slice(0, 6)
        .join('\n'),
      '/home/a/.config/comms/trust',
    );
    assert.equal(t.entries.length, 4);
    const [key, ci, bob, age] = t.entries;
    assert.deepEqual(
      { ...key },
      { kind: 'key', identities: ['alice@example.com'], line: 3, keyPath: 'keys/alice.pub', resolvedPath: '/home/a/.config/comms/keys/alice.pub' },
    );
    assert.equal(ci?.kind, 'keyless');
    assert.equal(ci?.kind === 'keyless' && ci.certificateIdentityRegexp, '^https://github.com/acme/');
    assert.equal(ci?.kind === 'keyless' && ci.issuer, 'https://token.actions.githubusercontent.com');
    assert.deepEqual(bob?.identities, ['bob', 'robert']);
    assert.equal(bob?.kind === 'keyless' && bob.certificateIdentity, 'bob@example.com');
    assert.deepEqual({ ...age }, { kind: 'age', identities: ['bob'], line: 6, recipient: AGE });
  });

  it('keeps # inside a quoted value, and a quoted key path with spaces', () => {
    const t = parseTrustFile('ci keyless issuer=https://i identity-regexp="^a#b c$" # comment\nalice "my keys/a.pub"', '/x/trust');
    assert.equal(t.entries[0]?.kind === 'keyless' && t.entries[0].certificateIdentityRegexp, '^a#b c$');
    assert.equal(t.entries[1]?.kind === 'key' && t.entries[1].resolvedPath, '/x/my keys/a.pub');
  });

  it('refuses malformed lines, naming the file and the line', () => {
    parseError('alice', 1, /bound to nothing/);
    parseError('# c\nci keyless identity=x', 2, /needs issuer=/);
    parseError('ci keyless issuer=https://i', 1, /exactly one of identity=… or identity-regexp=…/);
    parseError('ci keyless issuer=https://i identity=a identity-regexp=b', 1, /exactly one of/);
    parseError('ci keyless issuer=https://i identity-regexp=(', 1, /not a valid regular expression/);
    parseError('ci keyless issuer=https://i subject=x', 1, /unknown keyless option "subject=x"/);
    parseError('ci keyless issuer=https://i issuer=https://j identity=x', 1, /issuer= given twice/);
    parseError('alice a.pub extra', 1, /unexpected "extra" after the key file/);
    parseError('bob age1notarecipient', 1, /not an age recipient/);
    parseError('alice,,bob a.pub', 1, /not a list of identities/);
    parseError('ci keyless issuer="https://i identity=x', 1, /unterminated quote/);
  });

  it('formats lines that parse back to the same binding', () => {
    const line = formatTrustLine({ kind: 'keyless', identities: ['ci'], issuer: 'https://i', certificateIdentityRegexp: '^a b#$' });
    const e = parseTrustFile(line).entries[0];
    assert.equal(e?.kind === 'keyless' && e.certificateIdentityRegexp, '^a b#$');
    const k = parseTrustFile(formatTrustLine({ kind: 'key', identities: ['a', 'b'], keyPath: 'my keys/a.pub' }), '/t/trust').entries[0];
    assert.deepEqual(k?.identities, ['a', 'b']);
    assert.equal(k?.kind === 'key' && k.resolvedPath, '/t/my keys/a.pub');
  });
});

describe('loadTrustFile and findTrustFile', () => {
  it('loads the keys a file names and answers which identities a key or certificate is bound to', async () => {
    const file = path.join(dir, 'trust');
    await writeFile(
      file,
      `alice keys/alice.pub\nalice@example.com,al keys/alice.pub\nmallory keys/mallory.pub\nci keyless issuer=https://i identity-regexp=^https://github.com/acme/\n`,
    );
    const t = await loadTrustFile(file);
    assert.deepEqual(t.identitiesOfKey(keys.alice.id), ['alice', 'alice@example.com', 'al']);
    assert.deepEqual(t.identitiesOfKey(keys.mallory.id.toUpperCase()), ['mallory']);
    assert.deepEqual(t.identitiesOfKey('00'.repeat(32)), []);
    assert.deepEqual(t.identitiesOfCertificate('https://github.com/acme/app/.github/workflows/x.yml@refs/heads/main', 'https://i'), ['ci']);
    assert.deepEqual(t.identitiesOfCertificate('https://github.com/acme/app', 'https://other'), [], 'another issuer binds nothing');
    assert.deepEqual(t.identitiesOfCertificate('https://github.com/evil/acme/', 'https://i'), []);
  });

  it('refuses a line whose key file is missing or is a private key, naming the line', async () => {
    const missing = path.join(dir, 'trust-missing');
    await writeFile(missing, 'alice keys/alice.pub\nbob keys/nobody.pub\n');
    await assert.rejects(
      loadTrustFile(missing),
      (e: unknown) => e instanceof TrustFileError && e.code === 'TRUST_KEY_UNREADABLE' && e.message.startsWith(`${missing}:2:`),
    );
    const priv = path.join(dir, 'trust-private');
    await writeFile(priv, 'alice keys/alice.key\n');
    await assert.rejects(
      loadTrustFile(priv),
      (e: unknown) => e instanceof TrustFileError && e.code === 'TRUST_KEY_INVALID' && /is a private key/.test(e.message),
    );
  });

  it('uses --trust, else COMMS_TRUST, else $XDG_CONFIG_HOME/comms/trust when it exists', async () => {
    const xdg = path.join(dir, 'xdg');
    assert.equal(defaultTrustFilePath({ XDG_CONFIG_HOME: xdg }), path.join(xdg, 'comms', 'trust'));
    assert.equal(defaultTrustFilePath({ HOME: '/h' }).endsWith(path.join('.config', 'comms', 'trust')), true);
    assert.equal(await findTrustFile({ env: { XDG_CONFIG_HOME: xdg } }), undefined, 'no default file: no trust file');
    await mkdir(path.join(xdg, 'comms'), { recursive: true });
    await writeFile(path.join(xdg, 'comms', 'trust'), `alice ${keys.alice.pub}\n`);
    assert.deepEqual(
      (await findTrustFile({ env: { XDG_CONFIG_HOME: xdg } }))?.entries.map((e) => e.identities[0]),
      ['alice'],
    );
    const other = path.join(dir, 'trust-other');
    await writeFile(other, `mallory ${keys.mallory.pub}\n`);
    assert.deepEqual(
      (await findTrustFile({ env: { XDG_CONFIG_HOME: xdg, COMMS_TRUST: other } }))?.entries.map((e) => e.identities[0]),
      ['mallory'],
    );
    assert.equal((await findTrustFile({ explicit: path.join(xdg, 'comms', 'trust'), env: { COMMS_TRUST: other } }))?.entries[0]?.identities[0], 'alice');
    await assert.rejects(
      findTrustFile({ explicit: path.join(dir, 'absent'), env: {} }),
      (e: unknown) => e instanceof TrustFileError && e.code === 'TRUST_FILE_MISSING',
    );
  });
});

describe('editing the trust file as text', () => {
  it('appends a line and removes one identity, keeping comments and other lines', async () => {
    const text = '# mine\nalice,al a.pub  # both names\nbob b.pub\nal c.pub';
    const appended = appendTrustLine(text, 'carol c.pub');
    assert.equal(appended, `${text}\ncarol c.pub\n`);
    const { text: next, removed } = removeTrustIdentity(appended, parseTrustFile(appended, '/t'), 'al');
    assert.deepEqual(
      removed.map((e) => e.line),
      [2, 4],
    );
    assert.equal(next, '# mine\nalice a.pub  # both names\nbob b.pub\ncarol c.pub\n');
  });

  it('writes atomically, keeps the mode, and refuses to write a file that does not parse', async () => {
    const file = path.join(dir, 'edit', 'trust');
    await writeTrustText(file, 'alice a.pub\n');
    assert.equal((await stat(file)).mode & 0o777, 0o644);
    await assert.rejects(writeTrustText(file, 'alice\n'), TrustFileError);
    assert.equal(await readFile(file, 'utf8'), 'alice a.pub\n', 'the file is unchanged');
  });
});

describe('verification with a trust file', () => {
  const sign = async (who: 'alice' | 'mallory') => (await createKeySigner(await readFile(keys[who].priv))).sign(manifest);
  const trustFile = async () => {
    const file = path.join(dir, 'trust-verify');
    await writeFile(file, 'alice keys/alice.pub\nmallory keys/mallory.pub\n');
    return loadTrustFile(file);
  };

  it('verifies a bound key as the identity the artifact claims', async () => {
    const v = await verifyMessageBundle((await sign('alice')).bytes, manifest, digest, { trust: await trustFile() }, { sender: 'alice' });
    assert.equal(v.identity, 'alice');
    assert.equal(v.bound, true);
    assert.equal(v.keyId, keys.alice.id);
  });

  it('refuses a trusted key bound to mallory claiming to be alice, naming both (exit 2)', async () => {
    const err = await verifyMessageBundle((await sign('mallory')).bytes, manifest, digest, { trust: await trustFile() }, { sender: 'alice' }).catch(
      (e: unknown) => e,
    );
    assert.ok(err instanceof VerificationError, String(err));
    assert.equal(err.exitCode, ExitCode.VERIFICATION);
    assert.equal(err.code, 'SENDER_MISMATCH');
    assert.match(err.message, /claims to be from "alice"/);
    assert.match(err.message, /binds to "mallory"/);
  });

  it('with the flags alone, verifies as the key id and leaves the sender a claim', async () => {
    const policy: TrustPolicy = { trustedKeys: [await readFile(keys.mallory.pub, 'utf8')] };
    const v = await verifyMessageBundle((await sign('mallory')).bytes, manifest, digest, policy, { sender: 'alice' });
    assert.equal(v.identity, keys.mallory.id);
    assert.equal(v.bound, false);
  });

  it('refuses a key the trust file does not name', async () => {
    const only = path.join(dir, 'trust-only-alice');
    await writeFile(only, 'alice keys/alice.pub\n');
    const err = await verifyMessageBundle((await sign('mallory')).bytes, manifest, digest, { trust: await loadTrustFile(only) }, { sender: 'mallory' }).catch(
      (e: unknown) => e,
    );
    assert.ok(err instanceof VerificationError);
    assert.equal(err.code, 'UNTRUSTED_KEY');
  });

  describe('keyless lines', () => {
    let mock: SigstoreMock;
    const ISSUER = 'https://token.actions.githubusercontent.com';
    const SAN = 'https://github.com/acme/app/.github/workflows/notify.yml@refs/heads/main';
    before(async () => {
      mock = await startSigstoreMock();
    });
    after(() => mock?.close());

    it('binds a certificate identity matching identity-regexp under its issuer, and nothing else', async () => {
      const signer = keylessSignerFromEnv({
        fulcioURL: mock.fulcioURL,
        rekorURL: mock.rekorURL,
        env: { SIGSTORE_ID_TOKEN: mockIdentityToken({ iss: ISSUER, sub: SAN }) },
      });
      assert.ok(signer);
      const bundle = (await signer.sign(manifest)).bytes;
      const trust = parseTrustFile(`ci keyless issuer=${ISSUER} identity-regexp=^https://github.com/acme/\n`);
      const v = await verifyMessageBundle(bundle, manifest, digest, { trust, trustedRoot: mock.trustedRoot }, { sender: 'ci' });
      assert.equal(v.identity, 'ci');
      assert.equal(v.certificateIdentity, SAN);
      const mismatch = await verifyMessageBundle(bundle, manifest, digest, { trust, trustedRoot: mock.trustedRoot }, { sender: 'alice' }).catch(
        (e: unknown) => e,
      );
      assert.ok(mismatch instanceof VerificationError && mismatch.code === 'SENDER_MISMATCH', String(mismatch));
      const other = parseTrustFile(`ci keyless issuer=${ISSUER} identity-regexp=^https://github.com/other/\n`);
      const unbound = await verifyMessageBundle(bundle, manifest, digest, { trust: other, trustedRoot: mock.trustedRoot }, { sender: 'ci' }).catch(
        (e: unknown) => e,
      );
      assert.ok(unbound instanceof VerificationError && unbound.code === 'IDENTITY_MISMATCH', String(unbound));
      assert.match((unbound as Error).message, /binds to no identity/);
    });
  });
});
