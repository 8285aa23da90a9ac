// MLX's quantization on the host: the readable reference of shaders/mlx_quantize.wgsl
// and the CPU fallback. Semantics of MLX's CPU backend (mlx/backend/cpu/quantized.cpp):
//
// affine, per group of `groupSize` consecutive elements of a row, in float32:
//   scale = max((max - min) / (2^bits - 1), 1e-7), negated unless |min| > |max|;
//   edge  = the end with the larger magnitude (min when the scale is positive);
//   q0 = rint(edge / scale); when q0 != 0 the zero point is snapped: scale = edge / q0,
//   bias = edge (so q = -q0 decodes to exactly 0), else bias = 0;
//   q = clamp(rint((w - bias) / scale), 0, 2^bits - 1); scale and bias are stored in
//   the input's dtype. Decoding: w = scale * q + bias.
// Packing: element i of a row sits at bit i * bits of the row's little-endian bit
// stream, read as uint32 words (MLX packs 2/4/8 bits LSB-first in uint32 words and
// 3/5/6 bits LSB-first in 3- and 5-byte packs; both are that same bit stream).
//
// mxfp4: groups of 32, one E8M0 scale byte s (2^(s - 127); s = 0 decodes as 2^-127, as
// MLX's bfloat16 0x0040), E2M1 codes (0, 0.5, 1, 1.5, 2, 3, 4, 6, sign in bit 3)
// packed 8 per uint32, LSB first. s = clamp(round(log2(max|w| / 6)), -127, 127) + 127,
// round half away from zero of the float32 log2; codes by to_fp4_e2m1's thresholds.

import { ArgumentError, ShapeError } from '../errors.js';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../runtime/half.js';

const f = Math.fround;

export type MlxMode = 'affine' | 'mxfp4';
export const MLX_AFFINE_BITS = [2, 3, 4, 5, 6, 8] as const;
export const MLX_GROUP_SIZES = [32, 64, 128] as const;
/** Storage dtypes of scales and biases (the dtype of the quantized weights). */
export type MlxScaleDType = 'float32' | 'float16' | 'bfloat16';

export interface MlxQuantSpec {
  mode: MlxMode;
  groupSize: number;
  bits: number;
}

/** Checks a quantization spec: affine bits 2/3/4/5/6/8 with groups 32/64/128, mxfp4 with 4 bits and groups of 32. */
export function checkMlxSpec(spec: MlxQuantSpec, what: string): void {
  if (spec.mode === 'affine') {
    if (!(MLX_AFFINE_BITS as readonly number[]).includes(spec.bits)) {
      throw new ArgumentError(`${what}: affine quantization takes bits 2, 3, 4, 5, 6 or 8, not ${spec.bits}`);
    }
    if (!(MLX_GROUP_SIZES as readonly number[]).includes(spec.groupSize)) {
      throw new ArgumentError(`${what}: affine quantization takes group sizes 32, 64 or 128, not ${spec.groupSize}`);
    }
  } else if (spec.mode === 'mxfp4') {
    if (spec.bits !== 4 || spec.groupSize !== 32) {
      throw new ArgumentError(`${what}: mxfp4 has bits 4 and group size 32 (got bits ${spec.bits}, group size ${spec.groupSize})`);
    }
  } else {
    throw new ArgumentError(`${what}: unknown quantization mode '${String((spec as { mode: unknown }).mode)}' (MLX modes: affine, mxfp4)`);
  }
}

/** Packed uint32 words per row of `rowLength` elements. */
export function packedRowWords(rowLength: number, bits: number): number {
  return (rowLength * bits) / 32;
}

/** Checks that rows split into whole groups; returns the row length. */
export function checkMlxRows(shape: readonly number[], spec: MlxQuantSpec, what: string): number {
  const row = shape.length ? shape[shape.length - 1] : 1;
  if (row % spec.groupSize !== 0) {
    throw new ShapeError(`${what}: row length ${row} (shape [${shape.join(', ')}]) is not a multiple of the group size ${spec.groupSize}`);
  }
  return row;
}

const toScale: Record<MlxScaleDType, (x: number) => number> = {
  float32: (x) => f(x),
  float16: (x) => f16BitsToF32(f32ToF16Bits(x)),
  bfloat16: (x) => bf16BitsToF32(f32ToBf16Bits(x)),
};

/** rint: round half to even (C's default rounding mode). */
export function rint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function writeBits(words: Uint32Array, bitPos: number, value: number, bits: number): void {
  const w = bitPos >>> 5;
  const off = bitPos & 31;
  words[w] = (words[w] | (value << off)) >>> 0;
  if (off + bits > 32) words[w + 1] = (words[w + 1] | (value >>> (32 - off))) >>> 0;
}

export function readBits(words: Uint32Array, bitPos: number, bits: number): number {
  const w = bitPos >>> 5;
  const off = bitPos & 31;
  let v = words[w] >>> off;
  if (off + bits > 32) v |= words[w + 1] << (32 - off);
  return (v & ((1 << bits) - 1)) >>> 0;
}

