// Helpers shared by the CPU references of the 32-element ("legacy") formats,
// IQ4_NL/IQ4_XS, MXFP4 and the ternary formats: C's float -> int conversions
// as ggml's x86-64 builds perform them, ggml's lookup tables, block byte access.
//
// Non-finite input: on NaN and ±Inf ggml's quantizers reach float -> int
// conversions that C leaves undefined, and their bytes differ between machines.
// wgarray instead marks such a block as invalid: every scale field becomes NaN
// (float16 0x7e00; MXFP4's E8M0 exponent 0xff, the OCP NaN code) and every
// quant bit 0, so the block dequantizes to NaN (MXFP4: ggml reads 0xff as 2^127
// and decodes zeros) and llama.cpp's row validation rejects the tensor instead of
// running on garbage. Finite blocks keep ggml's bytes exactly. The WGSL kernels
// (shaders/lib/legacy_quant.wgsl) apply the same rule.
//
// Finite inputs can still reach out-of-range conversions (a subnormal scale whose
// inverse overflows); those follow x86-64 (cvttss2si: truncate; NaN and
// |x| >= 2^31 give INT_MIN, whose low byte is 0), as ggml's x86-64 build does.

const f = Math.fround;
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** C's `(int)x` for a float on x86-64: truncation; NaN and out-of-range values give INT_MIN. */
export function cInt(x: number): number {
  if (!(x > -2147483649 && x < 2147483648)) return -2147483648; // NaN, or |x| >= 2^31 (float32)
  return Math.trunc(x) | 0;
}

/** C's `(int8_t)x` for a float on x86-64 (converted to int32, then the low byte). */
export function cInt8(x: number): number {
  return (cInt(x) << 24) >> 24;
}

/** C's `(uint8_t)x` for a float on x86-64. */
export function cUint8(x: number): number {
  return cInt(x) & 0xff;
}

/** C's lroundf on x86-64 glibc, narrowed to int: halfway cases away from zero; NaN and huge values give 0. */
export function cLroundInt(x: number): number {
  if (!(Math.abs(x) < 2 ** 63)) return 0; // LONG_MIN, whose low 32 bits are 0
  const a = Math.floor(Math.abs(x) + 0.5); // exact in double for float32 inputs
  const r = x < 0 ? -a : a;
  return Math.abs(r) < 2 ** 31 ? r : Number(BigInt.asIntN(32, BigInt(r)));
}

/** ggml's nearest_int bit trick (add 1.5 * 2^23, read the mantissa), including what it does past 2^22. NaN gives 0. */
export function cNearestInt(x: number): number {
  if (Number.isNaN(x)) return 0;
  const v = f(x + 12582912);
  F32[0] = v;
  return (U32[0] & 0x007fffff) - 0x00400000;
}

/** C's `d ? 1.0f/d : 0.0f` in float32: a NaN d is nonzero in C (but falsy in JS). */
export function inverseOrZero(d: number): number {
  return d !== 0 ? Math.fround(1 / d) : 0;
}

/** float16 NaN: the scale of a block whose input holds NaN or ±Inf. */
export const F16_NAN = 0x7e00;

/** Whether x[o..o+n) are all finite (no NaN, no ±Inf). */
export function allFinite(x: Float32Array, o: number, n: number): boolean {
  for (let j = 0; j < n; j++) if (!Number.isFinite(x[o + j])) return false;
  return true;
}

/**
 * Writes the invalid-block marker: `scaleOffsets` hold float16 NaN, every other
 * byte of the block is 0.
 */
export function writeNonFiniteBlock(out: Uint8Array, at: number, bytes: number, scaleOffsets: readonly number[]): void {
  out.fill(0, at, at + bytes);
  for (const s of scaleOffsets) {
    out[at + s] = F16_NAN & 0xff;
    out[at + s + 1] = F16_NAN >> 8;
  }
}

/** The largest |x[o..o+n)| and the signed value that has it, as ggml's `if (amax < fabsf(v))` loop finds them (NaN never wins). */
export function absMax(x: Float32Array, o: number, n: number): { amax: number; max: number } {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[o + j];
    const a = Math.abs(v);
    if (amax < a) {
      amax = a;
      max = v;
    }
  }
  return { amax, max };
}

