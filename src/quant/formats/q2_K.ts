// Q2_K: super-blocks of 256 weights as { scales: u8[16], qs: u8[64], d: f16, dmin: f16 }
// (84 bytes): sixteen sub-blocks of 16, each x = d * sc * q - dmin * m with
// 4-bit sc, m (one byte per sub-block) and 2-bit q.
// ggml: quantize_row_q2_K_ref / dequantize_row_q2_K. WGSL: shaders/quant/q2_K.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { makeQkx2Quants, nearestInt } from './kquant-qkx2.js';
import { imatrixBlockWeights, makeQpQuants, QKX3_RDELTA, QKX3_RMIN, sumOf, sumSquares } from './kquant-weighted.js';

const TYPE = ggmlType('q2_K');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const f = Math.fround;

const L = new Uint8Array(QK);
const laux = new Uint8Array(16);
const weights = new Float32Array(16);
const scales = new Float32Array(16);
const mins = new Float32Array(16);

function quantizeBlock(x: Float32Array, xo: number, out: Uint8Array, view: DataView, bo: number): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 16; j++) {
    for (let l = 0; l < 16; l++) weights[l] = Math.abs(x[xo + 16 * j + l]);
    const r = makeQkx2Quants(16, 3, x, xo + 16 * j, weights, L, 16 * j, laux, -0.5, 0.1, 15, true);
    scales[j] = r.scale;
    mins[j] = r.min;
    if (r.scale > maxScale) maxScale = r.scale;
    if (r.min > maxMin) maxMin = r.min;
  }
  // scales byte j: low nibble the sub-block's scale, high nibble its min (ggml
  // stores the full int; bits past a nibble spill over as C's uint8_t would)
  if (maxScale > 0) {
    const iscale = f(15 / maxScale);
    for (let j = 0; j < 16; j++) out[bo + j] = nearestInt(f(iscale * scales[j])) & 0xff;
    view.setUint16(bo + 80, f32ToF16Bits(f(maxScale / 15)), true);
  } else {
    out.fill(0, bo, bo + 16);
    view.setUint16(bo + 80, f32ToF16Bits(0), true);
  }
  if (maxMin > 0) {
    const iscale = f(15 / maxMin);
    for (let j = 0; j < 16; j++) out[bo + j] |= (nearestInt(f(iscale * mins[j])) << 4) & 0xff;
    view.setUint16(bo + 82, f32ToF16Bits(f(maxMin / 15)), true);
  } else {
    view.setUint16(bo + 82, f32ToF16Bits(0), true);
  }
  requantizeAndPack(x, xo, out, view, bo);
}

const sw = new Float32Array(16);
const ls = new Uint8Array(16);
const lm = new Uint8Array(16);

/**
 * quantize_row_q2_K_impl's block, with per-column weights qw[qo..qo+256):
 * sigma2 = sum x^2 / 256, per sub-block of 16 weights qw * sqrt(sigma2 + x^2)
 * and make_qkx3_quants(16, 3, -0.9f, 0.05f, 36); the 4-bit scales and mins by
 * make_qp_quants(16, 15) weighted by each sub-block's weight sum.
 */
function quantizeBlockWeighted(x: Float32Array, xo: number, qw: Float32Array, qo: number, out: Uint8Array, view: DataView, bo: number): void {
  const sigma2 = f(sumSquares(x, xo, QK) / QK);
  for (let j = 0; j < 16; j++) {
    imatrixBlockWeights(qw, qo + 16 * j, x, xo + 16 * j, 16, sigma2, weights);
    sw[j] = sumOf(weights, 16);
    const r = makeQkx2Quants(16, 3, x, xo + 16 * j, weights, L, 16 * j, laux, QKX3_RMIN, QKX3_RDELTA, 36, false);
    scales[j] = r.scale;
    mins[j] = r.min;
  }
  const dm = makeQpQuants(16, 15, scales, ls, sw);
  const mm = makeQpQuants(16, 15, mins, lm, sw);
  view.setUint16(bo + 80, f32ToF16Bits(dm), true);
  view.setUint16(bo + 82, f32ToF16Bits(mm), true);
  for (let j = 0; j < 16; j++) out[bo + j] = (ls[j] | (lm[j] << 4)) & 0xff;
  requantizeAndPack(x, xo, out, view, bo);
}

/** Both paths' tail: the levels against the rounded scales and mins, packed into qs. */
function requantizeAndPack(x: Float32Array, xo: number, out: Uint8Array, view: DataView, bo: number): void {
  const dAll = f16BitsToF32(view.getUint16(bo + 80, true));
  const mAll = f16BitsToF32(view.getUint16(bo + 82, true));
  for (let j = 0; j < 16; j++) {
    const d = f(dAll * (out[bo + j] & 0xf));
    if (d === 0) continue; // C's `if (!d)`: NaN goes on
    const dm = f(mAll * (out[bo + j] >> 4));
    for (let ii = 0; ii < 16; ii++) {
      const l = nearestInt(f(f(x[xo + 16 * j + ii] + dm) / d));
      L[16 * j + ii] = Math.max(0, Math.min(3, l));
    }
  }
  // qs: byte 32h + l holds weights 128h + l + 32k in bits 2k..2k+1
  for (let j = 0; j < QK; j += 128) {
    for (let l = 0; l < 32; l++) {
      out[bo + 16 + j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
    }
  }
}

export const q2_K: QuantFormat = {
  type: TYPE,
  shader: 'quant/q2_K.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 1, errorSums: true },
  dequantize: { workgroupSize: 256, invocationsPerBlock: 16 },
  nonFinite: 'as-ggml',
  imatrix: 'optional',
  weightedKernel: 'shared-entry',

  quantizeCpu(x, out) {
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (let b = 0; b < x.length / QK; b++) quantizeBlock(x, b * QK, out, view, b * BYTES);
  },

  quantizeWeightedCpu(x, out, nPerRow, qw) {
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (let b = 0; b < x.length / QK; b++) quantizeBlockWeighted(x, b * QK, qw, (b % (nPerRow / QK)) * QK, out, view, b * BYTES);
  },

  dequantizeCpu(blocks, out) {
    const view = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const bo = b * BYTES;
      const d = f16BitsToF32(view.getUint16(bo + 80, true));
      const min = f16BitsToF32(view.getUint16(bo + 82, true));
      // sub-block j (16 weights) sits in qs bytes 32 * (j >> 3) + 16 * (j & 1), bits 2 * ((j >> 1) & 3)
      for (let j = 0; j < 16; j++) {
        const sc = blocks[bo + j];
        const dl = f(d * (sc & 0xf));
        const ml = f(min * (sc >> 4));
        const q = bo + 16 + 32 * (j >> 3) + 16 * (j & 1);
        const shift = 2 * ((j >> 1) & 3);
        for (let l = 0; l < 16; l++) out[b * QK + j * 16 + l] = f(f(dl * ((blocks[q + l] >> shift) & 3)) - ml);
      }
    }
  },
};
