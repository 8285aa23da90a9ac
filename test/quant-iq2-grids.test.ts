// The IQ2/IQ1 lattice tables (src/quant/grids/iq2xs.ts): the generated grids are
// what scripts/gen-iq2xs-grids.mjs extracts from the llama.cpp source bundled in
// node-llama-cpp, byte for byte; the kmap and neighbour lists are what ggml's own
// iq2xs_init_impl computes (compiled from that source), byte for byte.

import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { OUTPUT, readGgmlSources, renderIq2xsData } from '../scripts/gen-iq2xs-grids.mjs';
import { iq2xsGrid, type Iq2xsGridSize } from '../src/quant/grids/iq2xs.js';
import { ggmlType } from '../src/runtime/ggml-types.js';
import { ggmlIq2xsInit, ggmlIq2InitAvailable } from './helpers/ggml-iq2xs-init.js';

const available = ggmlIq2InitAvailable();

const GRIDS: readonly [Iq2xsGridSize, string][] = [
  [256, 'iq2_xxs'],
  [512, 'iq2_xs'],
  [1024, 'iq2_s'],
  [2048, 'iq1_s'],
];

describe('iq2xs grids', () => {
  test.runIf(available)('src/quant/grids/iq2xs-data.ts is what the generator extracts from the bundled llama.cpp source', () => {
    expect(renderIq2xsData(readGgmlSources()) === readFileSync(OUTPUT, 'utf8')).toBe(true);
  }, 60_000);

  test.each(GRIDS)('grid %i: the dequantizers\' byte vectors are the init grid\'s 2-bit codes', (size) => {
    const g = iq2xsGrid(size);
    // ggml-common.h spells code l as 8, 25, 43 (IQ2) or -1, 0, 1 (IQ1)
    const values = size === 2048 ? [-1, 0, 1] : [8, 25, 43];
    const expectedGrid = new Int8Array(8 * size);
    const expectedPositions = new Int8Array(8 * size);
    for (let k = 0; k < size; k++) {
      for (let i = 0; i < 8; i++) {
        const l = (g.codes[k] >> (2 * i)) & 3;
        expectedGrid[8 * k + i] = values[l];
        expectedPositions[8 * k + i] = 2 * l + 1;
      }
    }
    expect(g.grid).toEqual(expectedGrid);
    expect(g.positions).toEqual(expectedPositions);
  });

  test.runIf(available).each(GRIDS)('grid %i: kmap and neighbours are byte-identical to ggml iq2xs_init_impl', (size, type) => {
    const g = iq2xsGrid(size);
    const ref = ggmlIq2xsInit(ggmlType(type).id, size);
    expect(Buffer.from(g.positions.buffer, g.positions.byteOffset, g.positions.byteLength).equals(Buffer.from(ref.grid.buffer, ref.grid.byteOffset, ref.grid.byteLength))).toBe(true);
    expect(g.map.length).toBe(ref.map.length);
    expect(Buffer.from(g.map.buffer).equals(Buffer.from(ref.map.buffer, ref.map.byteOffset, ref.map.byteLength))).toBe(true);
    expect(g.neighbours.length).toBe(ref.neighbours.length);
    expect(Buffer.from(g.neighbours.buffer).equals(Buffer.from(ref.neighbours.buffer, ref.neighbours.byteOffset, ref.neighbours.byteLength))).toBe(true);
  }, 120_000);
});
