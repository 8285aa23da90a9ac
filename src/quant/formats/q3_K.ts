// Q3_K: super-blocks of 256 weights in 16 groups of 16, x = d * (scale[g] - 32) * q,
// q in [-4, 4) as 3 bits (qs: low 2 bits, hmask: the high bit), scales as 6
// bits, d float16 (110 bytes). ggml: quantize_row_q3_K_ref / dequantize_row_q3_K.
// ggml's bytes for every input, NaN, ±Inf and overflowing float32 sums
// included (a NaN group gets scale 0; d may be ±Inf, and a group whose d is
// then NaN or ±Inf requantizes to zeros); see kquant-qx.ts.
// WGSL: shaders/quant/q3_K.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { largestMagnitude, makeQ3Quants, makeQxQuants, nearestIntBits } from './kquant-qx.js';
import { imatrixBlockWeights, sumOf, sumSquares } from './kquant-weighted.js';

const TYPE = ggmlType('q3_K');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const QS = 32; // byte offset of qs (hmask comes first)
const SCALES = 96;
const D = 108;
const f = Math.fround;

/** The 6-bit scale of group g (0..63) from the 12 packed scale bytes at y[SCALES]. */
function groupScale(y: Uint8Array, g: number): number {
  const low = g < 8 ? y[SCALES + g] & 15 : y[SCALES + g - 8] >> 4;
  return low | (((y[SCALES + 8 + (g & 3)] >> (2 * (g >> 2))) & 3) << 4);
}

/** Byte offsets and shifts of element e's low 2 bits (in qs) and high bit (in hmask). */
function position(e: number): { qs: number; lowShift: number; hmask: number; highBit: number } {
  return { qs: QS + (e >> 7) * 32 + (e & 31), lowShift: 2 * ((e >> 5) & 3), hmask: e & 31, highBit: e >> 5 };
}

export const q3_K: QuantFormat = {
  type: TYPE,
  shader: 'quant/q3_K.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 2, errorSums: true },
  dequantize: { workgroupSize: 256, invocationsPerBlock: 16 },
  nonFinite: 'as-ggml',
  imatrix: 'optional',
  weightedKernel: 'own-entry',

  // quantize_row_q3_K_impl: per super-block sigma2 = 2 sum x^2 / 256; per group of
  // 16 weights qw * sqrt(sigma2 + x^2) and make_qx_quants(16, 4); the 6-bit scales
  // by make_qx_quants(16, 32) weighted by each group's weight sum.
  quantizeWeightedCpu(x, out, nPerRow, qw) {
    const L = new Uint8Array(QK);
    const Ls = new Uint8Array(QK / 16);
    const scales = new Float32Array(QK / 16);
    const sw = new Float32Array(QK / 16);
    const weight = new Float32Array(16);
    for (let b = 0; b < x.length / QK; b++) {
      const xb = x.subarray(b * QK, (b + 1) * QK);
      const y = out.subarray(b * BYTES, (b + 1) * BYTES);
      y.fill(0);
      const qo = (b % (nPerRow / QK)) * QK;
      const sigma2 = f(f(2 * sumSquares(xb, 0, QK)) / QK);
      for (let g = 0; g < QK / 16; g++) {
        imatrixBlockWeights(qw, qo + 16 * g, xb, 16 * g, 16, sigma2, weight);
        sw[g] = sumOf(weight, 16);
        scales[g] = makeQxQuants(16, 4, xb, 16 * g, L, weight);
      }
      const dBlock = makeQxQuants(QK / 16, 32, scales, 0, Ls, sw);
      for (let g = 0; g < QK / 16; g++) {
        const l = Ls[g];
        if (g < 8) y[SCALES + g] = l & 15;
        else y[SCALES + g - 8] |= (l & 15) << 4;
        y[SCALES + 8 + (g & 3)] |= (l >> 4) << (2 * (g >> 2));
      }
      const dBits = f32ToF16Bits(dBlock);
      y[D] = dBits & 0xff;
      y[D + 1] = dBits >> 8;
      requantizeAndPack(xb, y, L);
    }
  },

  quantizeCpu(x, out) {
    const L = new Uint8Array(QK);
    const scales = new Float32Array(QK / 16);
    for (let b = 0; b < x.length / QK; b++) {
      const xb = x.subarray(b * QK, (b + 1) * QK);
      const y = out.subarray(b * BYTES, (b + 1) * BYTES);
      y.fill(0);
      for (let g = 0; g < QK / 16; g++) scales[g] = makeQ3Quants(16, 4, xb, 16 * g, L);
      const maxScale = largestMagnitude(scales, 0, QK / 16).max;
      if (maxScale !== 0) {
        const iscale = f(-32 / maxScale);
        for (let g = 0; g < QK / 16; g++) {
          // int8_t l = nearest_int(...): wrapped to 8 bits before the clamp
          const l = Math.max(-32, Math.min(31, (nearestIntBits(f(iscale * scales[g])) << 24) >> 24)) + 32;
          if (g < 8) y[SCALES + g] = l & 15;
          else y[SCALES + g - 8] |= (l & 15) << 4;
          y[SCALES + 8 + (g & 3)] |= (l >> 4) << (2 * (g >> 2));
        }
        const dBits = f32ToF16Bits(f(1 / iscale));
        y[D] = dBits & 0xff;
        y[D + 1] = dBits >> 8;
      } // else d = +0 and the scales stay 0
      requantizeAndPack(xb, y, L);
    }
  },

  dequantizeCpu(blocks, out) {
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const y = blocks.subarray(b * BYTES, (b + 1) * BYTES);
      const dAll = f16BitsToF32(y[D] | (y[D + 1] << 8));
      for (let g = 0; g < QK / 16; g++) {
        const dl = f(dAll * (groupScale(y, g) - 32));
        for (let e = 16 * g; e < 16 * g + 16; e++) {
          const p = position(e);
          const q = ((y[p.qs] >> p.lowShift) & 3) - ((y[p.hmask] >> p.highBit) & 1 ? 0 : 4);
          out[b * QK + e] = f(dl * q);
        }
      }
    }
  },
};

/** Both paths' tail: the quants against the rounded scales, then hmask and qs (y's scales and d already set). */
function requantizeAndPack(xb: Float32Array, y: Uint8Array, L: Uint8Array): void {
  const dAll = f16BitsToF32(y[D] | (y[D + 1] << 8));
  for (let g = 0; g < QK / 16; g++) {
    const d = f(dAll * (groupScale(y, g) - 32));
    if (d === 0) continue; // keeps the quants the search chose (C's `!d`: a NaN d requantizes)
    for (let i = 16 * g; i < 16 * g + 16; i++) {
      const l = nearestIntBits(f(xb[i] / d));
      L[i] = Math.max(-4, Math.min(3, l)) + 4;
    }
  }
  for (let e = 0; e < QK; e++) {
    const p = position(e);
    if (L[e] > 3) y[p.hmask] |= 1 << p.highBit;
    y[p.qs] |= (L[e] & 3) << p.lowShift;
  }
}
