// CPU references for the array-op tests: seeded data of every dtype, float64
// values of raw elements, row-major index helpers and a generic gather.
import { DTYPES, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, bf16BitsToF32, type DType, type TypedArray } from '../../src/index.js';

/** A small seeded PRNG (mulberry32): the tests' data is the same on every run. */
export { mulberry32 as rng } from '../../src/runtime/host-random.js';

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function unravel(shape: readonly number[], i: number): number[] {
  const out = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return out;
}

export function ravel(shape: readonly number[], idx: readonly number[]): number {
  let i = 0;
  for (let d = 0; d < shape.length; d++) i = i * shape[d] + idx[d];
  return i;
}

/** Raw elements of `dtype` (the container data() returns), with values spread over the dtype's range. */
export function randomRaw(dtype: DType, n: number, next: () => number, scale = 10): TypedArray {
  const info = DTYPES[dtype];
  const out = new info.container(n) as TypedArray;
  for (let i = 0; i < n; i++) {
    const u = next();
    const f = (u * 2 - 1) * scale;
    switch (dtype) {
      case 'float32':
      case 'float64':
        out[i] = f;
        break;
      case 'float16':
        out[i] = f32ToF16Bits(f);
        break;
      case 'bfloat16':
        out[i] = f32ToBf16Bits(f);
        break;
      case 'bool':
        out[i] = u < 0.5 ? 0 : 1;
        break;
      case 'int64':
        (out as BigInt64Array)[i] = BigInt(Math.floor((u - 0.5) * 2 ** 52)) * 4099n;
        break;
      case 'uint64':
        (out as BigUint64Array)[i] = BigInt(Math.floor(u * 2 ** 52)) * 4099n;
        break;
      default: {
        const bits = info.bytes * 8;
        const lo = info.kind === 'int' ? -(2 ** (bits - 1)) : 0;
        out[i] = lo + Math.floor(u * 2 ** bits);
      }
    }
  }
  return out;
}

/** The numeric value of each raw element (float16/bfloat16 decoded). */
export function valuesOf(dtype: DType, raw: ArrayLike<number | bigint>): Float64Array {
  const out = new Float64Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const r = raw[i];
    out[i] = dtype === 'float16' ? f16BitsToF32(Number(r)) : dtype === 'bfloat16' ? bf16BitsToF32(Number(r)) : Number(r);
  }
  return out;
}

/** out[i] = src[map(unravel(outShape, i))] with src row-major in `shape`. */
export function gather<T extends TypedArray>(src: T, shape: readonly number[], outShape: readonly number[], map: (idx: number[]) => number[]): T {
  const n = size(outShape);
  const out = new (src.constructor as new (n: number) => T)(n);
  for (let i = 0; i < n; i++) out[i] = src[ravel(shape, map(unravel(outShape, i)))];
  return out;
}

/** Float32 rounding of a float64 value, then to `dtype` (what a float32 computation rounded once gives). */
export function roundTo(dtype: DType, v: number): number {
  const f = Math.fround(v);
  if (dtype === 'float16') return f16BitsToF32(f32ToF16Bits(f));
  if (dtype === 'bfloat16') return bf16BitsToF32(f32ToBf16Bits(f));
  return f;
}

/** The raw element of `dtype` holding value v (integers wrap). */
export function encodeValue(dtype: DType, v: number): number {
  switch (dtype) {
    case 'float16':
      return f32ToF16Bits(v);
    case 'bfloat16':
      return f32ToBf16Bits(v);
    case 'float32':
    case 'float64':
      return v;
    case 'bool':
      return v ? 1 : 0;
    default: {
      const bits = DTYPES[dtype].bytes * 8;
      const m = Number(BigInt.asUintN(bits, BigInt(Math.trunc(v))));
      return DTYPES[dtype].kind === 'int' && m >= 2 ** (bits - 1) ? m - 2 ** bits : m;
    }
  }
}
