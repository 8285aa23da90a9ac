// IQ1_S: blocks of 256 weights as { d: f16, qs: u8[32], qh: u16[8] } (50 bytes):
// eight sub-blocks of 32, each four groups of 8 whose grid point (11 bits: qs
// low 8, qh bits 3k..3k+2 high 3) picks eight levels in {-1, 0, 1}; qh bits
// 12-14 hold the sub-block scale l (x = d * (2l + 1) * (level + delta)), bit 15
// the sign of delta (±IQ1S_DELTA).
// ggml: quantize_iq1_s (quantize_row_iq1_s_impl; ggml asserts quant_weights:
// ggml_quantize_requires_imatrix) / dequantize_row_iq1_s. WGSL: shaders/quant/iq1_s.wgsl.

import { ArgumentError } from '../../errors.js';
import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { bytesView, forEachIqBlock } from './block-helpers.js';
import { nearestIntBits } from './kquant-qx.js';
import { iq1, iq1TableWords, snapGroups, sortIndices, superBlockSigma2, X_M, X_P } from './iq1_common.js';

const TYPE = ggmlType('iq1_s');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const BS = 32; // IQ1S_BLOCK_SIZE
const GROUP_MAX_EPS = Math.fround(1e-12); // GROUP_MAX_EPS_IQ1_S
const FLT_MAX = 3.4028234663852886e38;
const f = Math.fround;

const weight = new Float32Array(BS);
const order = new Int32Array(BS);
const sumx = new Float32Array(BS + 1);
const sumw = new Float32Array(BS + 1);
const L = new Int8Array(BS);
const scales = new Float32Array(QK / BS);
const shifts = new Int8Array(QK / BS);
const index = new Uint16Array(BS / 8);

/** One super-block x[o..o+256) with importance weights qw[qo..qo+256) into out[at..at+50). */
function quantizeBlock(x: Float32Array, o: number, qw: Float32Array, qo: number, out: Uint8Array, view: DataView, at: number): void {
  out.fill(0, at, at + BYTES);
  let maxScale = 0;
  const sigma2 = superBlockSigma2(x, o);
  for (let ib = 0; ib < QK / BS; ib++) {
    const xo = o + BS * ib;
    for (let i = 0; i < BS; i++) weight[i] = f(qw[qo + BS * ib + i] * f(Math.sqrt(f(sigma2 + f(x[xo + i] * x[xo + i])))));
    let max = Math.abs(x[xo]);
    for (let i = 1; i < BS; i++) max = max > Math.abs(x[xo + i]) ? max : Math.abs(x[xo + i]);
    scales[ib] = 0;
    shifts[ib] = 1;
    if (max < GROUP_MAX_EPS) continue;
    sortIndices(x, xo, BS, order);
    sumx[0] = sumw[0] = 0;
    for (let j = 0; j < BS; j++) {
      const i = order[j];
      sumx[j + 1] = f(sumx[j] + f(weight[i] * x[xo + i]));
      sumw[j + 1] = f(sumw[j] + weight[i]);
    }
    let best = -FLT_MAX;
    let scale = max;
    let besti1 = -1;
    let besti2 = -1;
    let bestShift = 0;
    for (let i1 = 0; i1 <= BS; i1++) {
      for (let i2 = i1; i2 <= BS; i2++) {
        const x0 = f(sumx[i1] - sumx[0]);
        const x1 = f(sumx[i2] - sumx[i1]);
        const x2 = f(sumx[BS] - sumx[i2]);
        const w0 = f(sumw[i1] - sumw[0]);
        const w1 = f(sumw[i2] - sumw[i1]);
        const w2 = f(sumw[BS] - sumw[i2]);
        let sumqx = f(f(f(x0 * X_P[0]) + f(x1 * X_P[1])) + f(x2 * X_P[2]));
        let sumq2 = f(f(f(f(w0 * X_P[0]) * X_P[0]) + f(f(w1 * X_P[1]) * X_P[1])) + f(f(w2 * X_P[2]) * X_P[2]));
        if (sumq2 > 0 && f(sumqx * sumqx) > f(best * sumq2)) {
          scale = f(sumqx / sumq2);
          best = f(scale * sumqx);
          besti1 = i1;
          besti2 = i2;
          bestShift = 1;
        }
        sumqx = f(f(f(x0 * X_M[0]) + f(x1 * X_M[1])) + f(x2 * X_M[2]));
        sumq2 = f(f(f(f(w0 * X_M[0]) * X_M[0]) + f(f(w1 * X_M[1]) * X_M[1])) + f(f(w2 * X_M[2]) * X_M[2]));
        if (sumq2 > 0 && f(sumqx * sumqx) > f(best * sumq2)) {
          scale = f(sumqx / sumq2);
          best = f(scale * sumqx);
          besti1 = i1;
          besti2 = i2;
          bestShift = -1;
        }
      }
    }
    if (besti1 < 0 || besti2 < 0 || bestShift === 0) continue;
    for (let j = 0; j < BS; j++) L[order[j]] = j < besti1 ? 0 : j < besti2 ? 1 : 2;
    if (scale < 0) {
      for (let j = 0; j < BS; j++) L[j] = 2 - L[j];
      scale = -scale;
      bestShift = -bestShift;
    }
    const xx = bestShift === 1 ? X_P : X_M;
    scale = snapGroups(L, x, xo, weight, BS / 8, scale, () => xx, index);
    let h = 0;
    for (let k = 0; k < BS / 8; k++) {
      out[at + 2 + (BS / 8) * ib + k] = index[k] & 255;
      h |= (index[k] >> 8) << (3 * k);
    }
    view.setUint16(at + 34 + 2 * ib, h, true);
    scales[ib] = scale;
    shifts[ib] = bestShift;
    maxScale = maxScale > scale ? maxScale : scale;
  }
  if (maxScale === 0) return;
  const d = f(maxScale / 15);
  view.setUint16(at, f32ToF16Bits(f(d * 1.125)), true); // ggml's fudge factor
  const id = f(1 / d);
  for (let ib = 0; ib < QK / BS; ib++) {
    let l = nearestIntBits(f(0.5 * f(f(id * scales[ib]) - 1)));
    l = Math.max(0, Math.min(7, l));
    if (shifts[ib] === -1) l |= 8;
    view.setUint16(at + 34 + 2 * ib, view.getUint16(at + 34 + 2 * ib, true) | (l << 12), true);
  }
}

