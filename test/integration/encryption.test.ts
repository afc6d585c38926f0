/**
 * End-to-end encryption through the real CLI against docker-registry, with the age CLI as the
 * independent peer:
 *
 * - `send --encrypt-to` (an age-keygen recipient, a recipients file) and `recv --identity` (a file
 *   age-keygen wrote, COMMS_AGE_IDENTITY) give back the exact bytes and the real filename;
 * - the registry holds only ciphertext: a plain reader (curl for the blobs, gzip and tar for the
 *   layers, as dockercomms v1.0 reads them) gets an age file that `age -d -i` decrypts to the
 *   original bytes, under an opaque filename; `recv` without an identity writes that age file;
 * - `keygen --age` makes an identity the age CLI uses;
 * - refusals (exit 2, nothing written): another recipient's identity, tampered ciphertext.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { cleanEnv, listAll } from '../support/hostile-cli.ts';
import { jsonLines, runComms, type CliResult } from '../support/cli.ts';
import { TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { openLayerWithSystemTools, rawGetBlob, rawGetManifest, rawPushBlob, rawPushManifest, sha256Digest } from '../support/messages-raw.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { requireTools, skipMessage, tempDir, type TempDir } from '../support/tools.ts';

const run = promisify(execFile);
const TOOLS = ['docker-registry', 'age', 'age-keygen', 'gzip', 'tar'];
const have = requireTools(...TOOLS);

let registry: RegistryServer;
let work: TempDir;
let env: Record<string, string>;
let bobKey: string;
let bobRecipient: string;
let carolKey: string;
let carolRecipient: string;

async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
  return runComms(args, { baseEnv: { ...env, ...extraEnv } });
}

function lastJson(r: CliResult): Record<string, unknown> {
  const lines = jsonLines(r.stdout);
  assert.ok(lines.length > 0, r.stdout + r.stderr);
  return lines[lines.length - 1]!;
}

let outCount = 0;
async function freshOut(): Promise<string> {
  const out = path.join(work.path, 'out', String(outCount++));
  await mkdir(out, { recursive: true });
  return out;
}

async function ageDecrypt(key: string, file: string): Promise<Buffer> {
  return (await run('age', ['-d', '-i', key, file], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })).stdout;
}

/** Sends `file` encrypted, signed with the test key, to `me`; returns send's JSON. */
async function sendEncrypted(repo: string, me: string, file: string, encryptTo: string[], extra: string[] = []): Promise<Record<string, unknown>> {
  const r = await cli([
    'send',
    file,
    '--repo',
    `${registry.host}/${repo}`,
    '--plain-http',
    '--to',
    me,
    '--key',
    TEST_KEY,
    ...encryptTo.flatMap((e) => ['--encrypt-to', e]),
    '--chunk-bytes',
    '100000',
    '--json',
    ...extra,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return lastJson(r);
}

function recvArgs(repo: string, me: string, out: string, extra: string[] = []): string[] {
  return ['recv', '--repo', `${registry.host}/${repo}`, '--plain-http', '--me', me, '--out', out, '--trusted-key', TEST_PUB, '--json', ...extra];
}

describe('encrypted messages', { skip: have ? false : skipMessage(...TOOLS) }, () => {
  before(async () => {
    work = await tempDir('comms-encryption-');
    await mkdir(path.join(work.path, 'docker'), { recursive: true });
    env = { ...cleanEnv(path.join(work.path, 'tmp'), path.join(work.path, 'docker')), NODE_COMPILE_CACHE: path.join(work.path, 'ncc') };
    registry = await startRegistry({ mode: 'plain' });
    bobKey = path.join(work.path, 'bob.txt');
    carolKey = path.join(work.path, 'carol.txt');
    await run('age-keygen', ['-o', bobKey]);
    await run('age-keygen', ['-o', carolKey]);
    bobRecipient = (await run('age-keygen', ['-y', bobKey])).stdout.trim();
    carolRecipient = (await run('age-keygen', ['-y', carolKey])).stdout.trim();
  });
  after(async () => {
    await registry?.stop();
    await work?.cleanup();
  });

  it('round-trips the exact bytes and the real filename with an age-keygen identity, across chunk and STREAM boundaries', async () => {
    // 3 layers of 100000 bytes; the plaintext is an exact multiple of 64 KiB (a full final STREAM chunk).
    for (const size of [0, 1, 4 * 65536]) {
      const plain = randomBytes(size);
      const file = path.join(work.path, `quarterly report ${size}.pdf`);
      await writeFile(file, plain);
      const sent = await sendEncrypted(`enc/roundtrip-${size}`, 'bob', file, [bobRecipient]);
      assert.equal(sent['encrypted'], true);
      const out = await freshOut();
      const r = await cli(recvArgs(`enc/roundtrip-${size}`, 'bob', out, ['--identity', bobKey]));
      assert.equal(r.code, 0, r.stderr);
      const got = lastJson(r);
      assert.equal(got['filename'], `quarterly report ${size}.pdf`);
      assert.equal(got['decrypted'], true);
      assert.equal(got['bytes'], size);
      assert.deepEqual(await readFile(path.join(out, `quarterly report ${size}.pdf`)), plain);
      assert.deepEqual(await listAll(out), [`quarterly report ${size}.pdf`]);
    }
  });

  it('encrypts to every recipient of a recipients file; each decrypts, the identity also from COMMS_AGE_IDENTITY', async () => {
    const recipientsFile = path.join(work.path, 'team.txt');
    await writeFile(recipientsFile, `# the team\n${bobRecipient}\n\n${carolRecipient}\n`);
    const plain = randomBytes(150_000);
    const file = path.join(work.path, 'team.bin');
    await writeFile(file, plain);
    await sendEncrypted('enc/team', 'team', file, [recipientsFile]);
    for (const [key, how] of [
      [bobKey, 'file'],
      [carolKey, 'env'],
    ] as const) {
      const out = await freshOut();
      const r =
        how === 'file'
          ? await cli(recvArgs('enc/team', 'team', out, ['--identity', key]))
          : await cli(recvArgs('enc/team', 'team', out), { COMMS_AGE_IDENTITY: await readFile(key, 'utf8') });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await readFile(path.join(out, 'team.bin')), plain, how);
    }
  });

  it('the registry holds only ciphertext: a plain v1.0-style reader gets an age file that age -d decrypts to the exact bytes', async () => {
    const plain = Buffer.concat([Buffer.from('TOP SECRET PLAINTEXT MARKER '), randomBytes(250_000)]);
    const file = path.join(work.path, 'merger-plans.txt');
    await writeFile(file, plain);
    const sent = await sendEncrypted('enc/raw', 'bob', file, [bobRecipient]);
    const m = await rawGetManifest(registry.url, 'enc/raw', String(sent['tag']));
    const manifest = JSON.parse(m.bytes.toString('utf8')) as {
      annotations: Record<string, string>;
      layers: { digest: string; annotations: Record<string, string> }[];
    };
    const a = manifest.annotations;
    assert.equal(a['dockercomms.filename'], `${String(sent['messageId'])}.age`, 'an opaque filename');
    assert.ok(!m.bytes.toString('utf8').includes('merger'), 'the real filename is not in the manifest');
    assert.equal(a['dockercomms.encryption'], 'age');
    // v1.0's way: the layers in index order, each a gzip'd tar of chunk_<i>.bin, concatenated.
    const parts: Buffer[] = [];
    const scratch = path.join(work.path, 'layers');
    await mkdir(scratch, { recursive: true });
    for (const layer of [...manifest.layers].sort(
      (x, y) => Number(x.annotations['dockercomms.chunk.index']) - Number(y.annotations['dockercomms.chunk.index']),
    )) {
      const opened = await openLayerWithSystemTools(await rawGetBlob(registry.url, 'enc/raw', layer.digest), 'gzip', scratch);
      parts.push(opened.content);
    }
    const payload = Buffer.concat(parts);
    assert.equal(payload.length, Number(a['dockercomms.total_bytes']));
    assert.ok(payload.subarray(0, 22).equals(Buffer.from('age-encryption.org/v1\n')));
    assert.ok(!payload.includes(Buffer.from('TOP SECRET')), 'no plaintext in the registry');
    const ageFile = path.join(work.path, 'raw.age');
    await writeFile(ageFile, payload);
    assert.deepEqual(await ageDecrypt(bobKey, ageFile), plain);

    // recv without an identity delivers that same age file, under the opaque name.
    const out = await freshOut();
    const r = await cli(recvArgs('enc/raw', 'bob', out));
    assert.equal(r.code, 0, r.stderr);
    const got = lastJson(r);
    assert.equal(got['encrypted'], true);
    assert.equal(got['decrypted'], false);
    const written = path.join(out, `${String(sent['messageId'])}.age`);
    assert.deepEqual(await readFile(written), payload);
    assert.deepEqual(await ageDecrypt(bobKey, written), plain);
  });

  it('keygen --age writes an identity (0600) that the age CLI decrypts with, and prints its recipient', async () => {
    const base = path.join(work.path, 'dave');
    const r = await cli(['keygen', '--out', base, '--age', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = lastJson(r);
    const identityFile = `${base}.age-key`;
    assert.equal(res['ageIdentity'], identityFile);
    assert.equal((await stat(identityFile)).mode & 0o777, 0o600);
    assert.equal(res['ageRecipient'], (await run('age-keygen', ['-y', identityFile])).stdout.trim());
    assert.ok(!r.stdout.includes('AGE-SECRET-KEY'), 'no secret key in the output');
    const plain = randomBytes(1000);
    const file = path.join(work.path, 'for-dave.bin');
    await writeFile(file, plain);
    await sendEncrypted('enc/dave', 'dave', file, [String(res['ageRecipient'])]);
    const out = await freshOut();
    const rr = await cli(recvArgs('enc/dave', 'dave', out, ['-i', identityFile]));
    assert.equal(rr.code, 0, rr.stderr);
    assert.deepEqual(await readFile(path.join(out, 'for-dave.bin')), plain);
    // A second keygen on the same name is refused, and leaves the first identity as it was.
    const before = await readFile(identityFile);
    const again = await cli(['keygen', '--out', base, '--age']);
    assert.equal(again.code, 1);
    assert.deepEqual(await readFile(identityFile), before);
  });

  it("refuses another recipient's identity: exit 2, nothing written, no partial file", async () => {
    const file = path.join(work.path, 'for-bob.bin');
    await writeFile(file, randomBytes(300_000));
    await sendEncrypted('enc/wrong', 'bob', file, [bobRecipient]);
    const out = await freshOut();
    const r = await cli(recvArgs('enc/wrong', 'bob', out, ['--identity', carolKey]));
    assert.equal(r.code, 2, r.stderr);
    const failure = lastJson(r);
    assert.equal((failure['error'] as Record<string, unknown>)['code'], 'AGE_NO_IDENTITY');
    assert.deepEqual(await listAll(out), []);
    assert.deepEqual(
      (await listAll(path.join(work.path, 'tmp'))).filter((p) => p.endsWith('.part')),
      [],
    );
  });

  it('refuses tampered ciphertext (a re-pushed layer with one flipped byte): exit 2, nothing written, no partial file', async () => {
    const file = path.join(work.path, 'ledger.bin');
    await writeFile(file, randomBytes(300_000));
    const sent = await sendEncrypted('enc/tamper', 'bob', file, [bobRecipient], ['--no-sign']);
    const m = await rawGetManifest(registry.url, 'enc/tamper', String(sent['tag']));
    const manifest = JSON.parse(m.bytes.toString('utf8')) as { layers: { digest: string; size: number }[] };
    // The second layer: its tar entry's data starts after the 512-byte header.
    const layer = manifest.layers[1]!;
    const tar = zlib.gunzipSync(await rawGetBlob(registry.url, 'enc/tamper', layer.digest));
    tar[512 + 5000]! ^= 0x01;
    const forged = zlib.gzipSync(tar);
    await rawPushBlob(registry.url, 'enc/tamper', forged);
    layer.digest = sha256Digest(forged);
    layer.size = forged.length;
    await rawPushManifest(registry.url, 'enc/tamper', String(sent['tag']), Buffer.from(JSON.stringify(manifest)));
    const out = await freshOut();
    const r = await cli(recvArgs('enc/tamper', 'bob', out, ['--identity', bobKey, '--no-verify']));
    assert.equal(r.code, 2, r.stderr);
    assert.equal((lastJson(r)['error'] as Record<string, unknown>)['code'], 'AGE_PAYLOAD_INVALID');
    assert.deepEqual(await listAll(out), []);
    assert.deepEqual(
      (await listAll(path.join(work.path, 'tmp'))).filter((p) => p.endsWith('.part')),
      [],
    );
  });

  it("send --to bob --encrypt finds bob's age recipient in the trust file; with none bound it is refused (exit 4) and nothing is pushed", async () => {
    const trust = path.join(work.path, 'trust');
    await writeFile(trust, `# who is who\nbob ${bobRecipient}\nalice ${TEST_PUB}\n`);
    const plain = randomBytes(70_000);
    const file = path.join(work.path, 'via-trust.bin');
    await writeFile(file, plain);
    const sent = await sendEncrypted('enc/trust', 'bob', file, [], ['--encrypt', '--trust', trust]);
    assert.equal(sent['encrypted'], true);
    const out = await freshOut();
    const r = await cli(recvArgs('enc/trust', 'bob', out, ['--identity', bobKey]));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await readFile(path.join(out, 'via-trust.bin')), plain);

    const refused = await cli([
      'send',
      file,
      '--repo',
      `${registry.host}/enc/trust-none`,
      '--plain-http',
      '--to',
      'carol',
      '--key',
      TEST_KEY,
      '--encrypt',
      '--trust',
      trust,
      '--json',
    ]);
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /NO_AGE_RECIPIENT/);
    const tags = await fetch(`${registry.url}/v2/enc/trust-none/tags/list`);
    assert.equal(tags.status, 404, 'nothing was pushed');
  });

  it("a reply to an encrypted message is encrypted to the original sender's key from the trust file; unknown key: refused unless --no-encrypt", async () => {
    // alice's age identity: made by age-keygen, bound to her in bob's trust file.
    const aliceKey = path.join(work.path, 'alice-age.txt');
    await run('age-keygen', ['-o', aliceKey]);
    const aliceRecipient = (await run('age-keygen', ['-y', aliceKey])).stdout.trim();
    const file = path.join(work.path, 'question.txt');
    await writeFile(file, 'can you review the merger plans?');
    const sent = await sendEncrypted('enc/reply', 'bob', file, [bobRecipient], ['--sender', 'alice']);
    const answer = path.join(work.path, 'answer.txt');
    await writeFile(answer, 'yes, tomorrow');
    const replyArgs = (extra: string[]) => [
      'reply',
      answer,
      '--repo',
      `${registry.host}/enc/reply`,
      '--plain-http',
      '--in-reply-to',
      String(sent['digest']),
      '--key',
      TEST_KEY,
      '--sender',
      'bob',
      '--json',
      ...extra,
    ];

    // bob's trust file binds alice to the key she signs with (the reply goes to her verified
    // identity), and in the second file also to her age recipient.
    const emptyTrust = path.join(work.path, 'empty-trust');
    await writeFile(emptyTrust, `# alice signs, but no age recipient is known\nalice ${TEST_PUB}\n`);
    const unknown = await cli(replyArgs(['--trust', emptyTrust]));
    assert.equal(unknown.code, 4, unknown.stderr);
    assert.match(unknown.stderr, /NO_AGE_RECIPIENT/);

    const trust = path.join(work.path, 'bob-trust');
    await writeFile(trust, `alice ${TEST_PUB}\nalice ${aliceRecipient}\n`);
    const replied = await cli(replyArgs(['--trust', trust]));
    assert.equal(replied.code, 0, replied.stderr);
    assert.equal(lastJson(replied)['encrypted'], true);
    const out = await freshOut();
    const r = await cli(recvArgs('enc/reply', 'alice', out, ['--identity', aliceKey]));
    assert.equal(r.code, 0, r.stderr);
    const got = lastJson(r);
    assert.equal(got['decrypted'], true);
    assert.equal(await readFile(path.join(out, 'answer.txt'), 'utf8'), 'yes, tomorrow');

    const clear = await cli(replyArgs(['--trust', emptyTrust, '--no-encrypt']));
    assert.equal(clear.code, 0, clear.stderr);
    assert.equal(lastJson(clear)['encrypted'], false);
  });
});
