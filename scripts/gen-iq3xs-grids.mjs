#!/usr/bin/env node
// Generates src/quant/grids/iq3xs-data.ts: the tables of ggml's iq3xs_init_impl
// for its two grid sizes (256: IQ3_XXS, 512: IQ3_S), which the CPU references
// (src/quant/formats/iq3_xxs.ts, iq3_s.ts, through src/quant/grids/iq3xs.ts) and
// the WGSL kernels (a static storage buffer) share.
//
// The grids come from the llama.cpp source that node-llama-cpp ships (its git
// bundle): iq3xxs_grid / iq3s_grid in ggml/src/ggml-common.h (the dequantization
// grids; each byte of a point is one of 8 levels), checked against the kgrid_256 /
// kgrid_512 lists of ggml-quants.c (the same points as 3-bit level triples). kmap
// and the neighbour lists are computed here, as iq3xs_init_impl defines them:
//   - kmap[u] for each of the 4096 level quadruples u (3 bits each): the index of
//     the grid point with those levels, or -(offset + 1) for a point off the grid,
//     where neighbours[offset] is the count n and neighbours[offset + 1 .. + n]
//     the grid indices nearest to it (squared distance over the odd values 2l + 1)
//     in the first nwant distinct distances (2 for 256, 3 for 512), ordered by
//     (distance, index), as ggml's qsort with its total comparison orders them.
//
// Usage: node scripts/gen-iq3xs-grids.mjs [--src DIR] [--out FILE]
//   DIR: a llama.cpp checkout (default: read from node-llama-cpp's bundle);
//   FILE: where to write (default src/quant/grids/iq3xs-data.ts).
// test/quant-iq3.test.ts runs it and compares the output with the committed file.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BUNDLE = join(ROOT, 'node_modules', 'node-llama-cpp', 'llama', 'gitRelease.bundle');
const KMAP_SIZE = 4096;

