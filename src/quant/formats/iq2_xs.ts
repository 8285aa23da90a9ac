// IQ2_XS: blocks of 256 weights as { d: f16, qs: u16[32], scales: u8[8] } (74 bytes):
// sixteen sub-blocks of 16, each two groups of 8 whose u16 holds a point of the
// 512-point E8 grid (bits 0-8) and 7 sign bits (9-15; the 8th makes the count of
// negatives even); sub-block scale s (4 bits, scales[ib / 2] low / high nibble):
// x = d * (0.5 + s) / 4 * grid[j] * sign.
// ggml: quantize_iq2_xs (quantize_row_iq2_xs_impl; ggml asserts quant_weights:
// ggml_quantize_requires_imatrix) / dequantize_row_iq2_xs. WGSL: shaders/quant/iq2_xs.wgsl.

import { ArgumentError } from '../../errors.js';
import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { iq2xsGpuTables, iq2xsGrid, KMASK_IQ2XS_TABLE, KSIGNS_IQ2XS_TABLE } from '../grids/iq2xs.js';
import { imatrixBlockWeights, sumSquares } from './kquant-weighted.js';
import { bytesView, forEachIqBlock } from './block-helpers.js';
import { scaleCode, searchSubBlock16, splitSigns } from './iq2_common.js';

const TYPE = ggmlType('iq2_xs');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const GROUP_MAX_EPS = Math.fround(1e-15);
const f = Math.fround;

export const iq2_xs: QuantFormat = {
  type: TYPE,
  shader: 'quant/iq2_xs.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 2 },
  dequantize: { workgroupSize: 64, invocationsPerBlock: 8 },
  nonFinite: 'marked',
  tables: () => iq2xsGpuTables(512),
  weightedKernel: 'own-entry',
  // ggml asserts ("point not on grid") once float32 distances overflow, from |x| of about 1e12
  ggmlAbortsFrom: 1e11,
  imatrix: 'required',

  quantizeCpu() {
    throw new ArgumentError('iq2_xs needs an importance matrix: ggml quantizes it only with quant_weights (ggml_quantize_requires_imatrix)');
  },

  quantizeWeightedCpu(x, out, nPerRow, qw) {
    quantizeIq2Xs(x, out, nPerRow, qw);
  },

  dequantizeCpu(blocks, out) {
    const view = bytesView(blocks);
    const { grid } = iq2xsGrid(512);
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const ob = b * BYTES;
      const d = f16BitsToF32(view.getUint16(ob, true));
      for (let ib = 0; ib < QK / 16; ib++) {
        const s = (blocks[ob + 66 + (ib >> 1)] >> (4 * (ib & 1))) & 15;
        const db = f(f(d * (0.5 + s)) * 0.25);
        for (let k = 0; k < 2; k++) {
          const q = view.getUint16(ob + 2 + 2 * (2 * ib + k), true);
          const p = 8 * (q & 511);
          const signs = KSIGNS_IQ2XS_TABLE[q >> 9];
          const y = b * QK + 16 * ib + 8 * k;
          for (let j = 0; j < 8; j++) out[y + j] = f(db * grid[p + j]) * (signs & KMASK_IQ2XS_TABLE[j] ? -1 : 1);
        }
      }
    }
  },
};

const weight = new Float32Array(16);
const waux = new Float32Array(16);
const xval = new Float32Array(16);
const L = new Int8Array(16);
const index = new Int32Array(2);
const scales = new Float32Array(QK / 16);

/** quantize_iq2_xs: rows of nPerRow values, quant_weights qw (nPerRow values). */
function quantizeIq2Xs(x: Float32Array, out: Uint8Array, nPerRow: number, qw: Float32Array): void {
  const g = iq2xsGrid(512);
  const view = bytesView(out);
  forEachIqBlock(x, out, QK, BYTES, nPerRow, (o, ob, qo) => {
    const sigma2 = f(sumSquares(x, o, QK) / QK);
    let maxScale = 0;
    for (let ib = 0; ib < QK / 16; ib++) {
      const xo = o + 16 * ib;
      imatrixBlockWeights(qw, qo + 16 * ib, x, xo, 16, sigma2, weight);
      for (let i = 0; i < 16; i++) waux[i] = f(Math.sqrt(weight[i]));
      let s0 = splitSigns(x, xo, weight, 0, xval, 0, true) & 127;
      let s1 = splitSigns(x, xo + 8, weight, 8, xval, 8, true) & 127;
      let max = xval[0];
      for (let i = 1; i < 16; i++) max = max > xval[i] ? max : xval[i];
      scales[ib] = 0;
      if (max < GROUP_MAX_EPS) continue;
      let scale = searchSubBlock16(g, xval, weight, waux, max, L, index);
      if (scale < 0) {
        scale = -scale;
        s0 = ~s0 & 127;
        s1 = ~s1 & 127;
      }
      view.setUint16(ob + 2 + 4 * ib, index[0] | (s0 << 9), true);
      view.setUint16(ob + 4 + 4 * ib, index[1] | (s1 << 9), true);
      scales[ib] = scale;
      maxScale = maxScale > scale ? maxScale : scale; // MAX(max_scale, scale)
    }
    if (maxScale === 0) {
      out.fill(0, ob, ob + BYTES);
      return;
    }
    const d = f(maxScale / 31);
    view.setUint16(ob, f32ToF16Bits(d), true);
    const id = f(1 / d);
    for (let ib = 0; ib < QK / 16; ib++) out[ob + 66 + (ib >> 1)] |= scaleCode(id, scales[ib]) << (4 * (ib & 1));
  });
}
