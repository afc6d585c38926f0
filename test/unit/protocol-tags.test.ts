/** The v1.0 tag schema: recipient token vectors, tag formats, the OCI tag grammar, parsers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProtocolError, UsageError } from '../../src/errors.ts';
import { digestOf } from '../../src/oci/digest.ts';
import {
  TAG_RE,
  bundleTag,
  bundleTagPrefix,
  hex12,
  inboxPrefix,
  inboxTag,
  isValidTag,
  parseArtifactTag,
  parseInboxTag,
  receiptTag,
  receiptTagPrefix,
  recipientTag,
} from '../../src/protocol/tags.ts';

const V1 = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/v1');

test('recipient_tag matches the wire-format test vectors', () => {
  assert.equal(recipientTag('alice@example.com'), 'vu6pg6fs1o9bu394h4n4b63u4i');
  assert.equal(recipientTag('bob'), 'g6r3fm7sqb3dkoqpsqb324t12s');
  assert.equal(recipientTag('team-b'), 'socctajnea5qlss2of2oj06hts');
  assert.equal(recipientTag(''), 'seoc8gkovge196nruj49irtp4g');
});

test('recipient_tag hashes UTF-8 and is always 26 base32hex characters', () => {
  for (const id of ['Ω', 'x'.repeat(1000), '😀 emoji', 'MiXeD@Case']) {
    assert.match(recipientTag(id), /^[0-9a-v]{26}$/);
  }
  assert.notEqual(recipientTag('Bob'), recipientTag('bob'));
});

test('inbox tag: inbox-<recipient_tag>-<YYYYMMDD UTC>-<sid8>-<mid8>, as v1.0 wrote the fixture', () => {
  const tag = inboxTag({
    recipient: 'bob',
    date: new Date('2025-06-01T12:00:00Z'),
    sessionId: '1b4e28ba-2fa1-41d2-883f-0016d3cca427',
    messageId: '6fa459ea-ee8a-4ca4-894e-db77e160355e',
  });
  assert.equal(tag, readFileSync(path.join(V1, 'message/tag'), 'utf8').trim());
  assert.ok(tag.startsWith(inboxPrefix('bob')));
  assert.ok(isValidTag(tag));
  // The date is the UTC date, not the local one.
  const late = inboxTag({ recipient: 'bob', date: new Date('2025-06-01T23:59:59-05:00'), sessionId: 'abcdef12', messageId: '12345678-aaaa' });
  assert.match(late, /-20250602-abcdef12-12345678$/);
});

test('a session id that cannot go into a tag is refused, not mangled', () => {
  assert.throws(() => inboxTag({ recipient: 'b', date: new Date(0), sessionId: 'a/b', messageId: '6fa459ea' }), UsageError);
  assert.throws(() => inboxTag({ recipient: 'b', date: new Date(0), sessionId: '', messageId: '6fa459ea' }), UsageError);
  assert.throws(() => inboxTag({ recipient: 'b', date: new Date(NaN), sessionId: 'abc', messageId: '6fa459ea' }), UsageError);
});

test('parseInboxTag reads inbox tags back and rejects everything else', () => {
  const parsed = parseInboxTag('inbox-g6r3fm7sqb3dkoqpsqb324t12s-20250601-1b4e28ba-6fa459ea');
  assert.deepEqual(parsed, { recipientTag: 'g6r3fm7sqb3dkoqpsqb324t12s', date: new Date('2025-06-01T00:00:00Z'), sid8: '1b4e28ba', mid8: '6fa459ea' });
  for (const bad of [
    'inbox-g6r3fm7sqb3dkoqpsqb324t12s-20250230-1b4e28ba-6fa459ea', // 30 February
    'inbox-g6r3fm7sqb3dkoqpsqb324t12s-2025061-1b4e28ba-6fa459ea',
    'inbox-G6R3FM7SQB3DKOQPSQB324T12S-20250601-1b4e28ba-6fa459ea',
    'inbox-g6r3fm7sqb3dkoqpsqb324t12-20250601-1b4e28ba-6fa459ea',
    'inbox-g6r3fm7sqb3dkoqpsqb324t12s-20250601-1b4e28ba-6fa459ea-x',
    'receipt-29da45c04996-1748779290-7c9e66',
    'latest',
  ]) {
    assert.equal(parseInboxTag(bad), undefined, bad);
  }
});

test('receipt and bundle tags: <kind>-<hex12>-<unix seconds>-<rand6>, prefixes match', () => {
  const digest = 'sha256:29da45c0499626c691622262ad7820bff097054b61aaf35b8d65e554b8cc29ba';
  const when = new Date('2025-06-01T12:01:30.900Z');
  assert.equal(receiptTag(digest, when, '7c9e66'), readFileSync(path.join(V1, 'receipt/tag'), 'utf8').trim());
  assert.equal(bundleTag(digest, new Date('2025-06-01T12:00:00Z'), '3f2504'), readFileSync(path.join(V1, 'bundle/tag'), 'utf8').trim());
  assert.equal(receiptTagPrefix(digest), 'receipt-29da45c04996-');
  assert.equal(bundleTagPrefix(digest), 'bundle-29da45c04996-');
  assert.equal(hex12(digest), '29da45c04996');
  const random = receiptTag(digest, when);
  assert.match(random, /^receipt-29da45c04996-1748779290-[0-9a-f]{6}$/);
  assert.ok(isValidTag(random));
  assert.deepEqual(parseArtifactTag(random)?.unixSeconds, 1748779290);
  assert.deepEqual(parseArtifactTag('bundle-29da45c04996-1748779200-3f2504'), {
    kind: 'bundle',
    hex12: '29da45c04996',
    unixSeconds: 1748779200,
    rand6: '3f2504',
  });
  assert.equal(parseArtifactTag('bundle-29da45c04996-01748779200-3f2504'), undefined);
  assert.throws(() => receiptTag(digest, when, 'XYZ'), ProtocolError);
  assert.throws(() => receiptTag('sha256:short', when), ProtocolError);
});

test('two receipt tags in the same second still differ (rand6 from node:crypto)', () => {
  const d = digestOf('m');
  const now = new Date();
  const tags = new Set(Array.from({ length: 50 }, () => receiptTag(d, now)));
  assert.ok(tags.size >= 49);
});

test('the OCI tag grammar', () => {
  assert.equal(TAG_RE.source, '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$');
  for (const ok of ['a', '_x', 'v1.0', 'A-b_c.d', 'x'.repeat(128)]) assert.ok(isValidTag(ok), ok);
  for (const bad of ['', '-a', '.a', 'a/b', 'a:b', 'x'.repeat(129), 'é']) assert.ok(!isValidTag(bad), bad);
});
