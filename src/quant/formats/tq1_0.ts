// TQ1_0 (ternary, 1.6875 bits a weight): blocks of 256 weights as
// { qs: u8[48], qh: u8[4], d: f16 } (54 bytes), x = d * (t - 1) with trits t in 0..2.
// Five trits t0..t4 share a byte as ceil((t0*81 + t1*27 + t2*9 + t3*3 + t4) * 256 / 243),
// so trit n is recovered as ((byte * 3^n) mod 256) * 3 >> 8. qs[0..32) hold weights
// m + 32n of the first 160, qs[32..48) weights 160 + m + 16n, qh (four trits, shifted
// up one) weights 240 + j + 4m.
// ggml: quantize_row_tq1_0_ref / dequantize_row_tq1_0. WGSL: shaders/quant/tq1_0.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { allFinite, bytesView, cLroundInt, inverseOrZero, ternaryAbsMax, writeNonFiniteBlock } from './block-helpers.js';

const TYPE = ggmlType('tq1_0');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const POW3 = [1, 3, 9, 27, 81, 243];
const f = Math.fround;

/** Packs trits (as base-3 digits, most significant first) into one byte, rounding up. */
function packTrits(q: number): number {
  return Math.floor(((q & 0xff) * 256 + 242) / 243) & 0xff;
}

export const tq1_0: QuantFormat = {
  type: TYPE,
  shader: 'quant/tq1_0.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 2 },
  dequantize: { workgroupSize: 64, invocationsPerBlock: 1 },
  nonFinite: 'marked',
  imatrix: 'ignored',

  quantizeCpu(x, out) {
    const view = bytesView(out);
    for (let b = 0; b < x.length / QK; b++) {
      const o = b * QK;
      const ob = b * BYTES;
      if (!allFinite(x, o, QK)) {
        writeNonFiniteBlock(out, ob, BYTES, [52]);
        continue;
      }
      const d = ternaryAbsMax(x, o, QK);
      const id = inverseOrZero(d);
      const trit = (i: number) => cLroundInt(f(x[o + i] * id)) + 1;
      for (let m = 0; m < 32; m++) {
        let q = 0;
        for (let n = 0; n < 5; n++) q = (q * 3 + trit(m + n * 32)) & 0xff;
        out[ob + m] = packTrits(q);
      }
      for (let m = 0; m < 16; m++) {
        let q = 0;
        for (let n = 0; n < 5; n++) q = (q * 3 + trit(160 + m + n * 16)) & 0xff;
        out[ob + 32 + m] = packTrits(q);
      }
      for (let j = 0; j < 4; j++) {
        let q = 0;
        for (let m = 0; m < 4; m++) q = (q * 3 + trit(240 + j + m * 4)) & 0xff;
        out[ob + 48 + j] = packTrits(q * 3);
      }
      view.setUint16(ob + 52, f32ToF16Bits(d), true);
    }
  },

  dequantizeCpu(blocks, out) {
    const view = bytesView(blocks);
    const trit = (byte: number, n: number) => ((((byte * POW3[n]) & 0xff) * 3) >> 8) - 1;
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const ob = b * BYTES;
      const o = b * QK;
      const d = f16BitsToF32(view.getUint16(ob + 52, true));
      for (let n = 0; n < 5; n++) {
        for (let m = 0; m < 32; m++) out[o + n * 32 + m] = f(trit(blocks[ob + m], n) * d);
        for (let m = 0; m < 16; m++) out[o + 160 + n * 16 + m] = f(trit(blocks[ob + 32 + m], n) * d);
      }
      for (let n = 0; n < 4; n++) {
        for (let j = 0; j < 4; j++) out[o + 240 + n * 4 + j] = f(trit(blocks[ob + 48 + j], n) * d);
      }
    }
  },
};
