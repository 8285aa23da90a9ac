// IQ2_S: blocks of 256 weights as { d: f16, qs: u8[64], qh: u8[8], scales: u8[8] } (82 bytes):
// sixteen sub-blocks of 16, each two groups of 8 on the 1024-point E8 grid: group
// i8's index is qs[i8] | ((qh[i8 / 4] >> 2 (i8 % 4)) & 3) << 8, its 8 sign bits
// qs[32 + i8]; sub-block scale s (4 bits, scales[ib / 2] low / high nibble):
// x = d * (0.5 + s) / 4 * grid[j] * sign.
// ggml: quantize_iq2_s (quantize_row_iq2_s_impl: weights qw * sqrt(sigma2 + x^2)
// with quant_weights, sigma2 / 4 + x^2 without) / dequantize_row_iq2_s. WGSL: shaders/quant/iq2_s.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { iq2xsGpuTables, iq2xsGrid, KMASK_IQ2XS_TABLE } from '../grids/iq2xs.js';
import { imatrixBlockWeights, sumSquares } from './kquant-weighted.js';
import { bytesView, forEachIqBlock } from './block-helpers.js';
import { scaleCode, searchSubBlock16, splitSigns } from './iq2_common.js';

const TYPE = ggmlType('iq2_s');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const GROUP_MAX_EPS = Math.fround(1e-8); // GROUP_MAX_EPS_IQ2_S
const QH = 2 + QK / 4; // qh's offset; scales follow at QH + 8
const f = Math.fround;

export const iq2_s: QuantFormat = {
  type: TYPE,
  shader: 'quant/iq2_s.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 2 },
  dequantize: { workgroupSize: 64, invocationsPerBlock: 8 },
  nonFinite: 'marked',
  tables: () => iq2xsGpuTables(1024),
  weightedKernel: 'own-entry',
  // ggml asserts ("point not on grid") once float32 distances overflow, from |x| of about 1e12
  ggmlAbortsFrom: 1e11,
  imatrix: 'optional',

  quantizeCpu(x, out) {
    quantizeIq2S(x, out);
  },

  quantizeWeightedCpu(x, out, nPerRow, qw) {
    quantizeIq2S(x, out, qw, nPerRow);
  },

  dequantizeCpu(blocks, out) {
    const { grid } = iq2xsGrid(1024);
    const view = bytesView(blocks);
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const ob = b * BYTES;
      const d = f16BitsToF32(view.getUint16(ob, true));
      for (let ib = 0; ib < QK / 16; ib++) {
        const s = (blocks[ob + QH + 8 + (ib >> 1)] >> (4 * (ib & 1))) & 15;
        const db = f(f(d * (0.5 + s)) * 0.25);
        for (let k = 0; k < 2; k++) {
          const i8 = 2 * ib + k;
          const p = 8 * (blocks[ob + 2 + i8] | (((blocks[ob + QH + (i8 >> 2)] >> (2 * (i8 & 3))) & 3) << 8));
          const signs = blocks[ob + 2 + QK / 8 + i8];
          const y = b * QK + 8 * i8;
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
const D_FACTOR = f(0.9875);
const QUARTER = f(0.25);

/** quantize_iq2_s: rows of nPerRow values, quant_weights qw (nPerRow values) if given. */
function quantizeIq2S(x: Float32Array, out: Uint8Array, qw?: Float32Array, nPerRow = x.length): void {
  const g = iq2xsGrid(1024);
  const view = bytesView(out);
  forEachIqBlock(x, out, QK, BYTES, nPerRow, (o, ob, qo) => {
    const sigma2 = f(f(2 * sumSquares(x, o, QK)) / QK);
    let maxScale = 0;
    for (let ib = 0; ib < QK / 16; ib++) {
      const xo = o + 16 * ib;
      if (qw) imatrixBlockWeights(qw, qo + 16 * ib, x, xo, 16, sigma2, weight);
      else for (let i = 0; i < 16; i++) weight[i] = f(f(QUARTER * sigma2) + f(x[xo + i] * x[xo + i]));
      for (let i = 0; i < 16; i++) waux[i] = f(Math.sqrt(weight[i]));
      let s0 = splitSigns(x, xo, weight, 0, xval, 0, false);
      let s1 = splitSigns(x, xo + 8, weight, 8, xval, 8, false);
      let max = xval[0];
      for (let i = 1; i < 16; i++) max = max > xval[i] ? max : xval[i];
      scales[ib] = 0;
      if (max < GROUP_MAX_EPS) continue;
      let scale = searchSubBlock16(g, xval, weight, waux, max, L, index);
      if (scale < 0) {
        scale = -scale;
        s0 = ~s0 & 255;
        s1 = ~s1 & 255;
      }
      for (let k = 0; k < 2; k++) {
        const i8 = 2 * ib + k;
        out[ob + 2 + i8] = index[k] & 255;
        out[ob + QH + (i8 >> 2)] |= (index[k] >> 8) << (2 * (i8 & 3));
        out[ob + 2 + QK / 8 + i8] = k === 0 ? s0 : s1;
      }
      scales[ib] = scale;
      maxScale = maxScale > scale ? maxScale : scale; // MAX(max_scale, scale)
    }
    if (maxScale === 0) return;
    const d = f(maxScale / 31);
    view.setUint16(ob, f32ToF16Bits(f(d * D_FACTOR)), true);
    const id = f(1 / d);
    for (let ib = 0; ib < QK / 16; ib++) out[ob + QH + 8 + (ib >> 1)] |= scaleCode(id, scales[ib]) << (4 * (ib & 1));
  });
}
