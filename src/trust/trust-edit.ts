/**
 * Editing a trust file as text, so the lines and comments a person wrote stay as they were: a
 * binding is appended as one line; removing an identity drops it from each line that binds it
 * (the line goes when nothing is left on it). The file is replaced atomically.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseTrustFile, type TrustEntry, type TrustFile } from './trust-file.ts';
import { TrustFileError } from './errors.ts';

/** The file's text, or '' when it does not exist yet. */
export async function readTrustText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw new TrustFileError(`cannot read the trust file ${file} (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, {
      cause,
      code: 'TRUST_FILE_UNREADABLE',
    });
  }
}

/** `text` with `line` appended (after a newline when the text lacks a final one). */
export function appendTrustLine(text: string, line: string): string {
  return `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${line}\n`;
}

/**
 * `text` without `identity` on the lines `which` selects (default: every line binding it).
 * Returns the new text and the entries that were changed.
 */
export function removeTrustIdentity(
  text: string,
  trust: TrustFile,
  identity: string,
  which: (e: TrustEntry) => boolean = () => true,
): { text: string; removed: TrustEntry[] } {
  const lines = text.split('\n');
  const removed: TrustEntry[] = [];
  const drop = new Set<number>();
  for (const e of trust.entries) {
    if (!e.identities.includes(identity) || !which(e)) continue;
    removed.push(e);
    const rest = e.identities.filter((i) => i !== identity);
    const idx = e.line - 1;
    if (rest.length === 0) drop.add(idx);
    else lines[idx] = lines[idx]!.replace(/^(\s*)\S+/, `$1${rest.join(',')}`);
  }
  return { text: lines.filter((_, i) => !drop.has(i)).join('\n'), removed };
}

/** Writes the trust file atomically (a temporary file renamed over it), keeping its mode. */
export async function writeTrustText(file: string, text: string): Promise<void> {
  // What is written must parse: an edit never leaves a file the next command refuses.
  parseTrustFile(text, file);
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const mode = await stat(file).then(
    (s) => s.mode & 0o777,
    () => 0o644,
  );
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, text, { mode });
  await rename(tmp, file);
}
