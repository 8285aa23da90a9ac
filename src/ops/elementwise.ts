// Elementwise math with NumPy broadcasting: binary ops, comparisons, unary
// functions, clip and where. Operands are arrays or JS scalars; the result
// dtype follows MLX's promotion (src/ops/promote.ts); float16/bfloat16 compute
// in float32 and round once. One kernel (shaders/elementwise.wgsl) per op,
// reading strided and broadcast views in place.

import { ArgumentError, DTypeError } from '../errors.js';
import { elementwise, type EwInput, type EwOp } from '../kernels/elementwise.js';
import { encodeNumber } from '../runtime/host-cast.js';
import { bf16BitsToF32, f16BitsToF32 } from '../runtime/half.js';
import { WgArray } from '../runtime/array.js';
import { deviceOf } from '../runtime/device.js';
import type { Device } from '../runtime/device.js';
import { DTYPES, type DType } from '../runtime/dtype.js';
import { broadcast_to, broadcastShapes } from './layout.js';
import { resultType, type Operand } from './promote.js';

export type { Operand, Scalar } from './promote.js';

function deviceOfOperands(op: string, operands: readonly Operand[]): Device {
  const arrays = operands.filter((x): x is WgArray => x instanceof WgArray);
  for (const x of arrays) {
    if (x.device !== arrays[0].device) throw new ArgumentError(`${op}: ${x.describe()} and ${arrays[0].describe()} are on different devices`);
    if (x.dtype !== 'bool' && !DTYPES[x.dtype].computed) {
      throw new DTypeError(`${op}: ${x.describe()} has dtype ${x.dtype}, which is held as storage only; cast it to a computed dtype first`);
    }
    x.storage; // throws for a disposed array
  }
  return arrays.length ? arrays[0].device : deviceOf();
}

/** Raw bits of scalar `x` as an element of `dtype`. */
function scalarBits(x: number | boolean, dtype: DType): number {
  if (dtype === 'bool') return x ? 1 : 0;
  return encodeNumber(Number(x), dtype);
}

/**
 * Runs `op` on operands promoted to `promoted`, with the result in `outDtype`
 * computed in `computeDtype`'s type.
 */
function run(op: EwOp, operands: readonly Operand[], promoted: DType, outDtype: DType, computeDtype: DType, clip?: [number, number]): WgArray {
  const device = deviceOfOperands(op, operands);
  const arrays = operands.filter((x): x is WgArray => x instanceof WgArray);
  const shape = broadcastShapes(
    arrays.map((x) => x.shape),
    `${op} of ${arrays.map((x) => x.describe()).join(' and ')}`,
  );
  const views: WgArray[] = [];
  try {
    const inputs: EwInput[] = operands.map((x) => {
      if (x instanceof WgArray) {
        const v = broadcast_to(x, shape);
        views.push(v);
        return { array: v };
      }
      return { scalar: scalarBits(x, promoted), dtype: promoted };
    });
    const name = arrays.find((x) => x.name)?.name;
    return elementwise(device, op, inputs, shape, outDtype, computeDtype, clip, name);
  } finally {
    for (const v of views) v.dispose();
  }
}

const isInt = (d: DType) => DTYPES[d].kind === 'int' || DTYPES[d].kind === 'uint';

function arithmetic(op: EwOp, a: Operand, b: Operand): WgArray {
  const t = resultType(op, [a, b]);
  if (t === 'bool') {
    // Logical forms: add/maximum = or, multiply/minimum = and.
    if (op === 'add' || op === 'maximum' || op === 'multiply' || op === 'minimum') return run(op, [a, b], t, 'bool', 'bool');
    throw new DTypeError(`${op} of two bool operands is not defined; cast them to a number dtype first`);
  }
  return run(op, [a, b], t, t, t);
}

