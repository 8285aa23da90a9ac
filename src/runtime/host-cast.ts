// Element conversions on the CPU, with the same rules as shaders/cast.wgsl:
//   float -> float: round to nearest even, once; float16 overflow -> ±Inf; NaN stays NaN.
//   float -> int:   truncate toward zero, saturate at the target's range, NaN -> 0.
//   int -> float:   round to nearest even, once, from the exact integer.
//   int -> int:     keep the low bits of the two's complement value (C's wrap).
// castBits() is the tests' oracle for the GPU casts; encodeNumber() turns JS
// numbers into elements when arrays are made from JS data.

import { DTYPES, type DType } from './dtype.js';
import {
  bitsF32,
  f16BitsToF32Bits,
  f32Bits,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  roundToFloatBits,
} from './half.js';

/** Integer range of an integer dtype of at most 32 bits. */
export function intRange(dtype: DType): [number, number] {
  const { bytes, kind } = DTYPES[dtype];
  const bits = bytes * 8;
  return kind === 'int' ? [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] : [0, 2 ** bits - 1];
}

/** The float32 bits of a float element's raw bits. */
function floatBitsOf(dtype: DType, raw: number): number {
  if (dtype === 'float16') return f16BitsToF32Bits(raw);
  if (dtype === 'bfloat16') return (raw << 16) >>> 0;
  return raw >>> 0;
}

/** The numeric value of a computed dtype's raw element bits (zero-extended). */
export function decodeBits(dtype: DType, raw: number): number {
  const { kind, bytes } = DTYPES[dtype];
  if (kind === 'float') return bitsF32(floatBitsOf(dtype, raw));
  if (kind === 'int') {
    const shift = 32 - bytes * 8;
    return ((raw << shift) >> shift) | 0;
  }
  return raw >>> 0;
}

/** Truncates toward zero and saturates into an integer dtype; NaN -> 0. */
function saturate(v: number, dtype: DType): number {
  if (Number.isNaN(v)) return 0;
  const [lo, hi] = intRange(dtype);
  return Math.min(hi, Math.max(lo, Math.trunc(v)));
}

/** A JS number as the raw bits of one element of a computed dtype (unsigned, zero-extended). */
export function encodeNumber(v: number, dtype: DType): number {
  switch (dtype) {
    case 'float32':
      return f32Bits(v);
    case 'float16':
      return Number.isNaN(v) ? 0x7e00 : roundToFloatBits(v, 10, 15);
    case 'bfloat16':
      return Number.isNaN(v) ? 0x7fc0 : roundToFloatBits(v, 7, 127);
    default: {
      const bits = DTYPES[dtype].bytes * 8;
      const s = saturate(v, dtype);
      return bits === 32 ? s >>> 0 : s & ((1 << bits) - 1);
    }
  }
}

/** Oracle of the GPU cast: raw bits of a `from` element -> raw bits of the `to` element. */
export function castBits(from: DType, raw: number, to: DType): number {
  const src = DTYPES[from];
  const dst = DTYPES[to];
  if (src.kind === 'float') {
    const bits = floatBitsOf(from, raw);
    if (to === 'float32') return bits;
    if (to === 'float16') return f32BitsToF16Bits(bits);
    if (to === 'bfloat16') return f32BitsToBf16Bits(bits);
    return encodeNumber(bitsF32(bits), to);
  }
  const v = decodeBits(from, raw);
  if (dst.kind === 'float') return encodeNumber(v, to);
  const mask = dst.bytes === 4 ? 0xffffffff : (1 << (dst.bytes * 8)) - 1;
  return (v & mask) >>> 0;
}

/**
 * Fills `out` (the raw container of `dtype`) from JS values. Numbers follow
 * encodeNumber's rules; bigints go to int64/uint64 with wrap; booleans are 0/1.
 */
export function encodeValues(values: ArrayLike<number | bigint | boolean>, dtype: DType): ArrayBufferView {
  const n = values.length;
  switch (dtype) {
    case 'int64':
    case 'uint64': {
      const out = dtype === 'int64' ? new BigInt64Array(n) : new BigUint64Array(n);
      const wrap = dtype === 'int64' ? BigInt.asIntN : BigInt.asUintN;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        out[i] = wrap(64, typeof v === 'bigint' ? v : saturate64(Number(v), dtype));
      }
      return out;
    }
    case 'float64':
      return Float64Array.from({ length: n }, (_, i) => Number(values[i]));
    case 'bool':
      return Uint8Array.from({ length: n }, (_, i) => (values[i] ? 1 : 0));
    default: {
      if (dtype === 'float32') return Float32Array.from({ length: n }, (_, i) => Number(values[i]));
      const bytes = DTYPES[dtype].bytes;
      const raw = bytes === 4 ? new Uint32Array(n) : bytes === 2 ? new Uint16Array(n) : new Uint8Array(n);
      for (let i = 0; i < n; i++) raw[i] = encodeNumber(Number(values[i]), dtype);
      return new DTYPES[dtype].container(raw.buffer, 0, n);
    }
  }
}

/** An integer for int64/uint64 from a number: truncated, saturated at the 64-bit range, NaN -> 0. */
function saturate64(v: number, dtype: 'int64' | 'uint64'): bigint {
  if (Number.isNaN(v)) return 0n;
  const t = Math.trunc(v);
  if (dtype === 'uint64') {
    if (t <= 0) return 0n;
    return t >= 2 ** 64 ? 2n ** 64n - 1n : BigInt(t);
  }
  if (t >= 2 ** 63) return 2n ** 63n - 1n;
  if (t < -(2 ** 63)) return -(2n ** 63n);
  return BigInt(t);
}
