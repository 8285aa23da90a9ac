// Strided copies: shaders/copy.wgsl. Makes views contiguous, writes arrays
// into boxes of a larger one (concatenate, stack) and gathers along an axis
// (take). Copying moves bits, so every dtype works, packed 8/16-bit ones and
// the storage-only 8-byte ones included.
//
// A source view may span far more memory than it holds (a transposed 2 GiB
// matrix touches all of its buffer in every output row) and one binding may
// cover at most maxStorageBufferBindingSize bytes. The copy is split into
// boxes whose source and destination windows both fit one binding: the dim
// contributing most to an over-size window is cut until they do.

import { LimitError } from '../errors.js';
import { contiguousStrides, WgArray } from '../runtime/array.js';
import type { Device } from '../runtime/device.js';
import { DTYPES, type DType } from '../runtime/dtype.js';
import { bindingWindow, dimWords, dummyBuffer, grid, MAX_KERNEL_DIMS, u32, WORKGROUP_SIZE, type BindingWindow } from './dispatch.js';
import { bindGroup, pipeline } from './shader.js';


/** Where the elements of a strided operand sit: buffer, first element, strides (elements, signed). */
export interface StridedSource {
  buffer: GPUBuffer;
  offset: number;
  strides: readonly number[];
}

/** A gather: box dim `dim` takes source index indices[i] (int32 or uint32, contiguous) along a source axis. */
export interface TakeSpec {
  dim: number;
  indices: GPUBuffer;
  /** Element offset of the first index in `indices`. */
  indexOffset: number;
  signed: boolean;
  /** Length and stride (elements) of the source axis the indices point into. */
  axisLength: number;
  axisStride: number;
}

/** A dim of a copy after merging: length, destination and source strides. */
interface Dim {
  len: number;
  dstride: number;
  sstride: number;
  take: boolean;
}


/**
 * A copy of `a` in row-major order (one strided-copy kernel); `a` itself (as
 * a new view, which the caller disposes) when it already is.
 */
export function contiguous<D extends DType>(a: WgArray<D>): WgArray<D> {
  a.device.check();
  if (a.isContiguous) return a.view(a.shape, { strides: a.strides, offset: a.offset });
  const out = WgArray.empty(a.device, a.shape, a.dtype, a.name);
  copyInto(out, a, new Array<number>(a.ndim).fill(0));
  return out;
}

/**
 * `body` applied to a row-major copy of `a` (one strided copy), disposed after:
 * how kernels that need contiguous input take a view.
 */
export function withContiguous<T>(a: WgArray, body: (c: WgArray) => T): T {
  const c = contiguous(a);
  try {
    return body(c);
  } finally {
    c.dispose();
  }
}

/** Writes `src`'s elements into the box of contiguous `dst` starting at `at` (same ndim, same dtype). */
export function copyInto(dst: WgArray, src: WgArray, at: readonly number[]): void {
  if (src.size === 0) return;
  const bytes = DTYPES[src.dtype].bytes;
  const device = src.device;
  if (src.isContiguous) {
    // The box is one byte range of dst when every dim inside its outermost non-1 dim is whole.
    const k = src.shape.findIndex((n) => n !== 1);
    const whole = k < 0 || src.shape.every((n, d) => d <= k || (at[d] === 0 && n === dst.shape[d]));
    let start = dst.offset;
    let stride = 1;
    for (let d = dst.ndim - 1; d >= 0; d--) {
      start += at[d] * stride;
      stride *= dst.shape[d];
    }
    if (whole && (src.offset * bytes) % 4 === 0 && (start * bytes) % 4 === 0) {
      // The copy engine, no binding-size limit. A size rounded up to whole words spills at
      // most 3 bytes into the next box (written after this one) or the buffer's padding.
      device.commandEncoder().copyBufferToBuffer(src.buffer, src.offset * bytes, dst.buffer, start * bytes, Math.ceil((src.size * bytes) / 4) * 4);
      return;
    }
  }
  copyStrided(device, bytes, { buffer: src.buffer, offset: src.offset, strides: src.strides }, src.shape, {
    buffer: dst.buffer,
    offset: dst.offset,
    shape: dst.shape,
    at,
  });
}