/** a + b. */
export function add(a: Operand, b: Operand): WgArray {
  return arithmetic('add', a, b);
}
/** a - b. */
export function subtract(a: Operand, b: Operand): WgArray {
  return arithmetic('subtract', a, b);
}
/** a * b. */
export function multiply(a: Operand, b: Operand): WgArray {
  return arithmetic('multiply', a, b);
}
/** a / b, true division: integer operands give float32. */
export function divide(a: Operand, b: Operand): WgArray {
  const t = resultType('divide', [a, b]);
  const out = isInt(t) || t === 'bool' ? 'float32' : t;
  return run('divide', [a, b], t, out, out);
}
/** The larger of a and b; NaN if either is NaN. */
export function maximum(a: Operand, b: Operand): WgArray {
  return arithmetic('maximum', a, b);
}
/** The smaller of a and b; NaN if either is NaN. */
export function minimum(a: Operand, b: Operand): WgArray {
  return arithmetic('minimum', a, b);
}
/**
 * a ** b. Floats: C's pow (a negative base needs an integer exponent, else
 * NaN), computed as exp2(b * log2|a|). Integers: exact with wrap-around; a
 * negative exponent gives 0 except for bases 1 and -1.
 */
export function power(a: Operand, b: Operand): WgArray {
  return arithmetic('power', a, b);
}
/** floor(a / b); integers: 0 where b is 0. */
export function floor_divide(a: Operand, b: Operand): WgArray {
  return arithmetic('floor_divide', a, b);
}
/** a - floor(a / b) * b, with the sign of b (Python's %); integers: 0 where b is 0. */
export function remainder(a: Operand, b: Operand): WgArray {
  return arithmetic('remainder', a, b);
}

function comparison(op: EwOp, a: Operand, b: Operand): WgArray<'bool'> {
  const t = resultType(op, [a, b]);
  return run(op, [a, b], t, 'bool', t) as WgArray<'bool'>;
}

/** a == b, as a bool array. */
export function equal(a: Operand, b: Operand): WgArray<'bool'> {
  return comparison('equal', a, b);
}
/** a != b, as a bool array (true where either is NaN). */
export function not_equal(a: Operand, b: Operand): WgArray<'bool'> {
  return comparison('not_equal', a, b);
}
/** a < b, as a bool array. */
export function less(a: Operand, b: Operand): WgArray<'bool'> {
  return comparison('less', a, b);
}
/** a <= b, as a bool array. */
export function less_equal(a: Operand, b: Operand): WgArray<'bool'> {
  return comparison('less_equal', a, b);
}
/** a > b, as a bool array. */
export function greater(a: Operand, b: Operand): WgArray<'bool'> {
  return comparison('greater', a, b);
}
/** a >= b, as a bool array. */
export function greater_equal(a: Operand, b: Operand): WgArray<'bool'> {
  return comparison('greater_equal', a, b);
}

function requireArray(op: string, a: unknown): asserts a is WgArray {
  if (!(a instanceof WgArray)) throw new ArgumentError(`${op}: expected an array, got ${String(a)}`);
}

/** The operand of a unary number op: an array, not bool. */
function requireNumbers(op: string, a: unknown): asserts a is WgArray {
  requireArray(op, a);
  if (a.dtype === 'bool') throw new DTypeError(`${op}: ${a.describe()} is bool; cast it to a number dtype first`);
}

/** Unary ops that keep integer dtypes. */
function sameKind<D extends DType>(op: EwOp, a: WgArray<D>): WgArray<D> {
  requireNumbers(op, a);
  return run(op, [a], a.dtype, a.dtype, a.dtype) as WgArray<D>;
}

/** Unary ops with float results: integer inputs give float32. */
function floating(op: EwOp, a: WgArray): WgArray {
  requireNumbers(op, a);
  const out = DTYPES[a.dtype].kind === 'float' ? a.dtype : 'float32';
  return run(op, [a], a.dtype, out, out);
}

