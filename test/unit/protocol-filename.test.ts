/** Filenames: v1.0's sanitiser for outgoing names, plus comms' hardening and the incoming check. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_FILENAME_BYTES, filenameProblem, isSafeFilename, sanitizeFilename } from '../../src/protocol/filename.ts';

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
  assert.ok(Buffer.byteLength(long) <= MAX_FILENAME_BYTES);
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
