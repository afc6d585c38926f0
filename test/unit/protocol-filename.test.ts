/** Filenames: v1.0's sanitiser for outgoing names, plus comms' hardening and the incoming check. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_FILENAME_BYTES,
  MAX_SENT_FILENAME_BYTES,
  alternativeFilename,
  filenameProblem,
  isSafeFilename,
  receivedFilename,
  sanitizeFilename,
} from '../../src/protocol/filename.ts';
import { messageAnnotations } from '../../src/protocol/manifest.ts';
import { UsageError } from '../../src/errors.ts';

test("v1.0's rules: basename, trim spaces, drop backslashes, '' . .. / become file", () => {
  const cases: [string, string][] = [
    ['report.pdf', 'report.pdf'],
    ['/home/me/report.pdf', 'report.pdf'],
    ['dir/sub/', 'sub'],
    ['../../etc/passwd', 'passwd'],
    ['  spaced name.txt  ', 'spaced name.txt'],
    ['C:\\Users\\me\\x.txt', 'C:Usersmex.txt'],
    ['', 'file'],
    ['.', 'file'],
    ['..', 'file'],
    ['/', 'file'],
    ['///', 'file'],
    ['a/..', 'file'],
    ['\\', 'file'],
    [' \\ ', 'file'],
  ];
  for (const [input, want] of cases) assert.equal(sanitizeFilename(input), want, JSON.stringify(input));
});

test('Go TrimSpace semantics: U+0085 and U+00A0 are trimmed, U+FEFF is not', () => {
  assert.equal(sanitizeFilename('\u00a0a.txt\u3000'), 'a.txt');
  assert.equal(sanitizeFilename('\ufeffa.txt'), '\ufeffa.txt');
});

test('comms hardening: NUL, controls and bidi overrides are removed; long names are cut keeping the extension', () => {
  assert.equal(sanitizeFilename('a\u0000b\u001bc\u007f.txt'), 'abc.txt');
  assert.equal(sanitizeFilename('invoice\u202egpj.exe'), 'invoicegpj.exe');
  assert.equal(sanitizeFilename('\u0000'), 'file');
  const long = sanitizeFilename('é'.repeat(300) + '.tar.gz');
  assert.ok(Buffer.byteLength(long) <= MAX_SENT_FILENAME_BYTES);
  assert.ok(long.endsWith('.gz'));
  // Every name comms sends passes its own receiving check.
  for (const n of ['../../x', '/abs/y', 'a\u0000b', ' ', '\\\\', 'ok.txt', 'é'.repeat(300)]) assert.ok(isSafeFilename(sanitizeFilename(n)), n);
});

test('incoming names: only plain basenames are safe', () => {
  for (const ok of ['report.pdf', 'spaced name.txt', '.hidden', '...', 'é☃.txt', 'file']) assert.ok(isSafeFilename(ok), ok);
  const unsafe: [string, RegExp][] = [
    ['../../etc/passwd', /slash/],
    ['/abs/x', /slash/],
    ['a\\b', /backslash/],
    ['', /empty/],
    ['.', /"\."/],
    ['..', /"\.\."/],
    ['a\u0000b', /U\+0000/],
    ['line\nbreak', /U\+000A/],
    ['rtl\u202etxt', /U\+202E/],
    ['   ', /white space/],
    ['x'.repeat(256), /255 bytes/],
  ];
  for (const [name, why] of unsafe) {
    assert.ok(!isSafeFilename(name), JSON.stringify(name));
    assert.match(filenameProblem(name)!, why);
  }
});

/** The temporary name a dockercomms v1.0 receiver writes first: `.tmp-<name>-<hex12>`. */
const v1TempName = (name: string) => `.tmp-${name}-0123456789ab`;

