// Reductions over the last dim of a strided view: shaders/reduce.wgsl.
//
// Each pass splits every row into K segments and reduces each segment to a
// partial ([rows, K], float32 / int32 / uint32, plus indices for arg ops);
// passes repeat over the partials until K = 1. Segment sizes keep every
// dispatch's input window inside one storage binding, so rows of any length
// (a 2 GiB tensor summed to a scalar) work; an operand whose inner stride is
// too large to window at all is made contiguous first.

import { LimitError } from '../errors.js';
import { contiguous } from './copy.js';
import { WgArray } from '../runtime/array.js';
import type { Device } from '../runtime/device.js';
import { DTYPES, type DType } from '../runtime/dtype.js';
import { bindingWindow, dimWords, dummyBuffer, grid, MAX_KERNEL_DIMS, mergeDims, u32, WORKGROUP_SIZE } from './dispatch.js';
import { reach } from './elementwise.js';
import { bindGroup, pipeline } from './shader.js';

export type ReduceKernelOp = 'sum' | 'max' | 'min' | 'argmax' | 'argmin' | 'sqdev' | 'prod';
const OP_CODE: Record<ReduceKernelOp, number> = { sum: 0, max: 1, min: 2, argmax: 3, argmin: 4, sqdev: 5, prod: 6 };

/** The accumulator a reduction keeps: float32, int32 or uint32. */
export type AccDType = 'float32' | 'int32' | 'uint32';

export interface ReduceRequest {
  op: ReduceKernelOp;
  /** A view whose last dim is reduced; the other dims are kept. */
  input: WgArray;
  acc: AccDType;
  /** Float sums only: the final values are value * scale, or sqrt(value * scale). */
  final?: { scale: number; sqrt?: boolean };
  /** sqdev: the row centers (float32, contiguous, one per kept element). */
  center?: WgArray;
}

export interface ReduceResult {
  /** Shape: the input's without its last dim; dtype: the accumulator. */
  values: WgArray;
  /** argmax / argmin: the index along the reduced dim (uint32). */
  indices?: WgArray<'uint32'>;
}

/** One pass's input: rows of `inner` elements. */
interface PassInput {
  buffer: GPUBuffer;
  bytes: number;
  kind: number;
  offset: number;
  outerShape: number[];
  outerStrides: number[];
  inner: number;
  innerStride: number;
  index?: GPUBuffer;
}

const ACC_CODE: Record<AccDType, number> = { float32: 0, int32: 1, uint32: 2 };

/** The kept dims merged; one dim of length 1 (stride 0) when none is left. */
function mergeOuter(shape: readonly number[], strides: readonly number[]): { shape: number[]; strides: number[] } {
  const merged = mergeDims(shape, [strides]);
  if (merged.shape.length === 0) return { shape: [1], strides: [0] };
  return { shape: merged.shape, strides: merged.strides[0] };
}

/** Reduces the last dim of `request.input`. */
export function reduceLastDim(device: Device, request: ReduceRequest): ReduceResult {
  device.check();
  let input = request.input;
  const owned: WgArray[] = [];
  try {
    for (;;) {
      const result = tryReduce(device, request, input);
      if (result) return result;
      // The inner stride is too large to window a useful segment: read a row-major copy.
      if (input.isContiguous) throw new LimitError(`reduce: ${input.describe()} does not fit this device's storage bindings`);
      const c = contiguous(input);
      owned.push(c);
      input = c;
    }
  } finally {
    for (const c of owned) c.dispose();
  }
}

const MIN_SEGMENT = 16;

