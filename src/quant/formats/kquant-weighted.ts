// What the importance-matrix (_impl) paths of ggml's quantizers share on the
// CPU: the weights they derive from quant_weights (qw * sqrt(sigma2 + x^2)),
// the float32 sums of squares that sigma2 comes from, and make_qp_quants (the
// weighted search for the 4/6-bit super-block scales of Q2_K, Q4_K, Q5_K).
// Float32 arithmetic in ggml's order, rounded after every operation
// (Math.fround), no fused multiply-add, as in the other CPU references.
// Checked against ggml_quantize_chunk(..., quant_weights): test/quant-imatrix-ggml.test.ts.

import { allFinite, writeNonFiniteBlock } from './block-helpers.js';
import { GROUP_MAX_EPS, nearestIntBits as nearestInt } from './kquant-qx.js';

const f = Math.fround;

/** sum of x[o..o+n)^2 in float32, in order (ggml's `sum_x2 += x[j]*x[j]`). */
export function sumSquares(x: ArrayLike<number>, o: number, n: number): number {
  let s = 0;
  for (let j = 0; j < n; j++) s = f(s + f(x[o + j] * x[o + j]));
  return s;
}

/** weight[l] = qw[qo + l] * sqrtf(sigma2 + x[xo + l]^2) for l < n, into out[0..n). */
export function imatrixBlockWeights(
  qw: ArrayLike<number>,
  qo: number,
  x: ArrayLike<number>,
  xo: number,
  n: number,
  sigma2: number,
  out: Float32Array,
): void {
  for (let l = 0; l < n; l++) out[l] = f(qw[qo + l] * f(Math.sqrt(f(sigma2 + f(x[xo + l] * x[xo + l])))));
}

/**
 * The walk the legacy formats' _impl paths share (quantize_row_q4_0_impl,
 * q4_1, q5_0, q5_1): per row sigma2 = sum x^2 / n_per_row; per block of `qk`,
 * a block holding NaN / Inf gets the format's non-finite bytes (scales at
 * `scaleOffsets`), the others their weights qw * sqrt(sigma2 + x^2) and
 * `encode(o, b, weight)` (o: the block's first value in x, b: its index).
 */
export function forEachWeightedBlock(
  x: Float32Array,
  nPerRow: number,
  qw: ArrayLike<number>,
  qk: number,
  blockBytes: number,
  out: Uint8Array,
  scaleOffsets: readonly number[],
  encode: (o: number, b: number, weight: Float32Array) => void,
): void {
  const weight = new Float32Array(qk);
  for (let r = 0; r < x.length / nPerRow; r++) {
    const sigma2 = f(sumSquares(x, r * nPerRow, nPerRow) / nPerRow);
    for (let ib = 0; ib < nPerRow / qk; ib++) {
      const b = r * (nPerRow / qk) + ib;
      const o = b * qk;
      if (!allFinite(x, o, qk)) {
        writeNonFiniteBlock(out, b * blockBytes, blockBytes, scaleOffsets);
        continue;
      }
      imatrixBlockWeights(qw, ib * qk, x, o, qk, sigma2, weight);
      encode(o, b, weight);
    }
  }
}

/** sum of w[0..n) in float32, in order (ggml's `sumw += weight[l]`). */
export function sumOf(w: ArrayLike<number>, n: number): number {
  let s = 0;
  for (let l = 0; l < n; l++) s = f(s + w[l]);
  return s;
}

/** C's 0.1f. */
const TENTH = f(0.1);

/**
 * make_qp_quants(n, nmax, x, L, quant_weights): a non-negative scale for the
 * values x[0..n) (the sub-block scales or mins) and their levels in [0, nmax]
 * (uint8 stores, as ggml's L), by weighted least squares and a coordinate search.
 */
export function makeQpQuants(n: number, nmax: number, x: ArrayLike<number>, L: Uint8Array, qw: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < n; i++) max = max > x[i] ? max : x[i]; // MAX(max, x[i])
  if (max < GROUP_MAX_EPS) {
    L.fill(0, 0, n);
    return 0;
  }
  let iscale = f(nmax / max);
  for (let i = 0; i < n; i++) L[i] = nearestInt(f(iscale * x[i])) & 0xff;
  const scale = f(1 / iscale);
  let bestMse = 0;
  for (let i = 0; i < n; i++) {
    const diff = f(x[i] - f(scale * L[i]));
    bestMse = f(bestMse + f(f(qw[i] * diff) * diff));
  }
  for (let is = -4; is <= 4; is++) {
    if (is === 0) continue;
    const iscaleIs = f(f(f(TENTH * is) + nmax) / max);
    const scaleIs = f(1 / iscaleIs);
    let mse = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.min(nmax, nearestInt(f(iscaleIs * x[i])));
      const diff = f(x[i] - f(scaleIs * l));
      mse = f(mse + f(f(qw[i] * diff) * diff));
    }
    if (mse < bestMse) {
      bestMse = mse;
      iscale = iscaleIs;
    }
  }
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.min(nmax, nearestInt(f(iscale * x[i])));
    L[i] = l & 0xff;
    const w = qw[i];
    sumlx = f(sumlx + f(f(w * x[i]) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const w = qw[i];
      let slx = f(sumlx - f(f(w * x[i]) * L[i]));
      let sl2 = f(suml2 - f(f(w * L[i]) * L[i]));
      if (slx > 0 && sl2 > 0) {
        const newL = Math.min(nmax, nearestInt(f(f(x[i] * sl2) / slx)));
        if (newL !== L[i]) {
          slx = f(slx + f(f(w * x[i]) * newL));
          sl2 = f(sl2 + f(f(w * newL) * newL));
          if (f(f(slx * slx) * suml2) > f(f(sumlx * sumlx) * sl2)) {
            L[i] = newL & 0xff;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  return suml2 > 0 ? f(sumlx / suml2) : 0;
}

/** ggml's -0.9f and 0.05f: make_qkx3_quants' rmin and rdelta in every _impl path. */
export const QKX3_RMIN = f(-0.9);
export const QKX3_RDELTA = f(0.05);
