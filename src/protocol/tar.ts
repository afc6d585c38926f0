/**
 * The one-entry tar inside every chunk layer. Writing: a USTAR header byte-identical to what Go's
 * archive/tar writes for dockercomms v1.0's `tar.Header{Name, Mode: 0644, Size}` (uid/gid 0, mtime
 * 0, no user or group names), so the uncompressed layer is the same bytes in both tools. Reading:
 * a strict header parser for the chunk reader.
 */
import { ProtocolError } from '../errors.ts';

export const BLOCK = 512;
/** Two zero blocks end an archive; Go writes exactly these and no record padding. */
export const END_OF_ARCHIVE = new Uint8Array(2 * BLOCK);
/** Largest size the 11 octal digits of a USTAR size field hold; larger would need PAX headers. */
export const MAX_USTAR_SIZE = 0o77777777777;

export function chunkEntryName(index: number): string {
  return `chunk_${index}.bin`;
}

/** Zero bytes that pad `size` bytes of data to a whole block. */
export function paddingFor(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Go's formatOctal: leading zeros, leaving room for a terminating NUL. */
function writeOctal(block: Uint8Array, offset: number, width: number, value: number): void {
  const digits = value.toString(8).padStart(width - 1, '0');
  if (digits.length > width - 1) throw new RangeError(`${value} does not fit a ${width}-byte tar field`);
  for (let i = 0; i < digits.length; i++) block[offset + i] = digits.charCodeAt(i);
  block[offset + width - 1] = 0;
}

function writeString(block: Uint8Array, offset: number, width: number, s: string): void {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length > width) throw new RangeError(`${JSON.stringify(s)} does not fit a ${width}-byte tar field`);
  block.set(bytes, offset);
}

/** The 512-byte header of a regular file `name`, mode 0644, as Go's archive/tar writes it. */
export function encodeTarHeader(name: string, size: number): Buffer {
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_USTAR_SIZE) throw new RangeError(`tar entry size ${size} is outside 0..${MAX_USTAR_SIZE}`);
  const b = Buffer.alloc(BLOCK);
  writeString(b, 0, 100, name);
  writeOctal(b, 100, 8, 0o644); // mode
  writeOctal(b, 108, 8, 0); // uid
  writeOctal(b, 116, 8, 0); // gid
  writeOctal(b, 124, 12, size);
  writeOctal(b, 136, 12, 0); // mtime: Go writes the Unix epoch for a zero ModTime
  b[156] = 0x30; // typeflag '0', regular file
  writeString(b, 257, 6, 'ustar\0');
  writeString(b, 263, 2, '00');
  writeOctal(b, 329, 8, 0); // devmajor
  writeOctal(b, 337, 8, 0); // devminor
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  writeOctal(b, 148, 7, sum);
  b[155] = 0x20;
  return b;
}

export interface TarHeader {
  name: string;
  typeflag: string;
  size: number;
  linkname: string;
  format: 'ustar' | 'gnu' | 'v7';
  /** The USTAR name prefix (empty for GNU and v7 headers). */
  prefix: string;
}

function headerError(message: string): ProtocolError {
  return new ProtocolError(message, { code: 'TAR_HEADER_INVALID' });
}

function cString(block: Uint8Array, offset: number, width: number): string {
  let end = offset;
  while (end < offset + width && block[end] !== 0) end++;
  return Buffer.from(block.subarray(offset, end)).toString('latin1');
}

/** A numeric field: octal (space/NUL padded) or GNU base-256 for large positive values. */
function parseNumber(block: Uint8Array, offset: number, width: number, field: string): number {
  const first = block[offset]!;
  if (first & 0x80) {
    if (first !== 0x80) throw headerError(`tar header ${field} is a negative base-256 number`);
    let v = 0;
    for (let i = 1; i < width; i++) {
      v = v * 256 + block[offset + i]!;
      if (!Number.isSafeInteger(v)) throw headerError(`tar header ${field} is too large`);
    }
    return v;
  }
  const text = Buffer.from(block.subarray(offset, offset + width))
    .toString('latin1')
    .replace(/^[ \0]+/, '')
    .replace(/[ \0]+$/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw headerError(`tar header ${field} is not an octal number: ${JSON.stringify(text)}`);
  const v = parseInt(text, 8);
  if (!Number.isSafeInteger(v)) throw headerError(`tar header ${field} is too large`);
  return v;
}

export function isZeroBlock(block: Uint8Array): boolean {
  for (const byte of block) if (byte !== 0) return false;
  return true;
}

/** Parses and checksums one header block; throws ProtocolError(TAR_HEADER_INVALID) when malformed. */
export function parseTarHeader(block: Uint8Array): TarHeader {
  if (block.length !== BLOCK) throw headerError('short tar header');
  const stored = parseNumber(block, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  if (stored !== unsigned && stored !== signed) throw headerError('tar header checksum mismatch');
  const magic = Buffer.from(block.subarray(257, 265)).toString('latin1');
  const format = magic === 'ustar\u000000' ? 'ustar' : magic === 'ustar  \u0000' ? 'gnu' : 'v7';
  if (format === 'v7' && !isZeroBlock(block.subarray(257, 265))) throw headerError(`unknown tar header magic ${JSON.stringify(magic)}`);
  return {
    name: cString(block, 0, 100),
    typeflag: String.fromCharCode(block[156]!),
    size: parseNumber(block, 124, 12, 'size'),
    linkname: cString(block, 157, 100),
    format,
    prefix: format === 'ustar' ? cString(block, 345, 155) : '',
  };
}
