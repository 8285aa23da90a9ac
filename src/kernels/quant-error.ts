// How far a quantized tensor is from its source: RMSE, SNR and the largest
// error, computed on the GPU (shaders/quant_error.wgsl). The quantized blocks
// are decoded a chunk at a time, so the float32 copy never exists whole: the
// extra memory is one chunk, however large the tensor.

import { ShapeError } from '../errors.js';
import { WgArray } from '../runtime/array.js';
import { DTYPES } from '../runtime/dtype.js';
import { GpuStorage } from '../runtime/pool.js';
import { QuantizedArray } from '../runtime/quantized.js';
import { readBuffer } from '../runtime/readback.js';
import { dequantize } from './quantize.js';
import { elementChunks } from './dispatch.js';
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
    const raw = await readBuffer(device, partials.buffer, 0, nChunks * SLOT_BYTES);
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
    return errorStatsFromSums(ref.size, err2, ref2, worst, bad);
  } finally {
    partials.release();
  }
}