/** ggml's `amax = MAX(amax, fabsf(v))` loop, MAX(a, b) being `a > b ? a : b`: a NaN is kept until the next element replaces it. */
export function ternaryAbsMax(x: Float32Array, o: number, n: number): number {
  let amax = 0;
  for (let j = 0; j < n; j++) {
    const a = Math.abs(x[o + j]);
    amax = amax > a ? amax : a;
  }
  return amax;
}

const FLT_MAX = 3.4028234663852886e38;

/** The smallest and largest of x[o..o+n), as ggml's `if (v < min) min = v; if (v > max) max = v;` loop finds them from ±FLT_MAX (NaN ignored). */
export function minMax(x: Float32Array, o: number, n: number): { min: number; max: number } {
  let min = FLT_MAX;
  let max = -FLT_MAX;
  for (let j = 0; j < n; j++) {
    const v = x[o + j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

/** ggml's kvalues_iq4nl: the 16 non-linear levels of IQ4_NL and IQ4_XS. */
export const KVALUES_IQ4NL: readonly number[] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/** ggml's kvalues_mxfp4: E2M1 values, doubled (the scale is halved to match). */
export const KVALUES_MXFP4: readonly number[] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/** ggml's best_index_int8: index of the level nearest x in the sorted table (float32 arithmetic; NaN gives the last). */
export function bestIndexInt8(values: readonly number[], x: number): number {
  const n = values.length;
  if (x <= values[0]) return 0;
  if (x >= values[n - 1]) return n - 1;
  let ml = 0;
  let mu = n - 1;
  while (mu - ml > 1) {
    const mav = (ml + mu) >> 1;
    if (x < values[mav]) mu = mav;
    else ml = mav;
  }
  return f(x - values[mu - 1]) < f(values[mu] - x) ? mu - 1 : mu;
}

/**
 * best_index_int8(16, kvalues_iq4nl, x), computed as the number of midpoints
 * between consecutive levels that x reaches: ggml's float comparison
 * `x - val[mu-1] < val[mu] - x` never rounds across a midpoint, so the two agree
 * for every float32 (test/quant-roundtrip checks every value near every
 * midpoint). Branch-free, about ten times faster than the binary search; NaN
 * gives 15 as there. The WGSL kernels use the same midpoints.
 */
export function iq4nlIndex(x: number): number {
  if (x !== x) return 15;
  return (
    +(x >= -115.5) + +(x >= -93.5) + +(x >= -74) + +(x >= -57) + +(x >= -42) + +(x >= -28.5) + +(x >= -16) + +(x >= -4.5) +
    +(x >= 7) + +(x >= 19) + +(x >= 31.5) + +(x >= 45.5) + +(x >= 61) + +(x >= 79) + +(x >= 101)
  );
}

/** ggml_e8m0_to_fp32_half: 2^(e - 128), the MXFP4 block scale (subnormal for e < 2). */
export function e8m0ToF32Half(e: number): number {
  return 2 ** (e - 128);
}

/** A DataView over a byte array (block fields are little-endian). */
export function bytesView(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * The block walk of the IQ2/IQ3 quantizers (quantize_row_iq*_impl): each
 * super-block of `qk` is zeroed first, as ggml does; one holding NaN or ±Inf
 * gets the non-finite bytes (its f16 d at byte 0), the others
 * `encode(o, ob, qo)`: o its first value in x, ob its first byte in out, qo its
 * first column in the row (where its importance weights start).
 */
export function forEachIqBlock(
  x: Float32Array,
  out: Uint8Array,
  qk: number,
  blockBytes: number,
  nPerRow: number,
  encode: (o: number, ob: number, qo: number) => void,
): void {
  const blocksPerRow = nPerRow / qk;
  for (let b = 0; b < x.length / qk; b++) {
    const o = b * qk;
    const ob = b * blockBytes;
    out.fill(0, ob, ob + blockBytes);
    if (!allFinite(x, o, qk)) {
      writeNonFiniteBlock(out, ob, blockBytes, [0]);
      continue;
    }
    encode(o, ob, (b % blocksPerRow) * qk);
  }
}
