// IQ4_NL: blocks of 32 weights as { d: f16, qs: u8[16] } (18 bytes), x = d * kvalues_iq4nl[q];
// byte j holds element j in its low nibble and element j + 16 in its high one.
// ggml: quantize_iq4_nl (quantize_row_iq4_nl_impl with no importance matrix and
// ntry 7, as ggml_quantize_chunk calls it) / dequantize_row_iq4_nl. WGSL: shaders/quant/iq4_nl.wgsl.

import { f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import type { QuantFormat } from '../format.js';
import { ggmlType } from '../../runtime/ggml-types.js';
import { imatrixBlockWeights, sumSquares } from './kquant-weighted.js';
import { absMax, allFinite, bytesView, inverseOrZero, iq4nlIndex, KVALUES_IQ4NL, writeNonFiniteBlock } from './block-helpers.js';

const TYPE = ggmlType('iq4_nl');
const { blockSize: QK, typeSize: BYTES } = TYPE;
const NTRY = 7;
const GROUP_MAX_EPS = Math.fround(1e-15);
/** float16 of x86's default NaN (0xffc00000), what inf/inf gives ggml's x86-64 build. */
const X86_F16_NAN = 0xfe00;
const f = Math.fround;

const sums = new Float64Array(2); // [sumqx, sumq2] of the last fit (float32 values)

/**
 * One candidate grid 1 / id over x[o..o+32): the least-squares sums of the levels
 * best_index_int8 picks (iq4nlIndex), weights x^2 (or w[0..32) when given),
 * accumulated in ggml's order into `sums`.
 */
function fit(x: Float32Array, o: number, id: number, w?: Float32Array): void {
  let sumqx = 0;
  let sumq2 = 0;
  for (let j = 0; j < QK; j++) {
    const xj = x[o + j];
    const q = KVALUES_IQ4NL[iq4nlIndex(f(id * xj))];
    const wq = f((w ? w[j] : f(xj * xj)) * q);
    sumqx = f(sumqx + f(wq * xj));
    sumq2 = f(sumq2 + f(wq * q));
  }
  sums[0] = sumqx;
  sums[1] = sumq2;
}

/**
 * quantize_row_iq4_nl_impl's scale for one block of 32 weights x[o..o+32):
 * the least-squares scale of the best of 2 * NTRY + 2 candidate grids, or 0 for
 * a block whose largest |x| is below GROUP_MAX_EPS. Weights w[0..32) when
 * given (the importance-matrix path), else x^2.
 */
export function iq4BlockScale(x: Float32Array, o: number, w?: Float32Array): number {
  const { amax, max } = absMax(x, o, QK);
  if (amax < GROUP_MAX_EPS) return 0;
  const v0 = KVALUES_IQ4NL[0];
  fit(x, o, f(1 / f(-max / v0)), w);
  let d = sums[1] > 0 ? f(sums[0] / sums[1]) : 0;
  let best = f(d * sums[0]);
  for (let itry = -NTRY; itry <= NTRY; itry++) {
    fit(x, o, f((itry + v0) / max), w);
    const [sumqx, sumq2] = sums;
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
    const lo = iq4nlIndex(f(id * x[o + j]));
    const hi = iq4nlIndex(f(id * x[o + QK / 2 + j]));
    out[at + j] = lo | (hi << 4);
  }
}

export const iq4_nl: QuantFormat = {
  type: TYPE,
  shader: 'quant/iq4_nl.wgsl',
  quantize: { workgroupSize: 64, blocksPerInvocation: 2 },
  dequantize: { workgroupSize: 64, invocationsPerBlock: 1 },
  nonFinite: 'marked',
  imatrix: 'optional',
  weightedKernel: 'shared-entry',

  quantizeCpu(x, out) {
    quantizeIq4Nl(x, out);
  },

  // quantize_row_iq4_nl_impl with quant_weights: per block sigma2 = sum x^2 * 2/32,
  // weights qw * sqrt(sigma2 + x^2) in place of x^2.
  quantizeWeightedCpu(x, out, nPerRow, qw) {
    quantizeIq4Nl(x, out, qw, nPerRow);
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

/** quantize_row_iq4_nl_impl's sigma2 for a super-block of n values: sum x^2 * (2/n). */
export function iq4Sigma2(x: Float32Array, o: number, n: number): number {
  return f(sumSquares(x, o, n) * f(2 / n));
}

const weight = new Float32Array(QK);

function quantizeIq4Nl(x: Float32Array, out: Uint8Array, qw?: Float32Array, nPerRow = x.length): void {
  const view = bytesView(out);
  for (let b = 0; b < x.length / QK; b++) {
    if (!allFinite(x, b * QK, QK)) {
      writeNonFiniteBlock(out, b * BYTES, BYTES, [0]);
      continue;
    }
    if (qw) imatrixBlockWeights(qw, (b % (nPerRow / QK)) * QK, x, b * QK, QK, iq4Sigma2(x, b * QK, QK), weight);
    const scale = iq4BlockScale(x, b * QK, qw ? weight : undefined);
    // A NaN scale (sums overflowed: |x| > 1.8e19) is stored as x86-64's default NaN, as ggml there.
    view.setUint16(b * BYTES, Number.isNaN(scale) ? X86_F16_NAN : f32ToF16Bits(scale), true);
    iq4PackBlock(x, b * QK, inverseOrZero(scale), out, b * BYTES + 2);
  }
}
