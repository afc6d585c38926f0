/**
 * `WWW-Authenticate` parsing (RFC 7235 §4.1, RFC 9110 §11.6.1) and token-scope strings
 * (distribution token spec). Registries answer 401 with e.g.
 * `Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull"`.
 */
import { ProtocolError, UsageError } from '../../errors.ts';
import { validateRepositoryName } from '../reference.ts';

export interface Challenge {
  /** The auth scheme, lowercased: 'basic', 'bearer', … */
  scheme: string;
  /** auth-params with lowercased names; values unquoted and unescaped. First occurrence wins. */
  params: Record<string, string>;
  /** The token68 form (`Negotiate abc==`), when the challenge carries one instead of params. */
  token68?: string;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*/y;
/** A lenient unquoted value: servers in the wild send `realm=https://…` without quotes. */
const LOOSE_VALUE = /[^\s,"]+/y;
const MAX_HEADER_LENGTH = 16 * 1024;

class Cursor {
  readonly s: string;
  pos = 0;
  constructor(s: string) {
    this.s = s;
  }
  get done(): boolean {
    return this.pos >= this.s.length;
  }
  get ch(): string {
    return this.s[this.pos] ?? '';
  }
  /** Skips optional whitespace; returns how many characters it skipped. */
  ows(): number {
    const start = this.pos;
    while (this.ch === ' ' || this.ch === '\t') this.pos++;
    return this.pos - start;
  }
  token(): string {
    const start = this.pos;
    while (!this.done && TCHAR.test(this.ch)) this.pos++;
    return this.s.slice(start, this.pos);
  }
  sticky(re: RegExp): string | undefined {
    re.lastIndex = this.pos;
    const m = re.exec(this.s);
    return m?.[0];
  }
}

function malformed(header: string, why: string, pos: number): never {
  const shown = header.length > 200 ? `${header.slice(0, 200)}…` : header;
  throw new ProtocolError(`malformed WWW-Authenticate header ${JSON.stringify(shown)}: ${why} at position ${pos}`, {
    code: 'INVALID_CHALLENGE',
  });
}

/** Whether the cursor is at `token BWS "=" BWS <value start>`, i.e. an auth-param rather than token68. */
function atParam(c: Cursor): boolean {
  const save = c.pos;
  try {
    if (c.token() === '') return false;
    c.ows();
    if (c.ch !== '=') return false;
    c.pos++;
    c.ows();
    // `abc==` and `abc=` (end or ',') are token68 padding, not a param with a value.
    return !c.done && c.ch !== '=' && c.ch !== ',';
  } finally {
    c.pos = save;
  }
}

function quotedString(c: Cursor, header: string): string {
  const start = c.pos;
  c.pos++; // opening quote
  let out = '';
  for (;;) {
    if (c.done) malformed(header, 'unterminated quoted string', start);
    const ch = c.ch;
    if (ch === '"') {
      c.pos++;
      return out;
    }
    if (ch === '\\') {
      c.pos++;
      if (c.done) malformed(header, 'unterminated quoted string', start);
    }
    out += c.ch;
    c.pos++;
  }
}

/**
 * Parses every challenge in a `WWW-Authenticate` value (several challenges may share one
 * header; repeated headers can be joined with ', '). Throws ProtocolError on bad syntax.
 */
export function parseWWWAuthenticate(header: string): Challenge[] {
  if (typeof header !== 'string') return [];
  if (header.length > MAX_HEADER_LENGTH) {
    throw new ProtocolError(`WWW-Authenticate header longer than ${MAX_HEADER_LENGTH} characters`, { code: 'INVALID_CHALLENGE' });
  }
  const c = new Cursor(header);
  const challenges: Challenge[] = [];
  const skipSeparators = (): void => {
    while (c.ch === ',' || c.ch === ' ' || c.ch === '\t') c.pos++;
  };

  skipSeparators();
  while (!c.done) {
    const schemeAt = c.pos;
    const scheme = c.token();
    if (scheme === '') malformed(header, `expected an auth scheme, found ${JSON.stringify(c.ch)}`, schemeAt);
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);

    const spaces = c.ows();
    if (c.done) break;
    if (c.ch === ',') {
      skipSeparators();
      continue;
    }
    if (spaces === 0) malformed(header, 'expected a space after the auth scheme', c.pos);

    if (!atParam(c)) {
      const t68At = c.pos;
      const t68 = c.sticky(TOKEN68);
      if (t68 === undefined) malformed(header, 'expected auth-params or a token68', t68At);
      c.pos += t68.length;
      c.ows();
      if (!c.done && c.ch !== ',') malformed(header, "expected ',' after the token68", c.pos);
      challenge.token68 = t68;
      skipSeparators();
      continue;
    }

    // auth-params, until the next item is not `name=` (then it starts a new challenge).
    for (;;) {
      const name = c.token().toLowerCase();
      c.ows();
      c.pos++; // '=' (guaranteed by atParam)
      c.ows();
      let value: string;
      if (c.ch === '"') {
        value = quotedString(c, header);
      } else {
        const v = c.sticky(LOOSE_VALUE);
        if (v === undefined) malformed(header, `expected a value for ${JSON.stringify(name)}`, c.pos);
        value = v;
        c.pos += v.length;
      }
      // defineProperty, not assignment: a param named `__proto__` must stay a plain key.
      if (!Object.hasOwn(challenge.params, name)) {
        Object.defineProperty(challenge.params, name, { value, enumerable: true, writable: true, configurable: true });
      }
      c.ows();
      if (c.done) break;
      if (c.ch !== ',') malformed(header, "expected ',' between auth-params", c.pos);
      skipSeparators();
      if (c.done || !atParam(c)) break;
    }
  }
  return challenges;
}

export type ScopeAction = 'pull' | 'push' | 'delete';
const ACTION_ORDER: readonly ScopeAction[] = ['pull', 'push', 'delete'];

/**
 * The token scope `repository:<name>:<actions>`, actions de-duplicated in the fixed order
 * pull, push, delete so equal scopes compare equal (token caches key on them). The name is
 * validated so it can never smuggle ',' ':' or ' ' into the scope parameter.
 */
export function scopeFor(repository: string, actions: ScopeAction[]): string {
  validateRepositoryName(repository);
  for (const a of actions) {
    if (!ACTION_ORDER.includes(a)) throw new UsageError(`unknown scope action ${JSON.stringify(a)}`);
  }
  const wanted = ACTION_ORDER.filter((a) => actions.includes(a));
  if (wanted.length === 0) throw new UsageError(`a scope for ${repository} needs at least one action`);
  return `repository:${repository}:${wanted.join(',')}`;
}
