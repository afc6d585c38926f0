/**
 * The trust file: which signer speaks for which identity, one binding a line, in the spirit of
 * git/ssh's allowed-signers file.
 *
 * ```
 * # identity[,identity…]   what signs for it                                   # comment
 * alice@example.com         alice.pub                                            # PEM public key, relative to this file
 * ci                        keyless issuer=https://token.actions.githubusercontent.com identity-regexp=^https://github.com/acme/
 * bob                       keyless issuer=https://accounts.google.com identity=bob@example.com
 * bob                       age1…                                                # an age recipient (encryption, not signing)
 * ```
 *
 * A `#` at the start of a line or after white space starts a comment; a value holding spaces or
 * `#` is written in double quotes (JSON string syntax). An identity may be bound to several
 * signers (one line each), and a signer to several identities. `age1…` lines bind an age recipient
 * to an identity; they never make a signature trusted.
 *
 * Parsing does no I/O; `loadTrustFile` also reads the key files, so a line naming a missing or
 * unreadable key fails when the file is loaded, naming the line.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { keyIdOf } from './key-id.ts';
import { TrustFileError } from './errors.ts';

interface EntryBase {
  /** The identities this line binds (the first column, split on commas). */
  identities: string[];
  /** 1-based line number in the file. */
  line: number;
}

export interface KeyEntry extends EntryBase {
  kind: 'key';
  /** The key file as written on the line. */
  keyPath: string;
  /** Absolute path of the key file (resolved against the trust file's folder). */
  resolvedPath: string;
  /** Filled by loadTrustFile: the public key and its id (hex sha256 of the DER SPKI). */
  publicKey?: KeyObject;
  keyId?: string;
}

export interface KeylessEntry extends EntryBase {
  kind: 'keyless';
  issuer: string;
  certificateIdentity?: string;
  certificateIdentityRegexp?: string;
  /** The compiled regexp (unanchored, as cosign's --certificate-identity-regexp). */
  regexp?: RegExp;
}

export interface AgeEntry extends EntryBase {
  kind: 'age';
  /** An age X25519 recipient (`age1…`). */
  recipient: string;
}

export type TrustEntry = KeyEntry | KeylessEntry | AgeEntry;

/** `$XDG_CONFIG_HOME/comms/trust`, else `~/.config/comms/trust`. */
export function defaultTrustFilePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_CONFIG_HOME'] || path.join(homedir(), '.config');
  return path.join(base, 'comms', 'trust');
}

export class TrustFile {
  /** The file it was read from (undefined for one built in memory). */
  readonly path: string | undefined;
  readonly entries: readonly TrustEntry[];

  constructor(entries: TrustEntry[], file?: string) {
    this.entries = entries;
    this.path = file;
  }

  /** The lines that make signatures trusted (keys and keyless identities; not age recipients). */
  get signingEntries(): (KeyEntry | KeylessEntry)[] {
    return this.entries.filter((e): e is KeyEntry | KeylessEntry => e.kind !== 'age');
  }

  /** The identities the key with this id is bound to (empty when the file does not name it). */
  identitiesOfKey(keyId: string): string[] {
    const id = keyId.toLowerCase();
    return unique(this.entries.flatMap((e) => (e.kind === 'key' && e.keyId === id ? e.identities : [])));
  }

  /** The identities a verified keyless certificate (its SAN and OIDC issuer) is bound to. */
  identitiesOfCertificate(san: string, issuer: string | undefined): string[] {
    return unique(this.entries.flatMap((e) => (e.kind === 'keyless' && keylessMatches(e, san, issuer) ? e.identities : [])));
  }

  /** The identities an age recipient is bound to. */
  identitiesOfAgeRecipient(recipient: string): string[] {
    return unique(this.entries.flatMap((e) => (e.kind === 'age' && e.recipient === recipient ? e.identities : [])));
  }

  /** Every line binding `identity`. */
  entriesFor(identity: string): TrustEntry[] {
    return this.entries.filter((e) => e.identities.includes(identity));
  }
}

/** The age recipients a trust file binds to `identity` (its `identity age1…` lines). */
export function ageRecipientsFor(trust: TrustFile, identity: string): string[] {
  return [...new Set(trust.entriesFor(identity).flatMap((e) => (e.kind === 'age' ? [e.recipient] : [])))];
}

/** Whether a keyless line accepts a certificate with this SAN and issuer. */
export function keylessMatches(e: KeylessEntry, san: string, issuer: string | undefined): boolean {
  if (issuer !== e.issuer) return false;
  if (e.certificateIdentity !== undefined) return san === e.certificateIdentity;
  return e.regexp?.test(san) === true;
}

