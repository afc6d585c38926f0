/** Loading a Sigstore TrustedRoot from a file or from the TUF cache, without the network. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ExitCode, VerificationError } from '../../src/errors.ts';
import { DEFAULT_MIRROR_URL } from '@sigstore/tuf';
import { defaultTufCacheDir, loadPublicGoodTrustedRoot, loadTrustedRoot, loadTrustedRootFile, PUBLIC_GOOD_TUF_MIRROR } from '../../src/trust/trusted-root.ts';
import { rejection } from '../support/rejection.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'comms-trust-root-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const minimalRoot = (rekorURL: string) => ({
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [
    {
      baseUrl: rekorURL,
      hashAlgorithm: 'SHA2_256',
      publicKey: {
        rawBytes: Buffer.from('not checked here').toString('base64'),
        keyDetails: 'PKIX_ECDSA_P256_SHA_256',
        validFor: { start: '2024-01-01T00:00:00Z' },
      },
      logId: { keyId: Buffer.alloc(32, 1).toString('base64') },
    },
  ],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
});

async function unavailable(p: Promise<unknown>, text: RegExp): Promise<void> {
  const err = await rejection(p, 'expected a failure');
  assert.ok(err instanceof VerificationError, String(err));
  assert.equal(err.exitCode, ExitCode.VERIFICATION);
  assert.equal(err.code, 'TRUSTED_ROOT_UNAVAILABLE');
  assert.match(err.message, text);
}

describe('trusted root from a file', () => {
  it('reads a TrustedRoot JSON file', async () => {
    const path = join(dir, 'root.json');
    await writeFile(path, JSON.stringify(minimalRoot('https://rekor.example')));
    const root = (await loadTrustedRootFile(path)) as { tlogs: { baseUrl: string }[] };
    assert.equal(root.tlogs[0]?.baseUrl, 'https://rekor.example');
    assert.deepEqual(await loadTrustedRoot({ path }), root);
  });

  it('refuses a missing file, non-JSON, and JSON that names no authority, as verification failures', async () => {
    await unavailable(loadTrustedRootFile(join(dir, 'absent.json')), /cannot read trusted root .*ENOENT/);
    const garbage = join(dir, 'garbage.json');
    await writeFile(garbage, '{"tlogs": [');
    await unavailable(loadTrustedRootFile(garbage), /is not JSON/);
    const empty = join(dir, 'empty.json');
    await writeFile(empty, '{}');
    await unavailable(loadTrustedRootFile(empty), /names no certificate authority and no transparency log/);
  });
});

describe('public-good trusted root, offline', () => {
  it('uses the root last fetched into the TUF cache', async () => {
    const cacheDir = join(dir, 'cache-hit');
    const targets = join(cacheDir, encodeURIComponent('tuf-repo-cdn.sigstore.dev'), 'targets');
    await mkdir(targets, { recursive: true });
    await writeFile(join(targets, 'trusted_root.json'), JSON.stringify(minimalRoot('https://rekor.cached.example')));
    const root = (await loadPublicGoodTrustedRoot({ cacheDir, offline: true })) as { tlogs: { baseUrl: string }[] };
    assert.equal(root.tlogs[0]?.baseUrl, 'https://rekor.cached.example');
  });

  it('falls back to the root shipped with @sigstore/tuf when the cache is empty', async () => {
    const root = (await loadPublicGoodTrustedRoot({ cacheDir: join(dir, 'cache-empty'), offline: true })) as {
      tlogs: { baseUrl: string }[];
      certificateAuthorities: { uri: string }[];
    };
    assert.ok(root.tlogs.some((t) => t.baseUrl === 'https://rekor.sigstore.dev'));
    assert.ok(root.certificateAuthorities.some((c) => c.uri === 'https://fulcio.sigstore.dev'));
  });

  it('refuses offline for a mirror it has nothing cached for', async () => {
    await unavailable(
      loadPublicGoodTrustedRoot({ cacheDir: join(dir, 'cache-other'), mirrorURL: 'https://tuf.mirror.invalid', offline: true }),
      /no cached trusted root/,
    );
  });

  it('caches under $XDG_CACHE_HOME/comms/tuf, else ~/.cache/comms/tuf', () => {
    assert.equal(defaultTufCacheDir({ XDG_CACHE_HOME: '/x/cache' }), '/x/cache/comms/tuf');
    assert.match(defaultTufCacheDir({}), /\/\.cache\/comms\/tuf$/);
  });

  it('names the same public-good mirror as @sigstore/tuf (whose seed it falls back to)', () => {
    assert.equal(PUBLIC_GOOD_TUF_MIRROR, DEFAULT_MIRROR_URL);
  });
});
