/**
 * Every hostile artifact under fixtures/hostile is refused with a ProtocolError (exit 4) and the
 * specific code README.md promises: manifest attacks by parseMessageManifest, layer attacks by
 * the digest check or the chunk reader, each before a byte of bad payload comes out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ExitCode, ProtocolError } from '../../src/errors.ts';
import { VerifyingStream } from '../../src/oci/digest.ts';
import { readChunk } from '../../src/protocol/chunk-reader.ts';
import { chunkRawSize } from '../../src/protocol/sizes.ts';
import { parseMessageManifest, type MessageInfo } from '../../src/protocol/validate.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/hostile');

function manifestOf(name: string): Uint8Array {
  return readFileSync(path.join(ROOT, name, 'manifest.json'));
}

function blobPath(name: string, digest: string): string {
  return path.join(ROOT, name, 'blobs', digest.slice('sha256:'.length));
}

function assertProtocolError(err: unknown, code: string): true {
  assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
  assert.equal(err.exitCode, ExitCode.PROTOCOL);
  assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
  return true;
}

/** Reads every chunk as recv would (digest-verified fetch → readChunk); returns payload bytes. */
async function receive(name: string, info: MessageInfo): Promise<number> {
  let out = 0;
  for (const [i, layer] of info.layers.entries()) {
    const file = createReadStream(blobPath(name, layer.digest));
    const verified = file.pipe(new VerifyingStream(layer.digest, layer.size));
    file.on('error', (e) => verified.destroy(e));
    const raw = readChunk(verified, {
      index: i,
      chunkBytes: info.chunkBytes,
      compression: info.compression,
      expectedBytes: chunkRawSize(info.totalBytes, info.chunkBytes, i),
    });
    for await (const b of raw) out += (b as Buffer).length;
  }
  return out;
}

const MANIFEST_CASES: Record<string, string> = {
  'traversal-filename': 'UNSAFE_FILENAME',
  'absolute-filename': 'UNSAFE_FILENAME',
  'index-gap': 'CHUNK_INDEX_GAP',
  'index-duplicate': 'CHUNK_INDEX_DUPLICATE',
  'total-bytes-mismatch': 'TOTAL_BYTES_MISMATCH',
  'chunk-count-mismatch': 'CHUNK_COUNT_MISMATCH',
  'missing-annotation': 'ANNOTATION_MISSING',
  'malformed-created-at': 'ANNOTATION_INVALID',
  'malformed-total-bytes': 'ANNOTATION_INVALID',
  'oversize-manifest': 'MANIFEST_TOO_LARGE',
  'backslash-filename': 'UNSAFE_FILENAME',
  'control-char-filename': 'UNSAFE_FILENAME',
  'c1-control-filename': 'UNSAFE_FILENAME',
  'bidi-override-filename': 'UNSAFE_FILENAME',
  'unsupported-compression': 'COMPRESSION_UNSUPPORTED',
  'layer-media-type-mismatch': 'LAYER_MEDIA_TYPE',
  'noncanonical-chunk-count': 'ANNOTATION_INVALID',
  'wrong-artifact-type': 'ARTIFACT_TYPE',
};

for (const [name, code] of Object.entries(MANIFEST_CASES)) {
  test(`hostile manifest ${name} is refused by the validator with ${code}`, () => {
    assert.throws(
      () => parseMessageManifest(manifestOf(name)),
      (err) => assertProtocolError(err, code),
    );
  });
}

test('dotdot-filename: `..` is written as `file`, as dockercomms v1.0 writes it (nothing escapes --out)', () => {
  assert.equal(parseMessageManifest(manifestOf('dotdot-filename')).filename, 'file');
});

test('the refusal names the offending field', () => {
  const fields: Record<string, string> = {
    'traversal-filename': 'dockercomms.filename',
    'missing-annotation': 'dockercomms.recipient',
    'malformed-created-at': 'dockercomms.created_at',
    'malformed-total-bytes': 'dockercomms.total_bytes',
  };
  for (const [name, field] of Object.entries(fields)) {
    assert.throws(
      () => parseMessageManifest(manifestOf(name)),
      (err: Error & { field?: string }) => err.field === field && err.message.includes(field),
      name,
    );
  }
});

const LAYER_CASES: Record<string, string> = {
  'two-entries': 'TAR_MULTIPLE_ENTRIES',
  'symlink-entry': 'TAR_ENTRY_TYPE',
  'wrong-entry-name': 'TAR_ENTRY_NAME',
  'pax-header': 'TAR_ENTRY_TYPE',
  'oversize-entry': 'CHUNK_TOO_LARGE',
  'gzip-bomb': 'CHUNK_TOO_LARGE',
  'trailing-data': 'TAR_TRAILING_DATA',
  'truncated-entry': 'TAR_TRUNCATED',
  'short-entry': 'CHUNK_SIZE_MISMATCH',
  'empty-tar': 'TAR_EMPTY',
  'layer-digest-mismatch': 'DIGEST_MISMATCH',
};

for (const [name, code] of Object.entries(LAYER_CASES)) {
  test(`hostile layer ${name}: the manifest is valid, reading the chunk fails with ${code}`, async () => {
    const info = parseMessageManifest(manifestOf(name));
    await assert.rejects(receive(name, info), (err) => assertProtocolError(err, code));
  });
}

test('the gzip bomb stops at the cap: decompression ends long before the input does', async () => {
  const name = 'gzip-bomb';
  const info = parseMessageManifest(manifestOf(name));
  // 32 concatenated copies of the bomb (gzip members chain): 2 MiB that would expand to 2 GiB.
  const member = readFileSync(blobPath(name, info.layers[0]!.digest));
  const copies = 32;
  let pulled = 0;
  const source = new Readable({
    highWaterMark: 1,
    read() {
      if (pulled < copies) {
        pulled++;
        this.push(member);
      } else {
        this.push(null);
      }
    },
  });
  const raw = readChunk(source, { index: 0, chunkBytes: info.chunkBytes, compression: 'gzip' });
  await assert.rejects(
    (async () => {
      for await (const _ of raw);
    })(),
    (err) => assertProtocolError(err, 'CHUNK_TOO_LARGE'),
  );
  assert.ok(pulled <= 4, `pulled ${pulled} of ${copies} copies of the bomb`);
  assert.ok(source.destroyed, 'the compressed source is destroyed once the chunk is refused');
});

test('every case folder under fixtures/hostile is covered here', () => {
  const covered = new Set([...Object.keys(MANIFEST_CASES), ...Object.keys(LAYER_CASES), 'dotdot-filename']);
  const folders = readdirSync(ROOT, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name);
  assert.deepEqual(
    folders.filter((f) => !covered.has(f)),
    [],
  );
});
