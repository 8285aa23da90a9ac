// Q6_K: super-blocks of 256 weights in 16 groups of 16, x = d * scale[g] * q,
// q in [-32, 32) as 6 bits (ql: low 4 bits, qh: high 2), scale an int8,
// d float16 (210 bytes). ggml: quantize_row_q6_K_ref / dequantize_row_q6_K.
// ggml's bytes for every input, NaN, ±Inf and overflowing float32 sums
// included (a group holding NaN gets a NaN scale, so an 8-bit scale of 0 and
// the quants of make_qx_quants' first pass; d may be ±Inf, |x| >~ 2.7e8);
// see kquant-qx.ts. WGSL: shaders/quant/q6_K.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { GROUP_MAX_EPS, largestMagnitude, makeQxQuants, nearestIntBits } from './kquant-qx.js';

const TYPE = ggmlType('q6_K');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const QH = 128; // byte offset of qh
const SCALES = 192;
const D = 208;
const f = Math.fround;

/** Byte offsets of element e's low nibble (in ql) and high bits (in qh), and their shifts. */
function position(e: number): { ql: number; lowShift: number; qh: number; highShift: number } {
  const half = e >> 7;
  const g = (e >> 5) & 3;
  const l = e & 31;
  return { ql: half * 64 + (g & 1) * 32 + l, lowShift: (g >> 1) * 4, qh: QH + half * 32 + l, highShift: 2 * g };
}

export const q6_K: QuantFormat = {
  type: TYPE,
  shader: 'quant/q6_K.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 2, errorSums: true },
  dequantize: { workgroupSize: 256, invocationsPerBlock: 16 },
  nonFinite: 'as-ggml',
  imatrix: 'optional',
  weightedKernel: 'own-entry',

  quantizeCpu(x, out) {
    quantizeQ6K(x, out);
  },

  // quantize_row_q6_K_impl: make_qx_quants(16, 32) with the raw per-column weights.
  quantizeWeightedCpu(x, out, nPerRow, qw) {
    quantizeQ6K(x, out, qw, nPerRow);
  },

  dequantizeCpu(blocks, out) {
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const y = blocks.subarray(b * BYTES, (b + 1) * BYTES);
      const d = f16BitsToF32(y[D] | (y[D + 1] << 8));
      for (let e = 0; e < QK; e++) {
        const p = position(e);
        const q = (((y[p.ql] >> p.lowShift) & 15) | (((y[p.qh] >> p.highShift) & 3) << 4)) - 32;
        const sc = (y[SCALES + (e >> 4)] << 24) >> 24;
        out[b * QK + e] = f(f(d * sc) * q);
      }
    }
  },
};

/** quantize_row_q6_K_ref (no qw), or quantize_row_q6_K_impl row by row with per-column weights qw. */
function quantizeQ6K(x: Float32Array, out: Uint8Array, qw?: Float32Array, nPerRow = x.length): void {
  const L = new Uint8Array(QK);
  const scales = new Float32Array(QK / 16);
  for (let b = 0; b < x.length / QK; b++) {
    const xb = x.subarray(b * QK, (b + 1) * QK);
    const y = out.subarray(b * BYTES, (b + 1) * BYTES);
    y.fill(0);
    const qo = (b % (nPerRow / QK)) * QK;
    for (let g = 0; g < QK / 16; g++) scales[g] = makeQxQuants(16, 32, xb, 16 * g, L, qw, qo + 16 * g);
    const { max: maxScale, amax: maxAbsScale } = largestMagnitude(scales, 0, QK / 16);
    if (maxAbsScale < GROUP_MAX_EPS) continue; // all zero, d = +0
    const iscale = f(-128 / maxScale);
    const dBits = f32ToF16Bits(f(1 / iscale));
    y[D] = dBits & 0xff;
    y[D + 1] = dBits >> 8;
    const dAll = f16BitsToF32(dBits);
    for (let g = 0; g < QK / 16; g++) {
      // int8_t scales[g] = MIN(127, nearest_int(...)): wrapped to 8 bits
      const sc = (Math.min(127, nearestIntBits(f(iscale * scales[g]))) << 24) >> 24;
      y[SCALES + g] = sc & 0xff;
      const d = f(dAll * sc);
      if (d === 0) continue; // keeps the quants make_qx_quants chose (C's `!d`: a NaN d requantizes)
      for (let i = 16 * g; i < 16 * g + 16; i++) {
        const l = nearestIntBits(f(xb[i] / d));
        L[i] = Math.max(-32, Math.min(31, l)) + 32;
      }
    }
    for (let e = 0; e < QK; e++) {
      const p = position(e);
      y[p.ql] |= (L[e] & 15) << p.lowShift;
      y[p.qh] |= (L[e] >> 4) << p.highShift;
    }
  }
}
