/**
 * skopeo (containers/image — a client nobody here wrote) against `comms serve`: it pushes an
 * image-like OCI layout (config + one gzip tar layer + manifest) into the registry, copies it back
 * out into a fresh layout with the same manifest digest and bytes, and lists the tag. Once more
 * through Basic auth.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import bcrypt from 'bcryptjs';
import { pack } from 'tar-stream';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';
import { MediaType } from '../../src/oci/mediatypes.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { requireTool, skipMessage, tempDir, type TempDir } from '../support/tools.ts';

const run = promisify(execFile);
const available = requireTool('skopeo');

async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const p = pack();
  for (const [name, text] of Object.entries(files)) p.entry({ name, mtime: new Date(0), mode: 0o644 }, text);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** An OCI layout holding a minimal runnable-looking image under `tag`; returns its manifest descriptor. */
async function buildImage(path: string, tag: string): Promise<Descriptor> {
  const layout = await OciLayout.open(path, { create: true });
  const tar = await tarOf({ 'hello.txt': 'hello from an image pushed by skopeo\n' });
  const gz = gzipSync(tar);
  const layer: Descriptor = { mediaType: MediaType.ImageLayerTarGzip, digest: digestOf(gz), size: gz.length };
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/true'] },
      rootfs: { type: 'layers', diff_ids: [`sha256:${createHash('sha256').update(tar).digest('hex')}`] },
    }),
  );
  const config: Descriptor = { mediaType: MediaType.ImageConfig, digest: digestOf(configBytes), size: configBytes.length };
  await layout.push(layer, gz);
  await layout.push(config, configBytes);
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageManifest, config, layers: [layer], annotations: { 'org.example': 'skopeo' } }),
  );
  const desc: Descriptor = { mediaType: MediaType.ImageManifest, digest: digestOf(manifest), size: manifest.length };
  await layout.pushManifest(desc, manifest, tag);
  return desc;
}

let dir: TempDir | undefined;
let server: RunningServer | undefined;

if (available) {
  before(async () => {
    dir = await tempDir('comms-serve-skopeo-');
    server = await startServer({ root: join(dir.path, 'root'), port: 0 });
  });
  after(async () => {
    await server?.close();
    await dir?.cleanup();
  });

  it('skopeo copies an image into comms serve and back out with the manifest digest preserved, and lists its tag', async () => {
    if (dir === undefined || server === undefined) throw new Error('not started');
    const src = join(dir.path, 'src');
    const desc = await buildImage(src, 'v1');
    const remote = `docker://127.0.0.1:${server.port}/skopeo/image`;

    await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${src}:v1`, `${remote}:v1`]);
    const { stdout: raw } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `${remote}:v1`]);
    assert.equal(digestOf(raw), desc.digest, 'the registry holds the exact manifest bytes');

    const out = join(dir.path, 'out');
    await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `${remote}:v1`, `oci:${out}:copied`]);
    const copied = await OciLayout.open(out);
    const back = await copied.fetchManifest('copied');
    assert.equal(back.descriptor.digest, desc.digest, 'the manifest digest survives the round trip');
    const original = await (await OciLayout.open(src)).fetchManifest('v1');
    assert.deepEqual(Buffer.from(back.bytes), Buffer.from(original.bytes));
    // Every blob came back verified (fetch checks digest and size as it streams).
    const m = JSON.parse(Buffer.from(back.bytes).toString()) as { config: Descriptor; layers: Descriptor[] };
    for (const d of [m.config, ...m.layers]) {
      let n = 0;
      for await (const c of await copied.fetch(d)) n += (c as Buffer).length;
      assert.equal(n, d.size);
    }

    await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${src}:v1`, `${remote}:also`]);
    const { stdout: tags } = await run('skopeo', ['list-tags', '--tls-verify=false', remote]);
    assert.deepEqual((JSON.parse(tags) as { Tags: string[] }).Tags.sort(), ['also', 'v1']);
  });

  it('skopeo pushes through Basic auth with --dest-creds, and is refused without', async () => {
    if (dir === undefined) throw new Error('not started');
    const htpasswd = join(dir.path, 'htpasswd');
    await writeFile(htpasswd, `ci:${bcrypt.hashSync('s3cret', 4)}\n`);
    const secured = await startServer({ root: join(dir.path, 'secured'), port: 0, htpasswd });
    try {
      const src = join(dir.path, 'src-auth');
      const desc = await buildImage(src, 'v1');
      const remote = `docker://127.0.0.1:${secured.port}/auth/image:v1`;
      await assert.rejects(run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${src}:v1`, remote]));
      await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', 'ci:s3cret', `oci:${src}:v1`, remote]);
      const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', 'ci:s3cret', remote]);
      assert.equal(digestOf(stdout), desc.digest);
    } finally {
      await secured.close();
    }
  });
} else {
  it('skopeo against comms serve', (t) => t.skip(skipMessage('skopeo')));
}
