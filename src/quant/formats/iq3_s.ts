// IQ3_S: super-blocks of 256 weights as { d: f16, qs: u8[64], qh: u8[8], signs: u8[32], scales: u8[4] }
// (110 bytes). Per sub-block of 32: eight 9-bit grid indices into the 512-point
// grid iq3s_grid (low bits in qs, the 9th bit of group k in bit k of qh[ib]),
// 32 sign bits, and a 4-bit scale ls (two per byte): x = d * (1 + 2 ls) * grid value * sign.
// ggml: quantize_iq3_s (quantize_row_iq3_s_impl, with or without quant_weights) /
// dequantize_row_iq3_s. Grids: src/quant/grids/iq3xs.ts. WGSL: shaders/quant/iq3_s.wgsl.
//
// ggml advances its qs and signs write positions only past sub-blocks it
// encodes: after an all-zero sub-block the next ones land 8 (qs) and 4 (signs)
// bytes early while qh keeps their own slots. The bytes here do the same.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { iq3Grid, iq3KernelWords } from '../grids/iq3xs.js';
import { bytesView, forEachIqBlock, writeNonFiniteBlock } from './block-helpers.js';
import { iq3ScaleNibble, iq3SearchSubBlock, iq3Sigma2, iq3SubBlock, type Iq3Variant } from './iq3_search.js';

const TYPE = ggmlType('iq3_s');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const f = Math.fround;
/** ggml's fudge factor on the stored super-block scale. */
const D_FUDGE = f(1.033);
const QS = 2;
const QH = 66;
const SIGNS = 74;
const SCALES = 106;

export const IQ3_S_VARIANT: Iq3Variant = { gridSize: 512, ntry: 9, evenSigns: false, maxEps: 0, refitAll: true };

/** The grid tables the kernels bind (one function, so the GPU buffer is cached by it). */
const gridWords = (): Uint32Array => iq3KernelWords(512);

const sub = iq3SubBlock();
const scales = new Float32Array(8);

function quantizeIq3S(x: Float32Array, out: Uint8Array, qw?: Float32Array, nPerRow = x.length): void {
  const view = bytesView(out);
  forEachIqBlock(x, out, QK, BYTES, nPerRow, (o, ob, qo) => {
    const sigma2 = iq3Sigma2(x, o);
    let maxScale = 0;
    let aborted = false;
    let encoded = 0; // sub-blocks written so far: where ggml's qs and signs pointers are
    for (let ib = 0; ib < 8; ib++) {
      const r = iq3SearchSubBlock(IQ3_S_VARIANT, x, o + 32 * ib, qw, qo + 32 * ib, sigma2, sub);
      if (r === 'abort') {
        aborted = true;
        break;
      }
      scales[ib] = sub.scale;
      if (r === 'skipped') continue;
      for (let k = 0; k < 8; k++) {
        out[ob + QS + 8 * encoded + k] = sub.gridIndex[k] & 255;
        out[ob + QH + ib] |= (sub.gridIndex[k] >> 8) << k;
      }
      for (let k = 0; k < 4; k++) out[ob + SIGNS + 4 * encoded + k] = sub.signs[k];
      encoded++;
      maxScale = maxScale > sub.scale ? maxScale : sub.scale;
    }
    // Where ggml aborts (an assertion on overflowed sums, |x| beyond ~1e19), the block is marked invalid.
    if (aborted) {
      writeNonFiniteBlock(out, ob, BYTES, [0]);
      return;
    }
    // ggml leaves d = 0 and keeps whatever indices and signs it wrote.
    if (!maxScale) return;
    const d = f(maxScale / 31);
    view.setUint16(ob, f32ToF16Bits(f(d * D_FUDGE)), true);
    const id = f(1 / d);
    for (let ib = 0; ib < 8; ib += 2) {
      out[ob + SCALES + ib / 2] = iq3ScaleNibble(id, scales[ib]) | (iq3ScaleNibble(id, scales[ib + 1]) << 4);
    }
  });
}

export const iq3_s: QuantFormat = {
  type: TYPE,
  shader: 'quant/iq3_s.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 2 },
  dequantize: { workgroupSize: 64, invocationsPerBlock: 8 },
  nonFinite: 'marked',
  imatrix: 'optional',
  weightedKernel: 'own-entry',
  tables: gridWords,
  ggmlAbortsFrom: 1e12,

  quantizeCpu(x, out) {
    quantizeIq3S(x, out);
  },

  // quant_weights: per super-block sigma2 = 2 sum x^2 / 256, weights qw * sqrt(sigma2 + x^2) in place of x^2.
  quantizeWeightedCpu(x, out, nPerRow, qw) {
    quantizeIq3S(x, out, qw, nPerRow);
  },

  dequantizeCpu(blocks, out) {
    const view = bytesView(blocks);
    const grid = iq3Grid(512).dequantGrid;
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const ob = b * BYTES;
      const d = f16BitsToF32(view.getUint16(ob, true));
      for (let ib = 0; ib < 8; ib++) {
        const db = f(d * (1 + 2 * ((blocks[ob + SCALES + (ib >> 1)] >> (4 * (ib & 1))) & 15)));
        const qh = blocks[ob + QH + ib];
        for (let k = 0; k < 8; k++) {
          const point = grid[blocks[ob + QS + 8 * ib + k] | (((qh >> k) & 1) << 8)];
          const signs = blocks[ob + SIGNS + 4 * ib + (k >> 1)];
          for (let j = 0; j < 4; j++) {
            const v = f(db * ((point >>> (8 * j)) & 255));
            out[b * QK + 32 * ib + 4 * k + j] = signs & (1 << (4 * (k & 1) + j)) ? -v : v;
          }
        }
      }
    }
  },
};
