// MLX's quantization on the GPU (shaders/mlx_quantize.wgsl): affine and mxfp4
// quantize / dequantize, and the exact repacks of MLX groups into ggml blocks.
// Work is split into chunks of whole groups (multiples of 256, so every window
// starts on the binding offset alignment) that fit one storage binding.

import { DTypeError } from '../errors.js';
import { WgArray } from '../runtime/array.js';
import { DTYPES, type DType } from '../runtime/dtype.js';
import { GpuStorage } from '../runtime/pool.js';
import { QuantizedArray } from '../runtime/quantized.js';
import { ggmlType } from '../runtime/ggml-types.js';
import type { Device } from '../runtime/device.js';
import { castArray } from './cast.js';
import { elementChunks, grid, type ChunkedOperand } from './dispatch.js';
import { pipeline } from './shader.js';

const SHADER = 'mlx_quantize.wgsl';
const SRC_KIND: Partial<Record<DType, number>> = { float32: 0, float16: 1, bfloat16: 2 };

interface Binding {
  binding: number;
  operand: ChunkedOperand;
}

/** Runs `entry` over `nGroups` groups, `perThread` groups per invocation. */
function run(device: Device, entry: string, nGroups: number, bindings: Binding[], words: (skip: number[]) => number[], perThread = 1): void {
  if (nGroups === 0) return;
  const pipe = pipeline(device, SHADER, {}, entry);
  const chunks = elementChunks(device, nGroups, bindings.map((b) => b.operand), 256);
  for (const { count, windows } of chunks) {
    const params = device.uniform([count, ...words(windows.map((w) => w.skip))].concat(new Array(8).fill(0)).slice(0, 8));
    const group = device.gpuDevice.createBindGroup({
      layout: pipe.getBindGroupLayout(0),
      entries: [
        ...bindings.map((b, i) => ({ binding: b.binding, resource: { buffer: windows[i].buffer, offset: windows[i].offset, size: windows[i].size } })),
        { binding: 6, resource: { buffer: params } },
      ],
    });
    device.dispatch(pipe, [group], grid(device, Math.ceil(count / perThread / 64)));
  }
}

function floatInput(a: WgArray, groupSize: number, what: string): WgArray {
  if (SRC_KIND[a.dtype] === undefined) throw new DTypeError(`${what}: ${a.describe()} must be float32, float16 or bfloat16`);
  // a view is gathered into a fresh row-major array by the cast kernel
  return a.isContiguous ? a : castArray(a, a.dtype);
}

function packedShape(shape: readonly number[], bits: number): number[] {
  const s = shape.length ? [...shape] : [1];
  s[s.length - 1] = (s[s.length - 1] * bits) / 32;
  return s;
}

function groupShape(shape: readonly number[], groupSize: number): number[] {
  const s = shape.length ? [...shape] : [1];
  s[s.length - 1] = s[s.length - 1] / groupSize;
  return s;
}

/** MLX affine quantization of a float array (rows whole groups; checked by the caller). */
export function mlxAffineQuantizeGpu(a: WgArray, groupSize: number, bits: number): { wq: WgArray<'uint32'>; scales: WgArray; biases: WgArray } {
  const device = a.device;
  device.check();
  const x = floatInput(a, groupSize, 'mlx quantize');
  try {
    const nGroups = x.size / groupSize;
    const wq = WgArray.empty(device, packedShape(x.shape, bits), 'uint32', a.name);
    const s32 = WgArray.empty(device, groupShape(x.shape, groupSize), 'float32');
    const b32 = WgArray.empty(device, groupShape(x.shape, groupSize), 'float32');
    run(
      device,
      'affine_quantize',
      nGroups,
      [
        { binding: 0, operand: { buffer: x.buffer, bytes: groupSize * DTYPES[x.dtype].bytes, elementOffset: x.offset / groupSize } },
        { binding: 3, operand: { buffer: wq.buffer, bytes: (groupSize * bits) / 8, elementOffset: 0 } },
        { binding: 4, operand: { buffer: s32.buffer, bytes: 4, elementOffset: 0 } },
        { binding: 5, operand: { buffer: b32.buffer, bytes: 4, elementOffset: 0 } },
      ],
      (skip) => [Math.round(skip[0] * groupSize), SRC_KIND[x.dtype]!, groupSize, bits],
    );
    if (x.dtype === 'float32') return { wq, scales: s32, biases: b32 };
    const scales = castArray(s32, x.dtype);
    const biases = castArray(b32, x.dtype);
    s32.dispose();
    b32.dispose();
    return { wq, scales, biases };
  } finally {
    if (x !== a) x.dispose();
  }
}

/** `a` as a row-major float32 / uint32 array from element 0 (a new reference, or a converted copy). */
function asF32(a: WgArray): WgArray<'float32'> {
  return a.dtype === 'float32' && a.isContiguous && a.offset === 0 ? (a.view(a.shape) as WgArray<'float32'>) : castArray(a, 'float32');
}

function asU32(a: WgArray): WgArray<'uint32'> {
  return a.dtype === 'uint32' && a.isContiguous && a.offset === 0 ? (a.view(a.shape) as WgArray<'uint32'>) : castArray(a, 'uint32');
}