function tryReduce(device: Device, request: ReduceRequest, input: WgArray): ReduceResult | null {
  const { op, acc } = request;
  const nd = input.ndim;
  const keptShape = input.shape.slice(0, nd - 1);
  const inner = input.shape[nd - 1];
  const outer = mergeOuter(keptShape, input.strides.slice(0, nd - 1));
  if (outer.shape.length > MAX_KERNEL_DIMS) {
    if (input.isContiguous) throw new LimitError(`reduce: ${input.describe()} has more than ${MAX_KERNEL_DIMS} kept dims that cannot be merged`);
    return null;
  }
  const rows = keptShape.reduce((a, b) => a * b, 1);
  if (inner === 0 || rows === 0) throw new LimitError(`reduce: ${input.describe()} has no rows or an empty reduced dim; the op handles those`);
  const isArg = op === 'argmax' || op === 'argmin';
  let pass: PassInput = {
    buffer: input.buffer,
    bytes: DTYPES[input.dtype].bytes,
    kind: DTYPES[input.dtype].shaderKind,
    offset: input.offset,
    outerShape: outer.shape,
    outerStrides: outer.strides,
    inner,
    innerStride: inner > 1 ? input.strides[nd - 1] : 1,
  };
  const limitBytes = device.limits.maxStorageBufferBindingSize - device.limits.minStorageBufferOffsetAlignment - 16;
  let first = true;
  const temps: WgArray[] = [];
  try {
    for (;;) {
      const { mode, seg } = chooseSegments(pass, rows, limitBytes);
      if (seg < Math.min(MIN_SEGMENT, pass.inner)) {
        if (first) return null;
        throw new LimitError(`reduce: partials of ${rows} rows do not fit one binding`);
      }
      const k = Math.ceil(pass.inner / seg);
      if (rows * k >= 2 ** 32) throw new LimitError(`reduce: ${rows} x ${k} partials are over 2^32`);
      const values = WgArray.empty(device, [...keptShape, k], acc, input.name);
      const indices = isArg ? WgArray.empty(device, [...keptShape, k], 'uint32') : undefined;
      runPass(device, request, pass, first, mode, seg, k, rows, values, indices, limitBytes);
      for (const t of temps) t.dispose();
      temps.length = 0;
      first = false;
      if (k === 1) {
        // Fresh row-major arrays: dropping the trailing 1 is a view.
        const v = values.view(keptShape);
        values.dispose();
        let idx: WgArray<'uint32'> | undefined;
        if (indices) {
          idx = indices.view(keptShape);
          indices.dispose();
        }
        return { values: v, indices: idx };
      }
      temps.push(values);
      if (indices) temps.push(indices);
      pass = {
        buffer: values.buffer,
        bytes: 4,
        kind: DTYPES[acc].shaderKind,
        offset: 0,
        outerShape: [Math.max(rows, 1)],
        outerStrides: [k],
        inner: k,
        innerStride: 1,
        index: indices?.buffer,
      };
    }
  } finally {
    for (const t of temps) t.dispose();
  }
}

/** Per-thread (0) or per-workgroup (1) tasks, and the segment length. */
function chooseSegments(pass: PassInput, rows: number, limitBytes: number): { mode: number; seg: number } {
  const { inner } = pass;
  const stride = Math.abs(pass.innerStride);
  const total = inner * rows;
  // Longest segment whose elements fit one binding window.
  const fit = Math.floor((limitBytes / pass.bytes - 1) / Math.max(1, stride)) + 1;
  if (stride === 1 && inner > 64) {
    return { mode: 1, seg: Math.min(inner, fit, Math.max(16384, Math.ceil(total / 1024))) };
  }
  return { mode: 0, seg: Math.min(inner, fit, Math.max(64, Math.ceil(total / 65536))) };
}

