// Batched matrix products on the GPU: shaders/matmul.wgsl, with the host-side
// planning that keeps every binding inside the device's limits.
//
// Operands come as (buffer, element offset, strides): views, transposes and
// broadcast batch dimensions (stride 0) are read in place, never copied. One
// storage binding covers at most maxStorageBufferBindingSize bytes (128 MiB on
// lavapipe), so a product whose operands are larger is split into chunks of
// rows (M), then of depth (K, accumulating into the output), and batches are
// dispatched one at a time when together they do not fit.

import { LimitError } from '../errors.js';
import { formatShape, WgArray, type Shape } from '../runtime/array.js';
import type { Device } from '../runtime/device.js';
import { DTYPES } from '../runtime/dtype.js';
import { castArray } from './cast.js';
import { bindingWindow, mergeDims, u32 } from './dispatch.js';
import { bindGroup, pipeline } from './shader.js';

export type MatmulDType = 'float32' | 'float16' | 'bfloat16';


/**
 * Workgroup tile: WG_X x WG_Y invocations, each computing 8 x 8 outputs, over
 * K slabs of BK: a 128 x 128 output tile staged through 16 KiB of workgroup
 * memory (WebGPU's guaranteed minimum), tuned on lavapipe (see the shader).
 */
const WG_X = 16;
const WG_Y = 16;
const BK = 16;
const BM = WG_Y * 8;
const BN = WG_X * 8;
/** Batch dimensions the kernel indexes itself; more are dispatched one batch at a time. */
const KERNEL_BATCH_DIMS = 4;

/** One input of a product: where element [batch..., row, col] sits in `buffer`. */
export interface MatmulInput {
  buffer: GPUBuffer;
  dtype: MatmulDType;
  /** Element index of [0, ..., 0]. */
  offset: number;
  /** Strides in elements of each batch dimension of the product (0 where broadcast). */
  batchStrides: readonly number[];
  rowStride: number;
  colStride: number;
  /** Names the operand in errors. */
  what: string;
}

export interface MatmulSpec {
  batchShape: Shape;
  m: number;
  n: number;
  k: number;
  a: MatmulInput;
  b: MatmulInput;
  /** Added as beta * c when given. */
  c?: MatmulInput;
  alpha: number;
  beta: number;
  outDType: MatmulDType;
  name?: string;
  /** Most bytes one binding window may cover (default and ceiling: the device's maxStorageBufferBindingSize). */
  bindingBytes?: number;
}


/** A binding window of one operand for one chunk of work. */
interface MatmulWindow {
  offset: number;
  size: number;
  /** Element index (in the buffer) of the window's first element. */
  first: number;
}

/** The aligned window covering elements offset + sum(i_d * s_d) for i_d in [0, n_d). */
function windowOf(device: Device, buffer: GPUBuffer, bytes: number, offset: number, extents: [number, number][]): MatmulWindow {
  let lo = offset;
  let hi = offset;
  let empty = false;
  for (const [stride, count] of extents) {
    if (count <= 0) empty = true;
    const far = (count - 1) * stride;
    if (far < 0) lo += far;
    else hi += far;
  }
  if (empty) return { offset: 0, size: Math.min(buffer.size, 4), first: 0 };
  const w = bindingWindow(buffer, lo * bytes, (hi + 1) * bytes, device.limits.minStorageBufferOffsetAlignment);
  return { offset: w.offset, size: w.size, first: w.offset / bytes };
}

/** Which operand of the product a window belongs to. */
type OperandRole = 'a' | 'b' | 'c' | 'out';

/** How a product is cut into dispatches: planMatmul's result, dispatchMatmul's input. */
interface MatmulPlan {
  outShape: number[];
  /** a, b and c when given. */
  inputs: MatmulInput[];
  batchCount: number;
  /** The batch dims merged; strides per input, then the output's. */
  merged: { shape: number[]; strides: number[][] };
  /** All batches in the kernel's own indexing (else one dispatch per batch). */
  together: boolean;
  /** Output rows and depth per dispatch. */
  mStep: number;
  kStep: number;
  /** The [stride, count] extents an operand's window spans for a chunk of mc rows and kc depth. */
  extentsOf: (which: OperandRole, x: MatmulInput | null, together: boolean, mc: number, kc: number) => [number, number][];
}

function halve(x: number, tile: number): number {
  const h = Math.ceil(x / 2);
  return h > tile ? Math.ceil(h / tile) * tile : h;
}

/**
 * Records out = alpha * (a @ b) [+ beta * c] for every batch index and
 * returns out, a new row-major [...batchShape, m, n] array of `outDType`.
 */
export function matmulKernel(device: Device, spec: MatmulSpec): WgArray<MatmulDType> {
  device.check();
  const { m, n } = spec;
  const out = WgArray.empty(device, [...spec.batchShape, m, n], spec.outDType, spec.name);
  if (out.size === 0) return out;
  const plan = planMatmul(device, spec);
  // Depth chunks accumulate into the output; a 16-bit output would round
  // between chunks, so it accumulates in a float32 array cast at the end.
  if (plan.kStep < spec.k && spec.outDType !== 'float32') {
    out.dispose();
    const wide = matmulKernel(device, { ...spec, outDType: 'float32' });
    try {
      return castArray(wide, spec.outDType);
    } finally {
      wide.dispose();
    }
  }
  dispatchMatmul(device, spec, plan, out);
  return out;
}