export interface MlxAffineHost {
  wq: Uint32Array;
  /** Scales and biases as float32 values of `scaleDType` (rounded to it). */
  scales: Float32Array;
  biases: Float32Array;
}

/** MLX affine quantization of `x` (float32 values of the input; rows of `rowLength`). */
export function mlxAffineQuantizeHost(x: Float32Array, rowLength: number, groupSize: number, bits: number, scaleDType: MlxScaleDType): MlxAffineHost {
  const nGroups = x.length / groupSize;
  const wq = new Uint32Array((x.length * bits) / 32);
  const scales = new Float32Array(nGroups);
  const biases = new Float32Array(nGroups);
  const nBins = (1 << bits) - 1;
  const eps = f(1e-7);
  const round = toScale[scaleDType];
  for (let g = 0; g < nGroups; g++) {
    const o = g * groupSize;
    let mn = Infinity;
    let mx = -Infinity;
    for (let j = 0; j < groupSize; j++) {
      mx = Math.max(mx, x[o + j]);
      mn = Math.min(mn, x[o + j]);
    }
    const positive = Math.abs(mn) > Math.abs(mx);
    let scale = Math.max(f(f(mx - mn) / nBins), eps);
    if (!positive) scale = -scale;
    const edge = positive ? mn : mx;
    const q0 = rint(f(edge / scale));
    let bias = 0;
    if (q0 !== 0) {
      scale = f(edge / q0);
      bias = edge;
    }
    // Groups never straddle rows, so the row's bit stream is the flat one.
    void rowLength;
    for (let j = 0; j < groupSize; j++) {
      const q = Math.min(Math.max(rint(f(f(x[o + j] - bias) / scale)), 0), nBins);
      writeBits(wq, (o + j) * bits, q, bits);
    }
    scales[g] = round(scale);
    biases[g] = round(bias);
  }
  return { wq, scales, biases };
}

/** MLX affine decoding, in float32: scale * q + bias (no fused multiply-add). */
export function mlxAffineDequantizeHost(wq: Uint32Array, scales: Float32Array, biases: Float32Array, groupSize: number, bits: number): Float32Array {
  const n = scales.length * groupSize;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = Math.floor(i / groupSize);
    out[i] = f(f(scales[g] * readBits(wq, i * bits, bits)) + biases[g]);
  }
  return out;
}

/** E2M1 values by code (bit 3 = sign). */
export const FP4_VALUES = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];

/** MLX's E8M0 scale byte for the float32 `x` (= max|w| / 6). */
export function e8m0Of(x: number): number {
  if (!Number.isFinite(x)) return 0xff;
  if (x < 0) return 0;
  const le = f(Math.log2(x));
  // std::round: half away from zero
  let n = Math.sign(le) * Math.round(Math.abs(le));
  n = Math.min(127, Math.max(-127, n));
  return n + 127;
}

/** 2^(s - 127); s = 0 gives 2^-127 (MLX decodes it as bfloat16 0x0040). */
export function e8m0Value(s: number): number {
  return s === 0 ? 2 ** -127 : bf16BitsToF32((s << 7) & 0xffff);
}

/** to_fp4_e2m1: the code of x (already divided by the scale). */
export function fp4Code(x: number): number {
  if (Number.isNaN(x)) return 7;
  const sign = x < 0 || Object.is(x, -0) ? 8 : 0;
  const a = Math.abs(x);
  let c: number;
  if (a > 5) c = 7;
  else if (a >= 3.5) c = 6;
  else if (a > 2.5) c = 5;
  else if (a >= 1.75) c = 4;
  else if (a > 1.25) c = 3;
  else if (a >= 0.75) c = 2;
  else if (a > 0.25) c = 1;
  else c = 0;
  return c | sign;
}

/** MLX mxfp4 quantization: uint32 words of codes and one scale byte per 32 elements. */
export function mlxMxfp4QuantizeHost(x: Float32Array): { wq: Uint32Array; scales: Uint8Array } {
  const nGroups = x.length / 32;
  const wq = new Uint32Array(x.length / 8);
  const scales = new Uint8Array(nGroups);
  for (let g = 0; g < nGroups; g++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[g * 32 + j]));
    const s = e8m0Of(f(amax / 6));
    scales[g] = s;
    const scale = e8m0Value(s);
    for (let j = 0; j < 32; j++) {
      const v = scale === 0 ? 0 : f(x[g * 32 + j] / scale);
      writeBits(wq, (g * 32 + j) * 4, fp4Code(v), 4);
    }
  }
  return { wq, scales };
}

/** MLX mxfp4 decoding in float32: 2^(s - 127) * E2M1(code). */
export function mlxMxfp4DequantizeHost(wq: Uint32Array, scales: Uint8Array): Float32Array {
  const out = new Float32Array(scales.length * 32);
  for (let i = 0; i < out.length; i++) out[i] = f(e8m0Value(scales[i >> 5]) * FP4_VALUES[readBits(wq, i * 4, 4)]);
  return out;
}
