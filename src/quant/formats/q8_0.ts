// Q8_0: blocks of 32 weights as { d: f16, qs: i8[32] }, x = d * q.
// ggml: quantize_row_q8_0_ref / dequantize_row_q8_0. WGSL: shaders/quant/q8_0.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../ggml-types.js';
import { roundf } from './common.js';

const QK = 32;
const BYTES = 34;
const f = Math.fround;

export const q8_0: QuantFormat = {
  type: ggmlType('q8_0'),
  shader: 'quant/q8_0.wgsl',
  quantizeBlocksPerWorkgroup: 128,
  dequantizeBlocksPerWorkgroup: 64,

  quantizeCpu(x, out) {
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (let b = 0; b < x.length / QK; b++) {
      let amax = 0;
      for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[b * QK + j]));
      const d = f(amax / 127);
      const id = d ? f(1 / d) : 0;
      view.setUint16(b * BYTES, f32ToF16Bits(d), true);
      for (let j = 0; j < QK; j++) view.setInt8(b * BYTES + 2 + j, roundf(f(x[b * QK + j] * id)));
    }
  },

  dequantizeCpu(blocks, out) {
    const view = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const d = f16BitsToF32(view.getUint16(b * BYTES, true));
      for (let j = 0; j < QK; j++) out[b * QK + j] = f(view.getInt8(b * BYTES + 2 + j) * d);
    }
  },
};
