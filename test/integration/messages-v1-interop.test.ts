/**
 * comms and dockercomms v1.0 share one wire format.
 * (a) The v1.0 artifacts of fixtures/v1 (written along v1.0's Go code paths), pushed byte for byte
 *     with their v1.0 inbox tags into docker-registry and into an OCI layout, are received by
 *     `comms recv --no-verify`.
 * (b) What `comms send` / `comms ack` write passes every rule of wire-format.md, checked from the
 *     raw registry API (fetch, not comms' client) and with the system's gzip, zstd and tar (not
 *     comms' chunk reader): manifest fields, annotations and their formats, chunk layers and their
 *     tar entries, the tag schema and the recipient_tag vectors, receipts and signature bundles
 *     (the signature checked with node:crypto against the test public key).
 * (c) skopeo copies a signed comms message to another repository and into an OCI layout with
 *     digests preserved, and the copy still receives and verifies.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OciLayout } from '../../src/oci/layout/index.ts';
import { runComms, TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { sha256File, sha256Hex } from '../support/messages-data.ts';
import {
  OCI_MANIFEST,
  openLayerWithSystemTools,
  rawGetBlob,
  rawGetManifest,
  rawPushBlob,
  rawPushManifest,
  rawTags,
  recipientTagOf,
  sha256Digest,
  type RawManifest,
} from '../support/messages-raw.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { skopeoCopy, skopeoInspectRaw } from '../support/skopeo.ts';
import { requireTools, skipMessage, tempDir, type TempDir } from '../support/tools.ts';

const V1 = new URL('../../fixtures/v1/', import.meta.url);
const EMPTY_CONFIG = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
};
const MESSAGE_TYPE = 'application/vnd.dockercomms.message.v1';
const RECEIPT_TYPE = 'application/vnd.dockercomms.receipt.v1';
const BUNDLE_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const CHUNK_TYPE = { gzip: 'application/vnd.dockercomms.chunk.v1.tar+gzip', zstd: 'application/vnd.dockercomms.chunk.v1.tar+zstd' } as const;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const CANONICAL_INT = /^(0|[1-9][0-9]*)$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The test key's id (fixtures/keys/README.md), the hint in a key-signed bundle. */
const TEST_KEY_ID = '3f906a651ef2d2fa0952308e800ba8c1b1a119d78a459a4debddcee8536ae661';
const MESSAGE_KEYS = [
  'dockercomms.chunk_bytes',
  'dockercomms.chunk_count',
  'dockercomms.compression',
  'dockercomms.created_at',
  'dockercomms.filename',
  'dockercomms.message.id',
  'dockercomms.recipient',
  'dockercomms.sender',
  'dockercomms.total_bytes',
  'dockercomms.ttl_seconds',
  'dockercomms.version',
];

interface V1Fixture {
  manifest: Buffer;
  tag: string;
  blobs: Map<string, Buffer>;
}

async function loadFixture(name: string): Promise<V1Fixture> {
  const dir = new URL(`${name}/`, V1);
  const manifest = await readFile(new URL('manifest.json', dir));
  const tag = (await readFile(new URL('tag', dir), 'utf8')).trim();
  const blobs = new Map<string, Buffer>();
  for (const hex of await readdir(new URL('blobs/', dir)).catch(() => [] as string[])) {
    blobs.set(`sha256:${hex}`, await readFile(new URL(`blobs/${hex}`, dir)));
  }
  return { manifest, tag, blobs };
}

type Json = Record<string, unknown>;
const annotationsOf = (m: Json): Record<string, string> => m['annotations'] as Record<string, string>;

function utcDate8(iso: string): string {
  return iso.slice(0, 10).replaceAll('-', '');
}

