import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseSince, parseSize, parseTtl } from '../../src/cli/parse.ts';
import { annotationsExpired, isExpiredAt } from '../../src/protocol/expiry.ts';
import { TagSnapshot } from '../../src/comms/tag-snapshot.ts';
import { UsageError } from '../../src/errors.ts';

test('sizes: bytes and binary/decimal suffixes; zero, negatives and junk are usage errors (exit 4)', () => {
  assert.equal(parseSize('--chunk-bytes', '104857600'), 104857600);
  assert.equal(parseSize('--chunk-bytes', '64MiB'), 64 * 1024 * 1024);
  assert.equal(parseSize('--chunk-bytes', '64M'), 64 * 1024 * 1024);
  assert.equal(parseSize('--chunk-bytes', '1.5GiB'), 1.5 * 1024 ** 3);
  assert.equal(parseSize('--chunk-bytes', '2kb'), 2000);
  for (const bad of ['0', '-1', 'lots', '12 parsecs', '']) {
    assert.throws(
      () => parseSize('--chunk-bytes', bad),
      (e: unknown) => e instanceof UsageError && e.exitCode === 4 && /--chunk-bytes/.test(e.message),
    );
  }
});

test('--since: RFC 3339 times and durations back from now; anything else refused', () => {
  const now = new Date('2026-11-22T12:00:00Z');
  assert.equal(parseSince('2h', now).toISOString(), '2026-11-22T10:00:00.000Z');
  assert.equal(parseSince('7d', now).toISOString(), '2026-11-15T12:00:00.000Z');
  assert.equal(parseSince('2026-11-20T08:30:00Z', now).toISOString(), '2026-11-20T08:30:00.000Z');
  assert.equal(parseSince('2026-11-20T08:30:00+02:00', now).toISOString(), '2026-11-20T06:30:00.000Z');
  for (const bad of ['yesterday', '2026-13-45T99:00:00Z', '5 minutes', '2026-11-20T08:30:00']) {
    assert.throws(() => parseSince(bad, now), UsageError);
  }
});

test('durations for --interval', () => {
  assert.equal(parseDuration('--interval', '500ms'), 500);
  assert.equal(parseDuration('--interval', '5s'), 5000);
  assert.equal(parseDuration('--interval', '2m'), 120000);
  assert.equal(parseDuration('--interval', '3'), 3000);
  assert.throws(() => parseDuration('--interval', '0'), UsageError);
  assert.throws(() => parseDuration('--interval', 'soon'), UsageError);
});

test('a tag snapshot finds every tag with a prefix, and only those, without a full scan', () => {
  const tags = ['inbox-b-2', 'receipt-abc-1', 'inbox-a-1', 'inbox-a-2', 'inbox-aa-1', 'bundle-abc-1', 'inbox-a-1'];
  const s = TagSnapshot.of(tags);
  assert.equal(s.size, 6, 'duplicates collapse');
  assert.deepEqual(s.withPrefix('inbox-a-'), ['inbox-a-1', 'inbox-a-2']);
  assert.deepEqual(s.withPrefix('inbox-'), ['inbox-a-1', 'inbox-a-2', 'inbox-aa-1', 'inbox-b-2']);
  assert.deepEqual(s.withPrefix('zzz'), []);
  assert.ok(s.has('bundle-abc-1'));
  assert.ok(!s.has('bundle-abc'));
});

test('--ttl: seconds or a duration with s, m, h, d, w; junk refused (exit 4)', () => {
  assert.equal(parseTtl('--ttl', '3600'), 3600);
  assert.equal(parseTtl('--ttl', '90s'), 90);
  assert.equal(parseTtl('--ttl', '1h'), 3600);
  assert.equal(parseTtl('--ttl', '7d'), 604800);
  assert.equal(parseTtl('--ttl', '2w'), 1209600);
  assert.equal(parseTtl('--ttl', '0'), 0);
  for (const bad of ['-1', '1.5h', '1y', 'soon', '']) {
    assert.throws(
      () => parseTtl('--ttl', bad),
      (e: unknown) => e instanceof UsageError && e.exitCode === 4 && /--ttl/.test(e.message),
    );
  }
});

test('expiry: created_at + ttl_seconds, plus 5 minutes of clock skew; annotations that do not say never expire', () => {
  const now = new Date('2026-11-22T12:00:00Z');
  const a = (created: string, ttl: string) => ({ 'dockercomms.created_at': created, 'dockercomms.ttl_seconds': ttl });
  assert.equal(annotationsExpired(a('2026-11-22T10:00:00Z', '3600'), now), true);
  assert.equal(annotationsExpired(a('2026-11-22T10:56:00Z', '3600'), now), false, 'inside the skew allowance');
  assert.equal(annotationsExpired(a('2026-11-22T10:54:59Z', '3600'), now), true);
  assert.equal(annotationsExpired({}, now), false);
  assert.equal(annotationsExpired(a('not a time', '3600'), now), false);
  assert.equal(annotationsExpired(a('2026-11-22T10:00:00Z', '-1'), now), false);
  assert.equal(isExpiredAt(new Date('2026-11-22T11:55:00Z'), now), false);
  assert.equal(isExpiredAt(new Date('2026-11-22T11:54:59Z'), now), true);
});
