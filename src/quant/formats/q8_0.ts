// Q8_0: blocks of 32 weights as { d: f16, qs: i8[32] }, x = d * q.
// ggml: quantize_row_q8_0_ref / dequantize_row_q8_0. WGSL: shaders/quant/q8_0.wgsl.
// A block holding NaN or ±Inf is marked invalid (d = float16 NaN, quants 0), as in
// block-helpers.ts; finite blocks get ggml's bytes.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { allFinite, cLroundInt, inverseOrZero, writeNonFiniteBlock } from './block-helpers.js';

const TYPE = ggmlType('q8_0');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const f = Math.fround;

export const q8_0: QuantFormat = {
  type: TYPE,
  shader: 'quant/q8_0.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 2, errorSums: true },
  dequantize: { workgroupSize: 64, invocationsPerBlock: 1 },
  nonFinite: 'marked',
  imatrix: 'ignored',

  quantizeCpu(x, out) {
    for (let b = 0; b < x.length / QK; b++) {
      const o = b * QK;
      const at = b * BYTES;
      if (!allFinite(x, o, QK)) {
        writeNonFiniteBlock(out, at, BYTES, [0]);
        continue;
      }
      let amax = 0;
      for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[o + j]));
      const d = f(amax / 127);
      const id = inverseOrZero(d);
      const h = f32ToF16Bits(d);
      out[at] = h & 0xff;
      out[at + 1] = h >> 8;
      // roundf, then C's conversion to int8_t (x86-64: 0 where x * id overflowed)
      for (let j = 0; j < QK; j++) out[at + 2 + j] = cLroundInt(f(x[o + j] * id)) & 0xff;
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
