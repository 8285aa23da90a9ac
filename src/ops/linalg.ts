// Linear algebra: matmul (NumPy's @) and addmm (alpha * (a @ b) + beta * c),
// on float32 / float16 / bfloat16 with float32 accumulation.

import { ArgumentError, DTypeError, ShapeError } from '../errors.js';
import { formatShape, type Shape, WgArray } from '../runtime/array.js';
import { matmulKernel, type MatmulDType, type MatmulInput } from '../kernels/matmul.js';

export type { MatmulDType } from '../kernels/matmul.js';

export interface MatmulOptions {
  /** Output dtype. Default: the inputs' dtype when they agree, else float32. */
  dtype?: MatmulDType;
  name?: string;
  /**
   * Most bytes one GPU binding may cover (default: the device's
   * maxStorageBufferBindingSize). Larger operands are split into row, depth
   * and batch chunks; lower values only add dispatches.
   */
  bindingBytes?: number;
}

export interface AddmmOptions extends MatmulOptions {
  /** Factor on a @ b (default 1). */
  alpha?: number;
  /** Factor on c (default 1); 0 ignores c's values (NaN included), as BLAS does. */
  beta?: number;
}

const FLOATS: readonly string[] = ['float32', 'float16', 'bfloat16'];

function requireFloat(x: WgArray, op: string, role: string): MatmulDType {
  if (!FLOATS.includes(x.dtype)) {
    throw new DTypeError(`${op}: ${role} ${x.describe()} must be float32, float16 or bfloat16`);
  }
  return x.dtype as MatmulDType;
}

/** The dtype a product of these dtypes returns by default: theirs when they agree, else float32. */
function resultDType(dtypes: MatmulDType[]): MatmulDType {
  return dtypes.every((d) => d === dtypes[0]) ? dtypes[0] : 'float32';
}

/** NumPy broadcasting of two shapes; `what` describes the call in the error. */
function broadcastShapes(x: Shape, y: Shape, what: () => string): number[] {
  const n = Math.max(x.length, y.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const p = x[x.length - n + i] ?? 1;
    const q = y[y.length - n + i] ?? 1;
    if (p !== q && p !== 1 && q !== 1) throw new ShapeError(what());
    out[i] = p === 1 ? q : p;
  }
  return out;
}

/** Strides that read `x` broadcast to `shape` (right-aligned; 0 where x has size 1 or no dimension). */
function broadcastStrides(shape: Shape, xShape: Shape, xStrides: readonly number[]): number[] {
  const lead = shape.length - xShape.length;
  return shape.map((_, d) => {
    const j = d - lead;
    return j < 0 || xShape[j] === 1 ? 0 : xStrides[j];
  });
}

interface Product {
  batch: number[];
  m: number;
  n: number;
  k: number;
  a: MatmulInput;
  b: MatmulInput;
  /** Result shape: [...batch, m, n] without the dimensions 1-D operands do not have. */
  shape: number[];
  /** Which of m (-2) and n (-1) the result drops. */
  dropM: boolean;
  dropN: boolean;
}

function plan(op: string, a: WgArray, b: WgArray): Product {
  if (a.device !== b.device) {
    throw new ArgumentError(`${op}: ${a.describe()} and ${b.describe()} live on different devices`);
  }
  a.device.check();
  const adt = requireFloat(a, op, 'a');
  const bdt = requireFloat(b, op, 'b');
  if (a.ndim === 0 || b.ndim === 0) {
    throw new ShapeError(`${op}: ${(a.ndim === 0 ? a : b).describe()} is a scalar; matmul needs arrays of at least 1 dimension`);
  }
  // As NumPy: a 1-D a is a row [1, K], a 1-D b a column [K, 1]; the result drops that dimension.
  const aShape = a.ndim === 1 ? [1, a.shape[0]] : [...a.shape];
  const aStrides = a.ndim === 1 ? [0, a.strides[0]] : [...a.strides];
  const bShape = b.ndim === 1 ? [b.shape[0], 1] : [...b.shape];
  const bStrides = b.ndim === 1 ? [b.strides[0], 0] : [...b.strides];
  const m = aShape[aShape.length - 2];
  const k = aShape[aShape.length - 1];
  const kb = bShape[bShape.length - 2];
  const n = bShape[bShape.length - 1];
  if (k !== kb) {
    throw new ShapeError(
      `${op}: inner dimensions differ: ${a.describe()} @ ${b.describe()}: ` +
        `a has ${k} columns, b has ${kb} rows`,
    );
  }
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const batch = broadcastShapes(
    aBatch,
    bBatch,
    () =>
      `${op}: batch dimensions ${formatShape(aBatch)} of ${a.describe()} and ${formatShape(bBatch)} of ` +
      `${b.describe()} do not broadcast`,
  );
  const dropM = a.ndim === 1;
  const dropN = b.ndim === 1;
  const shape = [...batch, ...(dropM ? [] : [m]), ...(dropN ? [] : [n])];
  const input = (x: WgArray, dt: MatmulDType, xShape: number[], xStrides: number[], role: string): MatmulInput => ({
    buffer: x.buffer,
    dtype: dt,
    offset: x.offset,
    batchStrides: broadcastStrides(batch, xShape.slice(0, -2), xStrides.slice(0, -2)),
    rowStride: xShape[xShape.length - 2] === 1 ? 0 : xStrides[xStrides.length - 2],
    colStride: xShape[xShape.length - 1] === 1 ? 0 : xStrides[xStrides.length - 1],
    what: `${role} ${x.describe()}`,
  });
  return {
    batch,
    m,
    n,
    k,
    a: input(a, adt, aShape, aStrides, 'a'),
    b: input(b, bdt, bShape, bStrides, 'b'),
    shape,
    dropM,
    dropN,
  };
}

