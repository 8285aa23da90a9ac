// Reductions over any axes, with keepdims: sum, prod, mean, max, min,
// argmax, argmin, var, std. The reduced axes are moved last (a view) and
// reduced by src/kernels/reduce.ts; float sums are compensated (Kahan within
// each partial, pairwise across partials), so long rows keep float32 accuracy.
//
// Result dtypes:
//   sum, prod        float -> same float (accumulated in float32, rounded once);
//                    int8/16/32, bool -> int32; uint8/16/32 -> uint32 (wrapping)
//   mean, var, std   float -> same float; integers and bool -> float32
//   max, min         the input's dtype
//   argmax, argmin   uint32 (first index of the extreme; NaN counts as extreme)
// An empty reduction gives 0 for sum, 1 for prod, NaN for mean/var/std, and
// an ArgumentError for max/min/argmax/argmin (they have no identity).

import { ArgumentError, DTypeError } from '../errors.js';
import { castArray } from '../kernels/cast.js';
import { accumulatorOf, reduceLastDim, type AccDType, type ReduceKernelOp } from '../kernels/reduce.js';
import { formatShape, WgArray } from '../runtime/array.js';
import { filled } from '../kernels/fill.js';
import { DTYPES, type DType } from '../runtime/dtype.js';
import { contiguous, normalizeAxes, normalizeAxis, transpose } from './layout.js';

/** Axes to reduce: one, several, or all (undefined / null). */
export type Axes = number | readonly number[] | null | undefined;

export interface ReduceOptions {
  /** Keep reduced axes as length-1 dims (default false). */
  keepdims?: boolean;
}

export interface VarianceOptions extends ReduceOptions {
  /** Delta degrees of freedom: divide by n - ddof (default 0). */
  ddof?: number;
}

interface Prepared {
  /** [kept..., reduced] with the reduced axes merged into one. */
  view: WgArray;
  /** Elements reduced per output. */
  count: number;
  keptShape: number[];
  outShape: number[];
}

function prepare(a: WgArray, axis: Axes, options: ReduceOptions, op: string): Prepared {
  const what = `${op} of ${a.describe()}`;
  a.device.check();
  if (a.dtype !== 'bool' && !DTYPES[a.dtype].computed) {
    throw new DTypeError(`${what}: dtype ${a.dtype} is held as storage only; cast it to a computed dtype first`);
  }
  const axes = axis === undefined || axis === null ? [...Array(a.ndim).keys()] : normalizeAxes(typeof axis === 'number' ? [axis] : axis, a.ndim, what);
  const reduced = [...axes].sort((x, y) => x - y);
  const kept = [...Array(a.ndim).keys()].filter((i) => !reduced.includes(i));
  const keptShape = kept.map((i) => a.shape[i]);
  const count = reduced.reduce((n, i) => n * a.shape[i], 1);
  const outShape = options.keepdims ? a.shape.map((n, i) => (reduced.includes(i) ? 1 : n)) : keptShape;
  const moved = transpose(a, [...kept, ...reduced]);
  // The reduced dims walk as one when their strides nest (ignoring length-1 dims).
  const dims = reduced.filter((i) => a.shape[i] !== 1);
  let nested = true;
  for (let k = 0; k + 1 < dims.length; k++) {
    if (a.strides[dims[k]] !== a.strides[dims[k + 1]] * a.shape[dims[k + 1]]) nested = false;
  }
  let view: WgArray;
  if (nested) {
    const innerStride = dims.length ? a.strides[dims[dims.length - 1]] : 1;
    view = moved.view([...keptShape, count], { strides: [...kept.map((i) => a.strides[i]), innerStride], offset: a.offset });
    moved.dispose();
  } else {
    const c = contiguous(moved);
    moved.dispose();
    view = c.view([...keptShape, count], { offset: c.offset });
    c.dispose();
  }
  return { view, count, keptShape, outShape };
}

function finish<D extends DType>(values: WgArray, dtype: D, outShape: number[]): WgArray<D> {
  let v = values;
  if (v.dtype !== dtype) {
    v = castArray(values, dtype);
    values.dispose();
  }
  if (v.shape.length === outShape.length && v.shape.every((n, i) => n === outShape[i])) return v as WgArray<D>;
  const r = v.reshape(outShape);
  v.dispose();
  return r as WgArray<D>;
}

function reduceWith<D extends DType>(
  a: WgArray,
  axis: Axes,
  options: ReduceOptions,
  op: string,
  kernelOp: ReduceKernelOp,
  acc: AccDType,
  outDtype: D,
  empty: number | null,
  final?: { scale: number; sqrt?: boolean },
  center?: WgArray,
): WgArray<D> {
  const p = prepare(a, axis, options, op);
  try {
    const size = p.keptShape.reduce((x, y) => x * y, 1);
    if (size === 0 || p.count === 0) {
      if (p.count === 0 && size > 0 && empty === null) {
        throw new ArgumentError(`${op} of ${a.describe()}: the reduced axes are empty and ${op} has no identity`);
      }
      return filled(a.device, p.outShape, empty ?? 0, outDtype, a.name);
    }
    const { values, indices } = reduceLastDim(a.device, { op: kernelOp, input: p.view, acc, final, center });
    if (indices) {
      values.dispose();
      return finish(indices, outDtype, p.outShape);
    }
    return finish(values, outDtype, p.outShape);
  } finally {
    p.view.dispose();
  }
}

/** The float dtype mean/var/std return for `dtype`. */
function floatOf(dtype: DType): DType {
  return DTYPES[dtype].kind === 'float' ? dtype : 'float32';
}

