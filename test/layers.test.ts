// The layers point one way: src/runtime/ imports nothing above it (not even
// src/quant/'s format descriptors), src/quant/ nothing from the kernels or
// above, and src/kernels/ nothing from src/ops/ or above (type-only imports
// included: a type from above is still a dependency on what is above). And no
// module reaches itself again through value imports: an import cycle makes the
// order modules initialise in depend on which one a program loads first.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

interface Edge {
  target: string;
  typeOnly: boolean;
}

// Static `import ... from`, `export ... from`, side-effect `import '...'` and dynamic `import('...')`.
const STATIC = /^\s*(import|export)\s+(type\s+)?([^;]*?)\s*from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gms;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The modules under src/ that `file` imports, with whether the import is for types only. */
function importsOf(file: string, text = readFileSync(file, 'utf8')): Edge[] {
  const edges: Edge[] = [];
  const add = (spec: string, typeOnly: boolean) => {
    if (!spec.startsWith('.')) return;
    edges.push({ target: resolve(dirname(file), spec.replace(/\.js$/, '.ts')), typeOnly });
  };
  for (const m of text.matchAll(STATIC)) {
    const spec = m[4] ?? m[5];
    const clause = (m[3] ?? '').trim();
    const names = clause.startsWith('{') ? clause.slice(1, -1).split(',').map((n) => n.trim()).filter(Boolean) : [];
    add(spec, Boolean(m[2]) || (names.length > 0 && names.every((n) => n.startsWith('type '))));
  }
  for (const m of text.matchAll(DYNAMIC)) add(m[1], false);
  return edges;
}

const files = tsFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const layer = (path: string) => relative(SRC, path).split(/[\\/]/)[0];

describe('layers', () => {
  test('the import scanner sees value, type-only, side-effect and dynamic imports', () => {
    const edges = importsOf(
      join(SRC, 'runtime', 'x.ts'),
      [
        "import { a } from '../ops/a.js';",
        "import type { B } from '../kernels/b.js';",
        "import { type C, type D } from './c.js';",
        "import {\n  e,\n  type F,\n} from './e.js';",
        "import './side.js';",
        "export { g } from '../ops/g.js';",
        "const h = await import('../kernels/h.js');",
      ].join('\n'),
    );
    expect(edges.map((e) => [relative(SRC, e.target), e.typeOnly])).toEqual([
      ['ops/a.ts', false],
      ['kernels/b.ts', true],
      ['runtime/c.ts', true],
      ['runtime/e.ts', false],
      ['runtime/side.ts', false],
      ['ops/g.ts', false],
      ['kernels/h.ts', false],
    ]);
  });

  // Each layer and what it must not import: everything above it in the data flow.
  const ABOVE_KERNELS = ['ops', 'io', 'convert', 'model', 'lora', 'cli'];
  const rules: [string, string[]][] = [
    ['runtime', ['quant', 'kernels', ...ABOVE_KERNELS]],
    ['quant', ['kernels', ...ABOVE_KERNELS]],
    ['kernels', ABOVE_KERNELS],
  ];
  for (const [from, forbidden] of rules) {
    test(`src/${from}/ imports nothing from ${forbidden.map((f) => `src/${f}/`).join(' or ')}`, () => {
      const bad: string[] = [];
      for (const [file, edges] of graph) {
        if (layer(file) !== from) continue;
        for (const e of edges) {
          if (forbidden.includes(layer(e.target))) bad.push(`${relative(ROOT, file)} -> ${relative(ROOT, e.target)}`);
        }
      }
      expect(bad).toEqual([]);
    });
  }

  test('no import cycle through value imports', () => {
    // Tarjan's strongly connected components over value edges.
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const cycles: string[][] = [];
    let next = 0;
    const visit = (v: string) => {
      index.set(v, next);
      low.set(v, next++);
      stack.push(v);
      onStack.add(v);
      for (const { target, typeOnly } of graph.get(v) ?? []) {
        if (typeOnly || !graph.has(target)) continue;
        if (!index.has(target)) {
          visit(target);
          low.set(v, Math.min(low.get(v)!, low.get(target)!));
        } else if (onStack.has(target)) {
          low.set(v, Math.min(low.get(v)!, index.get(target)!));
        }
      }
      if (low.get(v) === index.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(relative(ROOT, w));
        } while (w !== v);
        if (component.length > 1) cycles.push(component.sort());
      }
    };
    for (const f of files) if (!index.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });
});
