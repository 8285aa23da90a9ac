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

/** Neighbour-list entries per 16-byte vector in iq3KernelWords. */
const KEYS_PER_VEC4 = 8;

/**
 * The tables as shaders/lib/iq3_search.wgsl reads them (array<vec4<u32>>):
 * dequantGrid (G words) | kmap (4096 words; an off-grid entry is -(v + 1), v the
 * 16-byte vector where its list starts, counted from the lists' start) | the
 * neighbour lists as uint16: the count n, then each neighbour's level key
 * (3 bits per value: the search reads its values from it, and the kmap entry
 * of the key is its index), each list padded with zeros to whole vectors, so
 * one vector read brings 8 candidates.
 */
export function iq3KernelWords(size: Iq3GridSize): Uint32Array {
  let w = kernelCache.get(size);
  if (!w) {
    const g = iq3Grid(size);
    const keyOf = (j: number) => {
      let key = 0;
      for (let i = 0; i < 4; i++) key |= ((((g.grid[j] >>> (8 * i)) & 255) - 1) >> 1) << (3 * i);
      return key;
    };
    const lists: number[] = [];
    const kmap = Int32Array.from(g.kmap);
    for (let u = 0; u < IQ3_KMAP_SIZE; u++) {
      if (kmap[u] >= 0) continue;
      const at = -kmap[u] - 1;
      const n = g.neighbours[at];
      kmap[u] = -(lists.length / KEYS_PER_VEC4 + 1);
      lists.push(n);
      for (let j = 1; j <= n; j++) lists.push(keyOf(g.neighbours[at + j]));
      while (lists.length % KEYS_PER_VEC4) lists.push(0);
    }
    w = new Uint32Array(size + IQ3_KMAP_SIZE + lists.length / 2);
    w.set(g.dequantGrid, 0);
    w.set(new Uint32Array(kmap.buffer), size);
    new Uint16Array(w.buffer, 4 * (size + IQ3_KMAP_SIZE), lists.length).set(lists);
    kernelCache.set(size, w);
  }
  return w;
}
