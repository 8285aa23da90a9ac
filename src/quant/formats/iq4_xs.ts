// IQ4_XS: blocks of 256 weights as { d: f16, scales_h: u16, scales_l: u8[4], qs: u8[128] }
// (136 bytes): eight sub-blocks of 32 with 6-bit scales ls (low 4 bits in scales_l,
// high 2 in scales_h), x = d * (ls - 32) * kvalues_iq4nl[q]; each sub-block's 16
// bytes pack element j low and j + 16 high, as IQ4_NL.
// ggml: quantize_iq4_xs (quantize_row_iq4_nl_impl with no importance matrix and
// ntry 7, as ggml_quantize_chunk calls it) / dequantize_row_iq4_xs. WGSL: shaders/quant/iq4_xs.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { imatrixBlockWeights } from './kquant-weighted.js';
import { iq4BlockScale, iq4PackBlock, iq4Sigma2 } from './iq4_nl.js';
import { allFinite, bytesView, cNearestInt, inverseOrZero, KVALUES_IQ4NL, writeNonFiniteBlock } from './block-helpers.js';

const SUB = 32;
const TYPE = ggmlType('iq4_xs');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const f = Math.fround;

export const iq4_xs: QuantFormat = {
  type: TYPE,
  shader: 'quant/iq4_xs.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 1 },
  dequantize: { workgroupSize: 64, invocationsPerBlock: 1 },
  nonFinite: 'marked',
  imatrix: 'optional',
  weightedKernel: 'shared-entry',

  quantizeCpu(x, out) {
    quantizeIq4Xs(x, out);
  },

  // quantize_row_iq4_nl_impl(QK_K, 32) with quant_weights: per super-block
  // sigma2 = sum x^2 * 2/256, weights qw * sqrt(sigma2 + x^2) in place of x^2.
  quantizeWeightedCpu(x, out, nPerRow, qw) {
    quantizeIq4Xs(x, out, qw, nPerRow);
  },

  dequantizeCpu(blocks, out) {
    const view = bytesView(blocks);
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const ob = b * BYTES;
      const d = f16BitsToF32(view.getUint16(ob, true));
      const scalesH = view.getUint16(ob + 2, true);
      for (let ib = 0; ib < QK / SUB; ib++) {
        const ls = ((blocks[ob + 4 + (ib >> 1)] >> (4 * (ib % 2))) & 15) | (((scalesH >> (2 * ib)) & 3) << 4);
        const dl = f(d * (ls - 32));
        for (let j = 0; j < 16; j++) {
          const q = blocks[ob + 8 + 16 * ib + j];
          out[b * QK + ib * SUB + j] = f(dl * KVALUES_IQ4NL[q & 15]);
          out[b * QK + ib * SUB + 16 + j] = f(dl * KVALUES_IQ4NL[q >> 4]);
        }
      }
    }
  },
};

/** quantize_iq4_xs: without qw as ggml_quantize_chunk calls it with NULL, with qw row by row. */
function quantizeIq4Xs(x: Float32Array, out: Uint8Array, qw?: Float32Array, nPerRow = x.length): void {
  const view = bytesView(out);
  const weight = new Float32Array(SUB);
  const scales = new Float32Array(QK / SUB);
  for (let b = 0; b < x.length / QK; b++) {
    const o = b * QK;
    const ob = b * BYTES;
    if (!allFinite(x, o, QK)) {
      writeNonFiniteBlock(out, ob, BYTES, [0]);
      continue;
    }
    let maxScale = 0;
    let amaxScale = 0;
    const sigma2 = qw ? iq4Sigma2(x, o, QK) : 0;
    for (let ib = 0; ib < QK / SUB; ib++) {
      if (qw) imatrixBlockWeights(qw, (b % (nPerRow / QK)) * QK + ib * SUB, x, o + ib * SUB, SUB, sigma2, weight);
      const s = iq4BlockScale(x, o + ib * SUB, qw ? weight : undefined);
      scales[ib] = s;
      if (Math.abs(s) > amaxScale) {
        amaxScale = Math.abs(s);
        maxScale = s;
      }
    }
    // The super-block scale; each sub-block's is a 6-bit signed multiple of it.
    const d = f(-maxScale / 32);
    const id = inverseOrZero(d);
    view.setUint16(ob, f32ToF16Bits(d), true);
    let scalesH = 0;
    for (let ib = 0; ib < QK / SUB; ib++) {
      const l = Math.max(-32, Math.min(31, cNearestInt(f(id * scales[ib]))));
      const dl = f(d * l);
      iq4PackBlock(x, o + ib * SUB, inverseOrZero(dl), out, ob + 8 + 16 * ib);
      const ls = l + 32;
      out[ob + 4 + (ib >> 1)] = ib % 2 === 0 ? ls & 15 : out[ob + 4 + (ib >> 1)] | ((ls & 15) << 4);
      scalesH |= (ls >> 4) << (2 * ib);
    }
    view.setUint16(ob + 2, scalesH, true);
  }
}
