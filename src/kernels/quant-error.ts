// How far a quantized tensor is from its source: RMSE, SNR and the largest
// error, computed on the GPU. A block format is measured in one pass per chunk:
// the `quant_error` entry point of its own shader (shaders/lib/quant_entry.wgsl)
// decodes each block with the format's dequantize_part into a float32 scratch
// and compares it with the source at once, reduced per workgroup. A plain float
// type (f16, bf16, f32 targets) is cast back and compared by
// shaders/quant_error.wgsl. The float32 copy never exists whole: the extra
// memory is one chunk's scratch, however large the tensor.

import { ShapeError } from '../errors.js';
import { WgArray } from '../runtime/array.js';
import { DTYPES } from '../runtime/dtype.js';
import { GpuStorage } from '../runtime/pool.js';
import { QuantizedArray } from '../runtime/quantized.js';
import { readBuffer } from '../runtime/readback.js';
import { quantFormat } from '../quant/registry.js';
import type { GGMLType } from '../runtime/ggml-types.js';
import { dequantize, formatTables, quantize, type QuantizeOptions } from './quantize.js';
import { bindingWindow, elementChunks } from './dispatch.js';
import { bindGroup, pipeline } from './shader.js';

/** Error of an approximation against its reference. */
export interface ErrorStats {
  /** Elements compared. */
  count: number;
  /** sqrt(mean((approx - ref)^2)) over finite differences. */
  rmse: number;
  /** 10 log10(sum ref^2 / sum (approx - ref)^2), in dB; Infinity when exact. */
  snrDb: number;
  /** max |approx - ref|. */
  maxAbsError: number;
  /** Differences that were NaN or infinite (left out of the sums). */
  nonFinite: number;
}

/** Builds the summary from raw sums (shared with the CPU path). */
export function errorStatsFromSums(count: number, err2: number, ref2: number, maxAbs: number, nonFinite: number): ErrorStats {
  const finite = count - nonFinite;
  return {
    count,
    rmse: finite > 0 ? Math.sqrt(err2 / finite) : 0,
    snrDb: err2 === 0 ? Infinity : ref2 === 0 ? -Infinity : 10 * Math.log10(ref2 / err2),
    maxAbsError: maxAbs,
    nonFinite,
  };
}

/** Error sums of float32 `approx` against float32/float16/bfloat16 `ref` on the CPU (the fallback path). */
export function errorStatsHost(ref: Float32Array, approx: Float32Array): ErrorStats {
  let err2 = 0;
  let ref2 = 0;
  let worst = 0;
  let bad = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = approx[i] - ref[i];
    if (!Number.isFinite(d)) {
      bad++;
      continue;
    }
    err2 += d * d;
    ref2 += ref[i] * ref[i];
    worst = Math.max(worst, Math.abs(d));
  }
  return errorStatsFromSums(ref.length, err2, ref2, worst, bad);
}

/** The reference dtypes it reads (shaders/quant_error.wgsl's SRC_KIND: their shaderKind). */
const FLOAT_SOURCES: readonly string[] = ['float32', 'float16', 'bfloat16'];
/** Elements decoded per chunk (8 MiB of float32). */
const CHUNK_ELEMENTS = 2 * 2 ** 20;
/** Most workgroups per chunk; each writes one vec4 partial. */
const MAX_GROUPS = 256;
/** Elements per workgroup at least: few enough workgroups that the reductions stay cheap (lavapipe runs barriers slowly). */
const MIN_PER_GROUP = 16384;
/** Bytes of partials per chunk, a multiple of every storage offset alignment. */
const SLOT_BYTES = MAX_GROUPS * 16;

/**
 * RMSE, SNR and max error of `q` (dequantized) against `ref`, the array it was
 * quantized from (float32, float16 or bfloat16, same element count).
 */
