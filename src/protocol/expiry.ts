/**
 * When an artifact expires: `dockercomms.created_at + dockercomms.ttl_seconds`, plus the same
 * 5 minutes of clock-skew allowance v1.0 gives `--since` (a sender whose clock runs behind does
 * not see its message vanish early). Pure functions over dates and annotations.
 */
import { Annotation } from './constants.ts';

/** v1.0's clock-skew allowance, used for --since and for expiry. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

/** True when `expiresAt` (created_at + ttl_seconds) lies more than the skew allowance before `now`. */
export function isExpiredAt(expiresAt: Date, now: Date = new Date()): boolean {
  return now.getTime() > expiresAt.getTime() + CLOCK_SKEW_MS;
}

/** created_at + ttl_seconds from an artifact's annotations; undefined when either is missing or malformed. */
export function expiresAtOf(annotations: Record<string, string> | undefined): Date | undefined {
  const created = annotations?.[Annotation.CreatedAt];
  const ttl = annotations?.[Annotation.TtlSeconds];
  if (created === undefined || ttl === undefined || !/^(0|[1-9][0-9]{0,15})$/.test(ttl)) return undefined;
  const t = Date.parse(created);
  if (Number.isNaN(t)) return undefined;
  return new Date(t + Number(ttl) * 1000);
}

/** Whether the artifact these annotations describe has expired; one that does not say is not. */
export function annotationsExpired(annotations: Record<string, string> | undefined, now: Date = new Date()): boolean {
  const at = expiresAtOf(annotations);
  return at !== undefined && isExpiredAt(at, now);
}
