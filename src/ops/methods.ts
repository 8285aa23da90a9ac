// WgArray's methods that run kernels or ops, attached to its prototype here (as
// tfjs attaches its chained ops) so that src/runtime/ imports nothing above it.
// Each is a thin wrapper over the function of the same name in src/ops or
// src/kernels. Loaded by src/ops/creation.ts and src/ops/index.ts.

import { castArray } from '../kernels/cast.js';
import { contiguous } from '../kernels/copy.js';
import { inferShape, WgArray, type Shape } from '../runtime/array.js';
import { DTYPES, dtypeInfo, type DType, type ReadbackTypes } from '../runtime/dtype.js';
import { readBuffer } from '../runtime/readback.js';
import * as ew from './elementwise.js';
import * as layout from './layout.js';
import * as red from './reduce.js';

declare module '../runtime/array.js' {
  interface WgArray<D extends DType = DType> {
    /** The same elements in a new shape; one dimension may be -1. A view when the array is contiguous. */
    reshape(...shape: number[] | [readonly number[]]): WgArray<D>;
    /** A copy converted to `dtype` (see the cast rules in README.md). Same dtype: a view. */
    astype<E extends DType>(dtype: E): WgArray<E>;
    /** Reads the elements back: float16/bfloat16 as their raw Uint16 bits, bool as Uint8. */
    data(): Promise<ReadbackTypes[D]>;
    /**
     * Reads the elements back as float32. Computed dtypes convert on the GPU
     * (exactly, for float16/bfloat16); storage-only dtypes convert on the CPU.
     */
    toFloat32(): Promise<Float32Array>;
    /** This array in row-major order: a view when it already is, else one strided copy. */
    contiguous(): WgArray<D>;
    /** Dims permuted (default: reversed). A view. */
    transpose(...axes: number[] | [readonly number[]]): WgArray<D>;
    /** Dims reversed. A view. */
    readonly T: WgArray<D>;
    swapaxes(axis1: number, axis2: number): WgArray<D>;
    moveaxis(source: number | readonly number[], destination: number | readonly number[]): WgArray<D>;
    expand_dims(axis: number | readonly number[]): WgArray<D>;
    squeeze(axis?: number | readonly number[]): WgArray<D>;
    /** NumPy basic indexing: one spec per leading axis (index, [start, stop, step], 'start:stop:step', null). A view. */
    slice(...specs: layout.SliceSpec[]): WgArray<D>;
    take(indices: Parameters<typeof layout.take>[1], axis?: number): WgArray<D>;
    broadcast_to(shape: Shape): WgArray<D>;
    flatten(): WgArray<D>;
    split(sections: number | readonly number[], axis?: number): WgArray<D>[];
    add(other: ew.Operand): WgArray;
    subtract(other: ew.Operand): WgArray;
    multiply(other: ew.Operand): WgArray;
    divide(other: ew.Operand): WgArray;
    sum(axis?: red.Axes, options?: red.ReduceOptions): WgArray;
    mean(axis?: red.Axes, options?: red.ReduceOptions): WgArray;
    max(axis?: red.Axes, options?: red.ReduceOptions): WgArray<D>;
    min(axis?: red.Axes, options?: red.ReduceOptions): WgArray<D>;
    argmax(axis?: number, options?: red.ReduceOptions): WgArray<'uint32'>;
    argmin(axis?: number, options?: red.ReduceOptions): WgArray<'uint32'>;
  }
}

type Methods = ThisType<WgArray> & Partial<Record<keyof WgArray, unknown>>;