export async function quantizationError(ref: WgArray, q: QuantizedArray, options: { chunkElements?: number } = {}): Promise<ErrorStats> {
  const device = ref.device;
  device.check();
  const kind = DTYPES[ref.dtype].shaderKind;
  if (!FLOAT_SOURCES.includes(ref.dtype)) throw new ShapeError(`quantizationError: ${ref.describe()} must be float32, float16 or bfloat16`);
  if (ref.size !== q.size) throw new ShapeError(`quantizationError: ${ref.describe()} and ${q.describe()} differ in size`);
  if (!ref.isContiguous) throw new ShapeError(`quantizationError: ${ref.describe()} is not contiguous`);
  if (ref.size === 0) return errorStatsFromSums(0, 0, 0, 0, 0);
  const t = q.type;
  if (!t.dtype) return blockError(ref, q, options.chunkElements ?? CHUNK_ELEMENTS);
  // Whole blocks per chunk, a multiple of 4 so block copies start on 4-byte boundaries.
  const want = Math.max(t.blockSize, Math.floor((options.chunkElements ?? CHUNK_ELEMENTS) / t.blockSize) * t.blockSize);
  const blocksPerChunk = Math.max(4, Math.floor(want / t.blockSize / 4) * 4);
  const nChunks = Math.ceil(q.blocks / blocksPerChunk);
  const partials = GpuStorage.allocate(device, nChunks * SLOT_BYTES, 'quant-error partials');
  device.commandEncoder().clearBuffer(partials.buffer, 0, nChunks * SLOT_BYTES);
  const pipe = pipeline(device, 'quant_error.wgsl', { SRC_KIND: kind });
  const srcBytes = DTYPES[ref.dtype].bytes;
  try {
    for (let c = 0; c < nChunks; c++) {
      const b0 = c * blocksPerChunk;
      const b1 = Math.min(q.blocks, b0 + blocksPerChunk);
      const elements = (b1 - b0) * t.blockSize;
      // This chunk's blocks as a quantized array of their own, decoded to float32.
      const bytes = (b1 - b0) * t.typeSize;
      const part = GpuStorage.allocate(device, bytes, 'quant-error chunk');
      const copy = Math.min(Math.ceil(bytes / 4) * 4, q.buffer.size - b0 * t.typeSize, part.buffer.size);
      device.commandEncoder().copyBufferToBuffer(q.buffer, b0 * t.typeSize, part.buffer, 0, copy);
      const qChunk = new QuantizedArray(part, [elements], t, q.name);
      const approx = dequantize(qChunk, 'float32');
      qChunk.dispose();
      try {
        const [win] = elementChunks(
          device,
          elements,
          [{ buffer: ref.buffer, bytes: srcBytes, elementOffset: ref.offset + b0 * t.blockSize }],
          elements,
        );
        const [src] = win.windows;
        const groups = Math.min(MAX_GROUPS, Math.ceil(elements / MIN_PER_GROUP));
        const params = device.uniform([elements, src.skip, groups, 0]);
        const group = bindGroup(device, pipe, [
          src,
          { buffer: approx.buffer, offset: 0, size: Math.ceil((elements * 4) / 4) * 4 },
          { buffer: partials.buffer, offset: c * SLOT_BYTES, size: SLOT_BYTES },
          params,
        ]);
        // slots past `groups` keep the zeros cleared above
        device.dispatch(pipe, [group], [groups]);
      } finally {
        approx.dispose();
      }
    }
    return await sumPartials(device, partials.buffer, nChunks * SLOT_BYTES, ref.size);
  } finally {
    partials.release();
  }
}

/**
 * Quantizes `ref` and measures the result in the same dispatch, where the format's
 * kernel writes its own error sums (descriptor quantize.errorSums: Q4_0 .. Q8_0 and the
 * K-quants Q2_K .. Q6_K, with or without importance weights): no second
 * pass over the source, no decode into a scratch buffer. The statistics are those
 * quantizationError(ref, q) gives (the same differences, summed in another order).
 * Undefined for other formats (and plain float types): quantize, then quantizationError.
 */
export function quantizeMeasured(
  ref: WgArray,
  type: GGMLType,
  options: Omit<QuantizeOptions, 'errorSums'> = {},
): { q: QuantizedArray; stats: Promise<ErrorStats> } | undefined {
  if (type.dtype || !quantFormat(type).quantize.errorSums || !FLOAT_SOURCES.includes(ref.dtype)) return undefined;
  const device = ref.device;
  const parts: { storage: GpuStorage; bytes: number }[] = [];
  let q: QuantizedArray;
  try {
    q = quantize(ref, type, {
      ...options,
      errorSums: (workgroups) => {
        // every workgroup dispatched writes its entry (zeros past the last block): no clear needed
        const bytes = workgroups * 16;
        const storage = GpuStorage.allocate(device, bytes, 'quantize error sums');
        parts.push({ storage, bytes });
        return { buffer: storage.buffer, offset: 0, size: bytes };
      },
    });
  } catch (e) {
    for (const p of parts) p.storage.release();
    throw e;
  }
  const stats = (async () => {
    try {
      let err2 = 0;
      let ref2 = 0;
      let worst = 0;
      let bad = 0;
      for (const p of parts) {
        const s = await readSums(device, p.storage.buffer, p.bytes);
        err2 += s.err2;
        ref2 += s.ref2;
        worst = Math.max(worst, s.worst);
        bad += s.bad;
      }
      return errorStatsFromSums(ref.size, err2, ref2, worst, bad);
    } finally {
      for (const p of parts) p.storage.release();
    }
  })();
  return { q, stats };
}

