// IQ1_M: blocks of 256 weights as { qs: u8[32], qh: u8[16], scales: u8[8] } (56 bytes):
// sixteen sub-blocks of 16, each two groups of 8 whose grid point (11 bits: qs
// low 8, a qh nibble's bits 0-2 high 3) picks eight levels in {-1, 0, 1}; the
// nibble's bit 3 is the sign of that group's delta (±IQ1M_DELTA). Each sub-block
// has a 3-bit scale l (x = d * (2l + 1) * (level + delta)) in the four u16 scale
// words (three bits per sub-block, low twelve bits); their top nibbles hold
// the float16 super-block scale d.
// ggml: quantize_iq1_m (quantize_row_iq1_m_impl, with quant_weights or, without
// them, weights x^2) / dequantize_row_iq1_m. WGSL: shaders/quant/iq1_m.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { allFinite, bytesView, F16_NAN } from './block-helpers.js';
import { nearestIntBits } from './kquant-qx.js';
import { iq1, iq1TableWords, snapGroups, sortIndices, superBlockSigma2, X_M, X_P } from './iq1_common.js';

const TYPE = ggmlType('iq1_m');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const BS = 16; // IQ1M_BLOCK_SIZE
const GROUP_MAX_EPS = Math.fround(1e-7); // GROUP_MAX_EPS_IQ1_M
const FLT_MAX = 3.4028234663852886e38;
const f = Math.fround;
/** qh nibble sign bits for shift k (bit 1 of k: the first group's delta is negative, bit 0: the second's). */
const MASKS = [0x00, 0x80, 0x08, 0x88];

const weight = new Float32Array(BS);
const order = new Int32Array(BS);
const L = new Int8Array(BS);
const scales = new Float32Array(QK / BS);
const shifts = new Int8Array(QK / BS);
const index = new Uint16Array(BS / 8);
// Per sorted position j, segment s (0..2) and k-variant level set (x_p / x_m):
// the terms weight*x*xb and weight*x*x ggml adds, as float32.
const termX = new Float32Array(2 * 3 * BS);
const termQ = new Float32Array(2 * 3 * BS);
const sumqx = new Float32Array(4);
const sumq2 = new Float32Array(4);
const prefX = new Float32Array(4 * (BS + 1));
const prefQ = new Float32Array(4 * (BS + 1));

/** Which level set (0: x_p, 1: x_m) variant k uses for a value in the block's first (half 0) or second half. */
const minusOf = (k: number, half: number) => (half === 0 ? k >> 1 : k & 1);

function blockWeights(x: Float32Array, xo: number, qw: Float32Array | undefined, qo: number, sigma2: number): void {
  if (qw) for (let i = 0; i < BS; i++) weight[i] = f(qw[qo + i] * f(Math.sqrt(f(sigma2 + f(x[xo + i] * x[xo + i])))));
  else for (let i = 0; i < BS; i++) weight[i] = f(x[xo + i] * x[xo + i]);
}

/**
 * The exhaustive split search of quantize_row_iq1_m_impl for one sub-block:
 * ggml recomputes each of the four sums from zero for every split (i1, i2),
 * adding the 16 sorted values' terms in order; the sums up to i1 and then up
 * to i2 are shared between splits, so they are carried over here, the same
 * float32 additions in the same order.
 */