/** The files' text and the commit they come from. */
function readSources(srcDir) {
  const files = ['ggml/src/ggml-common.h', 'ggml/src/ggml-quants.c'];
  if (srcDir) {
    const commit = execFileSync('git', ['-C', srcDir, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    return { commit, texts: files.map((f) => readFileSync(join(srcDir, f), 'utf8')) };
  }
  const git = mkdtempSync(join(tmpdir(), 'wgarray-llama-src-'));
  try {
    execFileSync('git', ['init', '-q', '--bare', git]);
    execFileSync('git', ['-C', git, 'fetch', '-q', BUNDLE, 'HEAD'], { stdio: ['ignore', 'ignore', 'inherit'] });
    const commit = execFileSync('git', ['-C', git, 'rev-parse', 'FETCH_HEAD'], { encoding: 'utf8' }).trim();
    const texts = files.map((f) => execFileSync('git', ['-C', git, 'show', `FETCH_HEAD:${f}`], { encoding: 'utf8', maxBuffer: 1 << 26 }));
    return { commit, texts };
  } finally {
    rmSync(git, { recursive: true, force: true });
  }
}

/** The numbers of C array `name` in `text` (between its `{` / TABLE_BEGIN and the closing `}` / TABLE_END). */
function cArray(text, name, size) {
  const begin = new RegExp(`GGML_TABLE_BEGIN\\(\\w+, ${name}, ${size}\\)|\\b${name}\\[${size}\\]\\s*=\\s*\\{`).exec(text);
  if (!begin) throw new Error(`gen-iq3xs-grids: no table ${name}[${size}] in the source`);
  const rest = text.slice(begin.index + begin[0].length);
  const end = rest.search(/GGML_TABLE_END|\}/);
  const values = rest.slice(0, end).match(/0x[0-9a-fA-F]+|\d+/g).map(Number);
  if (values.length !== size) throw new Error(`gen-iq3xs-grids: ${name} has ${values.length} values, expected ${size}`);
  return values;
}

/**
 * The tables of iq3xs_init_impl(gridSize) from the dequantization grid `deq`
 * (uint32 points, one byte per coordinate) and ggml-quants.c's kgrid list.
 */
function buildTables(gridSize, deq, kgrid) {
  const levels = [...new Set(deq.flatMap((p) => [0, 1, 2, 3].map((i) => (p >>> (8 * i)) & 255)))].sort((a, b) => a - b);
  if (levels.length !== 8) throw new Error(`gen-iq3xs-grids: grid ${gridSize} has ${levels.length} levels, expected 8`);
  // The quantizer's points: byte i = 2 l + 1 for the level index l of byte i.
  const grid = new Uint32Array(gridSize);
  const coords = new Int32Array(gridSize * 4);
  for (let k = 0; k < gridSize; k++) {
    let packed = 0;
    let index3 = 0;
    for (let i = 0; i < 4; i++) {
      const l = levels.indexOf((deq[k] >>> (8 * i)) & 255);
      coords[4 * k + i] = 2 * l + 1;
      packed |= (2 * l + 1) << (8 * i);
      index3 |= l << (3 * i);
    }
    if (index3 !== kgrid[k]) throw new Error(`gen-iq3xs-grids: grid ${gridSize} point ${k} is ${index3} here, ${kgrid[k]} in ggml-quants.c`);
    grid[k] = packed >>> 0;
  }
  const kmap = new Int32Array(KMAP_SIZE).fill(-1);
  for (let k = 0; k < gridSize; k++) kmap[kgrid[k]] = k;
  const nwant = gridSize === 256 ? 2 : 3;
  const neighbours = [];
  const order = Array.from({ length: gridSize }, (_, j) => j);
  const d2 = new Int32Array(gridSize);
  for (let u = 0; u < KMAP_SIZE; u++) {
    if (kmap[u] >= 0) continue;
    for (let j = 0; j < gridSize; j++) {
      let s = 0;
      for (let i = 0; i < 4; i++) {
        const diff = coords[4 * j + i] - (2 * ((u >> (3 * i)) & 7) + 1);
        s += diff * diff;
      }
      d2[j] = s;
    }
    order.sort((a, b) => d2[a] - d2[b] || a - b);
    const list = [];
    let distinct = 1;
    let last = d2[order[0]];
    for (const j of order) {
      if (d2[j] > last) {
        if (distinct === nwant) break;
        last = d2[j];
        distinct++;
      }
      list.push(j);
    }
    kmap[u] = -(neighbours.length + 1);
    neighbours.push(list.length, ...list);
  }
  return { grid, deq: Uint32Array.from(deq), kmap, neighbours: Uint16Array.from(neighbours) };
}

/**
 * One grid size's tables as the words of its GPU buffer (src/quant/grids/iq3xs.ts
 * names the parts): grid | dequantization grid | kmap | neighbours (two per word,
 * low half first; padded with a zero half).
 */
function tableWords(t) {
  const n = t.grid.length;
  const words = new Uint32Array(2 * n + KMAP_SIZE + Math.ceil(t.neighbours.length / 2));
  words.set(t.grid, 0);
  words.set(t.deq, n);
  words.set(new Uint32Array(t.kmap.buffer), 2 * n);
  new Uint16Array(words.buffer, (2 * n + KMAP_SIZE) * 4, t.neighbours.length).set(t.neighbours);
  return words;
}

function main() {
  const args = process.argv.slice(2);
  const opt = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const out = opt('--out') ?? join(ROOT, 'src', 'quant', 'grids', 'iq3xs-data.ts');
  const { commit, texts } = readSources(opt('--src'));
  const [common, quants] = texts;
  const lines = [
    '// Generated by scripts/gen-iq3xs-grids.mjs from llama.cpp ' + commit + ' (the source',
    "// node-llama-cpp ships): do not edit. The tables of ggml's iq3xs_init_impl per grid",
    '// size, as the little-endian words of one buffer each (layout: src/quant/grids/iq3xs.ts).',
    '',
  ];
  for (const [gridSize, name] of [
    [256, 'iq3xxs_grid'],
    [512, 'iq3s_grid'],
  ]) {
    const t = buildTables(gridSize, cArray(common, name, gridSize), cArray(quants, `kgrid_${gridSize}`, gridSize));
    const words = tableWords(t);
    const bytes = Buffer.from(words.buffer);
    lines.push(
      `/** Grid ${gridSize}: ${t.neighbours.length} neighbour-list entries; sha256 of the bytes ${createHash('sha256').update(bytes).digest('hex')}. */`,
      `export const IQ3XS_${gridSize}_NEIGHBOURS = ${t.neighbours.length};`,
      `export const IQ3XS_${gridSize}_BASE64 =`,
      ...bytes
        .toString('base64')
        .match(/.{1,100}/g)
        .map((s, i, all) => `  '${s}'${i === all.length - 1 ? ';' : ' +'}`),
      '',
    );
  }
  writeFileSync(out, lines.join('\n'));
}

main();
