// The search IQ3_XXS and IQ3_S share (ggml: quantize_row_iq3_xxs_impl and
// quantize_row_iq3_s_impl): per sub-block of 32 weights, signs split off, then
// the scale whose 4-value groups, snapped to the grid (the level quadruple's
// kmap entry, or its best neighbour), fit best in weighted least squares. Every
// operation in float32 in C's order (Math.fround at each step), nearest_int as
// ggml's bit trick. The two formats differ in the places `Iq3Variant` names.

import { iq3Grid, type Iq3Grid, type Iq3GridSize } from '../grids/iq3xs.js';
import { cNearestInt } from './block-helpers.js';

const f = Math.fround;
const FLT_MAX = 3.4028234663852886e38;
const K_MAX_Q = 8;

export interface Iq3Variant {
  readonly gridSize: Iq3GridSize;
  /** Candidate scales (2 kMaxQ - 1 + is * 0.2) / max for is in -ntry..ntry: 15 (XXS), 9 (S). */
  readonly ntry: number;
  /** XXS: signs of each 8 made even (the least important value flips), 7 bits stored. */
  readonly evenSigns: boolean;
  /** XXS: sub-blocks with max |x| below 1e-8 are skipped; S: only max == 0. */
  readonly maxEps: number;
  /** S: the refit pass recomputes every group (XXS: only those found off the grid). */
  readonly refitAll: boolean;
}

/** One sub-block's outcome: scale, grid indices of its 8 groups, 4 sign bytes. */
export interface Iq3SubBlock {
  scale: number;
  readonly gridIndex: Int32Array;
  readonly signs: Uint8Array;
}

/** What iq3SearchSubBlock found: a sub-block ggml skips (too small), one it encodes, or one where ggml aborts (overflowed sums). */
export type Iq3Outcome = 'skipped' | 'encoded' | 'abort';

const weight = new Float32Array(32);
const waux = new Float32Array(32);
const xval = new Float32Array(32);
const L = new Int32Array(32);
const Laux = new Int32Array(32);
const onGrid = new Uint8Array(8);
const onGridAux = new Uint8Array(8);

/** Grid coordinates 2l + 1 as a flat table (gridSize x 4), per size. */
const coordsCache = new Map<Iq3GridSize, Int8Array>();
function coords(g: Iq3Grid): Int8Array {
  let c = coordsCache.get(g.size);
  if (!c) {
    c = new Int8Array(g.grid.buffer, g.grid.byteOffset, g.size * 4).slice();
    coordsCache.set(g.size, c);
  }
  return c;
}

/**
 * iq3_find_best_neighbour: among the neighbours listed at `at`, the grid point
 * whose values scale * q are nearest xval[o..o+4) weighted by waux (the first
 * of equals); its levels go to out[o..o+4). -1 where no distance is below
 * FLT_MAX (ggml asserts there).
 */
function bestNeighbour(nb: Uint16Array, at: number, c: Int8Array, o: number, scale: number, out: Int32Array): number {
  const n = nb[at];
  let best = FLT_MAX;
  let index = -1;
  const x0 = xval[o], x1 = xval[o + 1], x2 = xval[o + 2], x3 = xval[o + 3];
  const w0 = waux[o], w1 = waux[o + 1], w2 = waux[o + 2], w3 = waux[o + 3];
  for (let j = 1; j <= n; j++) {
    const g = nb[at + j] * 4;
    let diff = f(f(scale * c[g]) - x0);
    let d2 = f(f(w0 * diff) * diff);
    diff = f(f(scale * c[g + 1]) - x1);
    d2 = f(d2 + f(f(w1 * diff) * diff));
    diff = f(f(scale * c[g + 2]) - x2);
    d2 = f(d2 + f(f(w2 * diff) * diff));
    diff = f(f(scale * c[g + 3]) - x3);
    d2 = f(d2 + f(f(w3 * diff) * diff));
    if (d2 < best) {
      best = d2;
      index = nb[at + j];
    }
  }
  if (index >= 0) for (let i = 0; i < 4; i++) out[o + i] = (c[4 * index + i] - 1) >> 1;
  return index;
}

/** The level quadruple of group k of `l` at 1/scale `id`, each nearest_int(0.5 (id x - 1)) clamped to 0..7, into l[4k..4k+4); returns its kmap key. */
function snap(id: number, k: number, l: Int32Array): number {
  let u = 0;
  for (let i = 0; i < 4; i++) {
    const q = Math.max(0, Math.min(K_MAX_Q - 1, cNearestInt(f(0.5 * f(f(id * xval[4 * k + i]) - 1)))));
    l[4 * k + i] = q;
    u |= q << (3 * i);
  }
  return u;
}

/** sumqx and sumq2 of levels `l` (values 2l + 1) against xval with `weight`, in ggml's order. */
const sums = new Float64Array(2);
function fitSums(l: Int32Array): void {
  let sumqx = 0;
  let sumq2 = 0;
  for (let i = 0; i < 32; i++) {
    const w = weight[i];
    const q = 2 * l[i] + 1;
    sumqx = f(sumqx + f(f(w * xval[i]) * q));
    sumq2 = f(sumq2 + f(f(w * q) * q));
  }
  sums[0] = sumqx;
  sums[1] = sumq2;
}