function searchSplits(x: Float32Array, xo: number): { scale: number; i1: number; i2: number; k: number } {
  for (let j = 0; j < BS; j++) {
    const i = order[j];
    for (let m = 0; m < 2; m++) {
      const xs = m ? X_M : X_P;
      for (let s = 0; s < 3; s++) {
        const wx = f(weight[i] * xs[s]);
        termX[(m * 3 + s) * BS + j] = f(wx * x[xo + i]);
        termQ[(m * 3 + s) * BS + j] = f(wx * xs[s]);
      }
    }
  }
  const term = (t: Float32Array, k: number, s: number, j: number) => t[(minusOf(k, order[j] < BS / 2 ? 0 : 1) * 3 + s) * BS + j];
  // prefix sums over segment 0: prefX[k * (BS+1) + i1]
  for (let k = 0; k < 4; k++) {
    prefX[k * (BS + 1)] = 0;
    prefQ[k * (BS + 1)] = 0;
    for (let j = 0; j < BS; j++) {
      prefX[k * (BS + 1) + j + 1] = f(prefX[k * (BS + 1) + j] + term(termX, k, 0, j));
      prefQ[k * (BS + 1) + j + 1] = f(prefQ[k * (BS + 1) + j] + term(termQ, k, 0, j));
    }
  }
  let best = -FLT_MAX;
  let scale = 0;
  let bi1 = -1;
  let bi2 = -1;
  let bk = -1;
  const midX = new Float64Array(4);
  const midQ = new Float64Array(4);
  for (let i1 = 0; i1 <= BS; i1++) {
    for (let k = 0; k < 4; k++) {
      midX[k] = prefX[k * (BS + 1) + i1];
      midQ[k] = prefQ[k * (BS + 1) + i1];
    }
    for (let i2 = i1; i2 <= BS; i2++) {
      if (i2 > i1) {
        for (let k = 0; k < 4; k++) {
          midX[k] = f(midX[k] + term(termX, k, 1, i2 - 1));
          midQ[k] = f(midQ[k] + term(termQ, k, 1, i2 - 1));
        }
      }
      for (let k = 0; k < 4; k++) {
        let sx = midX[k];
        let sq = midQ[k];
        for (let j = i2; j < BS; j++) {
          sx = f(sx + term(termX, k, 2, j));
          sq = f(sq + term(termQ, k, 2, j));
        }
        sumqx[k] = sx;
        sumq2[k] = sq;
      }
      for (let k = 0; k < 4; k++) {
        if (sumq2[k] > 0 && f(sumqx[k] * sumqx[k]) > f(best * sumq2[k])) {
          scale = f(sumqx[k] / sumq2[k]);
          best = f(scale * sumqx[k]);
          bi1 = i1;
          bi2 = i2;
          bk = k;
        }
      }
    }
  }
  return { scale, i1: bi1, i2: bi2, k: bk };
}

/** One super-block x[o..o+256) (importance weights qw[qo..qo+256) if given) into out[at..at+56). */
function quantizeBlock(x: Float32Array, o: number, qw: Float32Array | undefined, qo: number, out: Uint8Array, view: DataView, at: number): void {
  out.fill(0, at, at + BYTES);
  const { levels } = iq1();
  let maxScale = 0;
  const sigma2 = superBlockSigma2(x, o);
  for (let ib = 0; ib < QK / BS; ib++) {
    const xo = o + BS * ib;
    blockWeights(x, xo, qw, qo + BS * ib, sigma2);
    let max = Math.abs(x[xo]);
    for (let i = 1; i < BS; i++) max = max > Math.abs(x[xo + i]) ? max : Math.abs(x[xo + i]);
    scales[ib] = 0;
    shifts[ib] = 0;
    if (max < GROUP_MAX_EPS) continue;
    sortIndices(x, xo, BS, order);
    const s = searchSplits(x, xo);
    if (s.i1 < 0 || s.i2 < 0 || s.k < 0) continue;
    let { scale, k: bestK } = s;
    for (let j = 0; j < BS; j++) L[order[j]] = j < s.i1 ? 0 : j < s.i2 ? 1 : 2;
    if (scale < 0) {
      for (let j = 0; j < BS; j++) L[j] = 2 - L[j];
      scale = -scale;
      bestK = 3 - bestK;
    }
    scale = snapGroups(L, x, xo, weight, BS / 8, scale, (k) => (minusOf(bestK, k) ? X_M : X_P), index);
    out[at + 2 * ib] = index[0] & 255;
    out[at + 2 * ib + 1] = index[1] & 255;
    out[at + 32 + ib] = (index[0] >> 8) | ((index[1] >> 8) << 4);
    scales[ib] = scale;
    shifts[ib] = bestK;
    maxScale = maxScale > scale ? maxScale : scale;
  }
  if (maxScale === 0) return;
  let d = f(maxScale / 15);
  const id = f(1 / d);
  let sx = 0;
  let sq = 0;
  for (let ib = 0; ib < QK / BS; ib++) {
    let l = nearestIntBits(f(0.5 * f(f(id * scales[ib]) - 1)));
    l = Math.max(0, Math.min(7, l));
    const sc = at + 48 + 2 * (ib >> 2);
    view.setUint16(sc, view.getUint16(sc, true) | (l << (3 * (ib % 4))), true);
    out[at + 32 + ib] |= MASKS[shifts[ib]];
    const xo = o + BS * ib;
    blockWeights(x, xo, qw, qo + BS * ib, sigma2);
    const qh = out[at + 32 + ib];
    for (let k = 0; k < BS / 8; k++) {
      const xx = minusOf(shifts[ib], k) ? X_M : X_P;
      const g = out[at + 2 * ib + k] + ((qh << (8 - 4 * k)) & 0x700);
      for (let j = 0; j < 8; j++) {
        const q = f(xx[levels[8 * g + j]] * (2 * l + 1));
        const wq = f(weight[8 * k + j] * q);
        sx = f(sx + f(wq * x[xo + 8 * k + j]));
        sq = f(sq + f(wq * q));
      }
    }
  }
  if (sq > 0) d = f(sx / sq);
  const s16 = f32ToF16Bits(f(d * 1.1125)); // ggml's fudge factor (1.1125f)
  for (let i = 0; i < 4; i++) {
    const sc = at + 48 + 2 * i;
    view.setUint16(sc, view.getUint16(sc, true) | (((s16 >> (4 * i)) & 15) << 12), true);
  }
}