function runPass(
  device: Device,
  request: ReduceRequest,
  pass: PassInput,
  first: boolean,
  mode: number,
  seg: number,
  k: number,
  rows: number,
  values: WgArray,
  indices: WgArray | undefined,
  limitBytes: number,
): void {
  const { op, acc } = request;
  const align = device.limits.minStorageBufferOffsetAlignment;
  const final = request.final;
  const pipe = pipeline(
    device,
    'reduce.wgsl',
    {
      OP: OP_CODE[first ? op : op === 'sqdev' ? 'sum' : op],
      IN_KIND: pass.kind,
      IN_BYTES: pass.bytes,
      ACC: ACC_CODE[acc],
      MODE: mode,
      HAS_INDEX: first ? 0 : pass.index ? 1 : 0,
      FINAL: final ? (final.sqrt ? 2 : 1) : 0,
    },
    mode === 1 ? 'per_workgroup' : 'per_thread',
  );
  const totalTasks = rows * k;
  if (totalTasks === 0) return;
  const dummy = dummyBuffer(device);
  const outerWords = [...dimWords(pass.outerShape), ...dimWords(pass.outerStrides)];
  // Tasks per dispatch: as many as fit the windows.
  let per = mode === 1 ? 65535 * 16 : 65535 * 256;
  per = Math.max(1, Math.min(per, Math.floor(limitBytes / 4)));
  for (let t0 = 0; t0 < totalTasks; ) {
    let count = Math.min(per, totalTasks - t0);
    let span = inputReach(pass, k, seg, t0, count);
    while ((span[1] - span[0] + 1) * pass.bytes > limitBytes && count > 1) {
      count = Math.max(1, Math.floor(count / 2));
      per = count;
      span = inputReach(pass, k, seg, t0, count);
    }
    const inWin = bindingWindow(pass.buffer, span[0] * pass.bytes, (span[1] + 1) * pass.bytes, align);
    const inElem = inWin.offset / pass.bytes;
    let indexWin = { buffer: dummy, offset: 0, size: 16 };
    if (!first && pass.index) indexWin = bindingWindow(pass.index, span[0] * 4, (span[1] + 1) * 4, align);
    const outWin = bindingWindow(values.buffer, t0 * 4, (t0 + count) * 4, align);
    const outIdxWin = indices ? bindingWindow(indices.buffer, t0 * 4, (t0 + count) * 4, align) : { buffer: dummyBuffer(device, 'write'), offset: 0, size: 16 };
    let centerWin = { buffer: dummy, offset: 0, size: 16 };
    let centerOrigin = 0;
    if (first && op === 'sqdev' && request.center) {
      const c = request.center;
      const r0 = Math.floor(t0 / k);
      const r1 = Math.floor((t0 + count - 1) / k);
      centerWin = bindingWindow(c.buffer, (c.offset + r0) * 4, (c.offset + r1 + 1) * 4, align);
      centerOrigin = c.offset - centerWin.offset / 4;
    }
    const scale = new Float32Array([final?.scale ?? 1]);
    const params = device.uniform([
      count,
      t0,
      k,
      seg,
      pass.inner,
      u32(pass.offset - inElem),
      u32(pass.innerStride),
      pass.outerShape.length,
      u32(pass.offset - (indexWin.buffer === dummy ? 0 : indexWin.offset / 4)),
      t0 - outWin.offset / 4,
      centerOrigin,
      new Uint32Array(scale.buffer)[0],
      0x7fc00000,
      0x7f800000,
      0,
      0,
      ...outerWords,
    ]);
    const group = bindGroup(device, pipe, [inWin, indexWin, centerWin, outWin, outIdxWin, params]);
    const groups = mode === 1 ? count : Math.ceil(count / WORKGROUP_SIZE);
    device.dispatch(pipe, [group], grid(device, groups));
    t0 += count;
  }
}

/** Input positions [low, high] the tasks [t0, t0 + count) read. */
function inputReach(pass: PassInput, k: number, seg: number, t0: number, count: number): [number, number] {
  const r0 = Math.floor(t0 / k);
  const r1 = Math.floor((t0 + count - 1) / k);
  const [lo, hi] = reach(pass.outerShape, pass.outerStrides, pass.offset, r0, r1);
  let i0 = 0;
  let i1 = pass.inner - 1;
  if (r0 === r1) {
    i0 = (t0 % k) * seg;
    i1 = Math.min(pass.inner, ((t0 + count - 1) % k) * seg + seg) - 1;
  }
  const a = i0 * pass.innerStride;
  const b = i1 * pass.innerStride;
  return [lo + Math.min(a, b), hi + Math.max(a, b)];
}

/** The accumulator dtype of a reduction's input dtype: float32 for floats, else the 32-bit integer of its sign. */
export function accumulatorOf(dtype: DType): AccDType {
  const kind = DTYPES[dtype].kind;
  return kind === 'float' ? 'float32' : kind === 'int' ? 'int32' : 'uint32';
}
