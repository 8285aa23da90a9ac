// IQ4_NL: blocks of 32 weights as { d: f16, qs: u8[16] } (18 bytes), x = d * kvalues_iq4nl[q];
// byte j holds element j in its low nibble and element j + 16 in its high one.
// ggml: quantize_iq4_nl (quantize_row_iq4_nl_impl with no importance matrix and
// ntry 7, as ggml_quantize_chunk calls it) / dequantize_row_iq4_nl. WGSL: shaders/quant/iq4_nl.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../ggml-types.js';
import { absMax, allFinite, bestIndexInt8, bytesView, KVALUES_IQ4NL, writeNonFiniteBlock } from './legacy-common.js';

const QK = 32;
const BYTES = 18;
const NTRY = 7;
const GROUP_MAX_EPS = Math.fround(1e-15);
const f = Math.fround;

/**
 * quantize_row_iq4_nl_impl's scale for one block of 32 weights x[o..o+32):
 * the least-squares scale (weights x^2) of the best of 2 * NTRY + 2 candidate
 * grids, or 0 for a block whose largest |x| is below GROUP_MAX_EPS.
 */
export function iq4BlockScale(x: Float32Array, o: number): number {
  const { amax, max } = absMax(x, o, QK);
  if (amax < GROUP_MAX_EPS) return 0;
  const values = KVALUES_IQ4NL;
  // One candidate grid (1 / id per level): least-squares fit of the levels it picks.
  const fit = (id: number): [number, number] => {
    let sumqx = 0;
    let sumq2 = 0;
    for (let j = 0; j < QK; j++) {
      const xj = x[o + j];
      const q = values[bestIndexInt8(values, f(id * xj))];
      const wq = f(f(xj * xj) * q);
      sumqx = f(sumqx + f(wq * xj));
      sumq2 = f(sumq2 + f(wq * q));
    }
    return [sumqx, sumq2];
  };
  let [sumqx, sumq2] = fit(f(1 / f(-max / values[0])));
  let d = sumq2 > 0 ? f(sumqx / sumq2) : 0;
  let best = f(d * sumqx);
  for (let itry = -NTRY; itry <= NTRY; itry++) {
    [sumqx, sumq2] = fit(f((itry + values[0]) / max));
    if (sumq2 > 0 && f(sumqx * sumqx) > f(best * sumq2)) {
      d = f(sumqx / sumq2);
      best = f(d * sumqx);
    }
  }
  return d;
}

/** Packs the 32 level indices of x[o..o+32) at 1/scale `id` into 16 bytes at out[at..]. */
export function iq4PackBlock(x: Float32Array, o: number, id: number, out: Uint8Array, at: number): void {
  for (let j = 0; j < QK / 2; j++) {
    const lo = bestIndexInt8(KVALUES_IQ4NL, f(id * x[o + j]));
    const hi = bestIndexInt8(KVALUES_IQ4NL, f(id * x[o + QK / 2 + j]));
    out[at + j] = lo | (hi << 4);
  }
}

export const iq4_nl: QuantFormat = {
  type: ggmlType('iq4_nl'),
  shader: 'quant/iq4_nl.wgsl',
  quantizeBlocksPerWorkgroup: 128,
  dequantizeBlocksPerWorkgroup: 64,

  quantizeCpu(x, out) {
    const view = bytesView(out);
    for (let b = 0; b < x.length / QK; b++) {
      if (!allFinite(x, b * QK, QK)) {
        writeNonFiniteBlock(out, b * BYTES, BYTES, [0]);
        continue;
      }
      const scale = iq4BlockScale(x, b * QK);
      view.setUint16(b * BYTES, f32ToF16Bits(scale), true);
      iq4PackBlock(x, b * QK, scale ? f(1 / scale) : 0, out, b * BYTES + 2);
    }
  },

  dequantizeCpu(blocks, out) {
    const view = bytesView(blocks);
    for (let b = 0; b < blocks.length / BYTES; b++) {
      const d = f16BitsToF32(view.getUint16(b * BYTES, true));
      for (let j = 0; j < QK / 2; j++) {
        const q = blocks[b * BYTES + 2 + j];
        out[b * QK + j] = f(d * KVALUES_IQ4NL[q & 15]);
        out[b * QK + QK / 2 + j] = f(d * KVALUES_IQ4NL[q >> 4]);
      }
    }
  },
};
