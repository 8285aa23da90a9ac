// What the CPU references of IQ2_XXS, IQ2_XS and IQ2_S share: ggml's search for
// a group of 8 magnitudes on the E8 lattice grid (the kmap lookup, and for codes
// off the grid iq2_find_best_neighbour over the neighbour list), the weighted
// least-squares scale of a sub-block, and the super-block scale and its 4-bit
// sub-block scales. Float32 arithmetic in ggml's order, each operation rounded
// (Math.fround), no fused multiply-add. Grids: src/quant/grids/iq2xs.ts.
// WGSL counterpart: shaders/lib/iq2_search.wgsl.

import type { Iq2xsGrid } from '../grids/iq2xs.js';
import { nearestIntBits as nearestInt } from './kquant-qx.js';

const f = Math.fround;

/** C's FLT_MAX. */
const FLT_MAX = 3.4028234663852886e38;
/** C's 0.1f. */
export const TENTH = f(0.1);

/**
 * iq2_find_best_neighbour: among the neighbour list at `neighbours[at]` (a count,
 * then grid indices), the grid point nearest to xval[xo..xo+8) at `scale`,
 * weighted by w[xo..xo+8) (the first of equal distances). Writes its levels
 * (pos - 1) / 2 into L[xo..xo+8) and returns its index. Where no distance is
 * below FLT_MAX (overflow; ggml aborts there) the first neighbour is taken.
 */
export function bestNeighbour(g: Iq2xsGrid, at: number, xval: Float32Array, w: Float32Array, xo: number, scale: number, L: Int8Array): number {
  const { neighbours, positions } = g;
  const n = neighbours[at];
  let best = FLT_MAX;
  let index = neighbours[at + 1];
  for (let j = 1; j <= n; j++) {
    const p = 8 * neighbours[at + j];
    let d2 = 0;
    for (let i = 0; i < 8; i++) {
      const diff = f(f(scale * positions[p + i]) - xval[xo + i]);
      d2 = f(d2 + f(f(w[xo + i] * diff) * diff));
    }
    if (d2 < best) {
      best = d2;
      index = neighbours[at + j];
    }
  }
  const p = 8 * index;
  for (let i = 0; i < 8; i++) L[xo + i] = (positions[p + i] - 1) >> 1;
  return index;
}

/**
 * The levels of xval[xo..xo+8) at inverse scale `id`: nearest_int(0.5 * (id * x - 1))
 * clamped to [0, 2], into L[xo..xo+8); returns their code (2 bits each).
 */
export function levelsAt(xval: Float32Array, xo: number, id: number, L: Int8Array): number {
  let u = 0;
  for (let i = 0; i < 8; i++) {
    const l = nearestInt(f(0.5 * f(f(id * xval[xo + i]) - 1)));
    const c = l < 0 ? 0 : l > 2 ? 2 : l;
    L[xo + i] = c;
    u |= c << (2 * i);
  }
  return u;
}

/** The code (2 bits per level) of L[xo..xo+8). */
export function codeOf(L: Int8Array, xo: number): number {
  let u = 0;
  for (let i = 0; i < 8; i++) u |= L[xo + i] << (2 * i);
  return u;
}

/** sumqx and sumq2 of the levels L[0..n) (q = 2l + 1) against xval with weights w. */
export function weightedSums(xval: Float32Array, w: Float32Array, L: Int8Array, n: number): { sumqx: number; sumq2: number } {
  let sumqx = 0;
  let sumq2 = 0;
  for (let i = 0; i < n; i++) {
    const q = 2 * L[i] + 1;
    sumqx = f(sumqx + f(f(w[i] * xval[i]) * q));
    sumq2 = f(sumq2 + f(f(w[i] * q) * q));
  }
  return { sumqx, sumq2 };
}

