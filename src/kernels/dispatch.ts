// Geometry shared by the kernels: how many workgroups, in how many dimensions,
// and which windows of large buffers to bind. One storage binding may cover at
// most maxStorageBufferBindingSize bytes (128 MiB on lavapipe) and one
// dispatch dimension at most 65535 workgroups, while tensors are often larger:
// kernels split their work into chunks that fit both.

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

/** One operand of an element-wise kernel: where its elements sit in its buffer. */
export interface ChunkedOperand {
  buffer: GPUBuffer;
  /** Bytes per element (or per block, for kernels that walk blocks). */
  bytes: number;
  /** Index of the operand's first element in the buffer. */
  elementOffset: number;
}

/** A binding window of one operand for one chunk. */
export interface ChunkWindow {
  buffer: GPUBuffer;
  offset: number;
  size: number;
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
      const offset = Math.floor(first / align) * align;
      const skip = (first - offset) / op.bytes;
      // Whole 16-byte vectors where the buffer has room (pool buffers always do), so a
      // kernel may bind the window as array<vec4<u32>> and read its last elements.
      const size = Math.min(op.buffer.size - offset, Math.ceil(((skip + count) * op.bytes) / 16) * 16);
      return { buffer: op.buffer, offset, size, skip };
    });
    chunks.push({ start, count, windows });
  }
  return chunks;
}
