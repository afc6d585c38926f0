/**
 * Filenames carried in `dockercomms.filename`.
 *
 * Outgoing: `sanitizeFilename` turns a local path into the basename v1.0 would send
 * (basename, trim spaces, remove backslashes; '', '.', '..', '/' → 'file'), hardened by comms:
 * control characters, NUL and bidirectional-override characters are removed, and the result is
 * cut to 237 UTF-8 bytes (keeping a short extension): a v1.0 receiver writes the file first as
 * `.tmp-<name>-<hex12>`, 18 bytes longer, and that name must still fit NAME_MAX (255).
 *
 * Incoming: `receivedFilename` gives the name to write. Like v1.0 it trims surrounding white space
 * (Go's strings.TrimSpace) and writes an empty name, `.` or `..` as `file`; what is left must be a
 * plain basename (`filenameProblem`), else the validator refuses the message (exit 4) rather than
 * quietly renaming it, so a traversal such as `../../etc/passwd` or `/abs/x` ends the receive
 * before anything is written.
 */

/** Go's unicode.IsSpace, which v1.0's strings.TrimSpace uses (differs from JS trim on U+0085, U+FEFF). */
function isGoSpace(cp: number): boolean {
  return (
    (cp >= 0x09 && cp <= 0x0d) ||
    cp === 0x20 ||
    cp === 0x85 ||
    cp === 0xa0 ||
    cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x202f ||
    cp === 0x205f ||
    cp === 0x3000
  );
}

/**
 * Characters a filename must never carry: C0 controls (NUL included), DEL, C1 controls, and the
 * bidirectional formatting characters that make `txt.exe` display as `exe.txt`.
 */
export function isForbiddenFilenameChar(cp: number): boolean {
  return (
    cp <= 0x1f ||
    (cp >= 0x7f && cp <= 0x9f) ||
    cp === 0x200e ||
    cp === 0x200f ||
    (cp >= 0x202a && cp <= 0x202e) ||
    (cp >= 0x2066 && cp <= 0x2069) ||
    // Lone surrogates cannot be encoded as UTF-8 and would reach the filesystem as U+FFFD.
    (cp >= 0xd800 && cp <= 0xdfff)
  );
}

/** Longest name in UTF-8 bytes that common filesystems (NAME_MAX) accept. */
export const MAX_FILENAME_BYTES = 255;

/** What v1.0's temporary name `.tmp-<name>-<hex12>` adds to the name: `.tmp-` (5), `-` (1), 12 hex. */
export const V1_TEMP_NAME_OVERHEAD = 18;

/** Longest name comms sends: v1.0 receivers' temporary name must fit NAME_MAX too. */
export const MAX_SENT_FILENAME_BYTES = MAX_FILENAME_BYTES - V1_TEMP_NAME_OVERHEAD;

function goTrimSpace(s: string): string {
  const cps = Array.from(s);
  let start = 0;
  let end = cps.length;
  while (start < end && isGoSpace(cps[start]!.codePointAt(0)!)) start++;
  while (end > start && isGoSpace(cps[end - 1]!.codePointAt(0)!)) end--;
  return cps.slice(start, end).join('');
}

/** Go's filepath.Base on Unix: trailing slashes dropped, last element; '' → '.', all slashes → '/'. */
function goBase(path: string): string {
  if (path === '') return '.';
  let p = path;
  while (p.length > 0 && p.endsWith('/')) p = p.slice(0, -1);
  const i = p.lastIndexOf('/');
  if (i >= 0) p = p.slice(i + 1);
  return p === '' ? '/' : p;
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Cuts `s` to at most `max` UTF-8 bytes on a code point boundary. */
function cutUtf8(s: string, max: number): string {
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const n = utf8Length(ch);
    if (bytes + n > max) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/** Cuts `name` to MAX_SENT_FILENAME_BYTES on a code point boundary, keeping an extension of up to 32 bytes. */
function shorten(name: string): string {
  if (utf8Length(name) <= MAX_SENT_FILENAME_BYTES) return name;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? name.slice(dot) : '';
  if (ext !== '' && utf8Length(ext) <= 32) return cutUtf8(name.slice(0, dot), MAX_SENT_FILENAME_BYTES - utf8Length(ext)) + ext;
  return cutUtf8(name, MAX_SENT_FILENAME_BYTES);
}

/**
 * The n-th name to try when `filename` is taken in the output folder: `name-n.ext` (the extension as
 * path.extname sees it), the stem cut on a UTF-8 boundary so that the result still fits
 * MAX_FILENAME_BYTES (a 255-byte name from another writer would otherwise overflow it).
 */
export function alternativeFilename(filename: string, n: number): string {
  const suffix = `-${n}`;
  const dot = filename.lastIndexOf('.');
  const ext = dot > 0 ? filename.slice(dot) : '';
  const stem = filename.slice(0, filename.length - ext.length);
  const room = MAX_FILENAME_BYTES - utf8Length(suffix);
  if (utf8Length(ext) < room) return cutUtf8(stem, room - utf8Length(ext)) + suffix + ext;
  return cutUtf8(filename, room) + suffix;
}

/** The name to send for a local path (v1.0's SanitizeFilename plus the hardening above). */
export function sanitizeFilename(name: string): string {
  let base = goBase(name);
  base = Array.from(base)
    .filter((ch) => !isForbiddenFilenameChar(ch.codePointAt(0)!))
    .join('');
  base = goTrimSpace(base);
  base = base.replaceAll('\\', '');
  // Removing a backslash can expose spaces v1.0 would keep; comms trims again.
  base = goTrimSpace(base);
  if (base === '' || base === '.' || base === '..' || base === '/') return 'file';
  base = shorten(base);
  return base === '' || base === '.' || base === '..' ? 'file' : base;
}

/** Why `name` is not a plain basename, or undefined when it is one. */
export function filenameProblem(name: string): string | undefined {
  if (typeof name !== 'string' || name === '') return 'it is empty';
  if (name === '.' || name === '..') return `it is ${JSON.stringify(name)}`;
  if (name.includes('/')) return 'it contains a slash (a path, not a basename)';
  if (name.includes('\\')) return 'it contains a backslash';
  for (const ch of name) {
    const cp = ch.codePointAt(0)!;
    if (isForbiddenFilenameChar(cp)) return `it contains the control or formatting character U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  }
  if (goTrimSpace(name) === '') return 'it is only white space';
  if (utf8Length(name) > MAX_FILENAME_BYTES) return `it is longer than ${MAX_FILENAME_BYTES} bytes`;
  return undefined;
}

/**
 * The name to write for a received `dockercomms.filename`, as v1.0 writes it where that is safe:
 * surrounding white space trimmed (`"report.pdf "` → `report.pdf`), and an empty name, `.` or `..`
 * written as `file`. Anything else that is not a plain basename (a slash, a backslash, a control
 * or bidirectional-formatting character, more than 255 bytes) is a problem, not renamed.
 */
export function receivedFilename(raw: string): { name: string; problem?: undefined } | { name?: undefined; problem: string } {
  const trimmed = goTrimSpace(raw);
  if (trimmed === '' || trimmed === '.' || trimmed === '..') return { name: 'file' };
  const problem = filenameProblem(trimmed);
  return problem === undefined ? { name: trimmed } : { problem };
}

/** True when an incoming name may be written as it is: a plain basename, nothing hostile in it. */
export function isSafeFilename(name: string): boolean {
  return filenameProblem(name) === undefined;
}