const methods: Methods = {
  reshape(this: WgArray, ...shape: number[] | [readonly number[]]): WgArray {
    const dims = (Array.isArray(shape[0]) ? shape[0] : shape) as number[];
    const target = inferShape(dims, this.size, this.describe());
    // A non-contiguous array is copied into row-major order first (one kernel).
    if (!this.isContiguous) return layout.reshape(this, target);
    return this.view(target, { offset: this.offset });
  },

  astype(this: WgArray, dtype: DType): WgArray {
    dtypeInfo(dtype);
    if (dtype === this.dtype) return this.view(this.shape, { strides: this.strides, offset: this.offset });
    return castArray(this, dtype);
  },

  async data(this: WgArray): Promise<unknown> {
    this.device.check();
    if (!this.isContiguous) {
      // Gathered into row-major order on the GPU, then read.
      const c = contiguous(this);
      try {
        return await c.data();
      } finally {
        c.dispose();
      }
    }
    const info = DTYPES[this.dtype];
    const bytes = await readBuffer(this.device, this.storage.buffer, this.offset * info.bytes, this.nbytes);
    return new info.container(bytes.buffer, 0, this.size);
  },

  async toFloat32(this: WgArray): Promise<Float32Array> {
    if (this.dtype === 'float32') return (await this.data()) as Float32Array;
    if (DTYPES[this.dtype].computed) {
      const f = this.astype('float32');
      try {
        return (await f.data()) as Float32Array;
      } finally {
        f.dispose();
      }
    }
    const raw = await this.data();
    const out = new Float32Array(this.size);
    for (let i = 0; i < out.length; i++) out[i] = Number(raw[i]);
    return out;
  },

  contiguous(this: WgArray) {
    return contiguous(this);
  },
  transpose(this: WgArray, ...axes: number[] | [readonly number[]]) {
    const list = (Array.isArray(axes[0]) ? axes[0] : axes) as number[];
    return layout.transpose(this, list.length ? list : undefined);
  },
  swapaxes(this: WgArray, axis1: number, axis2: number) {
    return layout.swapaxes(this, axis1, axis2);
  },
  moveaxis(this: WgArray, source: number | readonly number[], destination: number | readonly number[]) {
    return layout.moveaxis(this, source, destination);
  },
  expand_dims(this: WgArray, axis: number | readonly number[]) {
    return layout.expand_dims(this, axis);
  },
  squeeze(this: WgArray, axis?: number | readonly number[]) {
    return layout.squeeze(this, axis);
  },
  slice(this: WgArray, ...specs: layout.SliceSpec[]) {
    return layout.slice(this, ...specs);
  },
  take(this: WgArray, indices: Parameters<typeof layout.take>[1], axis?: number) {
    return layout.take(this, indices, axis);
  },
  broadcast_to(this: WgArray, shape: Shape) {
    return layout.broadcast_to(this, shape);
  },
  flatten(this: WgArray) {
    return layout.flatten(this);
  },
  split(this: WgArray, sections: number | readonly number[], axis = 0) {
    return layout.split(this, sections, axis);
  },
  add(this: WgArray, other: ew.Operand) {
    return ew.add(this, other);
  },
  subtract(this: WgArray, other: ew.Operand) {
    return ew.subtract(this, other);
  },
  multiply(this: WgArray, other: ew.Operand) {
    return ew.multiply(this, other);
  },
  divide(this: WgArray, other: ew.Operand) {
    return ew.divide(this, other);
  },
  sum(this: WgArray, axis?: red.Axes, options?: red.ReduceOptions) {
    return red.sum(this, axis, options);
  },
  mean(this: WgArray, axis?: red.Axes, options?: red.ReduceOptions) {
    return red.mean(this, axis, options);
  },
  max(this: WgArray, axis?: red.Axes, options?: red.ReduceOptions) {
    return red.max(this, axis, options);
  },
  min(this: WgArray, axis?: red.Axes, options?: red.ReduceOptions) {
    return red.min(this, axis, options);
  },
  argmax(this: WgArray, axis?: number, options?: red.ReduceOptions) {
    return red.argmax(this, axis, options);
  },
  argmin(this: WgArray, axis?: number, options?: red.ReduceOptions) {
    return red.argmin(this, axis, options);
  },
};

// Non-enumerable, as class methods are.
for (const [name, fn] of Object.entries(methods)) {
  Object.defineProperty(WgArray.prototype, name, { value: fn, writable: true, configurable: true, enumerable: false });
}
Object.defineProperty(WgArray.prototype, 'T', {
  get(this: WgArray) {
    return layout.transpose(this);
  },
  configurable: true,
  enumerable: false,
});
