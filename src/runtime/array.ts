// The array type: a shape, a dtype and a window of a GPU buffer. Ops record
// GPU commands and return new arrays at once; only reading data back is async.

import { DisposedError, LimitError, ShapeError } from '../errors.js';
import { castArray } from '../kernels/cast.js';
import type { Device } from './device.js';
import { DTYPES, dtypeInfo, type DType, type ReadbackTypes } from './dtype.js';
import { GpuStorage } from './pool.js';
import { readBuffer } from './readback.js';
import * as layout from '../ops/layout.js';
import * as ew from '../ops/elementwise.js';
import * as red from '../ops/reduce.js';

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

  /** The same elements in a new shape; one dimension may be -1. A view when the array is contiguous. */
  reshape(...shape: number[] | [readonly number[]]): WgArray<D> {
    const dims = (Array.isArray(shape[0]) ? shape[0] : shape) as number[];
    const target = inferShape(dims, this.size, this.describe());
    // A non-contiguous array is copied into row-major order first (one kernel).
    if (!this.isContiguous) return layout.reshape(this, target);
    return this.view(target, { offset: this.offset });
  }

  /** A copy converted to `dtype` (see the cast rules in README.md). Same dtype: a view. */
  astype<E extends DType>(dtype: E): WgArray<E> {
    dtypeInfo(dtype);
    if ((dtype as DType) === this.dtype) return this.view(this.shape, { strides: this.strides, offset: this.offset }) as unknown as WgArray<E>;
    return castArray(this, dtype);
  }

  /** Reads the elements back: float16/bfloat16 as their raw Uint16 bits, bool as Uint8. */
  async data(): Promise<ReadbackTypes[D]> {
    this.device.check();
    if (!this.isContiguous) {
      // Gathered into row-major order on the GPU, then read.
      const c = layout.contiguous(this);
      try {
        return await c.data();
      } finally {
        c.dispose();
      }
    }
    const info = DTYPES[this.dtype];
    const bytes = await readBuffer(this.device, this.storage.buffer, this.offset * info.bytes, this.nbytes);
    return new info.container(bytes.buffer, 0, this.size) as ReadbackTypes[D];
  }

  /**
   * Reads the elements back as float32. Computed dtypes convert on the GPU
   * (exactly, for float16/bfloat16); storage-only dtypes convert on the CPU.
   */
  async toFloat32(): Promise<Float32Array> {
    if (this.dtype === 'float32') return (await this.data()) as Float32Array;
    if (DTYPES[this.dtype].computed) {
      const f = this.astype('float32');
      try {
        return await f.data();
      } finally {
        f.dispose();
      }
    }
    const raw = await this.data();
    const out = new Float32Array(this.size);
    for (let i = 0; i < out.length; i++) out[i] = Number(raw[i]);
    return out;
  }

  /** Releases the array's GPU memory now (views keep theirs). Idempotent. */
  dispose(): void {
    const s = this.#storage;
    if (!s) return;
    this.#storage = null;
    finalizer.unregister(this);
    s.release();
  }

  // ---- Array operations as methods (thin wrappers over src/ops) ----

  /** This array in row-major order: a view when it already is, else one strided copy. */
  contiguous(): WgArray<D> {
    return layout.contiguous(this);
  }

  /** Dims permuted (default: reversed). A view. */
  transpose(...axes: number[] | [readonly number[]]): WgArray<D> {
    const list = (Array.isArray(axes[0]) ? axes[0] : axes) as number[];
    return layout.transpose(this, list.length ? list : undefined);
  }

  /** Dims reversed. A view. */
  get T(): WgArray<D> {
    return layout.transpose(this);
  }

  swapaxes(axis1: number, axis2: number): WgArray<D> {
    return layout.swapaxes(this, axis1, axis2);
  }

  moveaxis(source: number | readonly number[], destination: number | readonly number[]): WgArray<D> {
    return layout.moveaxis(this, source, destination);
  }

  expand_dims(axis: number | readonly number[]): WgArray<D> {
    return layout.expand_dims(this, axis);
  }

  squeeze(axis?: number | readonly number[]): WgArray<D> {
    return layout.squeeze(this, axis);
  }

  /** NumPy basic indexing: one spec per leading axis (index, [start, stop, step], 'start:stop:step', null). A view. */
  slice(...specs: layout.SliceSpec[]): WgArray<D> {
    return layout.slice(this, ...specs);
  }

  take(indices: Parameters<typeof layout.take>[1], axis?: number): WgArray<D> {
    return layout.take(this, indices, axis);
  }

  broadcast_to(shape: Shape): WgArray<D> {
    return layout.broadcast_to(this, shape);
  }

  flatten(): WgArray<D> {
    return layout.flatten(this);
  }

  split(sections: number | readonly number[], axis = 0): WgArray<D>[] {
    return layout.split(this, sections, axis);
  }

  add(other: ew.Operand): WgArray {
    return ew.add(this, other);
  }

  subtract(other: ew.Operand): WgArray {
    return ew.subtract(this, other);
  }

  multiply(other: ew.Operand): WgArray {
    return ew.multiply(this, other);
  }

  divide(other: ew.Operand): WgArray {
    return ew.divide(this, other);
  }

  sum(axis?: red.Axes, options?: red.ReduceOptions): WgArray {
    return red.sum(this, axis, options);
  }

  mean(axis?: red.Axes, options?: red.ReduceOptions): WgArray {
    return red.mean(this, axis, options);
  }

  max(axis?: red.Axes, options?: red.ReduceOptions): WgArray<D> {
    return red.max(this, axis, options);
  }

  min(axis?: red.Axes, options?: red.ReduceOptions): WgArray<D> {
    return red.min(this, axis, options);
  }

  argmax(axis?: number, options?: red.ReduceOptions): WgArray<'uint32'> {
    return red.argmax(this, axis, options);
  }

  argmin(axis?: number, options?: red.ReduceOptions): WgArray<'uint32'> {
    return red.argmin(this, axis, options);
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
