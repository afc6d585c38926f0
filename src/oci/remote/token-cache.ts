/**
 * Bearer tokens cached per key (registry + canonical scope set) until they expire, minus a
 * margin so a token is never sent in its last seconds. Concurrent requests needing the same
 * token share one fetch: N parallel operations cost one token request per scope.
 */

export interface IssuedToken {
  token: string;
  /** Lifetime the issuer granted, in seconds. */
  expiresIn: number;
}

interface Entry {
  pending?: Promise<string>;
  token?: string;
  expiresAt: number;
}

/** Tokens are dropped this long before the issuer's expiry (or at half-life for short ones). */
export const EXPIRY_MARGIN_MS = 10_000;

export class TokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** A token still valid for `key`, without fetching. */
  peek(key: string): string | undefined {
    const e = this.entries.get(key);
    if (e?.token === undefined) return undefined;
    if (this.now() >= e.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    return e.token;
  }

  /** The cached token for `key`, or the result of `fetch` (shared by concurrent callers). */
  async get(key: string, fetch: () => Promise<IssuedToken>): Promise<string> {
    const valid = this.peek(key);
    if (valid !== undefined) return valid;
    const existing = this.entries.get(key);
    if (existing?.pending !== undefined) return existing.pending;
    const entry: Entry = { expiresAt: 0 };
    entry.pending = fetch().then(
      (issued) => {
        const life = issued.expiresIn * 1000;
        entry.token = issued.token;
        entry.expiresAt = this.now() + Math.max(life - EXPIRY_MARGIN_MS, life / 2);
        delete entry.pending;
        return issued.token;
      },
      (err: unknown) => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
        throw err;
      },
    );
    this.entries.set(key, entry);
    return entry.pending;
  }

  /** Stores an already issued token under another key (the scopes a request asked for). */
  alias(key: string, fromKey: string): void {
    const from = this.entries.get(fromKey);
    if (from?.token !== undefined && key !== fromKey) this.entries.set(key, { token: from.token, expiresAt: from.expiresAt });
  }

  /** Forgets `token` under `key` (the registry refused it), unless a newer one replaced it. */
  invalidate(key: string, token: string): void {
    if (this.entries.get(key)?.token === token) this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