/** quantize_iq1_m: rows of nPerRow values, with one row's importance weights qw or without (weights x^2). */
export function quantizeIq1m(x: Float32Array, out: Uint8Array, nPerRow: number, qw?: Float32Array): void {
  const view = bytesView(out);
  const perRow = nPerRow / QK;
  for (let b = 0; b < x.length / QK; b++) {
    if (!allFinite(x, b * QK, QK)) {
      // the invalid-block marker: d (the scale words' top nibbles) float16 NaN, all else 0
      out.fill(0, b * BYTES, (b + 1) * BYTES);
      for (let i = 0; i < 4; i++) view.setUint16(b * BYTES + 48 + 2 * i, ((F16_NAN >> (4 * i)) & 15) << 12, true);
      continue;
    }
    quantizeBlock(x, b * QK, qw, (b % perRow) * QK, out, view, b * BYTES);
  }
}

export const iq1_m: QuantFormat = {
  type: TYPE,
  shader: 'quant/iq1_m.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 1 },
  dequantize: { workgroupSize: 64, invocationsPerBlock: 8 },
  nonFinite: 'marked',
  imatrix: 'optional',
  weightedKernel: 'own-entry',
  // ggml asserts (grid_index >= 0) once every float32 distance overflows to Inf or NaN
  ggmlAbortsFrom: 1e9,
  tables: iq1TableWords,

  quantizeCpu(x, out) {
    quantizeIq1m(x, out, x.length);
  },

  quantizeWeightedCpu(x, out, nPerRow, qw) {
    quantizeIq1m(x, out, nPerRow, qw);
  },

  dequantizeCpu(blocks, out) {
    const view = bytesView(blocks);
    const { levels } = iq1();
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const at = b * BYTES;
      const sc = [0, 1, 2, 3].map((i) => view.getUint16(at + 48 + 2 * i, true));
      const d = f16BitsToF32((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
      for (let ib = 0; ib < QK / 32; ib++) {
        const s = sc[ib >> 1] >> (6 * (ib % 2));
        const dl = [f(d * (2 * (s & 7) + 1)), f(d * (2 * ((s >> 3) & 7) + 1))];
        const qh0 = blocks[at + 32 + 2 * ib];
        const qh1 = blocks[at + 33 + 2 * ib];
        const nib = [qh0 & 15, qh0 >> 4, qh1 & 15, qh1 >> 4];
        for (let l = 0; l < 4; l++) {
          const g = blocks[at + 4 * ib + l] | ((nib[l] & 7) << 8);
          const delta = nib[l] & 8 ? -0.125 : 0.125;
          for (let j = 0; j < 8; j++) out[b * QK + 32 * ib + 8 * l + j] = f(dl[l >> 1] * (levels[8 * g + j] - 1 + delta));
        }
      }
    }
  },
};
