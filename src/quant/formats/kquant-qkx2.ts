// The pieces Q2_K, Q4_K and Q5_K share on the CPU, as ggml computes them:
// make_qkx2_quants (a sub-block's scale and min, chosen among candidate
// scales by weighted error), nearest_int, and the 6-bit scale/min packing of
// Q4_K and Q5_K (get_scale_min_k4). Float32 arithmetic is emulated with
// Math.fround after every operation, in ggml's order; no fused multiply-add.
// WGSL twin: shaders/lib/kquant_qkx2.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import { imatrixBlockWeights, makeQpQuants, QKX3_RDELTA, QKX3_RMIN, sumOf, sumSquares } from './kquant-weighted.js';

const f = Math.fround;
const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

/**
 * ggml's nearest_int: adds 1.5 * 2^23 in float32 and reads the low mantissa
 * bits. For |x| < 2^22 that is round-half-to-even (the float32 sum rounds; the
 * double sum it is taken from is exact there, or too far from a tie to matter);
 * past that (and for Inf and NaN) it is whatever those bits say, which is what
 * ggml stores.
 */
export function nearestInt(x: number): number {
  if (x !== x) return 0; // every NaN read as the default one (see kquant-qx.ts nearestIntBits)
  if (Math.abs(x) < 4194304) return f(x + 12582912) - 12582912;
  f32[0] = x + 12582912; // float32(double sum) = the float32 sum here too
  return (i32[0] & 0x007fffff) - 0x00400000;
}

/** A sub-block's result: x ≈ scale * L - min, with L written into the caller's array. */
export interface ScaleMin {
  scale: number;
  /** ggml's `the_min`: the negated offset, >= 0 for sensible data. */
  min: number;
}

/**
 * make_qkx2_quants: quantizes x[xo .. xo+n) to levels 0..nmax with a scale and
 * a non-positive offset, trying nstep+1 candidate scales around nmax / range
 * and keeping the one with the least weighted error (|e| if useMad, else e^2).
 * Levels go to L[lo .. lo+n); laux is scratch of n bytes.
 */
export function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  weights: Float32Array,
  L: Uint8Array,
  lo: number,
  laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
): ScaleMin {
  let min = x[xo];
  let max = x[xo];
  let sumW = weights[0];
  let sumX = f(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i];
    if (v < min) min = v;
    if (v > max) max = v;
    const w = weights[i];
    sumW = f(sumW + w);
    sumX = f(sumX + f(w * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    return { scale: 0, min: -min };
  }
  const rd = f(rdelta); // a float constant in ggml (0.1f)
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i];
    const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(v - min)))));
    L[lo + i] = l;
    let diff = f(f(f(scale * l) + min) - v);
    diff = useMad ? Math.abs(diff) : f(diff * diff);
    bestError = f(bestError + f(weights[i] * diff));
  }
  if (nstep < 1) return { scale, min: -min };
  for (let is = 0; is <= nstep; is++) {
    // min is the best candidate's so far: later candidates scale from it
    iscale = f(f(f(rmin + f(rd * is)) + nmax) / f(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i];
      const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(v - min)))));
      laux[i] = l;
      const wl = f(weights[i] * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * v));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        let diff = f(f(f(thisScale * laux[i]) + thisMin) - x[xo + i]);
        diff = useMad ? Math.abs(diff) : f(diff * diff);
        curError = f(curError + f(weights[i] * diff));
      }
      if (curError < bestError) {
        L.set(laux.subarray(0, n), lo);
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return { scale, min: -min };
}

/**
 * Q4_K / Q5_K: eight sub-blocks' 6-bit scales and mins, packed into 12 bytes
 * at `o`: bytes 0-3 scales 0-3 (+ top bits of scales 4-7), 4-7 mins 0-3 (+ top
 * bits of mins 4-7), 8-11 the low nibbles of scales and mins 4-7.
 */
export function packScaleMinK4(ls: ArrayLike<number>, lm: ArrayLike<number>, out: Uint8Array, o: number): void {
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      out[o + j] = ls[j];
      out[o + j + 4] = lm[j];
    } else {
      out[o + j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
      out[o + j - 4] |= (ls[j] >> 4) << 6;
      out[o + j] |= (lm[j] >> 4) << 6;
    }
  }
}

/** get_scale_min_k4: sub-block j's 6-bit scale and min from the 12 bytes at `o`. */
export function scaleMinK4(j: number, q: Uint8Array, o: number): [number, number] {
  if (j < 4) return [q[o + j] & 63, q[o + j + 4] & 63];
  return [(q[o + j + 4] & 0xf) | ((q[o + j - 4] >> 6) << 4), (q[o + j + 4] >> 4) | ((q[o + j] >> 6) << 4)];
}

const k4Scratch = {
  weights: new Float32Array(32),
  laux: new Uint8Array(32),
  scales: new Float32Array(8),
  mins: new Float32Array(8),
  ls: new Uint8Array(8),
  lm: new Uint8Array(8),
};