if (!requireTools('docker-registry', 'skopeo', 'zstd', 'gzip', 'tar')) {
  it('dockercomms v1.0 interop', (t) => t.skip(skipMessage('docker-registry', 'skopeo', 'zstd', 'gzip', 'tar')));
} else {
  describe('dockercomms v1.0 interop', () => {
    let registry: RegistryServer;
    let work: TempDir;
    let base: string;
    let dirCount = 0;
    async function freshDir(name: string): Promise<string> {
      const dir = join(work.path, `${name}-${dirCount++}`);
      await mkdir(dir, { recursive: true });
      return dir;
    }

    before(async () => {
      [registry, work] = await Promise.all([startRegistry({ mode: 'plain' }), tempDir('comms-msg-v1-')]);
      base = registry.url;
    });
    after(async () => {
      await registry?.stop();
      await work?.cleanup();
    });

    describe('(a) what v1.0 writes, comms receives', () => {
      let message: V1Fixture;
      let empty: V1Fixture;
      before(async () => {
        [message, empty] = await Promise.all([loadFixture('message'), loadFixture('empty')]);
      });

      /** What recv must report for the two v1.0 messages, and the bytes it must write. */
      async function assertReceived(repoArg: string) {
        const out = await freshDir('v1-out');
        // The fixtures were written in 2025 with v1.0's TTL: expired since, so recv must be told to include them.
        const r = await runComms(['recv', '--repo', repoArg, '--me', 'bob', '--out', out, '--no-verify', '--json', '--include-expired']);
        assert.equal(r.code, 0, r.stderr);
        const got = [...r.json].sort((x, y) => String(x['filename']).localeCompare(String(y['filename'])));
        assert.deepEqual(
          got.map((j) => [j['digest'], j['tag'], j['filename'], j['bytes'], j['sender']]),
          [
            ['sha256:d8d4f1e512d694458b2a9cf6b28ea48dd63b26fa74f326ac737328c834b6b965', empty.tag, 'empty.txt', 0, 'alice@example.com'],
            ['sha256:29da45c0499626c691622262ad7820bff097054b61aaf35b8d65e554b8cc29ba', message.tag, 'hello.txt', 28, 'alice@example.com'],
          ],
        );
        assert.equal(await readFile(join(out, 'hello.txt'), 'utf8'), 'hello from dockercomms v1.0\n');
        assert.equal((await readFile(join(out, 'empty.txt'))).length, 0);
        assert.deepEqual((await readdir(out)).sort(), ['empty.txt', 'hello.txt']);
      }

      it('from docker-registry, pushed raw with their v1.0 inbox tags', async () => {
        const repo = 'v1/inbox';
        await rawPushBlob(base, repo, Buffer.from('{}'));
        for (const f of [message, empty]) {
          for (const [digest, blob] of f.blobs) assert.equal(await rawPushBlob(base, repo, blob), digest);
          assert.equal(await rawPushManifest(base, repo, f.tag, f.manifest), sha256Digest(f.manifest));
          // The registry keeps the bytes exactly (no top-level mediaType, Go's field order).
          assert.deepEqual((await rawGetManifest(base, repo, f.tag)).bytes, f.manifest);
        }
        await assertReceived(`${registry.host}/${repo}`);
      });

      it('from an OCI layout holding the same bytes', async () => {
        const dir = await freshDir('v1-layout');
        const layout = await OciLayout.open(dir, { create: true });
        await layout.push(EMPTY_CONFIG, Buffer.from('{}'));
        for (const f of [message, empty]) {
          for (const [digest, blob] of f.blobs) await layout.push({ mediaType: CHUNK_TYPE.gzip, digest, size: blob.length }, blob);
          await layout.pushManifest({ mediaType: OCI_MANIFEST, digest: sha256Digest(f.manifest), size: f.manifest.length }, f.manifest, f.tag);
          assert.deepEqual(await readFile(join(dir, 'blobs', 'sha256', sha256Digest(f.manifest).slice(7))), f.manifest);
        }
        await assertReceived(`oci:${dir}`);
      });
    });

    describe('(b) what comms writes passes every rule of wire-format.md', () => {
      const repo = 'wire/mailbox';
      const session = '7d444840-9dc0-11d1-b245-5ffdce74fad2';
      const cases = [
        // More than one chunk: chunk_bytes is the chunk size used.
        { name: 'gzip, 3 chunks', recipient: 'bob', compression: 'gzip' as const, bytes: 2 * 65536 + 1000, chunkBytes: 65536 },
        // Smaller than the chunk size: chunk_bytes is total_bytes.
        { name: 'zstd, 1 chunk', recipient: 'alice@example.com', compression: 'zstd' as const, bytes: 5000, chunkBytes: 104857600 },
        // Empty: no layers, chunk_bytes 0.
        { name: 'empty', recipient: 'team-b', compression: 'gzip' as const, bytes: 0, chunkBytes: 104857600 },
      ];
      const sent = new Map<string, { json: Json; payload: Buffer; manifest: RawManifest; before: number; after: number }>();
      let tags: string[] = [];

      before(async () => {
        const src = await freshDir('wire-src');
        for (const c of cases) {
          const payload = randomBytes(c.bytes);
          const file = join(src, `${c.name.replaceAll(/[^a-z0-9]+/g, '_')}.bin`);
          await writeFile(file, payload);
          const before = Math.floor(Date.now() / 1000);
          const s = await runComms([
            'send',
            file,
            '--repo',
            `${registry.host}/${repo}`,
            '--to',
            c.recipient,
            '--sender',
            'carol@example.com',
            '--compress',
            c.compression,
            '--chunk-bytes',
            String(c.chunkBytes),
            '--session',
            session,
            '--key',
            TEST_KEY,
            '--json',
          ]);
          assert.equal(s.code, 0, s.stderr);
          const after = Math.ceil(Date.now() / 1000);
          const json = s.json[0]!;
          sent.set(c.name, { json, payload, manifest: await rawGetManifest(base, repo, String(json['tag'])), before, after });
        }
        tags = await rawTags(base, repo);
      });

      for (const c of cases) {
        it(`message (${c.name}): manifest fields, annotations and their formats`, () => {
          const { json, manifest, payload, before, after } = sent.get(c.name)!;
          assert.equal(manifest.digest, json['digest'], 'the digest send reported is the digest of the bytes served');
          const m = manifest.json;
          assert.equal(m['schemaVersion'], 2);
          assert.equal(m['mediaType'], OCI_MANIFEST);
          assert.equal(manifest.contentType, OCI_MANIFEST);
          assert.equal(m['artifactType'], MESSAGE_TYPE);
          assert.deepEqual(m['config'], EMPTY_CONFIG);
          assert.equal(m['subject'], undefined, 'a plain message has no subject');
          // SPEC §3: Go's encoding/json field order, compact, annotation keys sorted.
          assert.deepEqual(Object.keys(m), ['schemaVersion', 'mediaType', 'artifactType', 'config', 'layers', 'annotations']);
          assert.equal(manifest.bytes.toString('utf8'), JSON.stringify(m));

          const a = annotationsOf(m);
          assert.deepEqual(Object.keys(a), MESSAGE_KEYS, 'exactly the v1.0 keys, sorted');
          for (const v of Object.values(a)) assert.equal(typeof v, 'string');
          assert.equal(a['dockercomms.version'], '1.0');
          assert.equal(a['dockercomms.sender'], 'carol@example.com');
          assert.equal(a['dockercomms.recipient'], c.recipient);
          assert.match(a['dockercomms.created_at']!, RFC3339_UTC);
          const created = Date.parse(a['dockercomms.created_at']!) / 1000;
          assert.ok(created >= before && created <= after, `created_at ${a['dockercomms.created_at']} is the time of sending`);
          assert.equal(a['dockercomms.ttl_seconds'], '604800');
          assert.equal(a['dockercomms.filename'], `${c.name.replaceAll(/[^a-z0-9]+/g, '_')}.bin`);
          for (const k of ['total_bytes', 'chunk_bytes', 'chunk_count', 'ttl_seconds']) assert.match(a[`dockercomms.${k}`]!, CANONICAL_INT, k);
          assert.equal(a['dockercomms.total_bytes'], String(payload.length));
          assert.equal(a['dockercomms.chunk_bytes'], String(Math.min(c.chunkBytes, payload.length)), 'the chunk size used, or total_bytes when smaller');
          const layers = m['layers'] as Json[];
          assert.equal(a['dockercomms.chunk_count'], String(layers.length));
          assert.equal(layers.length, Math.ceil(payload.length / c.chunkBytes));
          assert.equal(a['dockercomms.compression'], c.compression);
          assert.match(a['dockercomms.message.id']!, UUID);
          assert.equal(a['dockercomms.message.id'], json['messageId']);
        });

        it(`message (${c.name}): each layer is a ${c.compression} tar of one regular file chunk_<i>.bin (read with ${c.compression} and tar)`, async () => {
          const { manifest, payload } = sent.get(c.name)!;
          const layers = manifest.json['layers'] as Json[];
          const scratch = await freshDir('wire-layers');
          const pieces: Buffer[] = [];
          for (const [i, layer] of layers.entries()) {
            assert.deepEqual(Object.keys(layer), ['mediaType', 'digest', 'size', 'annotations']);
            assert.equal(layer['mediaType'], CHUNK_TYPE[c.compression]);
            assert.deepEqual(layer['annotations'], { 'dockercomms.chunk.index': String(i) });
            const blob = await rawGetBlob(base, repo, String(layer['digest']));
            assert.equal(sha256Digest(blob), layer['digest']);
            assert.equal(blob.length, layer['size']);
            const { entries, content } = await openLayerWithSystemTools(blob, c.compression, scratch);
            const expected = Math.min(c.chunkBytes, payload.length - i * c.chunkBytes);
            // SPEC §4: mode 0644, uid/gid 0, mtime 0.
            assert.deepEqual(entries, [{ type: '-', mode: 'rw-r--r--', owner: '0/0', size: expected, mtime: '1970-01-01 00:00:00', name: `chunk_${i}.bin` }]);
            pieces.push(content);
          }
          assert.equal(sha256Hex(Buffer.concat(pieces)), sha256Hex(payload));
          assert.deepEqual(await rawGetBlob(base, repo, EMPTY_CONFIG.digest), Buffer.from('{}'));
        });

        it(`message (${c.name}): inbox tag inbox-<recipient_tag>-<YYYYMMDD>-<sid8>-<mid8>`, async () => {
          const { json, manifest } = sent.get(c.name)!;
          const a = annotationsOf(manifest.json);
          const tag = String(json['tag']);
          const expected = `inbox-${recipientTagOf(c.recipient)}-${utcDate8(a['dockercomms.created_at']!)}-${session.replaceAll('-', '').slice(0, 8)}-${a['dockercomms.message.id']!.replaceAll('-', '').slice(0, 8)}`;
          assert.equal(tag, expected);
          assert.match(tag, TAG_RE);
          assert.ok(tags.includes(tag), 'the tag is listed by the registry');
        });
      }

      it('recipient_tag: the vectors of wire-format.md, from its definition and in the tags comms wrote', () => {
        const vectors: [string, string][] = [
          ['alice@example.com', 'vu6pg6fs1o9bu394h4n4b63u4i'],
          ['bob', 'g6r3fm7sqb3dkoqpsqb324t12s'],
          ['team-b', 'socctajnea5qlss2of2oj06hts'],
          ['', 'seoc8gkovge196nruj49irtp4g'],
        ];
        for (const [id, token] of vectors) assert.equal(recipientTagOf(id), token, JSON.stringify(id));
        for (const c of cases) {
          const token = vectors.find(([id]) => id === c.recipient)![1];
          assert.ok(String(sent.get(c.name)!.json['tag']).startsWith(`inbox-${token}-`), c.recipient);
        }
      });

      it('every tag in the repository matches the tag grammar', () => {
        assert.ok(tags.length >= cases.length * 2);
        for (const t of tags) assert.match(t, TAG_RE);
      });

      it('signature bundles: bundle-<hex12>-<unix>-<rand6>, subject = the message, one bundle layer, a signature over the manifest bytes', async () => {
        const publicKey = createPublicKey(await readFile(TEST_PUB, 'utf8'));
        for (const c of cases) {
          const { json, manifest } = sent.get(c.name)!;
          const hex = manifest.digest.slice(7);
          const bundleTags = tags.filter((t) => t.startsWith(`bundle-${hex.slice(0, 12)}-`));
          assert.equal(bundleTags.length, 1, c.name);
          const m = /^bundle-([0-9a-f]{12})-(0|[1-9]\d*)-([0-9a-f]{6})$/.exec(bundleTags[0]!);
          assert.ok(m, bundleTags[0]);
          assert.equal(Number(m[2]), Date.parse(annotationsOf(manifest.json)['dockercomms.created_at']!) / 1000, 'unix seconds = the creation time');
          assert.equal(bundleTags[0], (json['bundle'] as Json)['tag']);

          const b = await rawGetManifest(base, repo, bundleTags[0]!);
          assert.equal(b.json['schemaVersion'], 2);
          assert.equal(b.json['mediaType'], OCI_MANIFEST);
          assert.equal(b.json['artifactType'], BUNDLE_TYPE);
          assert.deepEqual(b.json['config'], EMPTY_CONFIG);
          assert.deepEqual(b.json['subject'], { mediaType: OCI_MANIFEST, digest: manifest.digest, size: manifest.bytes.length });
          assert.deepEqual(annotationsOf(b.json), { 'dockercomms.version': '1.0' });
          const layers = b.json['layers'] as Json[];
          assert.equal(layers.length, 1);
          assert.equal(layers[0]!['mediaType'], BUNDLE_TYPE);
          const blob = await rawGetBlob(base, repo, String(layers[0]!['digest']));
          assert.equal(sha256Digest(blob), layers[0]!['digest']);

          const bundle = JSON.parse(blob.toString('utf8')) as {
            mediaType: string;
            verificationMaterial: { publicKey?: { hint?: string } };
            messageSignature: { messageDigest: { algorithm: string; digest: string }; signature: string };
          };
          assert.equal(bundle.mediaType, BUNDLE_TYPE);
          assert.equal(bundle.verificationMaterial.publicKey?.hint, TEST_KEY_ID);
          assert.equal(bundle.messageSignature.messageDigest.algorithm, 'SHA2_256');
          assert.equal(Buffer.from(bundle.messageSignature.messageDigest.digest, 'base64').toString('hex'), hex, 'the signed digest is the message digest');
          assert.ok(
            cryptoVerify('sha256', manifest.bytes, publicKey, Buffer.from(bundle.messageSignature.signature, 'base64')),
            'the signature verifies over the manifest bytes',
          );
        }
      });

      it('receipts: receipt-<hex12>-<unix>-<rand6>, zero layers, the v1.0 annotations, subject = the message', async () => {
        const acks = [
          { c: cases[0]!, args: ['--status', 'accepted', '--verified'], status: 'accepted', verified: 'true', reason: undefined },
          { c: cases[1]!, args: ['--status', 'rejected', '--reason', 'not for me'], status: 'rejected', verified: 'false', reason: 'not for me' },
        ];
        for (const { c, args, status, verified, reason } of acks) {
          const { manifest } = sent.get(c.name)!;
          const before = Math.floor(Date.now() / 1000);
          const r = await runComms([
            'ack',
            '--repo',
            `${registry.host}/${repo}`,
            '--for',
            manifest.digest,
            ...args,
            '--sender',
            c.recipient,
            '--key',
            TEST_KEY,
            '--json',
          ]);
          assert.equal(r.code, 0, r.stderr);
          const after = Math.ceil(Date.now() / 1000);
          const all = await rawTags(base, repo);
          const receiptTags = all.filter((t) => t.startsWith(`receipt-${manifest.digest.slice(7, 19)}-`));
          assert.equal(receiptTags.length, 1);
          const m = /^receipt-([0-9a-f]{12})-(0|[1-9]\d*)-([0-9a-f]{6})$/.exec(receiptTags[0]!);
          assert.ok(m, receiptTags[0]);
          assert.match(receiptTags[0]!, TAG_RE);

          const rc = await rawGetManifest(base, repo, receiptTags[0]!);
          assert.equal(rc.json['schemaVersion'], 2);
          assert.equal(rc.json['mediaType'], OCI_MANIFEST);
          assert.equal(rc.json['artifactType'], RECEIPT_TYPE);
          assert.deepEqual(rc.json['config'], EMPTY_CONFIG);
          assert.deepEqual(rc.json['layers'], []);
          assert.deepEqual(rc.json['subject'], { mediaType: OCI_MANIFEST, digest: manifest.digest, size: manifest.bytes.length }, 'comms extension: subject');
          const a = annotationsOf(rc.json);
          const expected: Record<string, string> = {
            'dockercomms.created_at': a['dockercomms.created_at']!,
            'dockercomms.receipt.for': manifest.digest,
            'dockercomms.receipt.status': status,
            'dockercomms.receipt.verified': verified,
            'dockercomms.recipient': 'carol@example.com',
            'dockercomms.sender': c.recipient,
            'dockercomms.ttl_seconds': '604800',
            'dockercomms.version': '1.0',
          };
          if (reason !== undefined) expected['dockercomms.receipt.reason'] = reason;
          assert.deepEqual(a, expected);
          assert.deepEqual(Object.keys(a), Object.keys(a).sort());
          assert.match(a['dockercomms.created_at']!, RFC3339_UTC);
          const created = Date.parse(a['dockercomms.created_at']!) / 1000;
          assert.ok(created >= before && created <= after);
          assert.equal(Number(m[2]), created, 'unix seconds = the creation time');
        }
      });
    });

    describe('(c) skopeo copies a comms message; the copy still receives and verifies', () => {
      let tag: string;
      let bundleTag: string;
      let digest: string;
      let payload: Buffer;
      let original: Buffer;

      before(async () => {
        const src = await freshDir('copy-src');
        payload = randomBytes(3 * 65536 + 7);
        await writeFile(join(src, 'copied.bin'), payload);
        const s = await runComms([
          'send',
          join(src, 'copied.bin'),
          '--repo',
          `${registry.host}/copy/src`,
          '--to',
          'judy',
          '--sender',
          'carol',
          '--chunk-bytes',
          '64KiB',
          '--compress',
          'zstd',
          '--key',
          TEST_KEY,
          '--json',
        ]);
        assert.equal(s.code, 0, s.stderr);
        tag = String(s.json[0]!['tag']);
        digest = String(s.json[0]!['digest']);
        bundleTag = String((s.json[0]!['bundle'] as Json)['tag']);
        original = await skopeoInspectRaw(`${registry.host}/copy/src:${tag}`);
        assert.equal(sha256Digest(original), digest);
      });

      async function recvVerified(repoArg: string): Promise<void> {
        const out = await freshDir('copy-out');
        const r = await runComms(['recv', '--repo', repoArg, '--me', 'judy', '--out', out, '--trusted-key', TEST_PUB, '--json']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.json.length, 1);
        assert.equal(r.json[0]!['digest'], digest);
        assert.equal((r.json[0]!['verified'] as Json)['kind'], 'key');
        assert.equal(await sha256File(join(out, 'copied.bin')), sha256Hex(payload));
      }

      it('into another repository of the registry', async () => {
        for (const t of [tag, bundleTag]) await skopeoCopy(`${registry.host}/copy/src:${t}`, `${registry.host}/copy/dst:${t}`);
        assert.deepEqual(await skopeoInspectRaw(`${registry.host}/copy/dst:${tag}`), original, 'digest preserved');
        await recvVerified(`${registry.host}/copy/dst`);
      });

      it('into an OCI layout folder', async () => {
        const dir = await freshDir('copy-layout');
        for (const t of [tag, bundleTag]) await skopeoCopy(`${registry.host}/copy/src:${t}`, `oci:${dir}:${t}`);
        const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
        const entry = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
        assert.equal(entry?.digest, digest, 'digest preserved');
        assert.deepEqual(await readFile(join(dir, 'blobs', 'sha256', digest.slice(7))), original);
        await recvVerified(`oci:${dir}`);
      });
    });
  });
}
