// Q4_K: super-blocks of 256 weights as { d: f16, dmin: f16, scales: u8[12], qs: u8[128] }
// (144 bytes): eight sub-blocks of 32, each x = d * sc * q - dmin * m with 6-bit
// sc, m and 4-bit q. ggml: quantize_row_q4_K_ref / dequantize_row_q4_K.
// WGSL: shaders/quant/q4_K.wgsl.

import { f16BitsToF32 } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { quantizeK4Block, quantizeK4BlockWeighted, scaleMinK4 } from './kquant-qkx2.js';

const TYPE = ggmlType('q4_K');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const f = Math.fround;

export const q4_K: QuantFormat = {
  type: TYPE,
  shader: 'quant/q4_K.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 1, errorSums: true },
  dequantize: { workgroupSize: 256, invocationsPerBlock: 8 },
  nonFinite: 'as-ggml',
  imatrix: 'optional',
  weightedKernel: 'shared-entry',

  quantizeCpu(x, out) {
    quantizeQ4K(x, out);
  },

  // quantize_row_q4_K_impl (see quantizeK4BlockWeighted).
  quantizeWeightedCpu(x, out, nPerRow, qw) {
    quantizeQ4K(x, out, qw, nPerRow);
  },

  dequantizeCpu(blocks, out) {
    const view = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const bo = b * BYTES;
      const d = f16BitsToF32(view.getUint16(bo, true));
      const min = f16BitsToF32(view.getUint16(bo + 2, true));
      for (let j = 0; j < 8; j++) {
        const [sc, m] = scaleMinK4(j, blocks, bo + 4);
        const dl = f(d * sc);
        const ml = f(min * m);
        const q = bo + 16 + (j >> 1) * 32;
        const shift = (j & 1) * 4;
        for (let l = 0; l < 32; l++) out[b * QK + j * 32 + l] = f(f(dl * ((blocks[q + l] >> shift) & 0xf)) - ml);
      }
    }
  },
};

/** quantize_row_q4_K_ref (no qw), or quantize_row_q4_K_impl row by row with per-column weights qw. */
function quantizeQ4K(x: Float32Array, out: Uint8Array, qw?: Float32Array, nPerRow = x.length): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const L = new Uint8Array(QK);
  for (let b = 0; b < x.length / QK; b++) {
    const bo = b * BYTES;
    if (qw) quantizeK4BlockWeighted(x, b * QK, 15, qw, (b % (nPerRow / QK)) * QK, false, out, view, bo, L);
    else quantizeK4Block(x, b * QK, 15, -1, 20, out, view, bo, L);
    // qs: 32 bytes per 64 weights, low nibbles the first 32, high nibbles the next
    for (let j = 0; j < QK; j += 64) {
      const q = bo + 16 + j / 2;
      for (let l = 0; l < 32; l++) out[q + l] = L[j + l] | (L[j + l + 32] << 4);
    }
  }
}