/** Raw error sums: sum d^2, sum x^2, max |d| over finite d, and the non-finite count. */
interface ErrorSums {
  err2: number;
  ref2: number;
  worst: number;
  bad: number;
}

/** Reads per-workgroup partials (vec4: d^2, x^2, max |d|, non-finite) back and sums them in float64. */
async function readSums(device: WgArray['device'], buffer: GPUBuffer, bytes: number): Promise<ErrorSums> {
  const raw = await readBuffer(device, buffer, 0, bytes);
  const f = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  let err2 = 0;
  let ref2 = 0;
  let worst = 0;
  let bad = 0;
  for (let i = 0; i < f.length; i += 4) {
    err2 += f[i];
    ref2 += f[i + 1];
    worst = Math.max(worst, f[i + 2]);
    bad += f[i + 3];
  }
  return { err2, ref2, worst, bad };
}

/** Reads the per-workgroup partials back and sums them in float64. */
async function sumPartials(device: WgArray['device'], buffer: GPUBuffer, bytes: number, count: number): Promise<ErrorStats> {
  const s = await readSums(device, buffer, bytes);
  return errorStatsFromSums(count, s.err2, s.ref2, s.worst, s.bad);
}

/** Invocations per workgroup of the quant_error entry point (QUANT_ERROR_WORKGROUP_SIZE). */
const BLOCK_ERROR_WORKGROUP = 64;

/**
 * The block formats' path: one `quant_error` dispatch per chunk. Chunks are whole
 * multiples of 256 blocks, so each chunk's blocks start on a 256-byte boundary of
 * `q`'s buffer (every storage offset alignment divides 256) and are bound in place.
 */
async function blockError(ref: WgArray, q: QuantizedArray, chunkElements: number): Promise<ErrorStats> {
  const device = ref.device;
  const t = q.type;
  const format = quantFormat(t);
  const blocksPerChunk = Math.max(256, Math.floor(chunkElements / t.blockSize / 256) * 256);
  const nChunks = Math.ceil(q.blocks / blocksPerChunk);
  const align = device.limits.minStorageBufferOffsetAlignment;
  const srcBytes = DTYPES[ref.dtype].bytes;
  const pipe = pipeline(device, format.shader, { DEQUANTIZE_INVOCATIONS_PER_BLOCK: format.dequantize.invocationsPerBlock }, 'quant_error');
  // group 1 holds the format's tables at binding 0 (the IQ grids its dequantize_part reads) and this pass's own bindings after them
  const tables = formatTables(device, format);
  const partials = GpuStorage.allocate(device, nChunks * SLOT_BYTES, 'quant-error partials');
  const scratch = GpuStorage.allocate(device, Math.min(q.blocks, blocksPerChunk) * t.blockSize * 4, 'quant-error scratch');
  device.commandEncoder().clearBuffer(partials.buffer, 0, nChunks * SLOT_BYTES);
  try {
    for (let c = 0; c < nChunks; c++) {
      const b0 = c * blocksPerChunk;
      const blocks = Math.min(q.blocks - b0, blocksPerChunk);
      const elements = blocks * t.blockSize;
      const first = (ref.offset + b0 * t.blockSize) * srcBytes;
      const src = bindingWindow(ref.buffer, first, first + elements * srcBytes, align, 16);
      const skip = (first - src.offset) / srcBytes;
      const groups = Math.min(MAX_GROUPS, Math.ceil(elements / MIN_PER_GROUP));
      const decode = bindGroup(device, pipe, [
        bindingWindow(q.buffer, b0 * t.typeSize, (b0 + blocks) * t.typeSize, align),
        { buffer: scratch.buffer, offset: 0, size: elements * 4 },
        device.uniform([blocks, 0]),
      ]);
      const measure = bindGroup(
        device,
        pipe,
        [tables, src, { buffer: partials.buffer, offset: c * SLOT_BYTES, size: SLOT_BYTES }, device.uniform([skip, DTYPES[ref.dtype].shaderKind, groups * BLOCK_ERROR_WORKGROUP, 0])],
        1,
      );
      // slots past `groups` keep the zeros cleared above
      device.dispatch(pipe, [decode, measure], [groups]);
    }
    return await sumPartials(device, partials.buffer, nChunks * SLOT_BYTES, ref.size);
  } finally {
    scratch.release();
    partials.release();
  }
}
