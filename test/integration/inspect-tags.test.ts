/**
 * `comms inspect` and `comms tags` on docker-registry, comms serve and an oci: folder, through the
 * one Repository interface: inspect --raw writes the exact bytes (their sha256 is the digest, and
 * skopeo reads the same bytes), the summary names the message's layers and annotations, and tags
 * come page by page in lexical order.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { openRepository, send } from '../../src/index.ts';
import { runComms } from '../support/cli.ts';
import { backendKinds, startBackend, type Backend } from '../support/referrers-backends.ts';
import { describeRun } from '../support/cli.ts';
import { skopeoInspectRaw, skopeoListTags } from '../support/skopeo.ts';
import { requireTool, tempDir, type TempDir } from '../support/tools.ts';

const sha256 = (b: string | Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

type Kind = 'docker-registry' | 'comms-serve' | 'oci-folder';
const kinds: Kind[] = [...backendKinds(), 'oci-folder'];
const haveSkopeo = requireTool('skopeo');

for (const kind of kinds) {
  describe(`inspect and tags on ${kind}`, () => {
    let backend: Backend | undefined;
    let dir: TempDir | undefined;
    let ref: string;
    before(async () => {
      if (kind === 'oci-folder') {
        dir = await tempDir('comms-inspect-');
        ref = `oci:${join(dir.path, 'box')}`;
      } else {
        backend = await startBackend(kind);
        ref = backend.freshRepo('inspect');
      }
    });
    after(async () => {
      await backend?.stop();
      await dir?.cleanup();
    });

    it('inspect shows the manifest as served: --raw bytes hash to the digest, --json summarises the message', async () => {
      const repository = await openRepository(ref, { create: true });
      const sent = await send({ unsigned: true, repository, recipient: 'bob', sender: 'alice', input: { text: 'inspect me' } });
      const raw = await runComms(['inspect', '--raw', `${ref}:${sent.tag}`]);
      assert.equal(raw.code, 0, describeRun(raw));
      assert.equal(sha256(raw.stdout), sent.digest, 'the raw bytes are the manifest whose digest send reported');
      if (kind !== 'oci-folder' && haveSkopeo) {
        assert.equal((await skopeoInspectRaw(`${ref}:${sent.tag}`)).toString('utf8'), raw.stdout, 'skopeo reads the same bytes');
      }
      const byDigest = await runComms(['inspect', '--json', `${ref}@${sent.digest}`]);
      assert.equal(byDigest.code, 0, describeRun(byDigest));
      const j = byDigest.json[0] as {
        digest: string;
        size: number;
        summary: { kind: string; layers: unknown[]; annotations: Record<string, string> };
        manifest: { artifactType: string };
      };
      assert.equal(j.digest, sent.digest);
      assert.equal(j.size, Buffer.byteLength(raw.stdout));
      assert.equal(j.summary.kind, 'message');
      assert.equal(j.summary.layers.length, 1);
      assert.equal(j.summary.annotations['dockercomms.recipient'], 'bob');
      assert.equal(j.manifest.artifactType, 'application/vnd.dockercomms.message.v1');
      const human = await runComms(['inspect', `${ref}:${sent.tag}`]);
      assert.equal(human.code, 0, describeRun(human));
      assert.match(human.stdout, new RegExp(`Digest: +${sent.digest}`));
      assert.match(human.stdout, /Kind: +message/);
    });

    it('inspect of an absent tag exits 5; of a reference without tag or digest exits 4', async () => {
      const missing = await runComms(['inspect', `${ref}:no-such-tag`]);
      assert.equal(missing.code, 5, describeRun(missing));
      const bare = await runComms(['inspect', ref]);
      assert.equal(bare.code, 4, describeRun(bare));
      assert.match(bare.stderr, /names no tag or digest/);
    });

    it('tags lists every tag page by page, in lexical order, starting after --last', async () => {
      const repository = await openRepository(ref, { create: true });
      const sent = await send({ unsigned: true, repository, recipient: 'carol', sender: 'alice', input: { text: 'tag me' } });
      const names = ['t-e', 't-a', 't-d', 't-b', 't-c'];
      const { descriptor, bytes } = await repository.fetchManifest(sent.digest);
      for (const t of names) await repository.pushManifest(descriptor, bytes, t);
      const all: string[] = [];
      await repository.tags((page) => {
        all.push(...page);
      });
      const r = await runComms(['tags', '--repo', ref, '--json', '--page-size', '2']);
      assert.equal(r.code, 0, describeRun(r));
      const pages = r.json as { page: number; tags: string[] }[];
      assert.ok(
        pages.every((p) => p.tags.length <= 2),
        'no page is larger than --page-size',
      );
      assert.deepEqual(
        pages.map((p) => p.page),
        pages.map((_, i) => i + 1),
      );
      const listed = pages.flatMap((p) => p.tags);
      assert.deepEqual(listed, [...all].sort(), 'every tag once, in lexical order');
      for (const t of names) assert.ok(listed.includes(t));
      if (kind !== 'oci-folder' && haveSkopeo) assert.deepEqual([...(await skopeoListTags(ref))].sort(), listed, 'skopeo lists the same tags');
      const after = await runComms(['tags', '--repo', ref, '--last', 't-c']);
      assert.equal(after.code, 0, describeRun(after));
      assert.deepEqual(
        after.stdout.trim().split('\n'),
        listed.filter((t) => t > 't-c'),
      );
    });
  });
}
