// What the CPU references of IQ1_S and IQ1_M share: their 2048-point grid (each
// point eight levels 0..2, ggml's kgrid_1bit_2048 through iq2xs_init_impl), the
// map from a pattern of eight levels to its grid point and the neighbour lists
// of off-grid patterns (src/quant/grids/iq2xs.ts, shared with IQ2), the sort of a block's values
// that ggml does with qsort, and iq1_find_best_neighbour2.
//
// The sort: ggml's comparator (iq1_sort_helper) has no tie-break, so the order
// of equal values is whatever the C library's qsort gives. glibc (2.36 here,
// and every glibc since 2.3 for arrays this small: qsort_r sorts 16 or 32
// eight-byte pairs with msort's merge sort in an alloca'd buffer) sorts them
// stably, so ties keep their index order. test/quant-iq1.test.ts checks that
// against ggml on fp16-tied inputs, where ties are common.
//
// Float32 arithmetic in ggml's order, rounded after every operation (Math.fround).

import { iq2xsGrid } from '../grids/iq2xs.js';

const f = Math.fround;

/** ggml's IQ1S_DELTA = IQ1M_DELTA. */
export const IQ1_DELTA = 0.125;
/** ggml's x_p and x_m: the three levels shifted by +delta and -delta (exact in float32). */
export const X_P: readonly number[] = [-1 + IQ1_DELTA, IQ1_DELTA, 1 + IQ1_DELTA];
export const X_M: readonly number[] = [-1 - IQ1_DELTA, -IQ1_DELTA, 1 - IQ1_DELTA];

export const NGRID_IQ1S = 2048 as const;

export interface Iq1Tables {
  /** Grid point g's eight levels as 2-bit codes (level i at bits 2i): ggml's kgrid_1bit_2048. */
  readonly codes: Uint16Array;
  /** Grid point g's eight levels (0..2) at [8g .. 8g + 8). */
  readonly levels: Uint8Array;
  /** kmap: a pattern u (level j at bits 2j, 2j+1) to its grid point, or -(offset + 1) into neighbours. */
  readonly map: Int32Array;
  /** Per off-grid pattern: the count n, then n grid points by distance, then index. */
  readonly neighbours: Uint16Array;
}

let tables: Iq1Tables | undefined;

/** The IQ1 tables (the 2048-point grid of src/quant/grids/iq2xs.ts, with its levels unpacked), built once. */
export function iq1(): Iq1Tables {
  if (!tables) {
    const g = iq2xsGrid(NGRID_IQ1S);
    const levels = new Uint8Array(8 * NGRID_IQ1S);
    for (let k = 0; k < NGRID_IQ1S; k++) for (let i = 0; i < 8; i++) levels[8 * k + i] = (g.codes[k] >> (2 * i)) & 3;
    tables = { codes: g.codes, levels, map: g.map, neighbours: g.neighbours };
  }
  return tables;
}

/**
 * Writes into order[0..n) the indices of x[o..o+n) sorted by value, equal
 * values in index order: glibc's qsort with iq1_sort_helper (stable, see above).
 * The values are finite (blocks with NaN or ±Inf never get here).
 */
export function sortIndices(x: Float32Array, o: number, n: number, order: Int32Array): void {
  for (let j = 0; j < n; j++) {
    const v = x[o + j];
    let k = j;
    while (k > 0 && x[o + order[k - 1]] > v) {
      order[k] = order[k - 1];
      k--;
    }
    order[k] = j;
  }
}

/** sigma2 = 2 * sum x^2 / QK_K over the super-block x[o..o+256), in float32 as ggml. */
export function superBlockSigma2(x: Float32Array, o: number): number {
  let s = 0;
  for (let i = 0; i < 256; i++) s = f(s + f(x[o + i] * x[o + i]));
  return f(f(2 * s) / 256);
}

/**
 * iq1_find_best_neighbour2 for the off-grid pattern u of the eight values
 * x[xo..xo+8) with weights w[wo..wo+8): the neighbour whose levels xx[...]
 * times `scale` have the smallest weighted squared distance (the first on
 * ties). ggml's fallback scan of the whole grid (reached only when every
 * neighbour's distance is NaN or +Inf) reads xval[i] for the grid index i,
 * past the eight values: undefined there; this scans with xval[j].
 */