/**
 * Parses trust-file text. `file` is where it lives (key paths are relative to its folder; without
 * one, to the current folder); errors name it and the line.
 */
export function parseTrustFile(text: string, file?: string): TrustFile {
  const base = file === undefined ? process.cwd() : path.dirname(path.resolve(file));
  const where = file ?? 'the trust file';
  const entries: TrustEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const tokens = tokenize(lines[i]!, `${where}:${i + 1}`);
    if (tokens.length === 0) continue;
    entries.push(parseLine(tokens, i + 1, base, `${where}:${i + 1}`));
  }
  return new TrustFile(entries, file);
}

/** Reads and parses a trust file, and reads every public key it names. */
export async function loadTrustFile(file: string): Promise<TrustFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new TrustFileError(`cannot read the trust file ${file} (${code ?? 'error'})`, {
      cause,
      code: code === 'ENOENT' ? 'TRUST_FILE_MISSING' : 'TRUST_FILE_UNREADABLE',
    });
  }
  const trust = parseTrustFile(text, file);
  for (const e of trust.entries) if (e.kind === 'key') await loadKey(e, `${file}:${e.line}`);
  return trust;
}

/** Reads a key line's PEM file and fills in its public key and key id. */
export async function loadKey(e: KeyEntry, where: string): Promise<void> {
  let pem: string;
  try {
    pem = await readFile(e.resolvedPath, 'utf8');
  } catch (cause) {
    throw new TrustFileError(`${where}: cannot read the key file ${e.keyPath} (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, {
      cause,
      code: 'TRUST_KEY_UNREADABLE',
    });
  }
  const key = publicKeyOf(pem, `${where}: ${e.keyPath}`);
  e.publicKey = key;
  e.keyId = keyIdOf(key);
}

/** A PEM public key (only a public key: a private key in a trust file is a mistake worth stopping). */
export function publicKeyOf(pem: string, what: string): KeyObject {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new TrustFileError(`${what} is a private key; a trust file names public keys only (comms keygen writes NAME.pub beside it)`, {
      code: 'TRUST_KEY_INVALID',
    });
  }
  try {
    return createPublicKey({ key: pem, format: 'pem' });
  } catch (cause) {
    throw new TrustFileError(`${what} is not a PEM public key`, { cause, code: 'TRUST_KEY_INVALID' });
  }
}

/** Formats one line (the inverse of parsing it), quoting values that need it. */
export function formatTrustLine(
  entry: { identities: string[] } & (
    | { kind: 'key'; keyPath: string }
    | { kind: 'keyless'; issuer: string; certificateIdentity?: string; certificateIdentityRegexp?: string }
    | { kind: 'age'; recipient: string }
  ),
): string {
  const who = entry.identities.join(',');
  if (entry.kind === 'key') return `${who} ${quoteToken(entry.keyPath)}`;
  if (entry.kind === 'age') return `${who} ${entry.recipient}`;
  const which =
    entry.certificateIdentity !== undefined
      ? `identity=${quoteToken(entry.certificateIdentity)}`
      : `identity-regexp=${quoteToken(entry.certificateIdentityRegexp ?? '')}`;
  return `${who} keyless issuer=${quoteToken(entry.issuer)} ${which}`;
}

// ---------------------------------------------------------------------------------------------

const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

function parseLine(tokens: string[], line: number, base: string, where: string): TrustEntry {
  const [who, what, ...rest] = tokens as [string, string | undefined, ...string[]];
  const identities = who.split(',');
  if (identities.some((s) => !isIdentityName(s))) {
    throw new TrustFileError(`${where}: ${JSON.stringify(who)} is not a list of identities (comma-separated, no spaces, quotes or #)`, {
      code: 'TRUST_FILE_INVALID',
    });
  }
  if (what === undefined) {
    throw new TrustFileError(
      `${where}: ${JSON.stringify(who)} is bound to nothing; name a public key file, "keyless issuer=… identity=…", or an age recipient`,
      { code: 'TRUST_FILE_INVALID' },
    );
  }
  if (what === 'keyless') return parseKeyless(identities, rest, line, where);
  if (what.startsWith('age1')) {
    if (!AGE_RECIPIENT.test(what))
      throw new TrustFileError(`${where}: ${JSON.stringify(what)} is not an age recipient (age1 followed by 58 bech32 characters)`, {
        code: 'TRUST_FILE_INVALID',
      });
    if (rest.length > 0) throw new TrustFileError(`${where}: unexpected ${JSON.stringify(rest[0])} after the age recipient`, { code: 'TRUST_FILE_INVALID' });
    return { kind: 'age', identities, line, recipient: what };
  }
  if (rest.length > 0) throw new TrustFileError(`${where}: unexpected ${JSON.stringify(rest[0])} after the key file`, { code: 'TRUST_FILE_INVALID' });
  const keyPath = unquote(what, where);
  return { kind: 'key', identities, line, keyPath, resolvedPath: path.resolve(base, keyPath) };
}

