// Seeded random arrays: uniform, normal, integers and raw bits, from
// Philox4x32-10 on the GPU (shaders/random.wgsl).
//
// Element i of an array made with key k is a function of (k, i) alone:
// the same seed gives the same numbers for any chunking, dispatch size or
// device (up to the float rounding of log/sin/cos in normal()). A prefix is
// stable too: uniform([n]) is the first n elements of uniform([m]) for m > n
// with the same seed and dtype.
//
// Without `seed`, a call takes the next key of a global generator (seed() sets
// it), as MLX's global PRNG state does.

import { ArgumentError, DTypeError } from '../errors.js';
import { fillRandom } from '../kernels/random.js';
import { formatShape, WgArray, type Shape } from '../runtime/array.js';
import { deviceOf } from '../runtime/device.js';
import type { Device } from '../runtime/device.js';
import { DTYPES, dtypeInfo, type DType } from '../runtime/dtype.js';
import { f32Bits } from '../runtime/half.js';
import { intRange, decodeBits, encodeNumber } from '../runtime/host-cast.js';

/** A seed: an integer in [0, 2^64), as a number (up to 2^53) or a bigint. */
export type Seed = number | bigint;

export interface RandomOptions<D extends DType = DType> {
  /** Makes the result reproducible; default: the next key of the global generator. */
  seed?: Seed;
  dtype?: D;
  device?: Device;
  name?: string;
}

/** Random float dtypes. */
export type RandomFloat = 'float32' | 'float16' | 'bfloat16';

/** Philox4x32-10 on the CPU: the reference of the GPU kernel and the key schedule. */
export function philox4x32(counter: readonly [number, number, number, number], key: readonly [number, number]): [number, number, number, number] {
  let [c0, c1, c2, c3] = counter.map((x) => x >>> 0);
  let [k0, k1] = key.map((x) => x >>> 0);
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + 0x9e3779b9) >>> 0;
      k1 = (k1 + 0xbb67ae85) >>> 0;
    }
    const p0 = BigInt(0xd2511f53) * BigInt(c0);
    const p1 = BigInt(0xcd9e8d57) * BigInt(c2);
    const hi0 = Number(p0 >> 32n);
    const lo0 = Number(p0 & 0xffffffffn);
    const hi1 = Number(p1 >> 32n);
    const lo1 = Number(p1 & 0xffffffffn);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return [c0, c1, c2, c3];
}

/** The Philox key of a seed: its low and high 32-bit words. */
export function seedKey(seed: Seed): [number, number] {
  let s: bigint;
  if (typeof seed === 'bigint') s = seed;
  else {
    if (!Number.isSafeInteger(seed)) throw new ArgumentError(`random seed ${seed} is not an integer in [0, 2^53]; pass a bigint for larger seeds`);
    s = BigInt(seed);
  }
  if (s < 0n || s >= 2n ** 64n) throw new ArgumentError(`random seed ${seed} is outside [0, 2^64)`);
  return [Number(s & 0xffffffffn), Number(s >> 32n)];
}

let globalKey: [number, number] = seedKey(BigInt(Date.now()) * 1000003n % 2n ** 64n);
let globalCalls = 0;

/** Seeds the global generator used by calls without `seed`. */
export function seed(value: Seed): void {
  globalKey = seedKey(value);
  globalCalls = 0;
}

/** The key of one call: its seed's, or the global generator's next one. */
function keyOf(options: { seed?: Seed }): [number, number] {
  if (options.seed !== undefined) return seedKey(options.seed);
  const n = globalCalls++;
  const [a, b] = philox4x32([n >>> 0, Math.floor(n / 2 ** 32), 0x6b657973, 0], globalKey);
  return [a, b];
}

function checkFloat(dtype: DType, op: string): asserts dtype is RandomFloat {
  dtypeInfo(dtype);
  if (dtype !== 'float32' && dtype !== 'float16' && dtype !== 'bfloat16') {
    throw new DTypeError(`random.${op}: dtype ${dtype} is not a float dtype; expected float32, float16 or bfloat16`);
  }
}

/** The largest value of float `dtype` below `x` (x finite). */
function floatBelow(x: number, dtype: RandomFloat): number {
  const bits = encodeNumber(x, dtype);
  let value = decodeBits(dtype, bits);
  if (value < x) return value;
  // One step towards -Inf in the dtype's bit pattern.
  const width = DTYPES[dtype].bytes * 8;
  const sign = 1 << (width - 1);
  const next = value === 0 ? sign | 1 : value > 0 ? bits - 1 : bits + 1;
  value = decodeBits(dtype, next >>> 0);
  return value;
}

