// MXFP4 (OCP microscaling FP4): blocks of 32 weights as { e: E8M0 u8, qs: u8[16] } (17 bytes),
// x = 2^(e - 128) * kvalues_mxfp4[q] (E2M1 values doubled, the scale halved);
// byte j holds element j in its low nibble and element j + 16 in its high one.
// ggml: quantize_row_mxfp4_ref / dequantize_row_mxfp4. WGSL: shaders/quant/mxfp4.wgsl.

import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { allFinite, cUint8, e8m0ToF32Half, KVALUES_MXFP4 } from './block-helpers.js';

const TYPE = ggmlType('mxfp4');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const f = Math.fround;

/** ggml's best_index_mxfp4: the first level with the smallest |level * e - x| in float32 (NaN gives 0). */
function bestIndex(x: number, e: number): number {
  let best = 0;
  let bestErr = f(Math.abs(f(f(KVALUES_MXFP4[0] * e) - x)));
  for (let i = 1; i < 16; i++) {
    const err = f(Math.abs(f(f(KVALUES_MXFP4[i] * e) - x)));
    if (err < bestErr) {
      best = i;
      bestErr = err;
    }
  }
  return best;
}

/** The block exponent: C's (uint8_t)(floorf(log2f(amax)) - 2 + 127), log2f correctly rounded. */
export function mxfp4Exponent(amax: number): number {
  if (!(amax > 0)) return 0;
  return cUint8(f(f(Math.floor(f(Math.log2(amax))) - 2) + 127));
}

export const mxfp4: QuantFormat = {
  type: TYPE,
  shader: 'quant/mxfp4.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 4 },
  dequantize: { workgroupSize: 64, invocationsPerBlock: 1 },
  nonFinite: 'marked',
  imatrix: 'ignored',

  quantizeCpu(x, out) {
    for (let b = 0; b < x.length / QK; b++) {
      const o = b * QK;
      if (!allFinite(x, o, QK)) {
        // E8M0 0xff is the OCP NaN code (ggml decodes it as 2^127; the zero quants then give zeros).
        out.fill(0, b * BYTES, (b + 1) * BYTES);
        out[b * BYTES] = 0xff;
        continue;
      }
      let amax = 0;
      for (let j = 0; j < QK; j++) {
        const a = Math.abs(x[o + j]);
        if (amax < a) amax = a;
      }
      const e = mxfp4Exponent(amax);
      const d = e8m0ToF32Half(e);
      out[b * BYTES] = e;
      for (let j = 0; j < QK / 2; j++) {
        out[b * BYTES + 1 + j] = bestIndex(x[o + j], d) | (bestIndex(x[o + QK / 2 + j], d) << 4);
      }
    }
  },

  dequantizeCpu(blocks, out) {
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const d = e8m0ToF32Half(blocks[b * BYTES]);
      for (let j = 0; j < QK / 2; j++) {
        const q = blocks[b * BYTES + 1 + j];
        out[b * QK + j] = f(KVALUES_MXFP4[q & 15] * d);
        out[b * QK + QK / 2 + j] = f(KVALUES_MXFP4[q >> 4] * d);
      }
    }
  },
};
