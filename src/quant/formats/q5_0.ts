// Q5_0: blocks of 32 weights as { d: f16, qh: u32, qs: u8[16] } (22 bytes), x = d * (q - 16);
// the low 4 bits of q as in Q4_0, bit 4 of element j in bit j of qh.
// ggml: quantize_row_q5_0_ref / dequantize_row_q5_0. WGSL: shaders/quant/q5_0.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { makeQxQuants } from './kquant-qx.js';
import { forEachWeightedBlock } from './kquant-weighted.js';
import { absMax, allFinite, bytesView, cInt8, inverseOrZero, writeNonFiniteBlock } from './block-helpers.js';

const TYPE = ggmlType('q5_0');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const f = Math.fround;

export const q5_0: QuantFormat = {
  type: TYPE,
  shader: 'quant/q5_0.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 2, errorSums: true },
  dequantize: { workgroupSize: 64, invocationsPerBlock: 1 },
  nonFinite: 'marked',
  imatrix: 'optional',
  weightedKernel: 'row-entry',

  quantizeCpu(x, out) {
    const view = bytesView(out);
    for (let b = 0; b < x.length / QK; b++) {
      const o = b * QK;
      if (!allFinite(x, o, QK)) {
        writeNonFiniteBlock(out, b * BYTES, BYTES, [0]);
        continue;
      }
      const { max } = absMax(x, o, QK);
      const d = f(max / -16);
      const id = inverseOrZero(d);
      view.setUint16(b * BYTES, f32ToF16Bits(d), true);
      let qh = 0;
      for (let j = 0; j < QK / 2; j++) {
        const q0 = Math.min(31, cInt8(f(f(x[o + j] * id) + 16.5))) & 0xff;
        const q1 = Math.min(31, cInt8(f(f(x[o + QK / 2 + j] * id) + 16.5))) & 0xff;
        out[b * BYTES + 6 + j] = (q0 & 15) | ((q1 & 15) << 4);
        qh |= ((q0 & 0x10) >> 4) << j;
        qh |= ((q1 & 0x10) >> 4) << (j + QK / 2);
      }
      view.setUint32(b * BYTES + 2, qh >>> 0, true);
    }
  },

  // quantize_row_q5_0_impl: per row sigma2 = sum x^2 / n_per_row, per block
  // weights qw * sqrt(sigma2 + x^2) and make_qx_quants(32, 16, rmse_type 1).
  quantizeWeightedCpu(x, out, nPerRow, qw) {
    const view = bytesView(out);
    const L = new Uint8Array(QK);
    forEachWeightedBlock(x, nPerRow, qw, QK, BYTES, out, [0], (o, b, weight) => {
      const d = makeQxQuants(QK, 16, x.subarray(o, o + QK), 0, L, weight);
      view.setUint16(b * BYTES, f32ToF16Bits(d), true);
      let qh = 0;
      for (let j = 0; j < QK / 2; j++) {
        out[b * BYTES + 6 + j] = (L[j] & 15) | ((L[j + 16] & 15) << 4);
        qh |= ((L[j] & 0x10) >> 4) << j;
        qh |= ((L[j + 16] & 0x10) >> 4) << (j + QK / 2);
      }
      view.setUint32(b * BYTES + 2, qh >>> 0, true);
    });
  },

  dequantizeCpu(blocks, out) {
    const view = bytesView(blocks);
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const d = f16BitsToF32(view.getUint16(b * BYTES, true));
      const qh = view.getUint32(b * BYTES + 2, true);
      for (let j = 0; j < QK / 2; j++) {
        const q = blocks[b * BYTES + 6 + j];
        const h0 = ((qh >>> j) << 4) & 0x10;
        const h1 = (qh >>> (j + 12)) & 0x10;
        out[b * QK + j] = f((((q & 15) | h0) - 16) * d);
        out[b * QK + QK / 2 + j] = f((((q >> 4) | h1) - 16) * d);
      }
    }
  },
};