/** Reshapes the kernel's [...batch, m, n] output to the product's result shape (a view). */
function finish(out: WgArray<MatmulDType>, p: Product): WgArray<MatmulDType> {
  if (!p.dropM && !p.dropN) return out;
  try {
    return out.reshape(p.shape);
  } finally {
    out.dispose();
  }
}

/**
 * The matrix product a @ b with NumPy's rules: the last two dimensions
 * multiply ([..., M, K] @ [..., K, N] -> [..., M, N]), the batch dimensions
 * before them broadcast, a 1-D a is a row and a 1-D b a column (and that
 * dimension is dropped from the result). Inputs may be float32, float16 or
 * bfloat16, views included (transposes are read in place); products
 * accumulate in float32 and are rounded once to the output dtype.
 */
export function matmul(a: WgArray, b: WgArray, options: MatmulOptions = {}): WgArray<MatmulDType> {
  const p = plan('matmul', a, b);
  const outDType = options.dtype ?? resultDType([p.a.dtype, p.b.dtype]);
  if (!FLOATS.includes(outDType)) throw new DTypeError(`matmul: output dtype ${outDType} must be float32, float16 or bfloat16`);
  const out = matmulKernel(a.device, {
    batchShape: p.batch,
    m: p.m,
    n: p.n,
    k: p.k,
    a: p.a,
    b: p.b,
    alpha: 1,
    beta: 0,
    outDType,
    name: options.name,
    bindingBytes: options.bindingBytes,
  });
  return finish(out, p);
}

/**
 * alpha * (a @ b) + beta * c in one pass (no intermediate product array), as
 * PyTorch's and MLX's addmm. a @ b follows matmul()'s rules; c must broadcast
 * to its result shape. The output dtype defaults to the inputs' common dtype
 * (float32 when they differ); pass { dtype: c.dtype } to update a weight in
 * its own dtype, rounding once (LoRA fusion: W + scale * B @ A).
 */
export function addmm(c: WgArray, a: WgArray, b: WgArray, options: AddmmOptions = {}): WgArray<MatmulDType> {
  const p = plan('addmm', a, b);
  if (c.device !== a.device) throw new ArgumentError(`addmm: ${c.describe()} and ${a.describe()} live on different devices`);
  const cdt = requireFloat(c, 'addmm', 'c');
  const alpha = options.alpha ?? 1;
  const beta = options.beta ?? 1;
  if (!Number.isFinite(alpha) || !Number.isFinite(beta)) {
    throw new ArgumentError(`addmm: alpha (${alpha}) and beta (${beta}) must be finite numbers`);
  }
  const lead = p.shape.length - c.ndim;
  if (lead < 0 || c.shape.some((d, i) => d !== 1 && d !== p.shape[lead + i])) {
    throw new ShapeError(
      `addmm: ${c.describe()} does not broadcast to the product's shape ${formatShape(p.shape)} ` +
        `(${a.describe()} @ ${b.describe()})`,
    );
  }
  // c's strides over the result shape, then over [...batch, m, n] with the dropped dimensions reinserted.
  const onResult = broadcastStrides(p.shape, c.shape, c.strides);
  const nb = p.batch.length;
  const rowStride = p.dropM ? 0 : onResult[nb];
  const colStride = p.dropN ? 0 : onResult[nb + (p.dropM ? 0 : 1)];
  const cInput: MatmulInput = {
    buffer: c.buffer,
    dtype: cdt,
    offset: c.offset,
    batchStrides: onResult.slice(0, nb),
    rowStride,
    colStride,
    what: `c ${c.describe()}`,
  };
  const outDType = options.dtype ?? resultDType([p.a.dtype, p.b.dtype, cdt]);
  if (!FLOATS.includes(outDType)) throw new DTypeError(`addmm: output dtype ${outDType} must be float32, float16 or bfloat16`);
  const out = matmulKernel(a.device, {
    batchShape: p.batch,
    m: p.m,
    n: p.n,
    k: p.k,
    a: p.a,
    b: p.b,
    c: cInput,
    alpha,
    beta,
    outDType,
    name: options.name ?? c.name,
    bindingBytes: options.bindingBytes,
  });
  return finish(out, p);
}

/** A view of the last two dimensions swapped (no copy; matmul reads it in place). */
export function matrixTranspose<D extends WgArray>(x: D): D {
  if (x.ndim < 2) throw new ShapeError(`matrixTranspose: ${x.describe()} needs at least 2 dimensions`);
  const n = x.ndim;
  const shape = [...x.shape];
  const strides = [...x.strides];
  [shape[n - 2], shape[n - 1]] = [shape[n - 1], shape[n - 2]];
  [strides[n - 2], strides[n - 1]] = [strides[n - 1], strides[n - 2]];
  return x.view(shape, { strides, offset: x.offset }) as D;
}
