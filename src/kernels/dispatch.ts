// The dispatch toolkit every kernel shares: how many workgroups, in how many
// dimensions; which windows of large buffers to bind (bindingWindow,
// elementChunks); dims merged where every operand walks them as one
// (mergeDims); dims and offsets as the u32 words shaders read (u32, dimWords);
// a dummy buffer for unused bindings. One storage binding may cover at most
// maxStorageBufferBindingSize bytes (128 MiB on lavapipe) and one dispatch
// dimension at most 65535 workgroups, while tensors are often larger: kernels
// split their work into chunks that fit both.

import type { Device } from '../runtime/device.js';

export const WORKGROUP_SIZE = 256;

/**
 * Workgroup counts [x, y] covering at least `groups` workgroups. Shaders
 * recover the linear workgroup index as `wid.y * nwg.x + wid.x`
 * (see shaders/lib/grid.wgsl) and must bounds-check the tail.
 */
export function grid(device: Device, groups: number): [number, number] {
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [Math.max(1, groups), 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

/** Dims a strided kernel accepts after merging; NumPy allows 32, real tensors use few. */
export const MAX_KERNEL_DIMS = 16;

/** An integer (negative, or past 2^32) as the u32 a shader's wrapping arithmetic reads: its value mod 2^32. */
export function u32(x: number): number {
  return x >>> 0;
}

/** Values of up to MAX_KERNEL_DIMS dims as that many u32 words (two's complement for negatives). */
export function dimWords(values: readonly number[]): number[] {
  const out = new Array<number>(MAX_KERNEL_DIMS).fill(0);
  values.forEach((v, i) => (out[i] = u32(v)));
  return out;
}

/**
 * Merges adjacent dims that every operand walks as one (the outer one's stride
 * is the inner one's times its length) and drops length-1 dims. `strides` has
 * one list per operand. May return no dims (a single element); callers pad as
 * their shader wants.
 */
export function mergeDims(shape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d];
    if (n === 1) continue;
    if (outShape.length > 0 && strides.every((s, i) => s[d] === outStrides[i][0] * outShape[0])) {
      outShape[0] *= n;
    } else {
      outShape.unshift(n);
      strides.forEach((s, i) => outStrides[i].unshift(s[d]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** A window of a buffer bound as one storage binding. */
export interface BindingWindow {
  buffer: GPUBuffer;
  /** Byte offset: a multiple of the device's minStorageBufferOffsetAlignment. */
  offset: number;
  size: number;
}

/**
 * The binding window of `buffer` covering bytes [from, to): its start rounded
 * down to `align`, its size up to whole `granule`-byte units (4: words; 16: so a
 * kernel may bind it as array<vec4<u32>>), within the buffer.
 */
export function bindingWindow(buffer: GPUBuffer, from: number, to: number, align: number, granule = 4): BindingWindow {
  const offset = Math.floor(from / align) * align;
  const size = Math.min(buffer.size - offset, Math.ceil((to - offset) / granule) * granule);
  return { buffer, offset, size };
}

const dummies = new WeakMap<Device, Map<string, GPUBuffer>>();

/**
 * A tiny storage buffer bound where a kernel's optional binding is unused.
 * Read and written bindings get different ones: one buffer may not be both in one dispatch.
 */
export function dummyBuffer(device: Device, use: 'read' | 'write' = 'read'): GPUBuffer {
  let m = dummies.get(device);
  if (!m) dummies.set(device, (m = new Map()));
  let b = m.get(use);
  if (!b) {
    b = device.createBuffer(16, GPUBufferUsage.STORAGE, `unused ${use} binding`);
    m.set(use, b);
  }
  return b;
}

/** One operand of an element-wise kernel: where its elements sit in its buffer. */
export interface ChunkedOperand {
  buffer: GPUBuffer;
  /** Bytes per element (or per block, for kernels that walk blocks). */
  bytes: number;
  /** Index of the operand's first element in the buffer. */
  elementOffset: number;
}

/** A binding window of one operand for one chunk. */
export interface ChunkWindow extends BindingWindow {
  /** Elements between the window's start and the chunk's first element. */
  skip: number;
}

export interface Chunk {
  /** First element of the chunk and how many it covers. */
  start: number;
  count: number;
  windows: ChunkWindow[];
}

/**
 * Splits `n` elements into chunks whose windows on every operand fit one
 * storage binding and start on the device's offset alignment. Chunk starts are
 * multiples of `granule` elements, so packed outputs (several elements per
 * 32-bit word) never share a word across chunks.
 */
export function elementChunks(device: Device, n: number, operands: ChunkedOperand[], granule = 1024): Chunk[] {
  const align = device.limits.minStorageBufferOffsetAlignment;
  const maxBinding = device.limits.maxStorageBufferBindingSize;
  let per = Infinity;
  // Room for the start's alignment slack and the 16-byte padding below.
  for (const op of operands) per = Math.min(per, Math.floor((maxBinding - align - 16) / op.bytes));
  per = Math.max(granule, Math.floor(per / granule) * granule);
  const chunks: Chunk[] = [];
  for (let start = 0; start < n; start += per) {
    const count = Math.min(per, n - start);
    const windows = operands.map((op): ChunkWindow => {
      const first = (op.elementOffset + start) * op.bytes;
      // Whole 16-byte vectors where the buffer has room (pool buffers always do), so a
      // kernel may bind the window as array<vec4<u32>> and read its last elements.
      const w = bindingWindow(op.buffer, first, first + count * op.bytes, align, 16);
      return { ...w, skip: (first - w.offset) / op.bytes };
    });
    chunks.push({ start, count, windows });
  }
  return chunks;
}
