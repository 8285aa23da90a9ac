// IQ2_XXS: blocks of 256 weights as { d: f16, qs: u16[32] } (66 bytes): eight
// sub-blocks of 32, each two u32: the first holds four indices into the 256-point
// E8 grid (one byte per group of 8), the second four 7-bit sign fields (the 8th
// sign makes the count of negatives even) and the 4-bit sub-block scale s in bits
// 28-31: x = d * (0.5 + s) / 4 * grid[j] * sign.
// ggml: quantize_iq2_xxs (quantize_row_iq2_xxs_impl; ggml asserts quant_weights:
// ggml_quantize_requires_imatrix) / dequantize_row_iq2_xxs. WGSL: shaders/quant/iq2_xxs.wgsl.

import { ArgumentError } from '../../errors.js';
import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { iq2xsGpuTables, iq2xsGrid, KMASK_IQ2XS_TABLE, KSIGNS_IQ2XS_TABLE } from '../grids/iq2xs.js';
import { imatrixBlockWeights, makeQpQuants, sumSquares } from './kquant-weighted.js';
import { bytesView, forEachIqBlock } from './block-helpers.js';
import { bestNeighbour, codeOf, levelsAt, scaleCode, splitSigns, TENTH, weightedSums } from './iq2_common.js';

const TYPE = ggmlType('iq2_xxs');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const GROUP_MAX_EPS = Math.fround(1e-15);
const f = Math.fround;

export const iq2_xxs: QuantFormat = {
  type: TYPE,
  shader: 'quant/iq2_xxs.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 2 },
  dequantize: { workgroupSize: 64, invocationsPerBlock: 8 },
  nonFinite: 'marked',
  tables: () => iq2xsGpuTables(256),
  weightedKernel: 'own-entry',
  // ggml asserts ("point not on grid") once float32 distances overflow, from |x| of about 1e12
  ggmlAbortsFrom: 1e11,
  imatrix: 'required',

  quantizeCpu() {
    throw new ArgumentError('iq2_xxs needs an importance matrix: ggml quantizes it only with quant_weights (ggml_quantize_requires_imatrix)');
  },

  quantizeWeightedCpu(x, out, nPerRow, qw) {
    quantizeIq2Xxs(x, out, nPerRow, qw);
  },

  dequantizeCpu(blocks, out) {
    const view = bytesView(blocks);
    const { grid } = iq2xsGrid(256);
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const ob = b * BYTES;
      const d = f16BitsToF32(view.getUint16(ob, true));
      for (let ib = 0; ib < QK / 32; ib++) {
        const aux1 = view.getUint32(ob + 2 + 8 * ib + 4, true);
        const db = f(f(d * (0.5 + (aux1 >>> 28))) * 0.25);
        for (let l = 0; l < 4; l++) {
          const p = 8 * blocks[ob + 2 + 8 * ib + l];
          const signs = KSIGNS_IQ2XS_TABLE[(aux1 >>> (7 * l)) & 127];
          const y = b * QK + 32 * ib + 8 * l;
          for (let j = 0; j < 8; j++) out[y + j] = f(db * grid[p + j]) * (signs & KMASK_IQ2XS_TABLE[j] ? -1 : 1);
        }
      }
    }
  },
};

const K_MAX_Q = 3;
const weight = new Float32Array(32);
const waux = new Float32Array(32);
const xval = new Float32Array(32);
const L = new Int8Array(32);
const Laux = new Int8Array(32);
const Lqp = new Uint8Array(32);
const signs = new Int32Array(4);
const scales = new Float32Array(QK / 32);
const q2 = new Uint32Array(2 * (QK / 32));

/** quantize_iq2_xxs: rows of nPerRow values, quant_weights qw (nPerRow values). */
function quantizeIq2Xxs(x: Float32Array, out: Uint8Array, nPerRow: number, qw: Float32Array): void {
  const g = iq2xsGrid(256);
  const { map } = g;
  const view = bytesView(out);
  forEachIqBlock(x, out, QK, BYTES, nPerRow, (o, ob, qo) => {
    q2.fill(0);
    const sigma2 = f(sumSquares(x, o, QK) / QK);
    let maxScale = 0;
    for (let ib = 0; ib < QK / 32; ib++) {
      const xo = o + 32 * ib;
      imatrixBlockWeights(qw, qo + 32 * ib, x, xo, 32, sigma2, weight);
      for (let i = 0; i < 32; i++) waux[i] = f(Math.sqrt(weight[i]));
      for (let k = 0; k < 4; k++) signs[k] = splitSigns(x, xo + 8 * k, weight, 8 * k, xval, 8 * k, true) & 127;
      let max = xval[0];
      for (let i = 1; i < 32; i++) max = max > xval[i] ? max : xval[i];
      scales[ib] = 0;
      if (max < GROUP_MAX_EPS) continue;
      let scale = makeQpQuants(32, K_MAX_Q + 1, xval, Lqp, weight);
      const effMax = f(scale * K_MAX_Q);
      if (effMax <= 0) continue;
      // ggml's L starts as make_qp_quants' levels; every path below replaces them before they are packed
      for (let i = 0; i < 32; i++) L[i] = Lqp[i];
      let best = 0;
      for (let is = -6; is <= 6; is++) {
        const id = f(f(5 + f(is * TENTH)) / effMax);
        const thisScale = f(1 / id);
        for (let k = 0; k < 4; k++) {
          const u = levelsAt(xval, 8 * k, id, Laux);
          if (map[u] < 0) bestNeighbour(g, -map[u] - 1, xval, waux, 8 * k, thisScale, Laux);
        }
        const { sumqx, sumq2 } = weightedSums(xval, weight, Laux, 32);
        if (sumq2 > 0 && f(sumqx * sumqx) > f(best * sumq2)) {
          scale = f(sumqx / sumq2);
          best = f(scale * sumqx);
          L.set(Laux);
        }
      }
      if (scale > 0) {
        const id = f(1 / scale);
        for (let k = 0; k < 4; k++) {
          const u = levelsAt(xval, 8 * k, id, L);
          if (map[u] < 0) bestNeighbour(g, -map[u] - 1, xval, waux, 8 * k, scale, L);
        }
        const { sumqx, sumq2 } = weightedSums(xval, weight, L, 32);
        if (sumq2 > 0) scale = f(sumqx / sumq2);
      }
      if (scale < 0) {
        scale = -scale;
        for (let k = 0; k < 4; k++) signs[k] = ~signs[k] & 127;
      }
      for (let k = 0; k < 4; k++) {
        q2[2 * ib] |= map[codeOf(L, 8 * k)] << (8 * k);
        q2[2 * ib + 1] |= signs[k] << (7 * k);
      }
      scales[ib] = scale;
      maxScale = maxScale > scale ? maxScale : scale; // MAX(max_scale, scale)
    }
    if (maxScale === 0) return;
    const d = f(maxScale / 31);
    view.setUint16(ob, f32ToF16Bits(d), true);
    const id = f(1 / d);
    for (let ib = 0; ib < QK / 32; ib++) q2[2 * ib + 1] |= scaleCode(id, scales[ib]) << 28;
    for (let i = 0; i < q2.length; i++) view.setUint32(ob + 2 + 4 * i, q2[i], true);
  });
}