/**
 * Q4_K / Q5_K quantize, shared: per 32-weight sub-block make_qkx2_quants
 * (weights av_x + |x|), 6-bit scales and mins relative to their maxima,
 * then the weights requantized against the rounded scales.
 * Writes d, dmin and scales at block offset 0..15 and the levels to L.
 */
export function quantizeK4Block(
  x: Float32Array,
  xo: number,
  nmax: number,
  rmin: number,
  nstep: number,
  out: Uint8Array,
  view: DataView,
  bo: number,
  L: Uint8Array,
): void {
  const { weights, laux, scales, mins, ls, lm } = k4Scratch;
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const s = xo + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(x[s + l] * x[s + l]));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(x[s + l]));
    const r = makeQkx2Quants(32, nmax, x, s, weights, L, 32 * j, laux, rmin, 0.1, nstep, false);
    scales[j] = r.scale;
    mins[j] = r.min;
    if (r.scale > maxScale) maxScale = r.scale;
    if (r.min > maxMin) maxMin = r.min;
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  for (let j = 0; j < 8; j++) {
    // uint8_t ls = nearest_int(...): truncated to 8 bits, then MIN(63, ls)
    ls[j] = Math.min(63, nearestInt(f(invScale * scales[j])) & 0xff);
    lm[j] = Math.min(63, nearestInt(f(invMin * mins[j])) & 0xff);
  }
  finishK4Block(ls, lm, f(maxScale / 63), f(maxMin / 63), x, xo, nmax, out, view, bo, L);
}

/**
 * quantize_row_q4_K_impl / quantize_row_q5_K_impl's block, with per-column
 * weights qw[qo..qo+256): sigma2 = 2 sum x^2 / 256, per sub-block weights
 * qw * sqrt(sigma2 + x^2) and make_qkx3_quants(32, nmax, -0.9f, 0.05f, 36);
 * the 6-bit scales and mins by make_qp_quants(8, 63) weighted by each
 * sub-block's weight sum (clampLs: Q5_K's MIN(63, ls)), then the weights
 * requantized against the rounded scales, as quantizeK4Block.
 */
export function quantizeK4BlockWeighted(
  x: Float32Array,
  xo: number,
  nmax: number,
  qw: Float32Array,
  qo: number,
  clampLs: boolean,
  out: Uint8Array,
  view: DataView,
  bo: number,
  L: Uint8Array,
): void {
  const { weights, laux, scales, mins, ls, lm } = k4Scratch;
  const sw = k4Sw;
  const sigma2 = f(f(2 * sumSquares(x, xo, 256)) / 256);
  for (let j = 0; j < 8; j++) {
    imatrixBlockWeights(qw, qo + 32 * j, x, xo + 32 * j, 32, sigma2, weights);
    sw[j] = sumOf(weights, 32);
    const r = makeQkx2Quants(32, nmax, x, xo + 32 * j, weights, L, 32 * j, laux, QKX3_RMIN, QKX3_RDELTA, 36, false);
    scales[j] = r.scale;
    mins[j] = r.min;
  }
  const dBlock = makeQpQuants(8, 63, scales, ls, sw);
  const mBlock = makeQpQuants(8, 63, mins, lm, sw);
  if (clampLs) {
    for (let j = 0; j < 8; j++) {
      ls[j] = Math.min(63, ls[j]);
      lm[j] = Math.min(63, lm[j]);
    }
  }
  finishK4Block(ls, lm, dBlock, mBlock, x, xo, nmax, out, view, bo, L);
}

/**
 * What both Q4_K/Q5_K block paths end with: the 6-bit scales and mins packed,
 * the super-block d and dmin stored as float16, and every value requantized
 * against the rounded scales (nearest_int((x + dm) / d) clamped to [0, nmax]).
 */
function finishK4Block(
  ls: Uint8Array,
  lm: Uint8Array,
  dBlock: number,
  mBlock: number,
  x: Float32Array,
  xo: number,
  nmax: number,
  out: Uint8Array,
  view: DataView,
  bo: number,
  L: Uint8Array,
): void {
  out.fill(0, bo + 4, bo + 16);
  packScaleMinK4(ls, lm, out, bo + 4);
  view.setUint16(bo, f32ToF16Bits(dBlock), true);
  view.setUint16(bo + 2, f32ToF16Bits(mBlock), true);
  const dAll = f16BitsToF32(view.getUint16(bo, true));
  const mAll = f16BitsToF32(view.getUint16(bo + 2, true));
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(j, out, bo + 4);
    const d = f(dAll * sc);
    if (d === 0) continue; // C's `if (!d)`: NaN goes on
    const dm = f(mAll * m);
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt(f(f(x[xo + 32 * j + ii] + dm) / d));
      L[32 * j + ii] = Math.max(0, Math.min(nmax, l));
    }
  }
}

const k4Sw = new Float32Array(8);
