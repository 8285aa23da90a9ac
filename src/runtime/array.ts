// The array type: a shape, a dtype and a window of a GPU buffer. Ops record
// GPU commands and return new arrays at once; only reading data back is async.
// This class holds what needs no kernel; the methods that run kernels or ops
// (data, astype, reshape, add, sum, ...) are attached by src/ops/methods.ts, so
// that runtime/ imports nothing above it.

import { DisposedError, LimitError, ShapeError } from '../errors.js';
import type { Device } from './device.js';
import { DTYPES, dtypeInfo, type DType } from './dtype.js';
import { GpuStorage } from './pool.js';

export type Shape = readonly number[];

/** Checks a shape's dimensions and returns its element count. */
export function shapeSize(shape: Shape, what = 'shape'): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new ShapeError(`${what} [${shape.join(', ')}] has dimension ${d}; dimensions are integers >= 0`);
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new ShapeError(`${what} [${shape.join(', ')}] has too many elements`);
  return n;
}

/** Row-major (C order) strides in elements. */
export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

// Arrays dropped without dispose() give their buffer back when collected.
const finalizer = new FinalizationRegistry<GpuStorage>((storage) => storage.release());

export interface ArrayInit {
  strides?: readonly number[];
  /** Index of the first element in the storage buffer. */
  offset?: number;
  name?: string;
}

export class WgArray<D extends DType = DType> {
  readonly shape: Shape;
  readonly dtype: D;
  /** Strides in elements; row-major for arrays not made by a view op. */
  readonly strides: readonly number[];
  /** Index of element [0, 0, ...] in the storage buffer. */
  readonly offset: number;
  readonly size: number;
  readonly device: Device;
  /** A label used in error messages (a tensor name, say). */
  name: string | undefined;
  #storage: GpuStorage | null;

  /** Wraps `storage` (taking over one reference to it). Most code makes arrays through array(), zeros(), ops. */
  constructor(storage: GpuStorage, shape: Shape, dtype: D, init: ArrayInit = {}) {
    this.size = shapeSize(shape);
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.strides = Object.freeze([...(init.strides ?? contiguousStrides(shape))]);
    this.offset = init.offset ?? 0;
    this.device = storage.device;
    this.name = init.name;
    this.#storage = storage;
    finalizer.register(this, storage, this);
  }

  /** Allocates an uninitialised array on `device`, after checking the device's limits. */
  static empty<D extends DType>(device: Device, shape: Shape, dtype: D, name?: string): WgArray<D> {
    const size = shapeSize(shape);
    const nbytes = size * dtypeInfo(dtype).bytes;
    if (nbytes > device.limits.maxBufferSize) {
      throw new LimitError(
        `${name ? `array '${name}' ` : 'an array '}of shape ${formatShape(shape)} and dtype ${dtype} needs ${nbytes} bytes, ` +
          `over this device's maxBufferSize of ${device.limits.maxBufferSize} bytes (${device.label})`,
      );
    }
    return new WgArray(GpuStorage.allocate(device, nbytes, name), shape, dtype, { name });
  }

  get ndim(): number {
    return this.shape.length;
  }

  get itemsize(): number {
    return DTYPES[this.dtype].bytes;
  }

  get nbytes(): number {
    return this.size * DTYPES[this.dtype].bytes;
  }

  get isContiguous(): boolean {
    let s = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== s) return false;
      s *= this.shape[i];
    }
    return true;
  }

  get disposed(): boolean {
    return this.#storage === null;
  }

  /** How errors name this array. */
  describe(): string {
    return `${this.name ? `array '${this.name}'` : 'array'} (shape ${formatShape(this.shape)}, ${this.dtype})`;
  }

  /** The shared GPU storage; throws if disposed. */
  get storage(): GpuStorage {
    if (!this.#storage) throw new DisposedError(`${this.describe()} was disposed and cannot be used`);
    return this.#storage;
  }

  get buffer(): GPUBuffer {
    return this.storage.buffer;
  }

  /** A new array over the same storage (a view), with its own reference to it. */
  view<E extends DType = D>(shape: Shape, init: ArrayInit = {}, dtype?: E): WgArray<E> {
    return new WgArray(this.storage.retain(), shape, (dtype ?? this.dtype) as E, { name: this.name, ...init });
  }

  /** Releases the array's GPU memory now (views keep theirs). Idempotent. */
  dispose(): void {
    const s = this.#storage;
    if (!s) return;
    this.#storage = null;
    finalizer.unregister(this);
    s.release();
  }

  toString(): string {
    return `WgArray(shape=${formatShape(this.shape)}, dtype=${this.dtype}${this.disposed ? ', disposed' : ''})`;
  }

  /**
   * A plain description for JSON and for serialisers (test reporters) that would
   * otherwise walk the device and the view getters (`T` makes a new view each time).
   */
  toJSON(): { shape: number[]; dtype: D; name?: string } {
    return { shape: [...this.shape], dtype: this.dtype, ...(this.name ? { name: this.name } : {}) };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

/** Resolves one -1 in `dims` against `size` elements and checks the product. */
export function inferShape(dims: readonly number[], size: number, what: string): number[] {
  const out = [...dims];
  const unknown = out.indexOf(-1);
  if (unknown !== -1) {
    if (out.indexOf(-1, unknown + 1) !== -1) throw new ShapeError(`reshape of ${what} to ${formatShape(dims)}: only one dimension may be -1`);
    const rest = shapeSize(out.filter((_, i) => i !== unknown), 'shape');
    if (rest === 0 || size % rest !== 0) {
      throw new ShapeError(`cannot reshape ${what} (${size} elements) to ${formatShape(dims)}`);
    }
    out[unknown] = size / rest;
  }
  if (shapeSize(out) !== size) throw new ShapeError(`cannot reshape ${what} (${size} elements) to ${formatShape(dims)}`);
  return out;
}