/**
 * Copies a box of `lengths` elements of `bytes` bytes each from `src` into the
 * row-major array `dstShape` held in `dst` (from element `dstOffset`), at
 * position `at`. Elements of the destination outside the box keep their values.
 */
export function copyStrided(
  device: Device,
  bytes: number,
  src: StridedSource,
  lengths: readonly number[],
  dst: { buffer: GPUBuffer; offset: number; shape: readonly number[]; at: readonly number[] },
  take?: TakeSpec,
): void {
  device.check();
  if (lengths.some((n) => n === 0)) return;
  const dstStrides = contiguousStrides(dst.shape);
  let dstBase = dst.offset;
  let srcBase = src.offset;
  // Merge dims (innermost first) and drop length-1 ones, so the kernel decodes few.
  const dims: Dim[] = [];
  for (let d = lengths.length - 1; d >= 0; d--) {
    const isTake = take?.dim === d;
    dstBase += dst.at[d] * dstStrides[d];
    if (lengths[d] === 1 && !isTake) continue;
    const dim: Dim = { len: lengths[d], dstride: dstStrides[d], sstride: isTake ? 0 : src.strides[d], take: isTake };
    const inner = dims[0];
    if (inner && !inner.take && !isTake && dim.dstride === inner.dstride * inner.len && dim.sstride === inner.sstride * inner.len) {
      inner.len *= dim.len;
    } else {
      dims.unshift(dim);
    }
  }
  if (dims.length === 0 || dims[dims.length - 1].dstride !== 1) dims.push({ len: 1, dstride: 1, sstride: 0, take: false });
  if (dims.length > MAX_KERNEL_DIMS) {
    throw new LimitError(`strided copy: the view has ${dims.length} dims that cannot be merged; at most ${MAX_KERNEL_DIMS} are supported`);
  }
  const plan: CopyPlan = { device, bytes, src, dst, dims, take };
  const limit = device.limits.maxStorageBufferBindingSize - device.limits.minStorageBufferOffsetAlignment - 16;
  splitBoxes(plan, dims.map((d) => d.len), new Array<number>(dims.length).fill(0), dstBase, srcBase, limit);
}

interface CopyPlan {
  device: Device;
  bytes: number;
  src: StridedSource;
  dst: { buffer: GPUBuffer };
  dims: Dim[];
  take?: TakeSpec;
}

function spans(plan: CopyPlan, lens: number[]): { dst: number; src: number } {
  let dst = 1;
  let src = 1;
  plan.dims.forEach((d, i) => {
    dst += (lens[i] - 1) * d.dstride;
    src += d.take ? 0 : (lens[i] - 1) * Math.abs(d.sstride);
  });
  if (plan.take) src += (plan.take.axisLength - 1) * Math.abs(plan.take.axisStride);
  return { dst: dst * plan.bytes, src: src * plan.bytes };
}

/** Invocations the kernel needs for a box: rows x words per row. */
function shapeOf(plan: CopyPlan, lens: number[]): { rowDims: number; rows: number; segLen: number; wpr: number } {
  const dims = plan.dims;
  let rowDims = dims.length - 1;
  while (rowDims > 0 && dims[rowDims - 1].dstride === dims[rowDims].dstride * lens[rowDims]) rowDims--;
  let rows = 1;
  for (let i = 0; i < rowDims; i++) rows *= lens[i];
  let segLen = 1;
  for (let i = rowDims; i < dims.length; i++) segLen *= lens[i];
  const b = plan.bytes;
  // 4- and 8-byte elements: four per invocation; packed ones: one word per invocation.
  const wpr = b >= 4 ? Math.ceil(segLen / 4) : Math.ceil((segLen * b) / 4) + 1;
  return { rowDims, rows, segLen, wpr };
}