/** The dtype sum/prod return for `dtype`. */
function sumDType(dtype: DType): DType {
  return DTYPES[dtype].kind === 'float' ? dtype : DTYPES[dtype].kind === 'uint' ? 'uint32' : 'int32';
}

/** Sum over `axis` (default: all). Float sums are compensated; integers wrap at 32 bits. */
export function sum(a: WgArray, axis?: Axes, options: ReduceOptions = {}): WgArray {
  const out = sumDType(a.dtype);
  return reduceWith(a, axis, options, 'sum', 'sum', accumulatorOf(out), out, 0);
}

/** Product over `axis` (default: all). */
export function prod(a: WgArray, axis?: Axes, options: ReduceOptions = {}): WgArray {
  const out = sumDType(a.dtype);
  return reduceWith(a, axis, options, 'prod', 'prod', accumulatorOf(out), out, 1);
}

/** Arithmetic mean over `axis` (default: all). */
export function mean(a: WgArray, axis?: Axes, options: ReduceOptions = {}): WgArray {
  const p = countOf(a, axis);
  return reduceWith(a, axis, options, 'mean', 'sum', 'float32', floatOf(a.dtype), NaN, { scale: 1 / p });
}

function requireOrdered(a: WgArray, op: string): void {
  if (a.dtype === 'bool') throw new DTypeError(`${op} of ${a.describe()}: cast bool to a number dtype first`);
}

/** Largest element over `axis` (default: all); NaN if any is NaN. */
export function max<D extends DType>(a: WgArray<D>, axis?: Axes, options: ReduceOptions = {}): WgArray<D> {
  requireOrdered(a, 'max');
  return reduceWith(a, axis, options, 'max', 'max', accumulatorOf(a.dtype), a.dtype, null);
}

/** Smallest element over `axis` (default: all); NaN if any is NaN. */
export function min<D extends DType>(a: WgArray<D>, axis?: Axes, options: ReduceOptions = {}): WgArray<D> {
  requireOrdered(a, 'min');
  return reduceWith(a, axis, options, 'min', 'min', accumulatorOf(a.dtype), a.dtype, null);
}

function argReduce(a: WgArray, axis: number | undefined, options: ReduceOptions, op: 'argmax' | 'argmin'): WgArray<'uint32'> {
  requireOrdered(a, op);
  if (axis === undefined) {
    if (options.keepdims) {
      const flat = a.reshape(a.size);
      try {
        const r = reduceWith(flat, 0, {}, op, op, accumulatorOf(a.dtype), 'uint32', null);
        const k = r.reshape(a.shape.map(() => 1));
        r.dispose();
        return k;
      } finally {
        flat.dispose();
      }
    }
    const flat = a.reshape(a.size);
    try {
      return reduceWith(flat, 0, {}, op, op, accumulatorOf(a.dtype), 'uint32', null);
    } finally {
      flat.dispose();
    }
  }
  normalizeAxis(axis, a.ndim, `${op} of ${a.describe()}`);
  return reduceWith(a, axis, options, op, op, accumulatorOf(a.dtype), 'uint32', null);
}

/** Index of the largest element along `axis` (default: of the flattened array), as uint32. */
export function argmax(a: WgArray, axis?: number, options: ReduceOptions = {}): WgArray<'uint32'> {
  return argReduce(a, axis, options, 'argmax');
}

/** Index of the smallest element along `axis` (default: of the flattened array), as uint32. */
export function argmin(a: WgArray, axis?: number, options: ReduceOptions = {}): WgArray<'uint32'> {
  return argReduce(a, axis, options, 'argmin');
}

function countOf(a: WgArray, axis: Axes): number {
  if (axis === undefined || axis === null) return a.size;
  const axes = normalizeAxes(typeof axis === 'number' ? [axis] : axis, a.ndim, `reduction of ${a.describe()}`);
  return axes.reduce((n, i) => n * a.shape[i], 1);
}

function varianceOf(a: WgArray, axis: Axes, options: VarianceOptions, op: 'var' | 'std'): WgArray {
  const ddof = options.ddof ?? 0;
  if (!Number.isFinite(ddof) || ddof < 0) throw new ArgumentError(`${op} of ${a.describe()}: ddof ${ddof} must be a number >= 0`);
  const n = countOf(a, axis);
  // Two passes: the mean, then the sum of squared deviations from it.
  const center = n > 0 ? reduceWith(a, axis, {}, op, 'sum', 'float32', 'float32', NaN, { scale: 1 / n }) : null;
  try {
    return reduceWith(a, axis, options, op, 'sqdev', 'float32', floatOf(a.dtype), NaN, { scale: 1 / Math.max(0, n - ddof), sqrt: op === 'std' }, center ?? undefined);
  } finally {
    center?.dispose();
  }
}

/** Variance over `axis` (default: all): the squared deviations from the mean, summed and divided by n - ddof. */
export function variance(a: WgArray, axis?: Axes, options: VarianceOptions = {}): WgArray {
  return varianceOf(a, axis, options, 'var');
}

/** MLX's name for variance. */
export { variance as var };

/** Standard deviation over `axis` (default: all). */
export function std(a: WgArray, axis?: Axes, options: VarianceOptions = {}): WgArray {
  return varianceOf(a, axis, options, 'std');
}

/** Shape check helper for callers composing reductions. */
export function reducedShape(shape: readonly number[], axis: Axes, keepdims = false): number[] {
  const axes = axis === undefined || axis === null ? [...shape.keys()] : normalizeAxes(typeof axis === 'number' ? [axis] : axis, shape.length, `shape ${formatShape(shape)}`);
  return keepdims ? shape.map((n, i) => (axes.includes(i) ? 1 : n)) : shape.filter((_, i) => !axes.includes(i));
}
