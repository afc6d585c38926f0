/**
 * The CLI loads Sigstore, TUF, age, the verifier and the registry client only on the path that
 * uses them: an unsigned send or an unverified recv of an oci: folder carries none of them, and a
 * key-signed send loads the bundle builder without the keyless machinery (Fulcio, Rekor, TUF).
 * Each run is the real CLI under an `--import` hook that records every module it loaded; the
 * runs that sign, verify and encrypt show that the hook sees those modules when they are loaded.
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { describeRun, runComms, TEST_KEY, TEST_PUB } from '../support/cli.ts';

const HOOK = pathToFileURL(join(import.meta.dirname, '..', 'support', 'module-log.ts')).href;
/** An age recipient (from age-keygen); encrypting to it needs no identity. */
const AGE_RECIPIENT = 'age1ze3tk4mnxewpnuvnlr4zhsvk7m5p2lx0gpx5vxgy752nrg8dzaasnutv63';

/** What a run that neither signs, verifies nor encrypts, on an oci: folder, must not load. */
const HEAVY: Record<string, RegExp> = {
  Sigstore: /\/node_modules\/@sigstore\//,
  TUF: /\/node_modules\/(tuf-js|@tufjs)\//,
  age: /\/node_modules\/age-encryption\//,
  MCP: /\/node_modules\/@modelcontextprotocol\//,
  zod: /\/node_modules\/zod\//,
  'the registry client (undici)': /\/node_modules\/undici\//,
  'the verifier': /\/src\/(trust\/verify|comms\/verify-message)\.ts$/,
  'the signers': /\/src\/trust\/(key-signer|keyless-signer|trusted-root)\.ts$/,
  'the age module': /\/src\/trust\/age\.ts$/,
};

/** The keyless machinery, which a key signature does not need. */
const KEYLESS: Record<string, RegExp> = {
  'Fulcio/Rekor clients (the @sigstore/sign index)': /\/node_modules\/@sigstore\/sign\/dist\/(index|signer|witness|external)/,
  TUF: /\/node_modules\/(tuf-js|@tufjs|@sigstore\/tuf)\//,
  'its HTTP stack': /\/node_modules\/make-fetch-happen\//,
  'the keyless signer and trusted root': /\/src\/trust\/(keyless-signer|trusted-root)\.ts$/,
};

let dir: string;
let run = 0;

/** Runs the CLI and returns the URLs of the modules it loaded. */
async function loaded(args: string[]): Promise<string[]> {
  const log = join(dir, `modules-${++run}.log`);
  const r = await runComms(args, {
    env: { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import=${HOOK}`.trim(), COMMS_TEST_MODULE_LOG: log },
  });
  assert.equal(r.code, 0, describeRun(r));
  const urls = (await readFile(log, 'utf8')).split('\n').filter((l) => l !== '');
  assert.ok(
    urls.some((u) => u.endsWith('/src/cli/main.ts')),
    'the hook recorded the CLI itself',
  );
  return urls;
}

function assertNone(urls: string[], what: Record<string, RegExp>): void {
  for (const [name, re] of Object.entries(what)) {
    const hits = urls.filter((u) => re.test(u));
    assert.deepEqual(hits.slice(0, 5), [], `${name} was loaded`);
  }
}

function assertSome(urls: string[], name: string, re: RegExp): void {
  assert.ok(
    urls.some((u) => re.test(u)),
    `${name} was not loaded`,
  );
}

describe('the CLI loads signing, verification and encryption modules only when a run uses them', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'comms-lazy-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('send --no-sign -m into an oci: folder loads no Sigstore, TUF, age, MCP, zod, registry client or verifier', async () => {
    const urls = await loaded(['send', '--no-sign', '-m', 'hi', '--repo', `oci:${join(dir, 'plain')}`, '--to', 'bob', '--sender', 'alice', '--json']);
    assertNone(urls, HEAVY);
  });

  it('recv --no-verify out of an oci: folder loads none of them either', async () => {
    const urls = await loaded(['recv', '--no-verify', '--repo', `oci:${join(dir, 'plain')}`, '--me', 'bob', '--out', join(dir, 'out-plain'), '--json']);
    assertNone(urls, HEAVY);
    assert.equal(await readFile(join(dir, 'out-plain', 'message.txt'), 'utf8'), 'hi');
  });

  it('send --key loads the bundle builder but none of the keyless machinery', async () => {
    const urls = await loaded([
      'send',
      '--key',
      TEST_KEY,
      '-m',
      'signed',
      '--repo',
      `oci:${join(dir, 'signed')}`,
      '--to',
      'bob',
      '--sender',
      'alice',
      '--json',
    ]);
    assertSome(urls, "@sigstore/sign's message bundle builder", /\/node_modules\/@sigstore\/sign\/dist\/bundler\/message\.js$/);
    assertSome(urls, '@sigstore/bundle', /\/node_modules\/@sigstore\/bundle\//);
    assertSome(urls, 'the key signer', /\/src\/trust\/key-signer\.ts$/);
    assertNone(urls, KEYLESS);
  });

  it('recv that verifies with --trusted-key loads the verifier, but neither TUF nor the signing clients nor age', async () => {
    const urls = await loaded([
      'recv',
      '--trusted-key',
      TEST_PUB,
      '--repo',
      `oci:${join(dir, 'signed')}`,
      '--me',
      'bob',
      '--out',
      join(dir, 'out-signed'),
      '--json',
    ]);
    assertSome(urls, '@sigstore/verify', /\/node_modules\/@sigstore\/verify\//);
    assertSome(urls, 'the verifier', /\/src\/comms\/verify-message\.ts$/);
    assertNone(urls, { TUF: KEYLESS['TUF']!, 'Fulcio/Rekor clients': KEYLESS['Fulcio/Rekor clients (the @sigstore/sign index)']!, age: HEAVY['age']! });
  });

  it('send --encrypt-to loads age', async () => {
    const urls = await loaded([
      'send',
      '--no-sign',
      '--encrypt-to',
      AGE_RECIPIENT,
      '-m',
      'secret',
      '--repo',
      `oci:${join(dir, 'sealed')}`,
      '--to',
      'bob',
      '--sender',
      'alice',
      '--json',
    ]);
    assertSome(urls, 'age-encryption', /\/node_modules\/age-encryption\//);
    assertSome(urls, 'the age module', /\/src\/trust\/age\.ts$/);
  });
});
