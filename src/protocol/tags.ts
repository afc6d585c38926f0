/**
 * The v1.0 tag schema: inbox, receipt and bundle tags, the recipient token, and their parsers.
 * Pure string functions; the only randomness (rand6) comes from node:crypto.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ProtocolError, UsageError } from '../errors.ts';
import { parseDigest } from '../oci/digest.ts';
import { TagPrefix } from './constants.ts';

/** The OCI distribution tag grammar. */
export const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function isValidTag(tag: string): boolean {
  return typeof tag === 'string' && TAG_RE.test(tag);
}

const BASE32HEX = '0123456789abcdefghijklmnopqrstuv';

/** RFC 4648 base32hex, lowercase, without padding. */
function base32hexLower(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32HEX[(buffer >>> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32HEX[(buffer << (5 - bits)) & 31];
  return out;
}

/** lowercase(base32hex-no-padding(sha256(utf8(id))))[:26], the recipient's token in inbox tags. */
export function recipientTag(id: string): string {
  return base32hexLower(createHash('sha256').update(id, 'utf8').digest()).slice(0, 26);
}

/** Every inbox tag for `recipient` starts with this. */
export function inboxPrefix(recipient: string): string {
  return `${TagPrefix.Inbox}${recipientTag(recipient)}-`;
}

/** YYYYMMDD of the UTC date. */
export function utcDate8(date: Date): string {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw new UsageError('invalid date for an inbox tag');
  const y = String(date.getUTCFullYear()).padStart(4, '0');
  const m = String(date.getUTCMonth() + 1).padStart(2, '0');
  const d = String(date.getUTCDate()).padStart(2, '0');
  return `${y}${m}${d}`;
}

const ID8_RE = /^[A-Za-z0-9_.]{1,8}$/;

/** v1.0's truncateUUID: dashes removed, the first 8 characters. */
export function id8(id: string): string {
  return id.replaceAll('-', '').slice(0, 8);
}

function checkedId8(what: string, id: string): string {
  const short = id8(id);
  if (!ID8_RE.test(short)) {
    throw new UsageError(`${what} ${JSON.stringify(id)} cannot be used in a tag: its first 8 characters (dashes removed) must be letters, digits, '_' or '.'`);
  }
  return short;
}

export interface InboxTagInput {
  recipient: string;
  /** The sending time; its UTC date goes into the tag. */
  date: Date;
  sessionId: string;
  messageId: string;
}

/** `inbox-<recipient_tag>-<YYYYMMDD>-<sid8>-<mid8>` */
export function inboxTag(input: InboxTagInput): string {
  const sid8 = checkedId8('session id', input.sessionId);
  const mid8 = checkedId8('message id', input.messageId);
  return `${inboxPrefix(input.recipient)}${utcDate8(input.date)}-${sid8}-${mid8}`;
}

export interface ParsedInboxTag {
  recipientTag: string;
  /** UTC midnight of the tag's date. */
  date: Date;
  sid8: string;
  mid8: string;
}

const INBOX_TAG_RE = /^inbox-([0-9a-v]{26})-(\d{4})(\d{2})(\d{2})-([A-Za-z0-9_.]{1,8})-([A-Za-z0-9_.]{1,8})$/;

/** Parses an inbox tag; undefined for anything that is not one (including impossible dates). */
export function parseInboxTag(tag: string): ParsedInboxTag | undefined {
  const m = INBOX_TAG_RE.exec(tag);
  if (m === null) return undefined;
  const [, rt, ys, ms, ds, sid8, mid8] = m as unknown as [string, string, string, string, string, string, string];
  const y = Number(ys);
  const mo = Number(ms);
  const d = Number(ds);
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return undefined;
  return { recipientTag: rt, date, sid8, mid8 };
}

/** The first 12 hex characters of a manifest digest (v1.0's HexDigest12). */
export function hex12(digest: string): string {
  return parseDigest(digest).hex.slice(0, 12);
}

const RAND6_RE = /^[0-9a-f]{6}$/;

function rand6OrNew(rand6: string | undefined): string {
  if (rand6 === undefined) return randomBytes(3).toString('hex');
  if (!RAND6_RE.test(rand6)) throw new ProtocolError(`rand6 must be 6 lowercase hex characters, got ${JSON.stringify(rand6)}`, { code: 'INVALID_TAG' });
  return rand6;
}

function unixSeconds(now: Date): number {
  const t = now.getTime();
  if (Number.isNaN(t)) throw new UsageError('invalid date for a tag');
  return Math.floor(t / 1000);
}

/** `receipt-<hex12>-<unix seconds>-<rand6>` */
export function receiptTag(messageDigest: string, now: Date, rand6?: string): string {
  return `${receiptTagPrefix(messageDigest)}${unixSeconds(now)}-${rand6OrNew(rand6)}`;
}

/** `bundle-<hex12>-<unix seconds>-<rand6>` */
export function bundleTag(messageDigest: string, now: Date, rand6?: string): string {
  return `${bundleTagPrefix(messageDigest)}${unixSeconds(now)}-${rand6OrNew(rand6)}`;
}

/** `reply-<hex12>-<unix seconds>-<rand6>`: a reply's own tag naming the message it answers [comms extension]. */
export function replyTag(messageDigest: string, now: Date, rand6?: string): string {
  return `${replyTagPrefix(messageDigest)}${unixSeconds(now)}-${rand6OrNew(rand6)}`;
}

/** Every reply tag for the message starts with this. */
export function replyTagPrefix(messageDigest: string): string {
  return `${TagPrefix.Reply}${hex12(messageDigest)}-`;
}

/** Every receipt tag for the message starts with this. */
export function receiptTagPrefix(messageDigest: string): string {
  return `${TagPrefix.Receipt}${hex12(messageDigest)}-`;
}

/** Every bundle tag for the message starts with this. */
export function bundleTagPrefix(messageDigest: string): string {
  return `${TagPrefix.Bundle}${hex12(messageDigest)}-`;
}

export interface ParsedArtifactTag {
  kind: 'receipt' | 'bundle' | 'reply';
  hex12: string;
  unixSeconds: number;
  rand6: string;
}

// v1.0's rand6 is hex from a UUID; accept any 6 tag characters so a foreign writer still parses.
const ARTIFACT_TAG_RE = /^(receipt|bundle|reply)-([0-9a-f]{12})-(0|[1-9][0-9]{0,15})-([A-Za-z0-9_.]{6})$/;

/** Parses a receipt, bundle or reply tag; undefined for anything else. */
export function parseArtifactTag(tag: string): ParsedArtifactTag | undefined {
  const m = ARTIFACT_TAG_RE.exec(tag);
  if (m === null) return undefined;
  const [, kind, h12, secs, r6] = m as unknown as [string, ParsedArtifactTag['kind'], string, string, string];
  const n = Number(secs);
  if (!Number.isSafeInteger(n)) return undefined;
  return { kind, hex12: h12, unixSeconds: n, rand6: r6 };
}
