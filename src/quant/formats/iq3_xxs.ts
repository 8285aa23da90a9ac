// IQ3_XXS: super-blocks of 256 weights as { d: f16, qs: u8[64], scales_and_signs: u32[8] }
// (98 bytes). Per sub-block of 32: eight grid indices (qs, 4 values each from
// the 256-point grid iq3xxs_grid), and one u32 holding four 7-bit sign fields
// (the 8th sign of each 8 is their parity) and a 4-bit scale ls in bits 28..31:
// x = d * (0.5 + ls) * 0.5 * grid value * sign.
// ggml: quantize_iq3_xxs (quantize_row_iq3_xxs_impl(256), with or without
// quant_weights) / dequantize_row_iq3_xxs. Grids: src/quant/grids/iq3xs.ts.
// WGSL: shaders/quant/iq3_xxs.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { iq3Grid, iq3KernelWords } from '../grids/iq3xs.js';
import { bytesView, forEachIqBlock, writeNonFiniteBlock } from './block-helpers.js';
import { iq3ScaleNibble, iq3SearchSubBlock, iq3Sigma2, iq3SubBlock, type Iq3Variant } from './iq3_search.js';

const TYPE = ggmlType('iq3_xxs');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const f = Math.fround;
/** ggml's fudge factor on the stored super-block scale. */
const D_FUDGE = f(1.0125);

export const IQ3_XXS_VARIANT: Iq3Variant = { gridSize: 256, ntry: 15, evenSigns: true, maxEps: f(1e-8), refitAll: false };

/** ksigns_iq2xs[s]: the 7 stored sign bits and their parity as the 8th. */
export function iq3SignByte(s: number): number {
  let p = s;
  p ^= p >> 4;
  p ^= p >> 2;
  p ^= p >> 1;
  return s | ((p & 1) << 7);
}

/** The grid tables the kernels bind (one function, so the GPU buffer is cached by it). */
const gridWords = (): Uint32Array => iq3KernelWords(256);

const sub = iq3SubBlock();
const scales = new Float32Array(8);

function quantizeIq3Xxs(x: Float32Array, out: Uint8Array, qw?: Float32Array, nPerRow = x.length): void {
  const view = bytesView(out);
  forEachIqBlock(x, out, QK, BYTES, nPerRow, (o, ob, qo) => {
    const sigma2 = iq3Sigma2(x, o);
    let maxScale = 0;
    let aborted = false;
    for (let ib = 0; ib < 8; ib++) {
      const r = iq3SearchSubBlock(IQ3_XXS_VARIANT, x, o + 32 * ib, qw, qo + 32 * ib, sigma2, sub);
      if (r === 'abort') {
        aborted = true;
        break;
      }
      scales[ib] = sub.scale;
      if (r === 'skipped') continue;
      for (let k = 0; k < 8; k++) out[ob + 2 + 8 * ib + k] = sub.gridIndex[k];
      const s = sub.signs;
      view.setUint32(ob + 66 + 4 * ib, (s[0] | (s[1] << 7) | (s[2] << 14) | (s[3] << 21)) >>> 0, true);
      maxScale = maxScale > sub.scale ? maxScale : sub.scale;
    }
    // Where ggml aborts (an assertion on overflowed sums, |x| beyond ~1e19), the block is marked invalid.
    if (aborted) {
      writeNonFiniteBlock(out, ob, BYTES, [0]);
      return;
    }
    if (!maxScale) {
      out.fill(0, ob, ob + BYTES);
      return;
    }
    const d = f(maxScale / 31);
    view.setUint16(ob, f32ToF16Bits(f(d * D_FUDGE)), true);
    const id = f(1 / d);
    for (let ib = 0; ib < 8; ib++) out[ob + 66 + 4 * ib + 3] |= iq3ScaleNibble(id, scales[ib]) << 4;
  });
}

export const iq3_xxs: QuantFormat = {
  type: TYPE,
  shader: 'quant/iq3_xxs.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 2 },
  dequantize: { workgroupSize: 64, invocationsPerBlock: 8 },
  nonFinite: 'marked',
  imatrix: 'optional',
  weightedKernel: 'own-entry',
  tables: gridWords,
  ggmlAbortsFrom: 1e12,

  quantizeCpu(x, out) {
    quantizeIq3Xxs(x, out);
  },

  // quant_weights: per super-block sigma2 = 2 sum x^2 / 256, weights qw * sqrt(sigma2 + x^2) in place of x^2.
  quantizeWeightedCpu(x, out, nPerRow, qw) {
    quantizeIq3Xxs(x, out, qw, nPerRow);
  },

  dequantizeCpu(blocks, out) {
    const view = bytesView(blocks);
    const grid = iq3Grid(256).dequantGrid;
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const ob = b * BYTES;
      const d = f16BitsToF32(view.getUint16(ob, true));
      for (let ib = 0; ib < 8; ib++) {
        const aux = view.getUint32(ob + 66 + 4 * ib, true);
        const db = f(f(d * f(0.5 + (aux >>> 28))) * 0.5);
        for (let l = 0; l < 4; l++) {
          const signs = iq3SignByte((aux >>> (7 * l)) & 127);
          for (let h = 0; h < 2; h++) {
            const point = grid[blocks[ob + 2 + 8 * ib + 2 * l + h]];
            for (let j = 0; j < 4; j++) {
              const v = f(db * ((point >>> (8 * j)) & 255));
              out[b * QK + 32 * ib + 8 * l + 4 * h + j] = signs & (1 << (4 * h + j)) ? -v : v;
            }
          }
        }
      }
    }
  },
};
