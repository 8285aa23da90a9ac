// Elementwise kernels with broadcasting: shaders/elementwise.wgsl.
//
// Operands arrive broadcast to the output shape (zero strides along broadcast
// dims) or as scalars. Dims are merged where every operand allows it, then
// the output is cut into contiguous chunks whose windows on every operand fit
// one storage binding. An operand whose strides make even a small chunk's
// window too large (a transposed array bigger than a binding) is first made
// contiguous by the strided copy, then read row-major.

import { LimitError } from '../errors.js';
import { contiguous } from './copy.js';
import { formatShape, shapeSize, WgArray, type Shape } from '../runtime/array.js';
import type { Device } from '../runtime/device.js';
import { DTYPES, type DType } from '../runtime/dtype.js';
import { bindingWindow, dimWords, dummyBuffer, grid, MAX_KERNEL_DIMS, mergeDims, u32, WORKGROUP_SIZE, type BindingWindow } from './dispatch.js';
import { EW, type EwOp } from './elementwise-ops.js';
import { bindGroup, pipeline } from './shader.js';

export { EW, type EwOp };

/** An input: an array view broadcast to the output shape, or a scalar's raw bits in `dtype`. */
export type EwInput = { array: WgArray } | { scalar: number; dtype: DType };

/** The compute type code of a dtype: 0 float32, 1 int32, 2 uint32. */
export function computeCode(dtype: DType): number {
  const k = DTYPES[dtype].kind;
  return k === 'float' ? 0 : k === 'int' ? 1 : 2;
}

interface StridedOperand {
  buffer: GPUBuffer;
  bytes: number;
  offset: number;
  strides: number[];
}

/** Positions an operand reaches for output elements [first, last]: a conservative [low, high]. */
export function reach(shape: readonly number[], strides: readonly number[], offset: number, first: number, last: number): [number, number] {
  const a = unravel(shape, first);
  const b = unravel(shape, last);
  let k = 0;
  while (k < shape.length && a[k] === b[k]) k++;
  let base = offset;
  for (let d = 0; d < Math.min(k, shape.length); d++) base += a[d] * strides[d];
  let low = base;
  let high = base;
  if (k < shape.length) {
    const s = strides[k];
    low += Math.min(a[k] * s, b[k] * s);
    high += Math.max(a[k] * s, b[k] * s);
    for (let d = k + 1; d < shape.length; d++) {
      const r = (shape[d] - 1) * strides[d];
      if (r < 0) low += r;
      else high += r;
    }
  }
  return [low, high];
}

function unravel(shape: readonly number[], index: number): number[] {
  const out = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = index % shape[d];
    index = Math.floor(index / shape[d]);
  }
  return out;
}


/**
 * Runs op `op` over `inputs` into a new array of `outShape` and `outDtype`,
 * computing in `computeDtype`'s type (float32, int32 or uint32).
 */
export function elementwise(
  device: Device,
  op: EwOp,
  inputs: EwInput[],
  outShape: Shape,
  outDtype: DType,
  computeDtype: DType,
  clip: [number, number] = [0, 0],
  name?: string,
): WgArray {
  device.check();
  const out = WgArray.empty(device, outShape, outDtype, name);
  const n = shapeSize(outShape);
  if (n === 0) return out;
  if (n >= 2 ** 32) {
    out.dispose();
    throw new LimitError(`elementwise ${op}: output of shape ${formatShape(outShape)} has ${n} elements, over 2^32 - 1`);
  }
  // Copies made for operands that cannot be windowed as they are.
  const owned: WgArray[] = [];
  try {
    let views = inputs.map((x) => ('array' in x ? x.array : null));
    for (;;) {
      const plan = planChunks(device, views, outShape, n, DTYPES[outDtype].bytes);
      if (typeof plan === 'number') {
        // Operand `plan` spans too much memory per chunk: read it from a row-major copy.
        const v = views[plan]!;
        if (v.isContiguous) {
          throw new LimitError(`elementwise ${op}: ${v.describe()} does not fit this device's storage bindings even in the smallest chunks`);
        }
        const c = contiguous(v);
        owned.push(c);
        views = views.map((x, i) => (i === plan ? c : x));
        continue;
      }
      run(device, op, inputs, views, out, computeDtype, clip, plan);
      return out;
    }
  } catch (e) {
    out.dispose();
    throw e;
  } finally {
    for (const c of owned) c.dispose();
  }
}

interface ChunkPlan {
  shape: number[];
  operands: (StridedOperand | null)[];
  chunks: { start: number; count: number; windows: (BindingWindow | null)[] }[];
  linear: boolean;
}