/** The importance-matrix weights' sigma2 of a super-block of 256: 2 sum x^2 / 256, in float32. */
export function iq3Sigma2(x: Float32Array, o: number): number {
  let sumx2 = 0;
  for (let i = 0; i < 256; i++) sumx2 = f(sumx2 + f(x[o + i] * x[o + i]));
  return f(f(2 * sumx2) / 256);
}

/**
 * One sub-block of 32 weights x[o..o+32) (qw[qo..qo+32) the importance weights,
 * with the super-block's sigma2, when given) searched as ggml does; the result in `r`.
 */
export function iq3SearchSubBlock(
  v: Iq3Variant,
  x: Float32Array,
  o: number,
  qw: Float32Array | undefined,
  qo: number,
  sigma2: number,
  r: Iq3SubBlock,
): Iq3Outcome {
  const g = iq3Grid(v.gridSize);
  const c = coords(g);
  const { kmap, neighbours } = g;
  for (let i = 0; i < 32; i++) {
    const xi = x[o + i];
    weight[i] = qw ? f(qw[qo + i] * f(Math.sqrt(f(sigma2 + f(xi * xi))))) : f(xi * xi);
    waux[i] = f(Math.sqrt(weight[i]));
  }
  for (let k = 0; k < 4; k++) {
    let s = 0;
    let nflip = 0;
    for (let i = 0; i < 8; i++) {
      const xi = x[o + 8 * k + i];
      if (xi >= 0) xval[8 * k + i] = xi;
      else {
        xval[8 * k + i] = -xi;
        nflip++;
        s |= 1 << i;
      }
    }
    if (v.evenSigns && nflip % 2) {
      let imin = 0;
      let min = f(f(weight[8 * k] * x[o + 8 * k]) * x[o + 8 * k]);
      for (let i = 1; i < 8; i++) {
        const ax = f(f(weight[8 * k + i] * x[o + 8 * k + i]) * x[o + 8 * k + i]);
        if (ax < min) {
          min = ax;
          imin = i;
        }
      }
      xval[8 * k + imin] = -xval[8 * k + imin];
      s ^= 1 << imin;
    }
    r.signs[k] = v.evenSigns ? s & 127 : s;
  }
  let max = xval[0];
  for (let i = 1; i < 32; i++) max = max > xval[i] ? max : xval[i];
  L.fill(0);
  if (v.maxEps > 0 ? max < v.maxEps : !max) {
    r.scale = 0;
    return 'skipped';
  }
  let best = 0;
  let scale = f(max / (2 * K_MAX_Q - 1));
  onGrid.fill(v.refitAll ? 0 : 1);
  for (let is = -v.ntry; is <= v.ntry; is++) {
    const id = f(f(2 * K_MAX_Q - 1 + f(is * f(0.2))) / max);
    const thisScale = f(1 / id);
    for (let k = 0; k < 8; k++) {
      const u = snap(id, k, Laux);
      onGridAux[k] = 1;
      if (kmap[u] < 0) {
        onGridAux[k] = 0;
        if (bestNeighbour(neighbours, -kmap[u] - 1, c, 4 * k, thisScale, Laux) < 0) return 'abort';
      }
    }
    fitSums(Laux);
    const [sumqx, sumq2] = sums;
    if (sumq2 > 0 && f(sumqx * sumqx) > f(best * sumq2)) {
      scale = f(sumqx / sumq2);
      best = f(scale * sumqx);
      L.set(Laux);
      onGrid.set(onGridAux);
    }
  }
  let offGrid = 0;
  for (let k = 0; k < 8; k++) if (!onGrid[k]) offGrid++;
  if (offGrid > 0 && scale > 0) {
    const id = f(1 / scale);
    for (let k = 0; k < 8; k++) {
      if (!v.refitAll && onGrid[k]) continue;
      const u = snap(id, k, L);
      if (kmap[u] < 0 && bestNeighbour(neighbours, -kmap[u] - 1, c, 4 * k, scale, L) < 0) return 'abort';
    }
    fitSums(L);
    if (sums[1] > 0) scale = f(sums[0] / sums[1]);
  }
  if (scale < 0) {
    // ggml: "should never happen" (negative importance weights); flips the scale and the signs.
    scale = -scale;
    for (let k = 0; k < 4; k++) r.signs[k] = ~r.signs[k] & (v.evenSigns ? 127 : 255);
  }
  // ggml asserts scale >= 0 (a NaN scale, from overflowed sums, aborts it).
  if (!(scale >= 0)) return 'abort';
  for (let k = 0; k < 8; k++) {
    const u = L[4 * k] | (L[4 * k + 1] << 3) | (L[4 * k + 2] << 6) | (L[4 * k + 3] << 9);
    r.gridIndex[k] = kmap[u]; // always on the grid: L holds grid points' levels
  }
  r.scale = scale;
  return 'encoded';
}

/** A fresh result holder for iq3SearchSubBlock. */
export function iq3SubBlock(): Iq3SubBlock {
  return { scale: 0, gridIndex: new Int32Array(8), signs: new Uint8Array(4) };
}

/** The 4-bit sub-block scale ggml stores for `scale` at super-block 1/d `id`: nearest_int(0.5 (id scale - 1)) in 0..15. */
export function iq3ScaleNibble(id: number, scale: number): number {
  return Math.max(0, Math.min(15, cNearestInt(f(0.5 * f(f(id * scale) - 1)))));
}
