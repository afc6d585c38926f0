import { UsageError } from '../errors.ts';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
};

/** `104857600`, `64MiB`, `64M`, `1.5GiB` → bytes; anything else is a UsageError naming the flag. */
export function parseSize(flag: string, value: string | number): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(String(value));
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UsageError(`${flag}: ${JSON.stringify(value)} is not a size (e.g. 104857600, 64MiB)`);
  const n = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${flag}: ${JSON.stringify(value)} must be at least 1 byte`);
  return n;
}

/** RFC 3339 timestamp, or a duration back from now (`30m`, `2h`, `7d`). */
export function parseSince(value: string, now = new Date()): Date {
  const d = /^(\d+)([smhd])$/.exec(value);
  if (d) {
    const mult = { s: 1, m: 60, h: 3600, d: 86400 }[d[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(now.getTime() - Number(d[1]) * mult * 1000);
  }
  if (!/^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2}))?$/.test(value) || Number.isNaN(Date.parse(value))) {
    throw new UsageError(`--since: ${JSON.stringify(value)} is neither an RFC 3339 time (2026-11-22T10:00:00Z) nor a duration (30m, 2h, 7d)`);
  }
  return new Date(value);
}

/** `500ms`, `5s`, `2m`, `1h`, or plain seconds → milliseconds. */
export function parseDuration(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new UsageError(`${flag}: ${JSON.stringify(value)} is not a duration (e.g. 500ms, 5s, 2m)`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  const ms = Math.round(Number(m[1]) * mult);
  if (ms < 1) throw new UsageError(`${flag}: must be more than 0`);
  return ms;
}

/** A time to live: `90s`, `30m`, `1h`, `7d`, `2w`, or plain seconds → whole seconds (0 allowed). */
export function parseTtl(flag: string, value: string): number {
  const m = /^(\d{1,12})(s|m|h|d|w)?$/.exec(value.trim());
  if (!m) throw new UsageError(`${flag}: ${JSON.stringify(value)} is not a time to live (e.g. 3600, 90s, 30m, 1h, 7d, 2w)`);
  const mult = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd' | 'w'];
  return Number(m[1]) * mult;
}

/** A count flag (`--parallel`, `--max`): a positive integer, else a UsageError naming the flag. */
export function parsePositiveInt(flag: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`${flag} must be a positive integer, got ${value}`);
  return value;
}