/**
 * Cuts the product into dispatches whose binding windows each fit one storage
 * binding: batches together or one at a time, then fewer output rows, then less
 * depth per dispatch. Throws LimitError when even one row does not fit.
 */
export function planMatmul(device: Device, spec: MatmulSpec): MatmulPlan {
  const { m, n, k, a, b, c } = spec;
  const outShape = [...spec.batchShape, m, n];
  const limits = device.limits;
  const maxBinding = Math.min(limits.maxStorageBufferBindingSize, spec.bindingBytes ?? Infinity);
  const align = limits.minStorageBufferOffsetAlignment;
  const maxGroups = limits.maxComputeWorkgroupsPerDimension;
  if (Math.ceil(n / BN) > maxGroups) {
    throw new LimitError(`matmul ${formatShape(outShape)}: ${n} columns exceed this device's dispatch limit of ${maxGroups * BN}`);
  }

  const outBytes = DTYPES[spec.outDType].bytes;
  const inputs = c ? [a, b, c] : [a, b];
  const batchCount = spec.batchShape.reduce((x, y) => x * y, 1);
  const outBatchStrides: number[] = [];
  for (let d = spec.batchShape.length - 1, s = m * n; d >= 0; d--) {
    outBatchStrides[d] = s;
    s *= spec.batchShape[d];
  }
  const merged = mergeDims(spec.batchShape, [...inputs.map((x) => x.batchStrides), outBatchStrides]);

  // Which chunk extents each operand's window spans.
  const extentsOf = (which: OperandRole, x: MatmulInput | null, together: boolean, mc: number, kc: number) => {
    const i = which === 'a' ? 0 : which === 'b' ? 1 : which === 'c' ? 2 : inputs.length;
    const batch: [number, number][] = together ? merged.shape.map((size, d) => [merged.strides[i][d], size]) : [];
    if (which === 'a') return [...batch, [x!.rowStride, mc], [x!.colStride, kc]] as [number, number][];
    if (which === 'b') return [...batch, [x!.rowStride, kc], [x!.colStride, n]] as [number, number][];
    if (which === 'c') return [...batch, [x!.rowStride, mc], [x!.colStride, n]] as [number, number][];
    return [...batch, [n, mc], [1, n]] as [number, number][];
  };
  const span = (bytes: number, extents: [number, number][]): number => {
    let lo = 0;
    let hi = 0;
    for (const [stride, count] of extents) {
      const far = (Math.max(count, 1) - 1) * stride;
      if (far < 0) lo += far;
      else hi += far;
    }
    return (hi - lo + 1) * bytes + align + 4;
  };

  // Shrink the chunks until every window fits one binding.
  const plan: MatmulPlan = { outShape, inputs, batchCount, merged, together: merged.shape.length <= KERNEL_BATCH_DIMS, mStep: m, kStep: k, extentsOf };
  for (;;) {
    const over = (which: OperandRole): boolean => {
      const x = which === 'a' ? a : which === 'b' ? b : which === 'c' ? (c ?? null) : null;
      if (which === 'c' && !c) return false;
      const bytes = x ? DTYPES[x.dtype].bytes : outBytes;
      return span(bytes, extentsOf(which, x, plan.together, plan.mStep, plan.kStep)) > maxBinding;
    };
    const [oa, ob, oc, oo] = [over('a'), over('b'), over('c'), over('out')];
    if (!oa && !ob && !oc && !oo && Math.ceil(plan.mStep / BM) <= maxGroups) break;
    if (plan.together && batchCount > 1) {
      plan.together = false;
    } else if ((oa || oc || oo || Math.ceil(plan.mStep / BM) > maxGroups) && plan.mStep > 1) {
      plan.mStep = halve(plan.mStep, BM);
    } else if ((oa || ob) && plan.kStep > 1) {
      plan.kStep = halve(plan.kStep, BK);
    } else {
      const what = oo ? 'the output' : oc ? c!.what : ob ? b.what : a.what;
      throw new LimitError(
        `matmul ${formatShape(outShape)}: one ${oo || oc ? 'row' : 'element run'} of ${what} exceeds this device's ` +
          `maxStorageBufferBindingSize of ${maxBinding} bytes`,
      );
    }
  }
  return plan;
}