test("names sent are cut so that a v1.0 receiver's temporary name fits 255 bytes, keeping the extension", () => {
  assert.equal(MAX_SENT_FILENAME_BYTES, 237);
  // 238..255 bytes: fine for comms, fatal for a v1.0 receiver before the cut.
  for (const len of [237, 238, 250, 255, 256, 400]) {
    const name = sanitizeFilename(`${'a'.repeat(len - 4)}.pdf`);
    assert.ok(Buffer.byteLength(v1TempName(name)) <= MAX_FILENAME_BYTES, `${len}: ${Buffer.byteLength(v1TempName(name))} bytes`);
    assert.equal(Buffer.byteLength(name), Math.min(len, 237), `${len}`);
    assert.ok(name.endsWith('.pdf'), `${len} keeps .pdf`);
  }
  // Multi-byte characters are never split (3-byte U+2603): the cut lands on a code point boundary.
  const snow = sanitizeFilename(`${'☃'.repeat(100)}.txt`);
  assert.ok(Buffer.byteLength(snow) <= 237);
  assert.equal(Buffer.byteLength(snow), 4 + 3 * 77);
  assert.equal(Buffer.from(snow, 'utf8').toString('utf8'), snow);
  assert.ok(!snow.includes('\uFFFD'));
  assert.ok(snow.endsWith('☃.txt'));
  // 4-byte characters (surrogate pairs in JS) are kept whole; a long extension is cut with the name.
  const emoji = sanitizeFilename('😀'.repeat(80));
  assert.equal(Buffer.byteLength(emoji), 236);
  assert.equal([...emoji].length, 59);
  const longExt = sanitizeFilename(`x.${'e'.repeat(300)}`);
  assert.equal(Buffer.byteLength(longExt), 237);
});

test('the manifest builder refuses a name a v1.0 receiver could not write', () => {
  const base = {
    sender: 'a',
    recipient: 'b',
    createdAt: new Date(0),
    ttlSeconds: 1,
    totalBytes: 0,
    chunkBytes: 0,
    chunkCount: 0,
    compression: 'gzip' as const,
    messageId: '6fa459ea-ee8a-4ca4-894e-db77e160355e',
  };
  assert.doesNotThrow(() => messageAnnotations({ ...base, filename: `${'a'.repeat(233)}.txt` }));
  assert.throws(
    () => messageAnnotations({ ...base, filename: `${'a'.repeat(234)}.txt` }),
    (e) => e instanceof UsageError && /longer than 237 bytes/.test(e.message),
  );
});

test("received names are written as v1.0 writes them where that is safe: trimmed; '', '.', '..' become file", () => {
  const cases: [string, string][] = [
    ['report.pdf ', 'report.pdf'],
    ['  spaces  .txt  ', 'spaces  .txt'],
    [' ..', 'file'],
    ['..', 'file'],
    ['.', 'file'],
    ['', 'file'],
    ['   ', 'file'],
    ['\tnotes.md\n', 'notes.md'],
    ['\u00a0a.txt\u3000', 'a.txt'],
    ['report.pdf', 'report.pdf'],
    ['.hidden', '.hidden'],
    ['\ufeffa.txt', '\ufeffa.txt'],
  ];
  for (const [raw, want] of cases) assert.deepEqual(receivedFilename(raw), { name: want }, JSON.stringify(raw));
  // Trimming never makes a hostile name acceptable: what is left is still checked.
  for (const raw of [' ../x', '/abs/x ', ' a\\b', 'a\u0000b ', ' rtl\u202etxt', ` ${'x'.repeat(256)} `]) {
    assert.ok(receivedFilename(raw).problem !== undefined, JSON.stringify(raw));
  }
  // A name of 238..255 bytes (another writer's) is still received.
  assert.deepEqual(receivedFilename('y'.repeat(255)), { name: 'y'.repeat(255) });
});

test('the alternative name for a taken one (name-1.ext) still fits 255 bytes, keeping the extension', () => {
  assert.equal(alternativeFilename('report.pdf', 1), 'report-1.pdf');
  assert.equal(alternativeFilename('.hidden', 2), '.hidden-2');
  assert.equal(alternativeFilename('archive.tar.gz', 3), 'archive.tar-3.gz');
  // A 255-byte name received from another writer: the stem gives way, never the limit.
  for (const name of ['a'.repeat(251) + '.pdf', '☃'.repeat(83) + '.txt', 'b'.repeat(255), `x.${'e'.repeat(253)}`]) {
    for (const n of [1, 42, 9999]) {
      const alt = alternativeFilename(name, n);
      assert.ok(Buffer.byteLength(alt) <= MAX_FILENAME_BYTES, `${Buffer.byteLength(alt)} bytes`);
      assert.ok(alt.includes(`-${n}`), alt);
      assert.ok(!alt.includes('\uFFFD'));
    }
  }
  assert.ok(alternativeFilename('a'.repeat(251) + '.pdf', 1).endsWith('-1.pdf'));
});
