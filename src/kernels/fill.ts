// full() and arange() on the GPU: shaders/fill.wgsl and shaders/arange.wgsl.

import { WgArray, type Shape } from '../runtime/array.js';
import type { Device } from '../runtime/device.js';
import { DTYPES, type DType } from '../runtime/dtype.js';
import { encodeValues } from '../runtime/host-cast.js';
import { elementChunks, grid, WORKGROUP_SIZE } from './dispatch.js';
import { bindGroup, pipeline } from './shader.js';

/** Fills `out` (contiguous, fresh) with one element's little-endian bytes repeated. */
export function fillPattern(out: WgArray, element: Uint8Array): void {
  const device = out.device;
  const bytes = DTYPES[out.dtype].bytes;
  if (out.size === 0) return;
  const pattern = new Uint8Array(8);
  for (let i = 0; i < 8; i++) pattern[i] = element[i % bytes];
  const [p0, p1] = new Uint32Array(pattern.buffer);
  const words = Math.ceil(out.nbytes / 4);
  const pipe = pipeline(device, 'fill.wgsl');
  for (const { start, count, windows } of elementChunks(device, words, [{ buffer: out.buffer, bytes: 4, elementOffset: 0 }])) {
    const params = device.uniform([count, start & 1, p0, p1]);
    device.dispatch(pipe, [bindGroup(device, pipe, [windows[0], params])], grid(device, Math.ceil(count / WORKGROUP_SIZE)));
  }
}

/** A new array of `shape` with every element `value` (converted as array() converts numbers). */
export function filled<D extends DType>(device: Device, shape: Shape, value: number | bigint | boolean, dtype: D, name?: string): WgArray<D> {
  const out = WgArray.empty(device, shape, dtype, name);
  const element = encodeValues([value], dtype);
  fillPattern(out, new Uint8Array(element.buffer, element.byteOffset, element.byteLength));
  return out;
}

/**
 * Writes start + i * step into `out`, a contiguous float32 (computed in float32)
 * or int32/uint32 array (computed in 32-bit wrapping integers).
 */
export function fillArange(out: WgArray<'float32' | 'int32' | 'uint32'>, start: number, step: number): void {
  const device = out.device;
  if (out.size === 0) return;
  const float = out.dtype === 'float32';
  const words = new Uint32Array(2);
  if (float) new Float32Array(words.buffer).set([start, step]);
  else words.set([start | 0, step | 0]);
  const pipe = pipeline(device, 'arange.wgsl', { FLOAT: float ? 1 : 0 });
  for (const { start: first, count, windows } of elementChunks(device, out.size, [{ buffer: out.buffer, bytes: 4, elementOffset: 0 }])) {
    const params = device.uniform([count, first, words[0], words[1]]);
    device.dispatch(pipe, [bindGroup(device, pipe, [windows[0], params])], grid(device, Math.ceil(count / WORKGROUP_SIZE)));
  }
}
