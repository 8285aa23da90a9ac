// CPU conversions between float32 and the 16-bit float formats, bit-exact with
// ggml (ggml_fp32_to_fp16_row, ggml_fp32_to_bf16_row_ref) and with the WGSL in
// shaders/lib/half_soft.wgsl. Used to build constants, as the tests' oracle,
// and by the CPU fallback paths.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

export function bitsF32(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

/** float32 -> IEEE binary16 bits, round to nearest even; overflow -> ±Inf; NaN stays NaN (quieted). */
export function f32ToF16Bits(x: number): number {
  return f32BitsToF16Bits(f32Bits(x));
}

/** f32ToF16Bits on the float32's bits (keeps NaN payloads, which JS numbers may not). */
export function f32BitsToF16Bits(bits: number): number {
  bits >>>= 0;
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00 | ((abs >>> 13) & 0x1ff);
  if (abs >= 0x477ff000) return sign | 0x7c00; // >= 65520 rounds past 65504
  if (abs >= 0x38800000) {
    // normal half: rebias the exponent, round the 13 dropped mantissa bits
    let h = (((abs >>> 23) - 112) << 10) | ((abs >>> 13) & 0x3ff);
    const rest = abs & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h += 1;
    return sign | h;
  }
  if (abs <= 0x33000000) return sign; // <= 2^-25 rounds to zero
  // subnormal half: units of 2^-24
  const e = abs >>> 23;
  const m = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - e;
  let h = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (h & 1) === 1)) h += 1;
  return sign | h;
}

export function f16BitsToF32(h: number): number {
  return bitsF32(f16BitsToF32Bits(h));
}

export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return (sign | f32Bits(m * 2 ** -24)) >>> 0;
  if (e === 31) return (sign | 0x7f800000 | (m << 13)) >>> 0;
  return (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
}

/** float32 -> bfloat16 bits as ggml_compute_fp32_to_bf16: round to nearest even, NaN forced quiet. */
export function f32ToBf16Bits(x: number): number {
  return f32BitsToBf16Bits(f32Bits(x));
}

export function f32BitsToBf16Bits(bits: number): number {
  bits >>>= 0;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 64) & 0xffff;
  return (((bits + (0x7fff + ((bits >>> 16) & 1))) >>> 0) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  return bitsF32((h & 0xffff) << 16);
}

/**
 * Rounds a finite or infinite JS number (a double) once, to nearest even, into a
 * binary float with `mant` stored mantissa bits and exponent bias `bias`; returns
 * its bits. Used for integer -> float casts, where going through float32 first
 * would round twice.
 */
export function roundToFloatBits(v: number, mant: number, bias: number): number {
  const expMax = 2 * bias + 1; // all-ones exponent
  const sign = v < 0 || Object.is(v, -0) ? 1 : 0;
  const signBit = sign * 2 ** (mant + expMax.toString(2).length);
  let a = Math.abs(v);
  if (Number.isNaN(v)) return signBit + expMax * 2 ** mant + 2 ** (mant - 1);
  if (a === 0) return signBit;
  if (a === Infinity) return signBit + expMax * 2 ** mant;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1;
  if (2 ** (e + 1) <= a) e += 1;
  const minExp = 1 - bias;
  const quantumExp = Math.max(e, minExp) - mant; // value of one unit in the last place
  let q = a / 2 ** quantumExp; // exact: power-of-two scaling
  const fl = Math.floor(q);
  const rest = q - fl;
  q = rest > 0.5 || (rest === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  a = q * 2 ** quantumExp;
  if (a === 0) return signBit;
  e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1;
  if (e + bias >= expMax) return signBit + expMax * 2 ** mant;
  if (e < minExp) return signBit + q; // subnormal
  const frac = a / 2 ** (e - mant) - 2 ** mant;
  return signBit + (e + bias) * 2 ** mant + frac;
}