/**
 * The sign split of 8 values xb[xo..xo+8) into magnitudes xval (x >= 0 keeps x,
 * -0 included) and a sign byte (bit i: x[i] < 0). With `evenParity` (IQ2_XXS,
 * IQ2_XS store 7 sign bits) an odd count of negatives flips the value of least
 * w * x^2 (the first on ties) and its bit; returns the sign byte (8 bits).
 */
export function splitSigns(xb: Float32Array, xo: number, w: Float32Array, wo: number, xval: Float32Array, vo: number, evenParity: boolean): number {
  let s = 0;
  let nflip = 0;
  for (let i = 0; i < 8; i++) {
    const v = xb[xo + i];
    if (v >= 0) xval[vo + i] = v;
    else {
      xval[vo + i] = -v;
      nflip++;
      s |= 1 << i;
    }
  }
  if (evenParity && nflip % 2) {
    let imin = 0;
    let min = f(f(w[wo] * xb[xo]) * xb[xo]);
    for (let i = 1; i < 8; i++) {
      const ax = f(f(w[wo + i] * xb[xo + i]) * xb[xo + i]);
      if (ax < min) {
        min = ax;
        imin = i;
      }
    }
    xval[vo + imin] = -xval[vo + imin];
    s ^= 1 << imin;
  }
  return s;
}

const Laux = new Int8Array(16);
const onGridAux = [true, true];

/**
 * The 16-value sub-block search of quantize_row_iq2_xs_impl and
 * quantize_row_iq2_s_impl (identical there): scales max / (5 + 0.1 is) for is in
 * -9..9, each group of 8 snapped to the grid; the best by weighted least squares,
 * then the groups that were off the grid redone at that scale. Writes the grid
 * levels into L[0..16), the grid indices into index[0..2), returns the scale.
 * `max` is the largest of xval (above the format's GROUP_MAX_EPS).
 */
export function searchSubBlock16(
  g: Iq2xsGrid,
  xval: Float32Array,
  weight: Float32Array,
  waux: Float32Array,
  max: number,
  L: Int8Array,
  index: Int32Array,
): number {
  const { map } = g;
  L.fill(0, 0, 16);
  let best = 0;
  let scale = f(max / 5);
  let onGrid0 = true;
  let onGrid1 = true;
  for (let is = -9; is <= 9; is++) {
    const id = f(f(5 + f(is * TENTH)) / max);
    const thisScale = f(1 / id);
    for (let k = 0; k < 2; k++) {
      const u = levelsAt(xval, 8 * k, id, Laux);
      onGridAux[k] = true;
      if (map[u] < 0) {
        onGridAux[k] = false;
        bestNeighbour(g, -map[u] - 1, xval, waux, 8 * k, thisScale, Laux);
      }
    }
    const { sumqx, sumq2 } = weightedSums(xval, weight, Laux, 16);
    if (sumq2 > 0 && f(sumqx * sumqx) > f(best * sumq2)) {
      scale = f(sumqx / sumq2);
      best = f(scale * sumqx);
      L.set(Laux);
      onGrid0 = onGridAux[0];
      onGrid1 = onGridAux[1];
    }
  }
  if ((!onGrid0 || !onGrid1) && scale > 0) {
    const id = f(1 / scale);
    for (let k = 0; k < 2; k++) {
      if (k === 0 ? onGrid0 : onGrid1) continue;
      const u = levelsAt(xval, 8 * k, id, L);
      if (map[u] < 0) bestNeighbour(g, -map[u] - 1, xval, waux, 8 * k, scale, L);
    }
    const { sumqx, sumq2 } = weightedSums(xval, weight, L, 16);
    if (sumq2 > 0) scale = f(sumqx / sumq2);
  }
  index[0] = map[codeOf(L, 0)];
  index[1] = map[codeOf(L, 8)];
  return scale;
}

/** A sub-block scale's 4-bit code: nearest_int(0.5 * (id * scale - 1)) clamped to [0, 15]. */
export function scaleCode(id: number, scale: number): number {
  const l = nearestInt(f(0.5 * f(f(id * scale) - 1)));
  return l < 0 ? 0 : l > 15 ? 15 : l;
}
