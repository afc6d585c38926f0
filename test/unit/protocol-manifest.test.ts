/**
 * The ManifestBuilder writes the bytes dockercomms v1.0 (Go encoding/json) writes: checked
 * against fixtures/v1, written along v1.0's own code paths by Go.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProtocolError, UsageError } from '../../src/errors.ts';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { Annotation, ArtifactType, BundleMediaType, ChunkMediaType, ExtensionAnnotation } from '../../src/protocol/constants.ts';
import { goJsonString, goManifest, goStringMap } from '../../src/protocol/go-json.ts';
import {
  EMPTY_CONFIG_DESCRIPTOR,
  buildManifest,
  bundleManifest,
  formatCreatedAt,
  messageAnnotations,
  messageManifest,
  receiptAnnotations,
  receiptManifest,
} from '../../src/protocol/manifest.ts';

const V1 = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/v1');
const fixture = (p: string): Buffer => readFileSync(path.join(V1, p));
const inputs = JSON.parse(fixture('inputs.json').toString()) as {
  sender: string;
  recipient: string;
  createdAt: string;
  ttlSeconds: number;
  messageId: string;
  filename: string;
  chunkBytes: number;
  payload: string;
};

function fixtureLayer(): Descriptor {
  const m = JSON.parse(fixture('message/manifest.json').toString()) as { layers: Descriptor[] };
  return m.layers[0]!;
}

test('reproduces v1.0 message manifest bytes from the same inputs (omitMediaType)', () => {
  const total = Buffer.byteLength(inputs.payload);
  const annotations = messageAnnotations({
    sender: inputs.sender,
    recipient: inputs.recipient,
    createdAt: new Date(inputs.createdAt),
    ttlSeconds: inputs.ttlSeconds,
    filename: inputs.filename,
    totalBytes: total,
    chunkBytes: inputs.chunkBytes,
    chunkCount: 1,
    compression: 'gzip',
    messageId: inputs.messageId,
  });
  const built = buildManifest({ artifactType: ArtifactType.Message, layers: [fixtureLayer()], annotations, omitMediaType: true });
  const want = fixture('message/manifest.json');
  assert.equal(Buffer.from(built.bytes).toString(), want.toString());
  assert.equal(built.descriptor.digest, digestOf(want));
  assert.equal(built.descriptor.digest, 'sha256:29da45c0499626c691622262ad7820bff097054b61aaf35b8d65e554b8cc29ba');
  assert.deepEqual(built.descriptor, {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: built.descriptor.digest,
    size: want.length,
    artifactType: ArtifactType.Message,
  });
});

test('reproduces v1.0 empty-file message bytes: layers [] and chunk_bytes 0', () => {
  const annotations = messageAnnotations({
    sender: inputs.sender,
    recipient: inputs.recipient,
    createdAt: new Date(inputs.createdAt),
    ttlSeconds: inputs.ttlSeconds,
    filename: 'empty.txt',
    totalBytes: 0,
    chunkBytes: inputs.chunkBytes,
    chunkCount: 0,
    compression: 'gzip',
    messageId: '0f8fad5b-d9cb-469f-a165-70867728950e',
  });
  assert.equal(annotations[Annotation.ChunkBytes], '0');
  const built = messageManifest([], annotations, undefined, { omitMediaType: true });
  assert.equal(Buffer.from(built.bytes).toString(), fixture('empty/manifest.json').toString());
});

test('reproduces v1.0 bundle manifest bytes: subject and one bundle layer', () => {
  const blob = fixture('bundle/blobs/7b55db09286527a17b94b463a8cfefe813ca4cc4034ea26ee55416c30a023679');
  const message = fixture('message/manifest.json');
  const subject = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: digestOf(message),
    size: message.length,
    artifactType: ArtifactType.Message,
  };
  const built = bundleManifest({ mediaType: BundleMediaType, digest: digestOf(blob), size: blob.length }, subject, { omitMediaType: true });
  assert.equal(Buffer.from(built.bytes).toString(), fixture('bundle/manifest.json').toString());
});

test("Go's string escaping: <, >, &, controls, U+2028/9 and non-BMP characters as v1.0 writes them", () => {
  const x = JSON.parse(fixture('escapes/inputs.json').toString()) as typeof inputs;
  const built = buildManifest({
    artifactType: ArtifactType.Message,
    layers: [],
    omitMediaType: true,
    annotations: {
      [Annotation.Version]: '1.0',
      [Annotation.Sender]: x.sender,
      [Annotation.Recipient]: x.recipient,
      [Annotation.CreatedAt]: x.createdAt,
      [Annotation.TtlSeconds]: String(x.ttlSeconds),
      [Annotation.MessageId]: x.messageId,
      [Annotation.Filename]: x.filename,
      [Annotation.TotalBytes]: '0',
      [Annotation.ChunkBytes]: '0',
      [Annotation.ChunkCount]: '0',
      [Annotation.Compression]: 'gzip',
    },
  });
  assert.equal(Buffer.from(built.bytes).toString(), fixture('escapes/manifest.json').toString());
});

test('goJsonString escapes as Go 1.22+ does', () => {
  assert.equal(goJsonString('a<b>&c'), '"a\\u003cb\\u003e\\u0026c"');
  assert.equal(goJsonString('\b\f\n\r\t'), '"\\b\\f\\n\\r\\t"');
  assert.equal(goJsonString('\u0000\u0001\u001f\u007f'), '"\\u0000\\u0001\\u001f\u007f"');
  assert.equal(goJsonString('"\\'), '"\\"\\\\"');
  assert.equal(goJsonString('\u2028\u2029'), '"\\u2028\\u2029"');
  assert.equal(goJsonString('é☃𝄞'), '"é☃𝄞"');
  // Go writes invalid UTF-8 as \ufffd; a lone surrogate is JS's equivalent.
  assert.equal(goJsonString('a\ud800b\udc00'), '"a\\ufffdb\\ufffd"');
  // Whatever Go writes must still be JSON that means the same string.
  for (const s of ['a<b>&c', '\b\f\n\r\t\u0000\u001f', '\u2028x\u2029', 'é☃𝄞"\\']) assert.equal(JSON.parse(goJsonString(s)), s);
});

test("map keys are sorted by UTF-8 bytes as Go sorts them, not by JS's UTF-16 order", () => {
  // U+FF21 sorts after U+1D11E in UTF-16 units (0xFF21 > 0xD834) but before it in UTF-8 bytes.
  assert.equal(goStringMap({ '𝄞': '1', Ａ: '2', b: '3', a: '4' }), '{"a":"4","b":"3","Ａ":"2","𝄞":"1"}');
});

test('manifest bytes are deterministic: annotation insertion order does not matter', () => {
  const layer: Descriptor = { mediaType: ChunkMediaType.Zstd, digest: digestOf('x'), size: 1, annotations: { [Annotation.ChunkIndex]: '0' } };
  const a = buildManifest({ artifactType: ArtifactType.Message, layers: [layer], annotations: { z: '1', a: '2', m: '3' } });
  const b = buildManifest({ artifactType: ArtifactType.Message, layers: [layer], annotations: { m: '3', z: '1', a: '2' } });
  assert.deepEqual(a.bytes, b.bytes);
  assert.equal(a.descriptor.digest, b.descriptor.digest);
  assert.equal(a.descriptor.digest, digestOf(a.bytes));
  assert.equal(a.descriptor.size, a.bytes.length);
});

test('comms writes the manifest mediaType (in Go field order) unless told to omit it', () => {
  const built = buildManifest({ artifactType: ArtifactType.Receipt, layers: [], annotations: { k: 'v' } });
  const text = Buffer.from(built.bytes).toString();
  assert.ok(
    text.startsWith(
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.dockercomms.receipt.v1","config":',
    ),
  );
  assert.ok(text.includes('"layers":[]'));
  assert.equal(text, goManifest(built.manifest));
});

test('subject sits between layers and annotations; descriptor fields in Go order', () => {
  const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf('m'), size: 5, artifactType: ArtifactType.Message };
  const built = receiptManifest({ k: 'v' }, subject);
  const text = Buffer.from(built.bytes).toString();
  assert.match(text, /"layers":\[\],"subject":\{"mediaType":"[^"]+","digest":"sha256:[0-9a-f]{64}","size":5\},"annotations":\{"k":"v"\}\}$/);
  const d = buildManifest({
    artifactType: 'x/y',
    layers: [{ mediaType: 'a/b', digest: digestOf('l'), size: 1, artifactType: 'c/d', annotations: { k: 'v' }, urls: ['u'], data: 'bA==' }],
    annotations: {},
  });
  assert.match(
    Buffer.from(d.bytes).toString(),
    /"layers":\[\{"mediaType":"a\/b","digest":"[^"]+","size":1,"urls":\["u"\],"annotations":\{"k":"v"\},"data":"bA==","artifactType":"c\/d"\}\]\}$/,
  );
});

test('the empty config descriptor is the OCI empty JSON', () => {
  assert.deepEqual({ ...EMPTY_CONFIG_DESCRIPTOR }, { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf('{}'), size: 2 });
  assert.ok(Object.isFrozen(EMPTY_CONFIG_DESCRIPTOR));
});

test('created_at is RFC 3339 UTC with Z and whole seconds, as Go time.RFC3339', () => {
  assert.equal(formatCreatedAt(new Date('2025-06-01T12:00:00.999Z')), '2025-06-01T12:00:00Z');
  assert.equal(formatCreatedAt(new Date('2025-06-01T23:30:00+05:00')), '2025-06-01T18:30:00Z');
  assert.throws(() => formatCreatedAt(new Date('nope')), UsageError);
});

test('messageAnnotations carries chunk_bytes = min(total, chunk size) and refuses what a receiver would refuse', () => {
  const base = {
    sender: 's',
    recipient: 'r',
    createdAt: new Date(0),
    ttlSeconds: 60,
    filename: 'f.txt',
    totalBytes: 250,
    chunkBytes: 100,
    chunkCount: 3,
    compression: 'zstd' as const,
    messageId: inputs.messageId,
  };
  assert.equal(messageAnnotations(base)[Annotation.ChunkBytes], '100');
  assert.equal(messageAnnotations({ ...base, chunkBytes: 1000, chunkCount: 1 })[Annotation.ChunkBytes], '250');
  assert.throws(() => messageAnnotations({ ...base, filename: '../x' }), UsageError);
  assert.throws(() => messageAnnotations({ ...base, chunkCount: 2 }), UsageError);
  assert.throws(() => messageAnnotations({ ...base, messageId: 'not-a-uuid' }), UsageError);
  assert.throws(() => messageAnnotations({ ...base, extra: { [Annotation.Sender]: 'spoof' } }), UsageError);
  const withExtra = messageAnnotations({ ...base, extra: { [ExtensionAnnotation.ThreadId]: inputs.messageId } });
  assert.equal(withExtra[ExtensionAnnotation.ThreadId], inputs.messageId);
});

test('receiptAnnotations is v1.0 set: no size or filename keys; reason only when given', () => {
  const r = receiptAnnotations({
    sender: 'b',
    recipient: 'a',
    createdAt: new Date(0),
    ttlSeconds: 1,
    forDigest: digestOf('m'),
    status: 'accepted',
    verified: true,
  });
  assert.deepEqual(Object.keys(r).sort(), [
    'dockercomms.created_at',
    'dockercomms.receipt.for',
    'dockercomms.receipt.status',
    'dockercomms.receipt.verified',
    'dockercomms.recipient',
    'dockercomms.sender',
    'dockercomms.ttl_seconds',
    'dockercomms.version',
  ]);
  assert.equal(r[Annotation.ReceiptVerified], 'true');
  const rej = receiptAnnotations({
    sender: 'b',
    recipient: 'a',
    createdAt: new Date(0),
    ttlSeconds: 1,
    forDigest: digestOf('m'),
    status: 'rejected',
    verified: false,
    reason: 'bad',
  });
  assert.equal(rej[Annotation.ReceiptReason], 'bad');
});

test('a reply must name its subject; builder input errors are typed', () => {
  const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf('m'), size: 1 };
  assert.throws(() => messageManifest([], { [ExtensionAnnotation.ReplyTo]: digestOf('other') }, subject), UsageError);
  assert.throws(() => messageManifest([], { [ExtensionAnnotation.ReplyTo]: subject.digest }), UsageError);
  const ok = messageManifest([], { [ExtensionAnnotation.ReplyTo]: subject.digest }, subject);
  assert.equal(ok.manifest.subject?.digest, subject.digest);
  assert.throws(() => buildManifest({ artifactType: 'a/b', layers: [{ mediaType: 'x', digest: 'sha256:nope', size: 1 }], annotations: {} }), ProtocolError);
  assert.throws(() => bundleManifest({ mediaType: 'application/json', digest: digestOf('b'), size: 1 }, subject), ProtocolError);
});

test('a manifest over 4 MiB is refused at build time', () => {
  assert.throws(
    () => buildManifest({ artifactType: 'a/b', layers: [], annotations: { pad: 'x'.repeat(4 * 1024 * 1024) } }),
    (err: ProtocolError) => err.code === 'MANIFEST_TOO_LARGE',
  );
});
