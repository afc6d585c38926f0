/**
 * `comms recv` refuses an unusable --out or --trusted-key up front, through the real CLI: exit 4,
 * a message that says what is wrong, and not one request to the registry (a stand-in counts TCP
 * connections). Against real docker-registry holding a genuine signed message: a private key given
 * as --trusted-key with --write-receipt pushes no receipt, and the genuine key still receives it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, symlink, writeFile, readlink, lstat } from 'node:fs/promises';
import path from 'node:path';
import { runComms, TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { startHostileRegistry, type HostileRegistry } from '../support/hostile-registry.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { rawTags } from '../support/messages-raw.ts';
import { requireTool, skipMessage, tempDir, type TempDir } from '../support/tools.ts';

let work: TempDir;
let stand: HostileRegistry;
before(async () => {
  work = await tempDir('comms-recv-flags-');
  stand = await startHostileRegistry({ manifests: { 'mail/box': {} } });
});
after(async () => {
  await stand?.close();
  await work?.cleanup();
});

/** recv against the stand-in with the given flags; asserts exit 4, no connection, and returns stderr's error. */
async function refusedUpFront(extra: string[]): Promise<{ code: string; message: string }> {
  const before = stand.connections;
  const r = await runComms(['recv', '--repo', `${stand.host}/mail/box`, '--plain-http', '--me', 'bob', '--json', '--write-receipt', ...extra]);
  assert.equal(r.code, 4, r.stderr);
  assert.equal(stand.connections, before, `no request may be made: ${stand.requests.join(', ')}`);
  const line = r.stderr.split('\n').find((l) => l.startsWith('{"error"'));
  assert.ok(line, r.stderr);
  return (JSON.parse(line) as { error: { code: string; message: string } }).error;
}

describe('recv --out that is not a folder', () => {
  it('a regular file: exit 4, says it is a regular file, the file is untouched', async () => {
    const file = path.join(work.path, 'not-a-folder.txt');
    await writeFile(file, 'keep me');
    const e = await refusedUpFront(['--out', file, '--trusted-key', TEST_PUB]);
    assert.equal(e.code, 'OUT_NOT_A_FOLDER');
    assert.match(e.message, /--out .*not-a-folder\.txt is a regular file/);
    assert.equal(await readFile(file, 'utf8'), 'keep me');
  });

  it('a dangling symbolic link: exit 4, names its missing target, creates nothing', async () => {
    const link = path.join(work.path, 'dangling');
    const target = path.join(work.path, 'gone', 'inbox');
    await symlink(target, link);
    const e = await refusedUpFront(['--out', link, '--trusted-key', TEST_PUB]);
    assert.equal(e.code, 'OUT_INVALID');
    assert.match(e.message, /is a symbolic link to .*gone\/inbox, which does not exist/);
    assert.equal(await readlink(link), target);
    await assert.rejects(lstat(path.join(work.path, 'gone')), { code: 'ENOENT' });
  });

  it('a path through a regular file: exit 4', async () => {
    const file = path.join(work.path, 'plain');
    await writeFile(file, 'x');
    const e = await refusedUpFront(['--out', path.join(file, 'inbox'), '--trusted-key', TEST_PUB]);
    assert.equal(e.code, 'OUT_INVALID');
    assert.match(e.message, /part of its path is a file/);
  });
});

describe('recv --watch --state-file inside --out', () => {
  it('is refused before any request (exit 4): a received file could take its name', async () => {
    const out = path.join(work.path, 'watch-out');
    const e = await refusedUpFront(['--out', out, '--watch', '--state-file', path.join(out, 'state.json'), '--no-verify']);
    assert.equal(e.code, 'STATE_FILE_IN_OUT');
    assert.match(e.message, /--state-file .*state\.json is inside the output folder .*watch-out, where a received file could take its name/);
  });
});

describe('recv --trusted-key that is not a usable public key', () => {
  const out = () => path.join(work.path, 'out');
  it('a private key: exit 4 before any request, says to trust the public key', async () => {
    const e = await refusedUpFront(['--out', out(), '--trusted-key', TEST_KEY]);
    assert.equal(e.code, 'TRUSTED_KEY_INVALID');
    assert.match(e.message, /--trusted-key .*test-only-p256\.key is a private key, not a public key/);
    assert.doesNotMatch(e.message, /BEGIN|MI[GH]/, 'no key material in the message');
  });

  it('an encrypted private key: exit 4 before any request', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const file = path.join(work.path, 'encrypted.key');
    await writeFile(file, privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'secret' }));
    const e = await refusedUpFront(['--out', out(), '--trusted-key', file]);
    assert.equal(e.code, 'TRUSTED_KEY_INVALID');
    assert.match(e.message, /is an encrypted private key, not a public key/);
  });

  it('garbage, and a key of a kind that cannot sign: exit 4 before any request', async () => {
    const garbage = path.join(work.path, 'garbage.pub');
    await writeFile(garbage, '-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n');
    assert.match((await refusedUpFront(['--out', out(), '--trusted-key', TEST_PUB, '--trusted-key', garbage])).message, /garbage\.pub is not a PEM public key/);
    const x25519 = path.join(work.path, 'x25519.pub');
    await writeFile(x25519, generateKeyPairSync('x25519').publicKey.export({ format: 'pem', type: 'spki' }));
    assert.match((await refusedUpFront(['--out', out(), '--trusted-key', x25519])).message, /x25519 key, which cannot verify signatures/);
  });
});

describe('on docker-registry, with a genuine signed message waiting', () => {
  let registry: RegistryServer | undefined;
  before(async () => {
    if (requireTool('docker-registry')) registry = await startRegistry({ mode: 'plain' });
  });
  after(async () => {
    await registry?.stop();
  });

  it('--trusted-key PRIVATE --write-receipt: exit 4, no receipt pushed, nothing written; the public key then receives it', async (t) => {
    if (registry === undefined) return t.skip(skipMessage('docker-registry'));
    const repo = 'flags/trusted';
    const ref = `${registry.host}/${repo}`;
    const sent = await runComms(['send', '--repo', ref, '--to', 'bob', '--message', 'genuine', '--key', TEST_KEY, '--json']);
    assert.equal(sent.code, 0, sent.stderr);
    const tagsBefore = (await rawTags(`http://${registry.host}`, repo)).sort();
    const inbox = path.join(work.path, 'real-inbox');

    const bad = await runComms(['recv', '--repo', ref, '--me', 'bob', '--out', inbox, '--trusted-key', TEST_KEY, '--write-receipt', '--key', TEST_KEY]);
    assert.equal(bad.code, 4, bad.stderr);
    assert.match(bad.stderr, /is a private key, not a public key/);
    assert.deepEqual((await rawTags(`http://${registry.host}`, repo)).sort(), tagsBefore, 'no receipt (or anything else) pushed');
    await assert.rejects(lstat(inbox), { code: 'ENOENT' }, '--out not even created');

    const good = await runComms(['recv', '--repo', ref, '--me', 'bob', '--out', inbox, '--trusted-key', TEST_PUB, '--json']);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(await readFile(path.join(inbox, 'message.txt'), 'utf8'), 'genuine');
  });
});
