/**
 * Names the first command-line option that no command defines, with the closest known one as a
 * suggestion (`--recipent` → `--recipient`). yargs validates required options before unknown
 * ones, so without this a typo reads as "missing required argument".
 */
import type { Argv } from 'yargs';

interface OptionTable {
  key: Record<string, unknown>;
  alias: Record<string, string[]>;
  boolean: string[];
}

export function unknownOptions(argv: string[], y: Argv): string | undefined {
  const table = (y as unknown as { getOptions(): OptionTable }).getOptions();
  const known = new Set<string>(['help', 'h', 'version']);
  for (const k of Object.keys(table.key)) known.add(k);
  for (const [k, aliases] of Object.entries(table.alias)) {
    known.add(k);
    for (const a of aliases) known.add(a);
  }
  const longNames = [...known].filter((k) => k.length > 1 && !/[A-Z]/.test(k));
  for (const token of argv) {
    if (token === '--') break;
    let name: string;
    if (token.startsWith('--')) {
      name = token.slice(2).split('=')[0]!;
      if (name === '') continue;
      if (name.startsWith('no-') && !known.has(name) && known.has(name.slice(3))) continue;
      if (known.has(name) || known.has(camel(name))) continue;
      const near = closest(name, longNames);
      return `unknown option --${name}${near ? ` (did you mean --${near}?)` : ''}`;
    }
    if (token.startsWith('-') && token.length > 1 && !/^-\d/.test(token)) {
      for (const ch of token.slice(1).split('=')[0]!) {
        if (!known.has(ch)) return `unknown option -${ch}`;
      }
    }
  }
  return undefined;
}

function camel(s: string): string {
  return s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The known name within a small edit distance of `name`, if there is one. */
export function closest(name: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const c of candidates) {
    const d = distance(name, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