/** MLX affine decoding, in float32: scale * q + bias. */
export function mlxAffineDequantizeGpu(wq: WgArray, scales: WgArray, biases: WgArray, groupSize: number, bits: number): WgArray<'float32'> {
  const device = wq.device;
  device.check();
  const w = asU32(wq);
  const s = asF32(scales);
  const b = asF32(biases);
  try {
    const shape = [...scales.shape];
    shape[shape.length - 1] *= groupSize;
    const out = WgArray.empty(device, shape, 'float32', wq.name);
    run(
      device,
      'affine_dequantize',
      s.size,
      [
        { binding: 0, operand: { buffer: w.buffer, bytes: (groupSize * bits) / 8, elementOffset: 0 } },
        { binding: 1, operand: { buffer: s.buffer, bytes: 4, elementOffset: 0 } },
        { binding: 2, operand: { buffer: b.buffer, bytes: 4, elementOffset: 0 } },
        { binding: 3, operand: { buffer: out.buffer, bytes: groupSize * 4, elementOffset: 0 } },
      ],
      () => [0, 0, groupSize, bits],
    );
    return out;
  } finally {
    w.dispose();
    s.dispose();
    b.dispose();
  }
}

/** MLX mxfp4 quantization (groups of 32): codes packed 8 per uint32, one E8M0 byte per group (uint8). */
export function mlxMxfp4QuantizeGpu(a: WgArray): { wq: WgArray<'uint32'>; scales: WgArray<'uint8'> } {
  const device = a.device;
  device.check();
  const x = floatInput(a, 32, 'mlx quantize (mxfp4)');
  try {
    const wq = WgArray.empty(device, packedShape(x.shape, 4), 'uint32', a.name);
    const s32 = WgArray.empty(device, groupShape(x.shape, 32), 'uint32');
    run(
      device,
      'mxfp4_quantize',
      x.size / 32,
      [
        { binding: 0, operand: { buffer: x.buffer, bytes: 32 * DTYPES[x.dtype].bytes, elementOffset: x.offset / 32 } },
        { binding: 3, operand: { buffer: wq.buffer, bytes: 16, elementOffset: 0 } },
        { binding: 4, operand: { buffer: s32.buffer, bytes: 4, elementOffset: 0 } },
      ],
      (skip) => [Math.round(skip[0] * 32), SRC_KIND[x.dtype]!, 32, 4],
    );
    const scales = castArray(s32, 'uint8');
    s32.dispose();
    return { wq, scales };
  } finally {
    if (x !== a) x.dispose();
  }
}

/** MLX mxfp4 decoding in float32. */
export function mlxMxfp4DequantizeGpu(wq: WgArray, scales: WgArray): WgArray<'float32'> {
  const device = wq.device;
  device.check();
  const w = asU32(wq);
  const s = asU32(scales);
  try {
    const shape = [...scales.shape];
    shape[shape.length - 1] *= 32;
    const out = WgArray.empty(device, shape, 'float32', wq.name);
    run(
      device,
      'mxfp4_dequantize',
      s.size,
      [
        { binding: 0, operand: { buffer: w.buffer, bytes: 16, elementOffset: 0 } },
        { binding: 1, operand: { buffer: s.buffer, bytes: 4, elementOffset: 0 } },
        { binding: 3, operand: { buffer: out.buffer, bytes: 128, elementOffset: 0 } },
      ],
      () => [0, 0, 32, 4],
    );
    return out;
  } finally {
    w.dispose();
    s.dispose();
  }
}

export type RepackTarget = 'q4_1' | 'q5_1' | 'mxfp4';

/**
 * Repacks MLX groups into ggml blocks, bit for bit: `wq` the packed words, `perGroup`
 * one uint32 per group (for Q4_1 / Q5_1: float16 scale | float16 bias << 16, already
 * checked exact; for MXFP4: the E8M0 byte). `shape` is the logical (unpacked) shape.
 */
export function repackGpu(target: RepackTarget, wq: WgArray, perGroup: WgArray, shape: readonly number[], groupSize: number, name?: string): QuantizedArray {
  const device = wq.device;
  device.check();
  const type = ggmlType(target);
  const w = asU32(wq);
  const pg = asU32(perGroup);
  try {
    const nGroups = pg.size;
    const storage = GpuStorage.allocate(device, Math.ceil(((nGroups * groupSize) / 32) * type.typeSize / 4) * 4 + 4, name);
    const out = new QuantizedArray(storage, shape, type, name);
    const bits = target === 'q5_1' ? 5 : 4;
    run(
      device,
      `repack_${target}`,
      nGroups,
      [
        { binding: 0, operand: { buffer: w.buffer, bytes: (groupSize * bits) / 8, elementOffset: 0 } },
        { binding: 1, operand: { buffer: pg.buffer, bytes: 4, elementOffset: 0 } },
        { binding: 3, operand: { buffer: out.buffer, bytes: (groupSize / 32) * type.typeSize, elementOffset: 0 } },
      ],
      () => [0, 0, groupSize, bits],
      target === 'mxfp4' ? 4 : 1,
    );
    return out;
  } finally {
    w.dispose();
    pg.dispose();
  }
}