function parseKeyless(identities: string[], options: string[], line: number, where: string): KeylessEntry {
  const values = new Map<string, string>();
  for (const o of options) {
    const eq = o.indexOf('=');
    const name = eq < 0 ? o : o.slice(0, eq);
    if (eq < 0 || !['issuer', 'identity', 'identity-regexp'].includes(name)) {
      throw new TrustFileError(`${where}: unknown keyless option ${JSON.stringify(o)}; expected issuer=…, identity=… or identity-regexp=…`, {
        code: 'TRUST_FILE_INVALID',
      });
    }
    if (values.has(name)) throw new TrustFileError(`${where}: ${name}= given twice`, { code: 'TRUST_FILE_INVALID' });
    const value = unquote(o.slice(eq + 1), where);
    if (value === '') throw new TrustFileError(`${where}: ${name}= is empty`, { code: 'TRUST_FILE_INVALID' });
    values.set(name, value);
  }
  const issuer = values.get('issuer');
  if (issuer === undefined)
    throw new TrustFileError(`${where}: a keyless line needs issuer=… (the OIDC issuer that vouches for the identity)`, { code: 'TRUST_FILE_INVALID' });
  const identity = values.get('identity');
  const regexpSource = values.get('identity-regexp');
  if ((identity === undefined) === (regexpSource === undefined)) {
    throw new TrustFileError(`${where}: a keyless line needs exactly one of identity=… or identity-regexp=…`, { code: 'TRUST_FILE_INVALID' });
  }
  const entry: KeylessEntry = { kind: 'keyless', identities, line, issuer };
  if (identity !== undefined) entry.certificateIdentity = identity;
  if (regexpSource !== undefined) {
    try {
      entry.regexp = new RegExp(regexpSource);
    } catch (cause) {
      throw new TrustFileError(`${where}: identity-regexp ${JSON.stringify(regexpSource)} is not a valid regular expression`, {
        cause,
        code: 'TRUST_FILE_INVALID',
      });
    }
    entry.certificateIdentityRegexp = regexpSource;
  }
  return entry;
}

/**
 * Splits a line into tokens on white space; `#` at the start or after white space ends the line;
 * `"…"` (JSON string syntax) quotes a token or the value after `=`; tokens keep their quotes
 * (unquote() removes them) so `name="a b"` stays one token.
 */
function tokenize(line: string, where: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '#') break;
    let token = '';
    while (i < line.length && line[i] !== ' ' && line[i] !== '\t') {
      if (line[i] === '"') {
        const end = closingQuote(line, i);
        if (end < 0) throw new TrustFileError(`${where}: an unterminated quote`, { code: 'TRUST_FILE_INVALID' });
        token += line.slice(i, end + 1);
        i = end + 1;
      } else {
        token += line[i];
        i++;
      }
    }
    tokens.push(token);
  }
  return tokens;
}

function closingQuote(line: string, start: number): number {
  for (let j = start + 1; j < line.length; j++) {
    if (line[j] === '\\') j++;
    else if (line[j] === '"') return j;
  }
  return -1;
}

function unquote(s: string, where: string): string {
  if (!s.startsWith('"')) return s;
  try {
    const v: unknown = JSON.parse(s);
    if (typeof v === 'string') return v;
  } catch {
    // reported below
  }
  throw new TrustFileError(`${where}: ${s} is not a valid quoted value`, { code: 'TRUST_FILE_INVALID' });
}

function quoteToken(s: string): string {
  return /^[^\s"#,]+$/.test(s) ? s : JSON.stringify(s);
}

/** An identity as a trust file can name it: no white space, quotes, `#` or commas. */
export function isIdentityName(s: string): boolean {
  return /^[^\s"#,]+$/.test(s);
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/**
 * The trust file in effect: `explicit` (a --trust flag), else `$COMMS_TRUST`, else the default
 * file when it exists. A file named explicitly must exist; the default one may be absent
 * (undefined is returned).
 */
export async function findTrustFile(options: { explicit?: string | undefined; env?: NodeJS.ProcessEnv } = {}): Promise<TrustFile | undefined> {
  const env = options.env ?? process.env;
  const named = options.explicit ?? (env['COMMS_TRUST'] || undefined);
  if (named !== undefined) return loadTrustFile(named);
  try {
    return await loadTrustFile(defaultTrustFilePath(env));
  } catch (err) {
    if (err instanceof TrustFileError && err.code === 'TRUST_FILE_MISSING') return undefined;
    throw err;
  }
}