const MAX_INVOCATIONS = 2 ** 31;

function splitBoxes(plan: CopyPlan, lens: number[], starts: number[], dstBase: number, srcBase: number, limit: number): void {
  const s = spans(plan, lens);
  const { rows, wpr } = shapeOf(plan, lens);
  const overDst = s.dst > limit;
  const overSrc = s.src > limit;
  const overCount = rows * wpr > MAX_INVOCATIONS;
  if (!overDst && !overSrc && !overCount) {
    dispatchBox(plan, lens, starts, dstBase, srcBase);
    return;
  }
  // Cut the dim that contributes most to what is over the limit.
  let best = -1;
  let bestWeight = -1;
  plan.dims.forEach((d, i) => {
    if (lens[i] < 2) return;
    const weight =
      (lens[i] - 1) *
      Math.max(overDst || overCount ? d.dstride : 0, overSrc && !d.take ? Math.abs(d.sstride) : 0, overCount ? 1 : 0);
    if (weight > bestWeight) {
      best = i;
      bestWeight = weight;
    }
  });
  if (best < 0 || bestWeight === 0) {
    throw new LimitError(
      `strided copy: one element row needs a ${Math.max(s.dst, s.src)}-byte window, over this device's ` +
        `maxStorageBufferBindingSize of ${plan.device.limits.maxStorageBufferBindingSize} bytes`,
    );
  }
  const n = lens[best];
  const half = Math.ceil(n / 2);
  for (const [from, count] of [
    [0, half],
    [half, n - half],
  ]) {
    const l = [...lens];
    const st = [...starts];
    l[best] = count;
    st[best] = starts[best] + from;
    splitBoxes(plan, l, st, dstBase, srcBase, limit);
  }
}

function dispatchBox(plan: CopyPlan, lens: number[], starts: number[], dstBase: number, srcBase: number): void {
  const { device, bytes, dims, take } = plan;
  const align = device.limits.minStorageBufferOffsetAlignment;
  let dstOrigin = dstBase;
  let dstLast = 0;
  let srcOrigin = srcBase;
  let srcLow = 0;
  let srcHigh = 0;
  dims.forEach((d, i) => {
    dstOrigin += starts[i] * d.dstride;
    dstLast += (lens[i] - 1) * d.dstride;
    if (d.take) return;
    srcOrigin += starts[i] * d.sstride;
    const reach = (lens[i] - 1) * d.sstride;
    if (reach < 0) srcLow += reach;
    else srcHigh += reach;
  });
  if (take) {
    const reach = (take.axisLength - 1) * take.axisStride;
    if (reach < 0) srcLow += reach;
    else srcHigh += reach;
  }
  const dstWin = bindingWindow(plan.dst.buffer, dstOrigin * bytes, (dstOrigin + dstLast + 1) * bytes, align);
  const srcWin = bindingWindow(plan.src.buffer, (srcOrigin + srcLow) * bytes, (srcOrigin + srcHigh + 1) * bytes, align);
  if (!take && transposeTiles(plan, lens, dstOrigin - dstWin.offset / bytes, srcOrigin - srcWin.offset / bytes, srcWin, dstWin)) return;
  const { rowDims, rows, segLen, wpr } = shapeOf(plan, lens);
  let takeWords = [0xffffffff, 0, 0];
  let indexWin: BindingWindow = { buffer: dummyBuffer(device), offset: 0, size: 16 };
  if (take) {
    const ti = dims.findIndex((d) => d.take);
    const first = take.indexOffset + starts[ti];
    indexWin = bindingWindow(take.indices, first * 4, (first + lens[ti]) * 4, align);
    takeWords = [take.axisLength, u32(take.axisStride), first - indexWin.offset / 4];
  }
  const takeDim = take ? dims.findIndex((d) => d.take) : 16;
  const pipe = pipeline(device, 'copy.wgsl', { ELEM_BYTES: bytes });
  const params = device.uniform([
    dims.length,
    rowDims,
    wpr,
    rows * wpr,
    segLen,
    rows,
    dstOrigin - dstWin.offset / bytes,
    srcOrigin - srcWin.offset / bytes,
    ...takeWords,
    takeDim | (take?.signed === false ? 0 : 0x100),
    lens[lens.length - 1],
    u32(dims[dims.length - 1].sstride),
    0,
    0,
    ...dimWords(lens),
    ...dimWords(dims.map((d) => d.dstride)),
    ...dimWords(dims.map((d) => d.sstride)),
  ]);
  const group = bindGroup(device, pipe, [srcWin, dstWin, params, indexWin]);
  device.dispatch(pipe, [group], grid(device, Math.ceil((rows * wpr) / WORKGROUP_SIZE)));
}