/** quantize_iq1_s: rows of nPerRow values with one row's importance weights qw. */
export function quantizeIq1s(x: Float32Array, out: Uint8Array, nPerRow: number, qw: Float32Array): void {
  const view = bytesView(out);
  forEachIqBlock(x, out, QK, BYTES, nPerRow, (o, ob, qo) => quantizeBlock(x, o, qw, qo, out, view, ob));
}

export const iq1_s: QuantFormat = {
  type: TYPE,
  shader: 'quant/iq1_s.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 2 },
  dequantize: { workgroupSize: 64, invocationsPerBlock: 8 },
  nonFinite: 'marked',
  imatrix: 'required',
  weightedKernel: 'own-entry',
  // ggml asserts (grid_index >= 0) once every float32 distance overflows to Inf or NaN
  ggmlAbortsFrom: 1e9,
  tables: iq1TableWords,

  quantizeCpu() {
    throw new ArgumentError('iq1_s needs an importance matrix: ggml quantizes it only with quant_weights (ggml_quantize_requires_imatrix)');
  },

  quantizeWeightedCpu(x, out, nPerRow, qw) {
    quantizeIq1s(x, out, nPerRow, qw);
  },

  dequantizeCpu(blocks, out) {
    const view = bytesView(blocks);
    const { levels } = iq1();
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const at = b * BYTES;
      const d = f16BitsToF32(view.getUint16(at, true));
      for (let ib = 0; ib < QK / BS; ib++) {
        const qh = view.getUint16(at + 34 + 2 * ib, true);
        const dl = f(d * (2 * ((qh >> 12) & 7) + 1));
        const delta = qh & 0x8000 ? -0.125 : 0.125;
        for (let l = 0; l < 4; l++) {
          const g = blocks[at + 2 + 4 * ib + l] | (((qh >> (3 * l)) & 7) << 8);
          for (let j = 0; j < 8; j++) out[b * QK + 32 * ib + 8 * l + j] = f(dl * (levels[8 * g + j] - 1 + delta));
        }
      }
    }
  },
};
