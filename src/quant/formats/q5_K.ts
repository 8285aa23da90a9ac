// Q5_K: super-blocks of 256 weights as { d: f16, dmin: f16, scales: u8[12], qh: u8[32], qs: u8[128] }
// (176 bytes): eight sub-blocks of 32, each x = d * sc * q - dmin * m with 6-bit
// sc, m and 5-bit q (low 4 bits in qs, the fifth in qh).
// ggml: quantize_row_q5_K_ref / dequantize_row_q5_K. WGSL: shaders/quant/q5_K.wgsl.

import { f16BitsToF32 } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { quantizeK4Block, quantizeK4BlockWeighted, scaleMinK4 } from './kquant-qkx2.js';

const TYPE = ggmlType('q5_K');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const f = Math.fround;

export const q5_K: QuantFormat = {
  type: TYPE,
  shader: 'quant/q5_K.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 1, errorSums: true },
  dequantize: { workgroupSize: 256, invocationsPerBlock: 8 },
  nonFinite: 'as-ggml',
  imatrix: 'optional',
  weightedKernel: 'shared-entry',

  quantizeCpu(x, out) {
    quantizeQ5K(x, out);
  },

  // quantize_row_q5_K_impl (see quantizeK4BlockWeighted).
  quantizeWeightedCpu(x, out, nPerRow, qw) {
    quantizeQ5K(x, out, qw, nPerRow);
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
        const q = bo + 48 + (j >> 1) * 32;
        const shift = (j & 1) * 4;
        for (let l = 0; l < 32; l++) {
          const v = ((blocks[q + l] >> shift) & 0xf) | (((blocks[bo + 16 + l] >> j) & 1) << 4);
          out[b * QK + j * 32 + l] = f(f(dl * v) - ml);
        }
      }
    }
  },
};

/** quantize_row_q5_K_ref (no qw), or quantize_row_q5_K_impl row by row with per-column weights qw. */
function quantizeQ5K(x: Float32Array, out: Uint8Array, qw?: Float32Array, nPerRow = x.length): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const L = new Uint8Array(QK);
  for (let b = 0; b < x.length / QK; b++) {
    const bo = b * BYTES;
    if (qw) quantizeK4BlockWeighted(x, b * QK, 31, qw, (b % (nPerRow / QK)) * QK, true, out, view, bo, L);
    else quantizeK4Block(x, b * QK, 31, -0.5, 15, out, view, bo, L);
    // qh byte l: bit 2p = fifth bit of weight 64p + l, bit 2p+1 of weight 64p + 32 + l
    out.fill(0, bo + 16, bo + 48);
    for (let p = 0; p < 4; p++) {
      const q = bo + 48 + p * 32;
      for (let l = 0; l < 32; l++) {
        const l1 = L[64 * p + l];
        const l2 = L[64 * p + 32 + l];
        out[bo + 16 + l] |= ((l1 >> 4) << (2 * p)) | ((l2 >> 4) << (2 * p + 1));
        out[q + l] = (l1 & 0xf) | ((l2 & 0xf) << 4);
      }
    }
  }
}