function make<D extends DType>(shape: Shape, dtype: D, options: RandomOptions): WgArray<D> {
  return WgArray.empty(deviceOf(options.device), shape, dtype, options.name);
}

/**
 * Floats uniformly distributed in [low, high) (default [0, 1)): 24 random
 * bits per element, low + u * (high - low) in float32, rounded once to
 * `dtype` and kept below `high`.
 */
export function uniform<D extends RandomFloat = 'float32'>(
  shape: Shape,
  options: RandomOptions<D> & { low?: number; high?: number } = {},
): WgArray<D> {
  const dtype = (options.dtype ?? 'float32') as D;
  checkFloat(dtype, 'uniform');
  const low = options.low ?? 0;
  const high = options.high ?? 1;
  const span = Math.fround(high - low);
  if (!Number.isFinite(low) || !Number.isFinite(high) || !(high > low) || !Number.isFinite(span)) {
    throw new ArgumentError(`random.uniform of shape ${formatShape(shape)}: needs finite low < high with finite high - low, got low ${low}, high ${high}`);
  }
  const key = keyOf(options);
  const out = make(shape, dtype, options);
  const below = Math.fround(floatBelow(high, dtype));
  fillRandom(out, 'uniform', key, [f32Bits(low), f32Bits(span), f32Bits(below)]);
  return out;
}

/**
 * Normally distributed floats (default mean 0, std 1), Box-Muller on pairs of
 * 24-bit uniforms, computed in float32 and rounded once to `dtype`. Values lie
 * within about 5.8 standard deviations of the mean.
 */
export function normal<D extends RandomFloat = 'float32'>(
  shape: Shape,
  options: RandomOptions<D> & { mean?: number; std?: number } = {},
): WgArray<D> {
  const dtype = (options.dtype ?? 'float32') as D;
  checkFloat(dtype, 'normal');
  const mean = options.mean ?? 0;
  const std = options.std ?? 1;
  if (!Number.isFinite(mean) || !Number.isFinite(std) || std < 0) {
    throw new ArgumentError(`random.normal of shape ${formatShape(shape)}: needs a finite mean and a finite std >= 0, got mean ${mean}, std ${std}`);
  }
  const key = keyOf(options);
  const out = make(shape, dtype, options);
  fillRandom(out, 'normal', key, [f32Bits(mean), f32Bits(std), 0]);
  return out;
}

/**
 * Integers in [low, high) (default dtype int32). Each element maps 32 random
 * bits into the range by a multiply-high, so every value occurs with
 * probability within (high - low) / 2^32 of uniform.
 */
export function randint<D extends DType = 'int32'>(low: number, high: number, shape: Shape, options: RandomOptions<D> = {}): WgArray<D> {
  const dtype = (options.dtype ?? 'int32') as D;
  const info = dtypeInfo(dtype);
  if (!info.computed || (info.kind !== 'int' && info.kind !== 'uint')) {
    throw new DTypeError(`random.randint: dtype ${dtype} is not an integer dtype; expected one of int8, uint8, int16, uint16, int32, uint32`);
  }
  const [min, max] = intRange(dtype);
  if (!Number.isInteger(low) || !Number.isInteger(high) || !(high > low) || low < min || high - 1 > max) {
    throw new ArgumentError(`random.randint of shape ${formatShape(shape)}: needs integers ${min} <= low < high <= ${max + 1} for ${dtype}, got low ${low}, high ${high}`);
  }
  const range = high - low;
  if (range > 2 ** 32 - 1) throw new ArgumentError(`random.randint: high - low = ${range} is over 2^32 - 1`);
  const key = keyOf(options);
  const out = make(shape, dtype, options);
  fillRandom(out, 'integers', key, [low >>> 0, range >>> 0, 0]);
  return out;
}

/** Raw 32-bit Philox outputs as uint32: element i is word i % 4 of philox([i / 4, 0, 0, 0], key(seed)). */
export function bits(shape: Shape, options: Omit<RandomOptions, 'dtype'> = {}): WgArray<'uint32'> {
  const key = keyOf(options);
  const out = make(shape, 'uint32', options);
  fillRandom(out, 'bits', key, [0, 0, 0]);
  return out;
}
