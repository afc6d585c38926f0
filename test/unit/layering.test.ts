/**
 * The layers of src/ import only downward — errors (beside it the leaf modules version and node-check) → util → oci → protocol/trust/server → comms →
 * index → cli — and no module imports itself back through a chain of imports (type-only imports
 * count: they couple the modules as much). The walk reads each file's import and export specifiers;
 * package imports are outside the graph.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';

const SRC = resolve(import.meta.dirname, '..', '..', 'src');

/** Rank of each layer; a module may import from its own rank or a lower one. */
const RANK: Record<string, number> = { errors: 0, version: 0, 'node-check': 0, util: 1, oci: 2, protocol: 3, trust: 3, server: 3, comms: 4, index: 5, cli: 6 };

/** The layer a path under src/ belongs to: its first folder, or the file name without `.ts` at the top. */
export function layerOf(file: string): string {
  const first = file.split('/')[0] ?? '';
  const layer = first.endsWith('.ts') ? first.slice(0, -3) : first;
  if (RANK[layer] === undefined) throw new Error(`${file}: not in a known layer (${Object.keys(RANK).join(', ')})`);
  return layer;
}

/** Relative specifiers of `import … from`, `export … from`, `import '…'` and `import('…')`, comments removed. */
export function importsOf(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const specs: string[] = [];
  for (const re of [/\b(?:import|export)\s[^'";]*?\sfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g]) {
    for (const m of code.matchAll(re)) if (m[1]?.startsWith('.')) specs.push(m[1]);
  }
  return specs;
}

/** The import graph of the files (paths relative to src/, with `/`), from their sources. */
export function graphOf(files: Map<string, string>): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const [file, source] of files) {
    graph.set(
      file,
      importsOf(source).map((spec) => join(dirname(file), spec).split(sep).join('/')),
    );
  }
  return graph;
}

/** Every import that goes from a lower layer to a higher one, as `from -> to`. */
export function upwardImports(graph: Map<string, string[]>): string[] {
  const bad: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) if (RANK[layerOf(to)]! > RANK[layerOf(from)]!) bad.push(`${from} -> ${to}`);
  }
  return bad;
}

/** One cycle of the graph as `a -> b -> … -> a`, or undefined when there is none. */
export function findCycle(graph: Map<string, string[]>): string | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string): string | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'open') return [...path.slice(path.indexOf(node)), node].join(' -> ');
    state.set(node, 'open');
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      const found = visit(next);
      if (found !== undefined) return found;
    }
    path.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const found = visit(node);
    if (found !== undefined) return found;
  }
  return undefined;
}

function sourcesUnder(root: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const abs = join(entry.parentPath, entry.name);
    files.set(relative(root, abs).split(sep).join('/'), readFileSync(abs, 'utf8'));
  }
  return files;
}

describe('the layering of src/', () => {
  const graph = graphOf(sourcesUnder(SRC));

  it('resolves every relative import to a file of src/', () => {
    const missing = [...graph].flatMap(([from, targets]) => targets.filter((to) => !graph.has(to)).map((to) => `${from} -> ${to}`));
    assert.deepEqual(missing, []);
  });

  it('has no import from a lower layer to a higher one', () => {
    assert.deepEqual(upwardImports(graph), []);
  });

  it('has no import cycle', () => {
    assert.equal(findCycle(graph), undefined);
  });
});

describe('the layering check itself', () => {
  it('reads static, type-only, re-export, side-effect and dynamic imports, and skips commented ones', () => {
    const source = [
      "import { a } from './a.ts';",
      "import type {\n  B,\n} from '../b.ts';",
      "export * from './c.ts';",
      "export { d } from './d.ts';",
      "import './e.ts';",
      "const f = await import('./f.ts');",
      "import yargs from 'yargs';",
      "// import { g } from './g.ts';",
      "/* import { h } from './h.ts'; */",
    ].join('\n');
    assert.deepEqual(importsOf(source).sort(), ['../b.ts', './a.ts', './c.ts', './d.ts', './e.ts', './f.ts']);
  });

  it('reports an import from oci up to comms, and none from comms down to oci', () => {
    const graph = graphOf(
      new Map([
        ['oci/x.ts', "import { y } from '../comms/y.ts';"],
        ['comms/y.ts', "import { e } from '../errors.ts';"],
        ['errors.ts', ''],
      ]),
    );
    assert.deepEqual(upwardImports(graph), ['oci/x.ts -> comms/y.ts']);
    const down = graphOf(
      new Map([
        ['comms/y.ts', "import { x } from '../oci/x.ts';"],
        ['oci/x.ts', ''],
      ]),
    );
    assert.deepEqual(upwardImports(down), []);
  });

  it('finds a cycle through three modules of one layer', () => {
    const graph = graphOf(
      new Map([
        ['oci/a.ts', "import './b.ts';"],
        ['oci/b.ts', "import './c.ts';"],
        ['oci/c.ts', "import './a.ts';"],
        ['oci/d.ts', "import './a.ts';"],
      ]),
    );
    assert.equal(findCycle(graph), 'oci/a.ts -> oci/b.ts -> oci/c.ts -> oci/a.ts');
    assert.equal(
      findCycle(
        graphOf(
          new Map([
            ['oci/a.ts', "import './b.ts';"],
            ['oci/b.ts', ''],
          ]),
        ),
      ),
      undefined,
    );
  });
});
