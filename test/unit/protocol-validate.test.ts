/**
 * The manifest parsers: v1.0's real output passes (including its quirks), comms' own output
 * round-trips, and each malformed field is refused with its code and field name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode, ProtocolError } from '../../src/errors.ts';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { Annotation, ArtifactType, BundleMediaType, ChunkMediaType, ExtensionAnnotation } from '../../src/protocol/constants.ts';
import { goManifest } from '../../src/protocol/go-json.ts';
import {
  EMPTY_CONFIG_DESCRIPTOR,
  buildManifest,
  bundleManifest,
  messageAnnotations,
  messageManifest,
  receiptAnnotations,
  receiptManifest,
} from '../../src/protocol/manifest.ts';
import {
  InvalidManifestError,
  parseArtifactManifest,
  parseBundleManifest,
  parseCanonicalInt,
  parseMessageManifest,
  parseReceiptManifest,
  parseRfc3339,
} from '../../src/protocol/validate.ts';

const V1 = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/v1');
const fixture = (p: string): Buffer => readFileSync(path.join(V1, p));
const MID = '6fa459ea-ee8a-4ca4-894e-db77e160355e';

function refused(fn: () => unknown, code: string, field?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidManifestError, String(err));
    assert.ok(err instanceof ProtocolError);
    assert.equal(err.exitCode, ExitCode.PROTOCOL);
    assert.equal(err.code, code, err.message);
    if (field !== undefined) assert.equal(err.field, field);
    return true;
  });
}

function layers(n: number, compression: 'gzip' | 'zstd' = 'gzip'): Descriptor[] {
  return Array.from({ length: n }, (_, i) => ({
    mediaType: compression === 'gzip' ? ChunkMediaType.Gzip : ChunkMediaType.Zstd,
    digest: digestOf(`chunk ${i}`),
    size: 100 + i,
    annotations: { [Annotation.ChunkIndex]: String(i) },
  }));
}

function annotations(over: Record<string, string | undefined> = {}): Record<string, string> {
  const a: Record<string, string | undefined> = {
    ...messageAnnotations({
      sender: 'alice',
      recipient: 'bob',
      createdAt: new Date('2025-06-01T12:00:00Z'),
      ttlSeconds: 3600,
      filename: 'f.bin',
      totalBytes: 250,
      chunkBytes: 100,
      chunkCount: 3,
      compression: 'gzip',
      messageId: MID,
    }),
    ...over,
  };
  return Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

function bytesOf(doc: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(doc));
}

function message(over: Record<string, string | undefined> = {}, ls: Descriptor[] = layers(3)): Uint8Array {
  return buildManifest({ artifactType: ArtifactType.Message, layers: ls, annotations: annotations(over) }).bytes;
}

test('v1.0 message manifest (no mediaType) parses into MessageInfo', () => {
  const info = parseMessageManifest(fixture('message/manifest.json'));
  assert.equal(info.sender, 'alice@example.com');
  assert.equal(info.recipient, 'bob');
  assert.equal(info.createdAt.toISOString(), '2025-06-01T12:00:00.000Z');
  assert.equal(info.expiresAt.toISOString(), '2025-06-08T12:00:00.000Z');
  assert.equal(info.ttlSeconds, 604800);
  assert.equal(info.filename, 'hello.txt');
  assert.equal(info.totalBytes, 28);
  assert.equal(info.chunkBytes, 28);
  assert.equal(info.chunkCount, 1);
  assert.equal(info.compression, 'gzip');
  assert.equal(info.messageId, MID);
  assert.equal(info.version, '1.0');
  assert.equal(info.layers.length, 1);
  assert.equal(info.subject, undefined);
  assert.equal(info.manifest.mediaType, undefined);
});

test('v1.0 empty-file message: zero layers, chunk_bytes 0', () => {
  const info = parseMessageManifest(fixture('empty/manifest.json'));
  assert.equal(info.totalBytes, 0);
  assert.equal(info.chunkBytes, 0);
  assert.deepEqual(info.layers, []);
});

test('v1.0 receipt: "layers": null and no size or filename keys are accepted', () => {
  const r = parseReceiptManifest(fixture('receipt/manifest.json'));
  assert.equal(r.forDigest, digestOf(fixture('message/manifest.json')));
  assert.equal(r.status, 'accepted');
  assert.equal(r.verified, false);
  assert.equal(r.reason, undefined);
  assert.deepEqual(r.manifest.layers, []);
});

test('v1.0 bundle manifest parses; its subject is the message', () => {
  const b = parseBundleManifest(fixture('bundle/manifest.json'));
  assert.equal(b.subject.digest, digestOf(fixture('message/manifest.json')));
  assert.equal(b.bundleLayer.mediaType, BundleMediaType);
  assert.equal(b.annotations[Annotation.Version], '1.0');
  const generic = parseArtifactManifest(fixture('bundle/manifest.json'));
  assert.equal(generic.artifactType, ArtifactType.Bundle);
});

test('comms round trip: layers come back sorted by chunk index; reply and thread extensions', () => {
  const shuffled = layers(3);
  shuffled.reverse();
  const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf('parent'), size: 42 };
  const built = messageManifest(shuffled, annotations({ [ExtensionAnnotation.ReplyTo]: subject.digest, [ExtensionAnnotation.ThreadId]: MID }), subject);
  const info = parseMessageManifest(built.bytes);
  assert.deepEqual(
    info.layers.map((l) => l.annotations?.[Annotation.ChunkIndex]),
    ['0', '1', '2'],
  );
  assert.equal(info.replyTo, subject.digest);
  assert.equal(info.threadId, MID);
  assert.deepEqual(info.subject, subject);
  assert.equal(info.manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
});

test('comms receipt with subject round-trips; a subject that is not the receipt.for digest is refused', () => {
  const forDigest = digestOf('msg');
  const ann = receiptAnnotations({
    sender: 'b',
    recipient: 'a',
    createdAt: new Date(0),
    ttlSeconds: 5,
    forDigest,
    status: 'rejected',
    verified: true,
    reason: 'virus\nfound',
  });
  const ok = parseReceiptManifest(receiptManifest(ann, { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: forDigest, size: 3 }).bytes);
  assert.equal(ok.status, 'rejected');
  assert.equal(ok.verified, true);
  assert.equal(ok.reason, 'virus\nfound');
  refused(
    () => parseReceiptManifest(receiptManifest(ann, { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf('other'), size: 3 }).bytes),
    'RECEIPT_SUBJECT_MISMATCH',
  );
  refused(() => parseReceiptManifest(receiptManifest({ ...ann, [Annotation.ReceiptVerified]: 'yes' }).bytes), 'ANNOTATION_INVALID', Annotation.ReceiptVerified);
  refused(() => parseReceiptManifest(receiptManifest({ ...ann, [Annotation.ReceiptStatus]: 'maybe' }).bytes), 'ANNOTATION_INVALID', Annotation.ReceiptStatus);
  refused(() => parseReceiptManifest(receiptManifest({ ...ann, [Annotation.ReceiptFor]: 'sha256:abc' }).bytes), 'ANNOTATION_INVALID', Annotation.ReceiptFor);
  refused(() => parseReceiptManifest(fixture('message/manifest.json')), 'ARTIFACT_TYPE', 'artifactType');
});

test('document-level refusals: not JSON, not a manifest, wrong schema, media type, artifact type, config', () => {
  refused(() => parseMessageManifest(new TextEncoder().encode('{not json')), 'MANIFEST_NOT_JSON');
  refused(() => parseMessageManifest(new Uint8Array([0x7b, 0xff, 0x7d])), 'MANIFEST_NOT_JSON');
  refused(() => parseMessageManifest(bytesOf([1, 2])), 'MANIFEST_NOT_JSON');
  const good = JSON.parse(new TextDecoder().decode(message())) as Record<string, unknown>;
  refused(() => parseMessageManifest(bytesOf({ ...good, schemaVersion: 1 })), 'MANIFEST_SCHEMA_VERSION', 'schemaVersion');
  refused(() => parseMessageManifest(bytesOf({ ...good, mediaType: 'application/vnd.oci.image.index.v1+json' })), 'MANIFEST_MEDIA_TYPE', 'mediaType');
  refused(() => parseMessageManifest(bytesOf({ ...good, manifests: [] })), 'MANIFEST_MEDIA_TYPE');
  refused(() => parseMessageManifest(bytesOf({ ...good, artifactType: ArtifactType.Receipt })), 'ARTIFACT_TYPE');
  refused(() => parseMessageManifest(bytesOf({ ...good, artifactType: undefined })), 'ARTIFACT_TYPE');
  refused(() => parseMessageManifest(bytesOf({ ...good, config: { ...EMPTY_CONFIG_DESCRIPTOR, size: 3 } })), 'CONFIG_NOT_EMPTY', 'config');
  refused(
    () => parseMessageManifest(bytesOf({ ...good, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf('c'), size: 1 } })),
    'CONFIG_NOT_EMPTY',
  );
  refused(() => parseMessageManifest(bytesOf({ ...good, layers: {} })), 'DESCRIPTOR_INVALID', 'layers');
  refused(() => parseMessageManifest(bytesOf({ ...good, annotations: undefined })), 'ANNOTATION_MISSING', 'annotations');
  refused(() => parseMessageManifest(message(), { maxManifestBytes: 100 }), 'MANIFEST_TOO_LARGE');
});

test('descriptor refusals name the field', () => {
  const bad = (l: unknown) => bytesOf({ ...JSON.parse(new TextDecoder().decode(message())), layers: [l, ...layers(3).slice(1)] });
  const l0 = layers(1)[0]!;
  refused(() => parseMessageManifest(bad({ ...l0, digest: 'sha256:XYZ' })), 'DESCRIPTOR_INVALID', 'layers[0].digest');
  refused(() => parseMessageManifest(bad({ ...l0, size: -1 })), 'DESCRIPTOR_INVALID', 'layers[0].size');
  refused(() => parseMessageManifest(bad({ ...l0, size: 1.5 })), 'DESCRIPTOR_INVALID', 'layers[0].size');
  refused(() => parseMessageManifest(bad({ ...l0, mediaType: 7 })), 'DESCRIPTOR_INVALID', 'layers[0].mediaType');
  refused(() => parseMessageManifest(bad({ ...l0, annotations: { [Annotation.ChunkIndex]: 0 } })), 'DESCRIPTOR_INVALID');
  refused(() => parseMessageManifest(bad('layer')), 'DESCRIPTOR_INVALID', 'layers[0]');
});

test('annotation refusals: each required key, canonical integers, dates, identities, version', () => {
  for (const key of [
    Annotation.Version,
    Annotation.Sender,
    Annotation.CreatedAt,
    Annotation.TtlSeconds,
    Annotation.MessageId,
    Annotation.Filename,
    Annotation.TotalBytes,
    Annotation.ChunkBytes,
    Annotation.ChunkCount,
    Annotation.Compression,
  ]) {
    refused(() => parseMessageManifest(message({ [key]: undefined })), 'ANNOTATION_MISSING', key);
  }
  for (const v of ['01', '+1', ' 1', '1.0', '-1', '1e3', '', '99999999999999999']) {
    refused(() => parseMessageManifest(message({ [Annotation.TtlSeconds]: v })), 'ANNOTATION_INVALID', Annotation.TtlSeconds);
  }
  for (const v of ['2025-06-01', '2025-06-01 12:00:00Z', '2025-02-30T00:00:00Z', '2025-06-01T24:00:00Z', '2025-06-01T12:00:60Z', 'yesterday']) {
    refused(() => parseMessageManifest(message({ [Annotation.CreatedAt]: v })), 'ANNOTATION_INVALID', Annotation.CreatedAt);
  }
  refused(() => parseMessageManifest(message({ [Annotation.Sender]: 'evil\u001b[2J' })), 'ANNOTATION_INVALID', Annotation.Sender);
  refused(() => parseMessageManifest(message({ [Annotation.Recipient]: 'x'.repeat(2000) })), 'ANNOTATION_INVALID', Annotation.Recipient);
  refused(() => parseMessageManifest(message({ [Annotation.MessageId]: 'not-a-uuid' })), 'ANNOTATION_INVALID', Annotation.MessageId);
  refused(() => parseMessageManifest(message({ [Annotation.Version]: '2.0' })), 'UNSUPPORTED_VERSION', Annotation.Version);
  refused(() => parseMessageManifest(message({ [Annotation.Compression]: 'bzip2' })), 'COMPRESSION_UNSUPPORTED', Annotation.Compression);
  refused(() => parseMessageManifest(message({ [Annotation.Filename]: 'a\\b' })), 'UNSAFE_FILENAME', Annotation.Filename);
  refused(() => parseMessageManifest(message({ [ExtensionAnnotation.ThreadId]: 'x' })), 'ANNOTATION_INVALID', ExtensionAnnotation.ThreadId);
  refused(() => parseMessageManifest(message({ [ExtensionAnnotation.ReplyTo]: digestOf('p') })), 'REPLY_SUBJECT_MISMATCH');
  // A later minor version is still read.
  assert.equal(parseMessageManifest(message({ [Annotation.Version]: '1.3' })).version, '1.3');
});

test('size and chunk consistency refusals', () => {
  refused(() => parseMessageManifest(message({ [Annotation.ChunkCount]: '10001' })), 'TOO_MANY_CHUNKS');
  refused(() => parseMessageManifest(message({ [Annotation.TotalBytes]: String(11 * 2 ** 40) })), 'TOTAL_TOO_LARGE');
  refused(() => parseMessageManifest(message(), { maxTotalBytes: 100 }), 'TOTAL_TOO_LARGE', Annotation.TotalBytes);
  refused(() => parseMessageManifest(message({ [Annotation.ChunkBytes]: '0' })), 'TOTAL_BYTES_MISMATCH');
  refused(() => parseMessageManifest(message({ [Annotation.ChunkBytes]: '125' })), 'TOTAL_BYTES_MISMATCH');
  refused(() => parseMessageManifest(message({ [Annotation.TotalBytes]: '301' })), 'TOTAL_BYTES_MISMATCH');
  refused(() => parseMessageManifest(message({}, layers(4))), 'CHUNK_COUNT_MISMATCH', Annotation.ChunkCount);
  refused(() => parseMessageManifest(message({ [Annotation.Compression]: 'zstd' })), 'LAYER_MEDIA_TYPE', 'layers[0].mediaType');
  const noIndex = layers(3);
  delete noIndex[1]!.annotations;
  refused(() => parseMessageManifest(message({}, noIndex)), 'CHUNK_INDEX_INVALID');
  const padded = layers(3);
  padded[1]!.annotations = { [Annotation.ChunkIndex]: '01' };
  refused(() => parseMessageManifest(message({}, padded)), 'CHUNK_INDEX_INVALID');
  // Exactly 300 bytes in chunks of 100 is three full chunks.
  assert.equal(parseMessageManifest(message({ [Annotation.TotalBytes]: '300' })).totalBytes, 300);
  // zstd layers with zstd compression are fine.
  assert.equal(parseMessageManifest(message({ [Annotation.Compression]: 'zstd' }, layers(3, 'zstd'))).compression, 'zstd');
});

test('bundle refusals: layer count, media type, size, missing subject', () => {
  const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf('m'), size: 1 };
  const blob = { mediaType: BundleMediaType, digest: digestOf('b'), size: 10 };
  assert.equal(parseBundleManifest(bundleManifest(blob, subject).bytes).bundleLayer.size, 10);
  refused(() => parseBundleManifest(bundleManifest({ ...blob, size: 2 * 1024 * 1024 }, subject).bytes), 'BUNDLE_INVALID');
  refused(
    () => parseBundleManifest(buildManifest({ artifactType: ArtifactType.Bundle, layers: [blob, blob], subject, annotations: {} }).bytes),
    'BUNDLE_INVALID',
  );
  refused(
    () =>
      parseBundleManifest(
        buildManifest({ artifactType: ArtifactType.Bundle, layers: [{ ...blob, mediaType: 'application/json' }], subject, annotations: {} }).bytes,
      ),
    'LAYER_MEDIA_TYPE',
  );
  refused(() => parseBundleManifest(buildManifest({ artifactType: ArtifactType.Bundle, layers: [blob], annotations: {} }).bytes), 'BUNDLE_INVALID', 'subject');
  refused(() => parseBundleManifest(fixture('message/manifest.json')), 'ARTIFACT_TYPE');
});

test('parseRfc3339 and parseCanonicalInt', () => {
  assert.equal(parseRfc3339('2025-06-01T12:00:00Z')?.toISOString(), '2025-06-01T12:00:00.000Z');
  assert.equal(parseRfc3339('2025-06-01t12:00:00.123456789z')?.toISOString(), '2025-06-01T12:00:00.123Z');
  assert.equal(parseRfc3339('2025-06-01T12:00:00+02:30')?.toISOString(), '2025-06-01T09:30:00.000Z');
  assert.equal(parseRfc3339('2024-02-29T00:00:00Z')?.toISOString(), '2024-02-29T00:00:00.000Z');
  assert.equal(parseRfc3339('0001-01-01T00:00:00Z')?.getUTCFullYear(), 1);
  for (const bad of ['2023-02-29T00:00:00Z', '2025-13-01T00:00:00Z', '2025-06-01T12:00:00', '2025-06-01T12:00:00+24:00', '2025-06-01T12:00Z']) {
    assert.equal(parseRfc3339(bad), undefined, bad);
  }
  assert.equal(parseCanonicalInt('0'), 0);
  assert.equal(parseCanonicalInt('9007199254740991'), 9007199254740991);
  assert.equal(parseCanonicalInt('9007199254740992'), undefined);
  assert.equal(parseCanonicalInt('00'), undefined);
});

test('JSON that Go would also read as a manifest: unknown fields ignored, key order free', () => {
  const doc = {
    annotations: annotations(),
    layers: layers(3),
    config: { ...EMPTY_CONFIG_DESCRIPTOR },
    artifactType: ArtifactType.Message,
    schemaVersion: 2,
    'x-extra': true,
  };
  assert.equal(parseMessageManifest(bytesOf(doc)).chunkCount, 3);
  assert.equal(
    parseMessageManifest(
      new TextEncoder().encode(
        goManifest({
          schemaVersion: 2,
          artifactType: ArtifactType.Message,
          config: { ...EMPTY_CONFIG_DESCRIPTOR },
          layers: layers(3),
          annotations: annotations(),
        }),
      ),
    ).chunkCount,
    3,
  );
});