/** The chunks of the output, or the index of an operand to make contiguous first. */
function planChunks(device: Device, views: (WgArray | null)[], outShape: Shape, n: number, outBytes: number): ChunkPlan | number {
  const align = device.limits.minStorageBufferOffsetAlignment;
  const limit = device.limits.maxStorageBufferBindingSize - align - 16;
  const arrays = views.map((v, i) => (v ? i : -1)).filter((i) => i >= 0);
  const merged = mergeDims(
    outShape,
    arrays.map((i) => views[i]!.strides),
  );
  if (merged.shape.length === 0) {
    // A single element: one dim of length 1, walked with stride 1 (so a linear chunk).
    merged.shape.push(1);
    merged.strides.forEach((s) => s.push(1));
  }
  if (merged.shape.length > MAX_KERNEL_DIMS) {
    // Too many dims that cannot be merged: copy the first strided operand, which makes it row-major.
    const strided = arrays.find((i) => !views[i]!.isContiguous);
    if (strided !== undefined) return strided;
    throw new LimitError(`elementwise: shape ${formatShape(outShape)} has more than ${MAX_KERNEL_DIMS} dims that cannot be merged`);
  }
  const operands: (StridedOperand | null)[] = views.map(() => null);
  arrays.forEach((i, k) => {
    const v = views[i]!;
    operands[i] = { buffer: v.buffer, bytes: DTYPES[v.dtype].bytes, offset: v.offset, strides: merged.strides[k] };
  });
  const shape = merged.shape;
  const linear = shape.length === 1 && operands.every((o) => !o || o.strides[0] === 1);
  const perWord = Math.max(outBytes, ...operands.map((o) => o?.bytes ?? 1));
  // Chunks start on the binding offset alignment of the output (whole words, groups of 4 elements).
  const GRANULE = Math.max(4, align / outBytes);
  let per = Math.max(GRANULE, Math.floor(limit / perWord / GRANULE) * GRANULE);
  const chunks: ChunkPlan['chunks'] = [];
  for (let start = 0; start < n; ) {
    let count = Math.min(per, n - start);
    for (;;) {
      const tooBig = operands.findIndex((o) => {
        if (!o) return false;
        const [low, high] = reach(shape, o.strides, o.offset, start, start + count - 1);
        return (high - low + 1) * o.bytes > limit;
      });
      if (tooBig < 0) break;
      if (count <= GRANULE) return tooBig;
      count = Math.max(GRANULE, Math.floor(count / 2 / GRANULE) * GRANULE);
      per = count;
    }
    const windows = operands.map((o) => {
      if (!o) return null;
      const [low, high] = reach(shape, o.strides, o.offset, start, start + count - 1);
      return bindingWindow(o.buffer, low * o.bytes, (high + 1) * o.bytes, align);
    });
    chunks.push({ start, count, windows });
    start += count;
  }
  return { shape, operands, chunks, linear };
}

function run(
  device: Device,
  op: EwOp,
  inputs: EwInput[],
  views: (WgArray | null)[],
  out: WgArray,
  computeDtype: DType,
  clip: [number, number],
  plan: ChunkPlan,
): void {
  const constants: Record<string, number> = {
    OP: EW[op],
    CK: computeCode(computeDtype),
    OUT_KIND: DTYPES[out.dtype].shaderKind,
    OUT_BYTES: DTYPES[out.dtype].bytes,
    LINEAR: plan.linear ? 1 : 0,
  };
  const scalars = [0, 0, 0, 0];
  inputs.forEach((x, i) => {
    const dtype = 'array' in x ? views[i]!.dtype : x.dtype;
    constants[`K${i}`] = DTYPES[dtype].shaderKind;
    constants[`B${i}`] = DTYPES[dtype].bytes;
    constants[`S${i}`] = 'array' in x ? 0 : 1;
    if (!('array' in x)) scalars[i] = u32(x.scalar);
  });
  const pipe = pipeline(device, 'elementwise.wgsl', constants);
  const outBytes = DTYPES[out.dtype].bytes;
  // main_vec4 (four elements per vector access) where every array operand and the
  // output are row-major 32-bit elements
  const wordOperands = plan.linear && outBytes === 4 && plan.operands.every((o) => !o || o.bytes === 4);
  const align = device.limits.minStorageBufferOffsetAlignment;
  const strideWords = [0, 1, 2].map((i) => dimWords(plan.operands[i]?.strides ?? []));
  const dummy = dummyBuffer(device);
  for (const { start, count, windows } of plan.chunks) {
    const origins = [0, 1, 2, 3].map((i) => {
      const o = plan.operands[i];
      const w = windows[i];
      if (!o || !w) return 0;
      return u32(o.offset - w.offset / o.bytes);
    });
    const outWin = bindingWindow(out.buffer, start * outBytes, (start + count) * outBytes, align, 16);
    // ... each window starting on a 16-byte vector at the chunk's first element, and whole vectors long
    const vec4 =
      wordOperands &&
      count % 4 === 0 &&
      (out.offset + start) % 4 === 0 &&
      outWin.size % 16 === 0 &&
      plan.operands.every((o, i) => {
        const w = windows[i];
        return !o || (w !== null && (origins[i] + start) % 4 === 0 && w.buffer.size >= w.offset + Math.ceil(w.size / 16) * 16);
      });
    const params = device.uniform([
      count,
      start,
      plan.shape.length,
      0,
      ...origins,
      ...scalars,
      u32(clip[0]),
      u32(clip[1]),
      0x7fc00000,
      0x7f800000,
      ...dimWords(plan.shape),
      ...strideWords[0],
      ...strideWords[1],
      ...strideWords[2],
    ]);
    const bind = [0, 1, 2].map((i) => {
      const w = windows[i];
      if (!w) return { buffer: dummy, offset: 0, size: 16 };
      return vec4 ? { ...w, size: Math.ceil(w.size / 16) * 16 } : w;
    });
    const p = vec4 ? pipeline(device, 'elementwise.wgsl', constants, 'main_vec4') : pipe;
    const group = bindGroup(device, p, [...bind, outWin, params]);
    device.dispatch(p, [group], grid(device, Math.ceil(count / 4 / WORKGROUP_SIZE)));
  }
}