/** -a (integers wrap). */
export const negative = <D extends DType>(a: WgArray<D>): WgArray<D> => sameKind('negative', a);
/** |a|. */
export const abs = <D extends DType>(a: WgArray<D>): WgArray<D> => sameKind('abs', a);
/** -1, 0 or 1 by the sign of a (NaN stays NaN). */
export const sign = <D extends DType>(a: WgArray<D>): WgArray<D> => sameKind('sign', a);
/** a * a. */
export const square = <D extends DType>(a: WgArray<D>): WgArray<D> => sameKind('square', a);
/** Rounded down (integers: unchanged). */
export const floor = <D extends DType>(a: WgArray<D>): WgArray<D> => sameKind('floor', a);
/** Rounded up (integers: unchanged). */
export const ceil = <D extends DType>(a: WgArray<D>): WgArray<D> => sameKind('ceil', a);
/** Rounded to the nearest integer, halves to even (integers: unchanged). */
export const round = <D extends DType>(a: WgArray<D>): WgArray<D> => sameKind('round', a);
/** Square root. */
export const sqrt = (a: WgArray): WgArray => floating('sqrt', a);
/** 1 / sqrt(a). */
export const rsqrt = (a: WgArray): WgArray => floating('rsqrt', a);
/** 1 / a. */
export const reciprocal = (a: WgArray): WgArray => floating('reciprocal', a);
/** e^a. */
export const exp = (a: WgArray): WgArray => floating('exp', a);
/** e^a - 1, accurate near 0. */
export const expm1 = (a: WgArray): WgArray => floating('expm1', a);
/** Natural logarithm. */
export const log = (a: WgArray): WgArray => floating('log', a);
/** log(1 + a), accurate near 0. */
export const log1p = (a: WgArray): WgArray => floating('log1p', a);
/** Base-2 logarithm. */
export const log2 = (a: WgArray): WgArray => floating('log2', a);
/** Base-10 logarithm. */
export const log10 = (a: WgArray): WgArray => floating('log10', a);
/** Sine. */
export const sin = (a: WgArray): WgArray => floating('sin', a);
/** Cosine. */
export const cos = (a: WgArray): WgArray => floating('cos', a);
/** Hyperbolic tangent. */
export const tanh = (a: WgArray): WgArray => floating('tanh', a);
/** 1 / (1 + e^-a). */
export const sigmoid = (a: WgArray): WgArray => floating('sigmoid', a);

/** A clip bound as bits of the compute type of `dtype`, rounded to `dtype` first. */
function boundBits(v: number, dtype: DType): number {
  const kind = DTYPES[dtype].kind;
  if (kind === 'float') {
    const r = dtype === 'float32' ? v : Number.isFinite(v) ? (dtype === 'float16' ? f16BitsToF32 : bf16BitsToF32)(encodeNumber(v, dtype)) : v;
    return encodeNumber(r, 'float32');
  }
  if (kind === 'int') return encodeNumber(Math.min(2 ** 31 - 1, Math.max(-(2 ** 31), v)), 'int32');
  return encodeNumber(Math.min(2 ** 32 - 1, Math.max(0, v)), 'uint32');
}

/**
 * Each element limited to [min, max] (either may be null for no bound).
 * Scalar bounds take the array's dtype (weak, as MLX); array bounds broadcast
 * and promote. NaN stays NaN.
 */
export function clip(a: WgArray, min: Operand | null | undefined, max: Operand | null | undefined): WgArray {
  requireArray('clip', a);
  if (min == null && max == null) throw new ArgumentError(`clip of ${a.describe()}: give min, max or both`);
  if (min instanceof WgArray || max instanceof WgArray) {
    const lower = min == null ? null : maximum(a, min);
    try {
      return max == null ? lower! : minimum(lower ?? a, max);
    } finally {
      if (max != null) lower?.dispose();
    }
  }
  requireNumbers('clip', a);
  const bounds = [min, max].filter((x): x is number | boolean => x != null);
  const t = resultType('clip', [a, ...bounds]);
  const lo = min == null ? -Infinity : Number(min);
  const hi = max == null ? Infinity : Number(max);
  if (Number.isNaN(lo) || Number.isNaN(hi)) throw new ArgumentError(`clip of ${a.describe()}: bounds must not be NaN`);
  return run('clip', [a], t, t, t, [boundBits(lo, t), boundBits(hi, t)]);
}

/**
 * x where `condition` is true (nonzero; NaN counts as true), else y, with
 * broadcasting. The result's dtype is x's and y's promotion; the condition
 * may have any computed dtype or bool.
 */
export function where(condition: WgArray | boolean, x: Operand, y: Operand): WgArray {
  const t = resultType('where', [x, y]);
  if (!(condition instanceof WgArray)) {
    if (typeof condition !== 'boolean') throw new ArgumentError(`where: condition ${String(condition)} is neither an array nor a boolean`);
  }
  return run('where', [condition, x, y], t, t, t);
}
