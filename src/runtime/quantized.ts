// An array of ggml blocks: the raw bytes of a quantized tensor on the GPU,
// with its logical shape (row-major, last dimension = row length) and ggml type.
// quantize() makes one; saveGGUF writes its blocks as they are.

import { DisposedError, ShapeError } from '../errors.js';
import { ggmlType, type GGMLType } from './ggml-types.js';
import { formatShape, shapeSize, type Shape } from './array.js';
import type { Device } from './device.js';
import { GpuStorage } from './pool.js';
import { readBuffer } from './readback.js';

const finalizer = new FinalizationRegistry<GpuStorage>((storage) => storage.release());

/** Checks that `shape` splits into whole blocks of `type` along its last dimension. */
export function checkBlockShape(shape: Shape, type: GGMLType, what: string): void {
  shapeSize(shape);
  const row = shape.length ? shape[shape.length - 1] : 1;
  if (row % type.blockSize !== 0) {
    throw new ShapeError(
      `${what}: row length ${row} (last dimension of shape ${formatShape(shape)}) is not a multiple of ` +
        `${type.name}'s block size ${type.blockSize}; the last block would be partial`,
    );
  }
}

export class QuantizedArray {
  readonly shape: Shape;
  readonly type: GGMLType;
  readonly size: number;
  readonly device: Device;
  name: string | undefined;
  #storage: GpuStorage | null;

  /** Wraps `storage` holding size / blockSize blocks (taking over one reference). */
  constructor(storage: GpuStorage, shape: Shape, type: GGMLType | string, name?: string) {
    this.type = typeof type === 'string' ? ggmlType(type) : type;
    this.name = name;
    checkBlockShape(shape, this.type, this.describe(shape));
    this.shape = Object.freeze([...shape]);
    this.size = shapeSize(shape);
    this.device = storage.device;
    this.#storage = storage;
    finalizer.register(this, storage, this);
  }

  get ndim(): number {
    return this.shape.length;
  }

  get blocks(): number {
    return this.size / this.type.blockSize;
  }

  /** Bytes of block data. */
  get nbytes(): number {
    return this.blocks * this.type.typeSize;
  }

  get disposed(): boolean {
    return this.#storage === null;
  }

  describe(shape: Shape = this.shape): string {
    return `${this.name ? `quantized array '${this.name}'` : 'quantized array'} (shape ${formatShape(shape)}, ${this.type?.name})`;
  }

  get storage(): GpuStorage {
    if (!this.#storage) throw new DisposedError(`${this.describe()} was disposed and cannot be used`);
    return this.#storage;
  }

  get buffer(): GPUBuffer {
    return this.storage.buffer;
  }

  /** The raw blocks, as ggml lays them out. */
  async data(): Promise<Uint8Array> {
    this.device.check();
    return readBuffer(this.device, this.buffer, 0, this.nbytes);
  }

  dispose(): void {
    const s = this.#storage;
    if (!s) return;
    this.#storage = null;
    finalizer.unregister(this);
    s.release();
  }

  toString(): string {
    return `QuantizedArray(shape=${formatShape(this.shape)}, type=${this.type.name}${this.disposed ? ', disposed' : ''})`;
  }

  /** A plain description for JSON and for serialisers that would otherwise walk the device. */
  toJSON(): { shape: number[]; type: string; name?: string } {
    return { shape: [...this.shape], type: this.type.name, ...(this.name ? { name: this.name } : {}) };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
