/**
 * Received filenames through the real CLI, from an `oci:` layout holding dockercomms v1.0's own
 * message (fixtures/v1/message) re-annotated with names v1.0's writers or other tools produce:
 * surrounding white space is trimmed as v1.0 trims it, and two messages with the same 255-byte
 * name are both delivered (the second as `…-1.txt`, cut to fit 255 bytes, not a raw ENAMETOOLONG).
 * The fixture was created in 2025 and has expired: `--include-expired` receives it anyway.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { OciLayout } from '../../src/oci/layout/index.ts';
import { runComms } from '../support/cli.ts';
import { OCI_MANIFEST, sha256Digest } from '../support/messages-raw.ts';
import { tempDir, type TempDir } from '../support/tools.ts';

const V1 = new URL('../../fixtures/v1/message/', import.meta.url);
const EMPTY_CONFIG = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
};
const CHUNK_GZIP = 'application/vnd.dockercomms.chunk.v1.tar+gzip';

let work: TempDir;
before(async () => {
  work = await tempDir('comms-recv-names-');
});
after(async () => {
  await work?.cleanup();
});

/** A layout holding the v1.0 message once per name, each with its own message id and inbox tag. */
async function layoutWithNames(dir: string, names: string[]): Promise<void> {
  const layout = await OciLayout.open(dir, { create: true });
  await layout.push(EMPTY_CONFIG, Buffer.from('{}'));
  for (const hex of await readdir(new URL('blobs/', V1))) {
    const blob = await readFile(new URL(`blobs/${hex}`, V1));
    await layout.push({ mediaType: CHUNK_GZIP, digest: `sha256:${hex}`, size: blob.length }, blob);
  }
  const tag = (await readFile(new URL('tag', V1), 'utf8')).trim();
  const manifest = JSON.parse(await readFile(new URL('manifest.json', V1), 'utf8')) as { annotations: Record<string, string> };
  for (const [i, name] of names.entries()) {
    const id = `6fa459ea-ee8a-4ca4-894e-db77e16035${String(i).padStart(2, '0')}`;
    manifest.annotations['dockercomms.filename'] = name;
    manifest.annotations['dockercomms.message.id'] = id;
    const bytes = Buffer.from(JSON.stringify(manifest));
    await layout.pushManifest({ mediaType: OCI_MANIFEST, digest: sha256Digest(bytes), size: bytes.length }, bytes, `${tag.slice(0, -8)}0000000${i}`);
  }
}

describe('comms recv: received names', () => {
  it('names are trimmed as v1.0 trims them; " .." is written as file', async () => {
    const layout = path.join(work.path, 'trim');
    await layoutWithNames(layout, ['report.pdf ', '  spaces  .txt  ', ' ..']);
    const out = path.join(work.path, 'trim-out');
    const r = await runComms(['recv', '--repo', `oci:${layout}`, '--me', 'bob', '--out', out, '--no-verify', '--include-expired', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await readdir(out)).sort(), ['file', 'report.pdf', 'spaces  .txt']);
    assert.equal(await readFile(path.join(out, 'report.pdf'), 'utf8'), 'hello from dockercomms v1.0\n');
  });

  it('two messages with the same 255-byte name: both delivered, the second under a cut name-1.txt', async () => {
    const layout = path.join(work.path, 'long');
    const long = `${'a'.repeat(251)}.txt`;
    await layoutWithNames(layout, [long, long]);
    const out = path.join(work.path, 'long-out');
    const r = await runComms(['recv', '--repo', `oci:${layout}`, '--me', 'bob', '--out', out, '--no-verify', '--include-expired', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const files = (await readdir(out)).sort();
    assert.equal(files.length, 2, files.join(', '));
    assert.ok(files.includes(long));
    const other = files.find((f) => f !== long)!;
    assert.ok(other.endsWith('-1.txt') && Buffer.byteLength(other) <= 255, other);
  });
});
