// TQ2_0 (ternary, 2 bits a weight): blocks of 256 weights as { qs: u8[64], d: f16 } (66 bytes),
// x = d * (q - 1) with q in 0..2. Each 128 weights fill 32 bytes: byte m holds
// weights m, m + 32, m + 64, m + 96 in bits 0-1, 2-3, 4-5, 6-7.
// ggml: quantize_row_tq2_0_ref / dequantize_row_tq2_0. WGSL: shaders/quant/tq2_0.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { allFinite, bytesView, cLroundInt, inverseOrZero, ternaryAbsMax, writeNonFiniteBlock } from './block-helpers.js';

const TYPE = ggmlType('tq2_0');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const f = Math.fround;

export const tq2_0: QuantFormat = {
  type: TYPE,
  shader: 'quant/tq2_0.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 2 },
  dequantize: { workgroupSize: 64, invocationsPerBlock: 1 },
  nonFinite: 'marked',
  imatrix: 'ignored',

  quantizeCpu(x, out) {
    const view = bytesView(out);
    for (let b = 0; b < x.length / QK; b++) {
      const o = b * QK;
      if (!allFinite(x, o, QK)) {
        writeNonFiniteBlock(out, b * BYTES, BYTES, [64]);
        continue;
      }
      const d = ternaryAbsMax(x, o, QK);
      const id = inverseOrZero(d);
      for (let half = 0; half < 2; half++) {
        for (let m = 0; m < 32; m++) {
          let q = 0;
          for (let n = 0; n < 4; n++) {
            const xi = cLroundInt(f(x[o + half * 128 + m + n * 32] * id)) + 1;
            q += (xi & 3) << (2 * n);
          }
          out[b * BYTES + half * 32 + m] = q & 0xff;
        }
      }
      view.setUint16(b * BYTES + 64, f32ToF16Bits(d), true);
    }
  },

  dequantizeCpu(blocks, out) {
    const view = bytesView(blocks);
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const d = f16BitsToF32(view.getUint16(b * BYTES + 64, true));
      for (let half = 0; half < 2; half++) {
        for (let l = 0; l < 4; l++) {
          for (let m = 0; m < 32; m++) {
            const q = (blocks[b * BYTES + half * 32 + m] >> (2 * l)) & 3;
            out[b * QK + half * 128 + l * 32 + m] = f((q - 1) * d);
          }
        }
      }
    }
  },
};
