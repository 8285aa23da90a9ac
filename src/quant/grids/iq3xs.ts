// The tables of ggml's iq3xs_init_impl, per grid size (256: IQ3_XXS, 512: IQ3_S),
// decoded once from the generated iq3xs-data.ts (scripts/gen-iq3xs-grids.mjs).
// One buffer per size:
//   words [0, G)            grid: the quantizer's points, byte i = 2 l + 1 (l: level 0..7)
//   words [G, 2G)           dequantGrid: ggml-common.h's iq3xxs_grid / iq3s_grid
//   words [2G, 2G + 4096)   kmap (int32): level quadruple u (3 bits each) -> grid index,
//                           or -(offset + 1) of its neighbour list
//   then                    neighbours (uint16, two per word): at offset, the count n,
//                           then n grid indices
// The WGSL kernels bind a form derived from it (iq3KernelWords).

import { IQ3XS_256_BASE64, IQ3XS_256_NEIGHBOURS, IQ3XS_512_BASE64, IQ3XS_512_NEIGHBOURS } from './iq3xs-data.js';

export type Iq3GridSize = 256 | 512;

export interface Iq3Grid {
  readonly size: Iq3GridSize;
  /** The whole table buffer (the layout above). */
  readonly words: Uint32Array;
  readonly grid: Uint32Array;
  readonly dequantGrid: Uint32Array;
  readonly kmap: Int32Array;
  readonly neighbours: Uint16Array;
}

/** The 4096 level quadruples kmap covers. */
export const IQ3_KMAP_SIZE = 4096;

const cache = new Map<Iq3GridSize, Iq3Grid>();

/** The tables of iq3xs_init_impl(size), decoded on first use. */
export function iq3Grid(size: Iq3GridSize): Iq3Grid {
  let g = cache.get(size);
  if (!g) {
    const [base64, nNeighbours] = size === 256 ? [IQ3XS_256_BASE64, IQ3XS_256_NEIGHBOURS] : [IQ3XS_512_BASE64, IQ3XS_512_NEIGHBOURS];
    const bytes = Buffer.from(base64, 'base64');
    const words = new Uint32Array(bytes.byteLength / 4);
    new Uint8Array(words.buffer).set(bytes);
    const b = words.buffer;
    g = {
      size,
      words,
      grid: new Uint32Array(b, 0, size),
      dequantGrid: new Uint32Array(b, 4 * size, size),
      kmap: new Int32Array(b, 8 * size, IQ3_KMAP_SIZE),
      neighbours: new Uint16Array(b, 4 * (2 * size + IQ3_KMAP_SIZE), nNeighbours),
    };
    cache.set(size, g);
  }
  return g;
}

const kernelCache = new Map<Iq3GridSize, Uint32Array>();

/**
 * The tables as shaders/lib/iq3_search.wgsl reads them: dequantGrid (G words) |
 * kmap (4096) | neighbour lists, one word per entry: the count, then each
 * neighbour as its grid index | its level key << 16 (so that the search reads
 * the candidate's values from the same word).
 */
export function iq3KernelWords(size: Iq3GridSize): Uint32Array {
  let w = kernelCache.get(size);
  if (!w) {
    const g = iq3Grid(size);
    w = new Uint32Array(size + IQ3_KMAP_SIZE + g.neighbours.length);
    w.set(g.dequantGrid, 0);
    w.set(new Uint32Array(g.kmap.buffer, g.kmap.byteOffset, IQ3_KMAP_SIZE), size);
    const keyOf = (j: number) => {
      let key = 0;
      for (let i = 0; i < 4; i++) key |= ((((g.grid[j] >>> (8 * i)) & 255) - 1) >> 1) << (3 * i);
      return key;
    };
    const base = size + IQ3_KMAP_SIZE;
    for (let at = 0; at < g.neighbours.length; at += g.neighbours[at] + 1) {
      const n = g.neighbours[at];
      w[base + at] = n;
      for (let j = 1; j <= n; j++) w[base + at + j] = (g.neighbours[at + j] | (keyOf(g.neighbours[at + j]) << 16)) >>> 0;
    }
    kernelCache.set(size, w);
  }
  return w;
}
