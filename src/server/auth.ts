/**
 * HTTP Basic authentication against an htpasswd file of bcrypt entries (what `htpasswd -B` and
 * distribution's htpasswd auth use). Apache's `$2y$` prefix is the same algorithm as `$2a$`.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { UsageError } from '../errors.ts';

export interface BasicAuthenticator {
  /** True when the `Authorization` header carries a user and password the file accepts. */
  check(authorization: string | undefined): Promise<boolean>;
}

const BCRYPT_RE = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;
/** Accepted credentials are remembered (as keyed hashes) so each request does not pay for bcrypt again. */
const MAX_CACHED = 256;

/** Parses htpasswd text: `user:hash` lines, blank lines and `#` comments ignored. */
export function parseHtpasswd(text: string, where = 'htpasswd'): Map<string, string> {
  const users = new Map<string, string>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new UsageError(`${where}:${i + 1}: expected user:hash`);
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (!BCRYPT_RE.test(hash)) {
      throw new UsageError(`${where}:${i + 1}: the entry for ${JSON.stringify(user)} is not a bcrypt hash (create it with htpasswd -B)`);
    }
    users.set(user, hash.startsWith('$2y$') ? `$2a$${hash.slice(4)}` : hash);
  });
  if (users.size === 0) throw new UsageError(`${where} has no users`);
  return users;
}

/**
 * A hash to compare against for a user name the file does not have, so that a miss costs as long
 * as a known user's wrong password and the timing does not tell which names exist. Its bcrypt
 * cost is the one most of the file's entries use (the highest of those when tied).
 */
export function dummyHashFor(users: Map<string, string>): string {
  const counts = new Map<number, number>();
  for (const hash of users.values()) {
    const cost = bcrypt.getRounds(hash);
    counts.set(cost, (counts.get(cost) ?? 0) + 1);
  }
  let best = 10;
  let bestCount = 0;
  for (const [cost, count] of counts) {
    if (count > bestCount || (count === bestCount && cost > best)) {
      best = cost;
      bestCount = count;
    }
  }
  return bcrypt.hashSync(randomBytes(16).toString('hex'), best);
}

export function basicAuthenticator(users: Map<string, string>): BasicAuthenticator {
  const key = randomBytes(32);
  const dummyHash = dummyHashFor(users);
  const accepted = new Set<string>();
  return {
    async check(authorization) {
      if (authorization === undefined) return false;
      const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
      if (m === null) return false;
      const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return false;
      const user = decoded.slice(0, colon);
      const password = decoded.slice(colon + 1);
      const fingerprint = createHmac('sha256', key).update(decoded).digest('hex');
      if (accepted.has(fingerprint)) return true;
      const hash = users.get(user);
      const ok = await bcrypt.compare(password, hash ?? dummyHash);
      if (!ok || hash === undefined) return false;
      if (accepted.size >= MAX_CACHED) accepted.clear();
      accepted.add(fingerprint);
      return true;
    },
  };
}

export async function loadHtpasswd(path: string): Promise<BasicAuthenticator> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the htpasswd file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return basicAuthenticator(parseHtpasswd(text, path));
}
