// Q4_1: blocks of 32 weights as { d: f16, m: f16, qs: u8[16] } (20 bytes), x = d * q + m;
// byte j holds element j in its low nibble and element j + 16 in its high one.
// ggml: quantize_row_q4_1_ref / dequantize_row_q4_1. WGSL: shaders/quant/q4_1.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { makeQkx2Quants } from './kquant-qkx2.js';
import { forEachWeightedBlock, QKX3_RDELTA, QKX3_RMIN } from './kquant-weighted.js';
import { allFinite, bytesView, cInt8, inverseOrZero, minMax, writeNonFiniteBlock } from './block-helpers.js';

const TYPE = ggmlType('q4_1');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const f = Math.fround;

export const q4_1: QuantFormat = {
  type: TYPE,
  shader: 'quant/q4_1.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 1, errorSums: true },
  dequantize: { workgroupSize: 64, invocationsPerBlock: 1 },
  nonFinite: 'marked',
  imatrix: 'optional',
  weightedKernel: 'row-entry',

  quantizeCpu(x, out) {
    const view = bytesView(out);
    for (let b = 0; b < x.length / QK; b++) {
      const o = b * QK;
      if (!allFinite(x, o, QK)) {
        writeNonFiniteBlock(out, b * BYTES, BYTES, [0, 2]);
        continue;
      }
      const { min, max } = minMax(x, o, QK);
      const d = f(f(max - min) / 15);
      const id = inverseOrZero(d);
      view.setUint16(b * BYTES, f32ToF16Bits(d), true);
      view.setUint16(b * BYTES + 2, f32ToF16Bits(min), true);
      for (let j = 0; j < QK / 2; j++) {
        const q0 = Math.min(15, cInt8(f(f(f(x[o + j] - min) * id) + 0.5)));
        const q1 = Math.min(15, cInt8(f(f(f(x[o + QK / 2 + j] - min) * id) + 0.5)));
        out[b * BYTES + 4 + j] = (q0 & 0xff) | ((q1 << 4) & 0xff);
      }
    }
  },

  // quantize_row_q4_1_impl: per row sigma2 = sum x^2 / n_per_row, per block
  // weights qw * sqrt(sigma2 + x^2) and make_qkx3_quants(32, 15, -0.9f, 0.05f, 36).
  quantizeWeightedCpu(x, out, nPerRow, qw) {
    const view = bytesView(out);
    const L = new Uint8Array(QK);
    const laux = new Uint8Array(QK);
    forEachWeightedBlock(x, nPerRow, qw, QK, BYTES, out, [0, 2], (o, b, weight) => {
      const { scale, min } = makeQkx2Quants(QK, 15, x, o, weight, L, 0, laux, QKX3_RMIN, QKX3_RDELTA, 36, false);
      view.setUint16(b * BYTES, f32ToF16Bits(scale), true);
      view.setUint16(b * BYTES + 2, f32ToF16Bits(f(-min)), true);
      for (let j = 0; j < QK / 2; j++) out[b * BYTES + 4 + j] = L[j] | (L[j + 16] << 4);
    });
  },

  dequantizeCpu(blocks, out) {
    const view = bytesView(blocks);
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const d = f16BitsToF32(view.getUint16(b * BYTES, true));
      const m = f16BitsToF32(view.getUint16(b * BYTES + 2, true));
      for (let j = 0; j < QK / 2; j++) {
        const q = blocks[b * BYTES + 4 + j];
        out[b * QK + j] = f(f((q & 15) * d) + m);
        out[b * QK + QK / 2 + j] = f(f((q >> 4) * d) + m);
      }
    }
  },
};