export function bestNeighbour(u: number, x: Float32Array, xo: number, w: Float32Array, wo: number, scale: number, xx: readonly number[]): number {
  const { levels, map, neighbours } = iq1();
  const at = -map[u] - 1;
  const count = neighbours[at];
  let best = 3.4028234663852886e38;
  let index = -1;
  const score = (g: number) => {
    let d2 = 0;
    for (let i = 0; i < 8; i++) {
      const q = xx[levels[8 * g + i]];
      const diff = f(f(scale * q) - x[xo + i]);
      d2 = f(d2 + f(f(w[wo + i] * diff) * diff));
    }
    return d2;
  };
  for (let j = 1; j <= count; j++) {
    const g = neighbours[at + j];
    const d2 = score(g);
    if (d2 < best) {
      best = d2;
      index = g;
    }
  }
  if (index < 0) {
    for (let g = 0; g < NGRID_IQ1S; g++) {
      const d2 = score(g);
      if (d2 < best) {
        best = d2;
        index = g;
      }
    }
  }
  return index < 0 ? 0 : index;
}

/** The pattern index of levels L[lo..lo+8) (level j at bits 2j). */
export function patternOf(L: Int8Array | Uint8Array, lo: number): number {
  let u = 0;
  for (let j = 0; j < 8; j++) u |= L[lo + j] << (2 * j);
  return u;
}

/**
 * The sub-block's groups of 8 (levels L, values x[xo..], weights w) snapped to
 * the grid at `scale`, group k with the levels `shiftOf(k)` (X_P or X_M): its
 * pattern's grid index where on the grid, else its best neighbour's, into
 * index[k]. If any group was off the grid, the scale refitted over the chosen
 * points (sumqx / sumq2 where both are positive), as ggml's IQ1_S and IQ1_M
 * do; returns the scale. (WGSL: iq1_snap_groups, shaders/lib/iq1_quant.wgsl.)
 */
export function snapGroups(
  L: Int8Array,
  x: Float32Array,
  xo: number,
  w: Float32Array,
  nGroups: number,
  scale: number,
  shiftOf: (k: number) => readonly number[],
  index: Uint16Array,
): number {
  const { levels, map } = iq1();
  let allOnGrid = true;
  for (let k = 0; k < nGroups; k++) {
    const u = patternOf(L, 8 * k);
    let g = map[u];
    if (g < 0) {
      allOnGrid = false;
      g = bestNeighbour(u, x, xo + 8 * k, w, 8 * k, scale, shiftOf(k));
    }
    index[k] = g;
  }
  if (allOnGrid) return scale;
  let sumqx = 0;
  let sumq2 = 0;
  for (let k = 0; k < nGroups; k++) {
    const xx = shiftOf(k);
    for (let j = 0; j < 8; j++) {
      const q = xx[levels[8 * index[k] + j]];
      const wq = f(w[8 * k + j] * q);
      sumqx = f(sumqx + f(wq * x[xo + 8 * k + j]));
      sumq2 = f(sumq2 + f(wq * q));
    }
  }
  return sumqx > 0 && sumq2 > 0 ? f(sumqx / sumq2) : scale;
}

/** kmap's length: 2-bit codes up to 0xaaaa (43690), plus ggml's slack. */
const KMAP_SIZE = 43692;

/**
 * The tables as one u32 buffer for the WGSL kernels (shaders/lib/iq1_quant.wgsl):
 * [0, 2048) the grid codes, [2048, 2048 + 43692) kmap, then the neighbour lists two u16 per word.
 */
export function iq1TableWords(): Uint32Array {
  const { codes, map, neighbours } = iq1();
  if (map.length !== KMAP_SIZE) throw new Error(`iq1 tables: kmap of ${map.length} entries, expected ${KMAP_SIZE}`);
  const words = new Uint32Array(NGRID_IQ1S + KMAP_SIZE + Math.ceil(neighbours.length / 2));
  words.set(codes);
  new Int32Array(words.buffer, NGRID_IQ1S * 4, KMAP_SIZE).set(map);
  const at = NGRID_IQ1S + KMAP_SIZE;
  for (let i = 0; i < neighbours.length; i++) words[at + (i >> 1)] |= neighbours[i] << (16 * (i & 1));
  return words;
}
