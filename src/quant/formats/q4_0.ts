// Q4_0: blocks of 32 weights as { d: f16, qs: u8[16] } (18 bytes), x = d * (q - 8);
// byte j holds element j in its low nibble and element j + 16 in its high one.
// ggml: quantize_row_q4_0_ref / dequantize_row_q4_0. WGSL: shaders/quant/q4_0.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { makeQxQuants } from './kquant-qx.js';
import { forEachWeightedBlock } from './kquant-weighted.js';
import { absMax, allFinite, bytesView, cInt8, inverseOrZero, writeNonFiniteBlock } from './block-helpers.js';

const TYPE = ggmlType('q4_0');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const f = Math.fround;

export const q4_0: QuantFormat = {
  type: TYPE,
  shader: 'quant/q4_0.wgsl',
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
      const d = f(max / -8);
      const id = inverseOrZero(d);
      view.setUint16(b * BYTES, f32ToF16Bits(d), true);
      for (let j = 0; j < QK / 2; j++) {
        const q0 = Math.min(15, cInt8(f(f(x[o + j] * id) + 8.5)));
        const q1 = Math.min(15, cInt8(f(f(x[o + QK / 2 + j] * id) + 8.5)));
        out[b * BYTES + 2 + j] = (q0 & 0xff) | ((q1 << 4) & 0xff);
      }
    }
  },

  // quantize_row_q4_0_impl: per row sigma2 = sum x^2 / n_per_row, per block
  // weights qw * sqrt(sigma2 + x^2) and make_qx_quants(32, 8, rmse_type 1).
  quantizeWeightedCpu(x, out, nPerRow, qw) {
    const view = bytesView(out);
    const L = new Uint8Array(QK);
    forEachWeightedBlock(x, nPerRow, qw, QK, BYTES, out, [0], (o, b, weight) => {
      const d = makeQxQuants(QK, 8, x.subarray(o, o + QK), 0, L, weight);
      view.setUint16(b * BYTES, f32ToF16Bits(d), true);
      for (let j = 0; j < QK / 2; j++) out[b * BYTES + 2 + j] = L[j] | (L[j + 16] << 4);
    });
  },

  dequantizeCpu(blocks, out) {
    const view = bytesView(blocks);
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const d = f16BitsToF32(view.getUint16(b * BYTES, true));
      for (let j = 0; j < QK / 2; j++) {
        const q = blocks[b * BYTES + 2 + j];
        out[b * QK + j] = f(((q & 15) - 8) * d);
        out[b * QK + QK / 2 + j] = f(((q >> 4) - 8) * d);
      }
    }
  },
};