const TILE = 64;

/**
 * The tiled-transpose kernel for a box whose last dim walks the source with a
 * stride while the one before it is contiguous there; false when the box is
 * not of that form (the general kernel then copies it).
 */
function transposeTiles(
  plan: CopyPlan,
  lens: number[],
  dstOrigin: number,
  srcOrigin: number,
  srcWin: BindingWindow,
  dstWin: BindingWindow,
): boolean {
  const { device, bytes, dims } = plan;
  const k = dims.length;
  if (bytes > 4 || k < 2 || k - 2 > MAX_KERNEL_DIMS) return false;
  const inner = dims[k - 1];
  const outer = dims[k - 2];
  const lanes = 4 / bytes;
  const n = lens[k - 1];
  const m = lens[k - 2];
  if (inner.dstride !== 1 || outer.sstride !== 1 || Math.abs(inner.sstride) < 2 || m < 2 || n % lanes !== 0) return false;
  if ((outer.dstride * bytes) % 4 !== 0 || (dstOrigin * bytes) % 4 !== 0) return false;
  let batch = 1;
  for (let i = 0; i < k - 2; i++) batch *= lens[i];
  // 4 x 4 blocks in registers (transpose_4x4) where every source column and destination
  // row starts on a 16-byte vector and both windows are whole vectors
  const vec4 =
    bytes === 4 &&
    m % 4 === 0 &&
    n % 4 === 0 &&
    inner.sstride > 0 &&
    [srcOrigin, inner.sstride, dstOrigin, outer.dstride, ...dims.slice(0, k - 2).flatMap((d) => [d.sstride, d.dstride])].every((x) => x % 4 === 0) &&
    [srcWin, dstWin].every((w) => w.buffer.size >= w.offset + Math.ceil(w.size / 16) * 16);
  const unit = vec4 ? 4 : TILE;
  const tilesM = Math.ceil(m / unit);
  const tilesN = Math.ceil(n / unit);
  const tiles = batch * tilesM * tilesN;
  if (tiles >= 2 ** 32) return false;
  const pipe = pipeline(device, 'copy.wgsl', { ELEM_BYTES: bytes }, vec4 ? 'transpose_4x4' : 'transpose_tiles');
  const params = device.uniform([
    k - 2,
    m,
    n,
    tilesM,
    tilesN,
    tiles,
    dstOrigin,
    u32(srcOrigin),
    u32(inner.sstride),
    outer.dstride,
    0,
    0,
    ...dimWords(lens.slice(0, k - 2)),
    ...dimWords(dims.slice(0, k - 2).map((d) => d.dstride)),
    ...dimWords(dims.slice(0, k - 2).map((d) => d.sstride)),
  ]);
  const whole = (w: BindingWindow) => (vec4 ? { ...w, size: Math.ceil(w.size / 16) * 16 } : w);
  device.dispatch(pipe, [bindGroup(device, pipe, [whole(srcWin), whole(dstWin), params])], grid(device, vec4 ? Math.ceil(tiles / 256) : tiles));
  return true;
}