/** Records the dispatches of `plan` (shaders/matmul.wgsl), writing into `out`. */
export function dispatchMatmul(device: Device, spec: MatmulSpec, plan: MatmulPlan, out: WgArray<MatmulDType>): void {
  const { m, n, k, a, b, c } = spec;
  const { inputs, merged, batchCount, outShape, extentsOf } = plan;
  const limits = device.limits;
  const maxGroups = limits.maxComputeWorkgroupsPerDimension;
  const outBytes = DTYPES[spec.outDType].bytes;
  const scale = new Uint32Array(new Float32Array([spec.alpha, spec.beta]).buffer);
  const pipe = pipeline(device, 'matmul.wgsl', { A_KIND: DTYPES[a.dtype].shaderKind, B_KIND: DTYPES[b.dtype].shaderKind, WG_X, WG_Y, BK });

  // Batch groups: [first global batch, count, per-operand element offset of that batch when dispatched alone].
  const groups: { first: number; count: number; offsets: number[] }[] = [];
  if (plan.together) {
    for (let first = 0; first < batchCount; first += maxGroups) {
      groups.push({ first, count: Math.min(maxGroups, batchCount - first), offsets: [] });
    }
  } else {
    for (let g = 0; g < batchCount; g++) {
      let rest = g;
      const offsets = merged.strides.map(() => 0);
      for (let d = merged.shape.length - 1; d >= 0; d--) {
        const idx = rest % merged.shape[d];
        rest = Math.floor(rest / merged.shape[d]);
        merged.strides.forEach((s, i) => (offsets[i] += idx * s[d]));
      }
      groups.push({ first: g, count: 1, offsets });
    }
  }
  const batchShape4 = [1, 1, 1, 1];
  const batchStrides4 = merged.strides.map(() => [0, 0, 0, 0]);
  if (plan.together) {
    const pad = KERNEL_BATCH_DIMS - merged.shape.length;
    merged.shape.forEach((size, d) => {
      batchShape4[pad + d] = size;
      merged.strides.forEach((s, i) => (batchStrides4[i][pad + d] = u32(s[d])));
    });
  }
  const outIndex = inputs.length;

  for (const group of groups) {
    const pointOffset = (i: number): number => (plan.together ? 0 : group.offsets[i]);
    // Window starts use the whole batch box when batches run together: the
    // kernel adds each batch's own offset.
    const outFirstBatch = plan.together ? group.first : 0;
    for (let m0 = 0; m0 < m; m0 += plan.mStep) {
      const mc = Math.min(plan.mStep, m - m0);
      for (let k0 = 0; k0 === 0 || k0 < k; k0 += plan.kStep) {
        const kc = Math.min(plan.kStep, k - k0);
        const mode = k0 > 0 ? 2 : c && spec.beta !== 0 ? 1 : 0;
        const operand = (x: MatmulInput, i: number, which: 'a' | 'b' | 'c', rowOrigin: number, colOrigin: number) => {
          const origin = x.offset + pointOffset(i) + rowOrigin * x.rowStride + colOrigin * x.colStride;
          const w = windowOf(device, x.buffer, DTYPES[x.dtype].bytes, origin, extentsOf(which, x, plan.together, mc, kc));
          return { w, base: u32(origin - w.first), buffer: x.buffer };
        };
        const wa = operand(a, 0, 'a', m0, k0);
        const wb = operand(b, 1, 'b', k0, 0);
        const wc = c ? operand(c, 2, 'c', m0, 0) : wa;
        const outOrigin = (plan.together ? outFirstBatch * m * n : pointOffset(outIndex)) + m0 * n;
        const outExtents = extentsOf('out', null, false, mc, kc);
        if (plan.together) outExtents.unshift([m * n, group.count]);
        const wo = windowOf(device, out.buffer, outBytes, outOrigin, outExtents);
        for (const w of [wa.w, wb.w, wc.w, wo]) {
          // The plan leaves room for alignment; this guards the arithmetic.
          if (w.size > limits.maxStorageBufferBindingSize) {
            throw new LimitError(`matmul ${formatShape(outShape)}: a binding window of ${w.size} bytes exceeds maxStorageBufferBindingSize`);
          }
        }
        const params = device.uniform([
          mc, n, kc, plan.together ? group.first : 0,
          ...batchShape4,
          wa.base, u32(a.rowStride), u32(a.colStride), 0,
          wb.base, u32(b.rowStride), u32(b.colStride), 0,
          wc.base, u32(c ? c.rowStride : 0), u32(c ? c.colStride : 0), 0,
          outOrigin - wo.first, n, m * n, 0,
          ...batchStrides4[0],
          ...batchStrides4[1],
          ...(c ? batchStrides4[2] : [0, 0, 0, 0]),
          scale[0], scale[1], 0, 0,
          0, 0, DTYPES[(c ?? a).dtype].shaderKind, DTYPES[spec.outDType].shaderKind,
          mode, spec.outDType !== 'float32' && n % 2 === 0 && (outOrigin - wo.first) % 2 === 0 ? 1 : 0, 0, 0,
        ]);
        const bind = bindGroup(device, pipe, [
          { buffer: wa.buffer, offset: wa.w.offset, size: wa.w.size },
          { buffer: wb.buffer, offset: wb.w.offset, size: wb.w.size },
          { buffer: wc.buffer, offset: wc.w.offset, size: wc.w.size },
          { buffer: out.buffer, offset: wo.offset, size: wo.size },
          params,
        ]);
        device.dispatch(pipe, [bind], [Math.ceil(n / BN), Math.ceil(mc / BM), group.count]);
        if (k === 0) break;
      }
    }
  }
}
