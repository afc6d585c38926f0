/** Upload sessions on disk: all-or-nothing chunks, a hash that survives a restart, the owner check, expiry. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { link, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DigestMismatchError } from '../../src/errors.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';
import { Readable } from 'node:stream';
import { digestOf } from '../../src/oci/digest.ts';
import { RegistryHttpError } from '../../src/server/errors.ts';
import { UploadStore } from '../../src/server/uploads.ts';
import { tempDir } from '../support/tools.ts';

const body = (...parts: string[]): Readable => Readable.from(parts.map((p) => Buffer.from(p)));

describe('UploadStore', () => {
  it('appends chunks, hashes across a restart, and digests sha256 and sha512', async () => {
    await using dir = await tempDir('comms-uploads-');
    const store = new UploadStore(dir.path, 60_000);
    await store.init();
    const s = await store.create('a/b');
    assert.equal(await store.append(s, body('hello ', 'wor')), 9);
    // A new store (a restarted server) knows the session from disk and rebuilds the hash.
    const again = new UploadStore(dir.path, 60_000);
    const s2 = await again.get('a/b', s.id);
    assert.equal(await again.append(s2, body('ld')), 11);
    assert.deepEqual(await again.digest(s2, 'sha256'), { digest: digestOf('hello world'), size: 11 });
    const sha512 = await again.digest(s2, 'sha512');
    assert.match(sha512.digest, /^sha512:[0-9a-f]{128}$/);
  });

  it('a chunk that breaks off or is longer/shorter than announced leaves the session as it was', async () => {
    await using dir = await tempDir('comms-uploads-');
    const store = new UploadStore(dir.path, 60_000);
    await store.init();
    const s = await store.create('r');
    await store.append(s, body('abc'));
    const broken = new Readable({
      read() {
        this.push(Buffer.from('partial'));
        this.destroy(new Error('connection reset'));
      },
    });
    await assert.rejects(store.append(s, broken), /connection reset/);
    await assert.rejects(store.append(s, body('12345'), 3), RegistryHttpError);
    await assert.rejects(store.append(s, body('1'), 3), RegistryHttpError);
    assert.equal(await store.size(s), 3);
    assert.equal((await store.digest(s, 'sha256')).digest, digestOf('abc'), 'the hash was rolled back too');
    await store.append(s, body('def'), 3);
    assert.equal((await store.digest(s, 'sha256')).digest, digestOf('abcdef'));
  });

  it('a session belongs to its repository; removed sessions are unknown', async () => {
    await using dir = await tempDir('comms-uploads-');
    const store = new UploadStore(dir.path, 60_000);
    await store.init();
    const s = await store.create('owner');
    await assert.rejects(store.get('thief', s.id), (e: unknown) => e instanceof RegistryHttpError && e.code === 'BLOB_UPLOAD_UNKNOWN');
    await store.remove(s);
    await assert.rejects(store.get('owner', s.id), (e: unknown) => e instanceof RegistryHttpError && e.code === 'BLOB_UPLOAD_UNKNOWN');
  });

  it('sweep removes sessions idle past the TTL and keeps fresh ones', async () => {
    await using dir = await tempDir('comms-uploads-');
    const store = new UploadStore(dir.path, 60_000);
    await store.init();
    const old = await store.create('r');
    const fresh = await store.create('r');
    const past = new Date(Date.now() - 120_000);
    for (const f of await readdir(store.dir)) if (f.startsWith(old.id)) await utimes(`${store.dir}/${f}`, past, past);
    assert.equal(await store.sweep(), 2);
    await assert.rejects(store.get('r', old.id), RegistryHttpError);
    assert.equal((await store.get('r', fresh.id)).id, fresh.id);
  });
});

describe('committing a session into the layout store', () => {
  it('pushFile links a verified file into the store without copying, and refuses a mismatch leaving nothing', async () => {
    await using dir = await tempDir('comms-uploads-');
    const layout = await OciLayout.open(join(dir.path, 'repo'), { create: true });
    const file = join(dir.path, 'upload.data');
    await writeFile(file, 'finished upload');
    const desc = { mediaType: 'application/octet-stream', digest: digestOf('finished upload'), size: 15 };
    const lie = { ...desc, digest: digestOf('something else!') };
    await assert.rejects(layout.pushFile(lie, file), DigestMismatchError);
    assert.equal(await layout.exists(lie), false);
    assert.deepEqual(await readdir(join(dir.path, 'repo', '.tmp')), [], 'no temp link left behind');
    assert.equal((await layout.pushFile(desc, file)).skipped, false);
    const stored = join(dir.path, 'repo', 'blobs', 'sha256', desc.digest.slice(7));
    assert.equal((await stat(stored)).ino, (await stat(file)).ino, 'the same file, not a copy');
    assert.equal((await layout.pushFile(desc, file)).skipped, true);
  });

  it('a session whose file is linked into the store (a commit cut short) is never appended to', async () => {
    await using dir = await tempDir('comms-uploads-');
    const store = new UploadStore(dir.path, 60_000);
    await store.init();
    const s = await store.create('r');
    await store.append(s, body('committed bytes'));
    const blob = join(dir.path, 'blob');
    await link(s.dataPath, blob);
    await assert.rejects(store.append(s, body('more')), (e: unknown) => e instanceof RegistryHttpError && e.code === 'BLOB_UPLOAD_INVALID');
    assert.equal(await readFile(blob, 'utf8'), 'committed bytes');
  });
});
