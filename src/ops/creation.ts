// Making arrays: from JS data (array), by value (zeros, ones, full), as a
// range (arange). The default device they live on is src/runtime/device.ts's.

import { ArgumentError, ShapeError } from '../errors.js';
import { castArray } from '../kernels/cast.js';
import { fillArange, filled } from '../kernels/fill.js';
import { formatShape, shapeSize, WgArray, type Shape } from '../runtime/array.js';
import { encodeValues } from '../runtime/host-cast.js';
import { deviceOf, type Device } from '../runtime/device.js';
import { DTYPES, dtypeInfo, dtypeOfTypedArray, isTypedArray, type DType, type TypedArray } from '../runtime/dtype.js';
import { fromBytes } from '../runtime/upload.js';
// WgArray's methods (astype, data, reshape, add, sum, ...) are attached by ops/methods.ts:
// loading it here gives every array made from JS data its methods.
import './methods.js';

export { fromBytes };

export interface CreateOptions<D extends DType = DType> {
  shape?: Shape;
  dtype?: D;
  device?: Device;
  name?: string;
}

type Nested = number | bigint | boolean | readonly Nested[];

function flatten(data: Nested, shape: number[], depth: number, out: (number | bigint | boolean)[]): void {
  if (Array.isArray(data)) {
    if (shape.length === depth) shape.push(data.length);
    else if (shape[depth] !== data.length) {
      throw new ShapeError(`ragged nested array: a row at depth ${depth} has ${data.length} elements, expected ${shape[depth]}`);
    }
    for (const x of data) flatten(x, shape, depth + 1, out);
  } else {
    if (shape.length !== depth) throw new ShapeError(`ragged nested array: a scalar at depth ${depth}, expected a list`);
    out.push(data as number | bigint | boolean);
  }
}

function defaultDType(values: readonly (number | bigint | boolean)[]): DType {
  // As MLX: booleans -> bool, bigints -> int64, all-integer numbers -> int32, else float32.
  if (values.length && values.every((v) => typeof v === 'boolean')) return 'bool';
  if (values.some((v) => typeof v === 'bigint')) return 'int64';
  if (values.length && values.every((v) => typeof v === 'number' && Number.isInteger(v))) return 'int32';
  return 'float32';
}

/**
 * A new array from JS data: a TypedArray (its own dtype by default; a
 * Uint16Array with dtype float16/bfloat16 is taken as raw bits), a flat or
 * nested list of numbers, bigints or booleans, or a scalar. `shape` defaults
 * to the data's own.
 */
export function array<D extends DType = DType>(data: TypedArray | Nested, options: CreateOptions<D> = {}): WgArray<D> {
  const { device, name } = options;
  if (isTypedArray(data)) {
    const natural = dtypeOfTypedArray(data);
    const dtype = (options.dtype ?? natural) as D;
    const shape = options.shape ?? [data.length];
    const size = shapeSize(shape);
    if (size !== data.length) {
      throw new ShapeError(`${name ? `'${name}': ` : ''}${data.length} elements of data do not fill shape ${formatShape(shape)} (${size} elements)`);
    }
    dtypeInfo(dtype);
    if (dtype === natural || (natural === 'uint16' && (dtype === 'float16' || dtype === 'bfloat16'))) {
      return fromBytes(data, shape, dtype, device, name);
    }
    if (DTYPES[natural].computed && DTYPES[dtype].computed) {
      const raw = fromBytes(data, shape, natural, device, name);
      try {
        return castArray(raw, dtype);
      } finally {
        raw.dispose();
      }
    }
    // A storage-only dtype on either side: convert on the CPU.
    return fromBytes(encodeValues(data as ArrayLike<number | bigint>, dtype), shape, dtype, device, name);
  }
  const values: (number | bigint | boolean)[] = [];
  const inferred: number[] = [];
  flatten(data, inferred, 0, values);
  const dtype = (options.dtype ?? defaultDType(values)) as D;
  dtypeInfo(dtype);
  const shape = options.shape ?? inferred;
  if (shapeSize(shape) !== values.length) {
    throw new ShapeError(`${name ? `'${name}': ` : ''}${values.length} elements of data do not fill shape ${formatShape(shape)}`);
  }
  return fromBytes(encodeValues(values, dtype), shape, dtype, device, name);
}

/** An array of `shape` filled with `value` (converted as array() converts numbers). */
export function full<D extends DType = 'float32'>(
  shape: Shape,
  value: number | bigint | boolean,
  options: Omit<CreateOptions<D>, 'shape'> = {},
): WgArray<D> {
  const dtype = (options.dtype ?? 'float32') as D;
  dtypeInfo(dtype);
  return filled(deviceOf(options.device), shape, value, dtype, options.name);
}

export function zeros<D extends DType = 'float32'>(shape: Shape, options: Omit<CreateOptions<D>, 'shape'> = {}): WgArray<D> {
  const dtype = (options.dtype ?? 'float32') as D;
  dtypeInfo(dtype);
  const d = deviceOf(options.device);
  const out = WgArray.empty(d, shape, dtype, options.name);
  // Pool buffers are reused: clear explicitly.
  if (out.size) d.commandEncoder().clearBuffer(out.buffer, 0, Math.ceil(out.nbytes / 4) * 4);
  return out;
}

export function ones<D extends DType = 'float32'>(shape: Shape, options: Omit<CreateOptions<D>, 'shape'> = {}): WgArray<D> {
  return full(shape, 1, options);
}

/**
 * Numbers from `start` up to (not including) `stop` by `step`, as NumPy/MLX:
 * arange(n), arange(start, stop), arange(start, stop, step). Float dtypes
 * compute start + i * step in float32; integer dtypes in 32-bit integers;
 * int64/uint64/float64 on the CPU.
 */
export function arange<D extends DType = 'float32'>(
  a: number,
  b?: number,
  c?: number | Omit<CreateOptions<D>, 'shape'>,
  d?: Omit<CreateOptions<D>, 'shape'>,
): WgArray<D> {
  const options = (typeof c === 'object' ? c : d) ?? {};
  const step = typeof c === 'number' ? c : 1;
  const [start, stop] = b === undefined ? [0, a] : [a, b];
  if (step === 0 || !Number.isFinite(step) || !Number.isFinite(start) || !Number.isFinite(stop)) {
    throw new ArgumentError(`arange(${start}, ${stop}, ${step}): start, stop and step must be finite and step non-zero`);
  }
  const allInt = Number.isInteger(start) && Number.isInteger(stop) && Number.isInteger(step);
  const dtype = (options.dtype ?? (allInt ? 'int32' : 'float32')) as D;
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const info = dtypeInfo(dtype);
  const dev = deviceOf(options.device);
  if (!info.computed) {
    const values = Array.from({ length: n }, (_, i) => start + i * step);
    return fromBytes(encodeValues(values, dtype), [n], dtype, dev, options.name);
  }
  const base = info.kind === 'float' ? 'float32' : info.kind === 'int' ? 'int32' : 'uint32';
  const out = WgArray.empty(dev, [n], base, options.name);
  fillArange(out, start, step);
  if (base === dtype) return out as unknown as WgArray<D>;
  try {
    return castArray(out, dtype);
  } finally {
    out.dispose();
  }
}
