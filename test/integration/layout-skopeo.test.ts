/**
 * The layout folder is an ordinary OCI image layout: skopeo (containers/image, not ours) reads
 * what OciLayout wrote, and OciLayout reads what skopeo wrote — into a fresh layout and into ours,
 * next to our own tags. Digests are preserved both ways.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { digestOf } from '../../src/oci/digest.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';
import { EMPTY_JSON_BYTES, EMPTY_JSON_DIGEST, MediaType } from '../../src/oci/mediatypes.ts';
import { requireTool, skipMessage } from '../support/tools.ts';

const run = promisify(execFile);

it('skopeo reads a layout OciLayout wrote, and OciLayout reads what skopeo copies', async (t) => {
  if (!requireTool('skopeo')) return t.skip(skipMessage('skopeo'));
  const dir = await mkdtemp(join(tmpdir(), 'comms-layout-skopeo-'));
  try {
    const ours = join(dir, 'ours');
    const layout = await OciLayout.open(ours, { create: true });
    const empty = { mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: 2 };
    await layout.push(empty, EMPTY_JSON_BYTES);
    const data = new TextEncoder().encode('hello from comms');
    const layer = { mediaType: 'text/plain', digest: digestOf(data), size: data.length };
    await layout.push(layer, data);
    const bytes = new TextEncoder().encode(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageManifest, artifactType: 'application/vnd.example', config: empty, layers: [layer] }),
    );
    const desc = { mediaType: MediaType.ImageManifest, digest: digestOf(bytes), size: bytes.length };
    await layout.pushManifest(desc, bytes, 'v1');

    const { stdout } = await run('skopeo', ['inspect', '--raw', `oci:${ours}:v1`]);
    assert.equal(stdout, new TextDecoder().decode(bytes), 'skopeo sees the exact manifest bytes');

    // skopeo writes a fresh layout, and adds a tag into ours (rewriting our index.json its way).
    const theirs = join(dir, 'theirs');
    await run('skopeo', ['copy', '--quiet', `oci:${ours}:v1`, `oci:${theirs}:copied`]);
    await run('skopeo', ['copy', '--quiet', `oci:${ours}:v1`, `oci:${ours}:from-skopeo`]);

    const copied = await OciLayout.open(theirs);
    assert.deepEqual(Buffer.from((await copied.fetchManifest('copied')).bytes), Buffer.from(bytes));
    const chunks: Buffer[] = [];
    for await (const c of await copied.fetch(layer)) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), Buffer.from(data));
    await copied.tag(desc, 'retagged'); // a layout skopeo created is writable by us too
    assert.equal((await copied.resolve('retagged')).digest, desc.digest);

    assert.equal((await layout.resolve('v1')).digest, desc.digest);
    assert.equal((await layout.resolve('from-skopeo')).digest, desc.digest);
    await layout.tag(desc, 'after-skopeo');
    const tags: string[] = [];
    await layout.tags((page) => void tags.push(...page));
    assert.deepEqual(tags, ['after-skopeo', 'from-skopeo', 'v1']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
