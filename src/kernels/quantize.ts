// quantize() and dequantize(): the GPU path of every ggml block format. The
// kernel for type T is the `quantize` / `dequantize` entry point
// (shaders/lib/quant_entry.wgsl) of the WGSL file its descriptor names
// (shaders/quant/T.wgsl, via src/quant/registry.ts), specialised with the
// descriptor's dispatch geometry as override constants.

import { ArgumentError, DTypeError, ShapeError } from '../errors.js';
import { WgArray } from '../runtime/array.js';
import type { Device } from '../runtime/device.js';
import { DTYPES, type DType } from '../runtime/dtype.js';
import { GpuStorage } from '../runtime/pool.js';
import { checkBlockShape, QuantizedArray } from '../runtime/quantized.js';
import { ggmlType, type GGMLType } from '../runtime/ggml-types.js';
import { dequantizeBlocksPerWorkgroup, quantizeBlocksPerWorkgroup, type QuantFormat } from '../quant/format.js';
import { quantFormat } from '../quant/registry.js';
import { castArray } from './cast.js';
import { withContiguous } from './copy.js';
import { elementChunks, grid } from './dispatch.js';
import { bindGroup, pipeline } from './shader.js';

/** Each device's table buffer per format (descriptor `tables`), created on first use, kept for the device's life. */
const tableBuffers = new WeakMap<Device, Map<QuantFormat, GPUBuffer>>();

/**
 * `format`'s table buffer on `device` (created and written on first use: call it
 * before recording anything a write's flush would cut short), or undefined.
 */
function tableBuffer(device: Device, format: QuantFormat): GPUBuffer | undefined {
  if (!format.tables) return undefined;
  let perDevice = tableBuffers.get(device);
  if (!perDevice) tableBuffers.set(device, (perDevice = new Map()));
  let buffer = perDevice.get(format);
  if (!buffer) {
    const words = format.tables();
    buffer = device.createBuffer(Math.ceil(words.byteLength / 16) * 16, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, `${format.type.name} tables`);
    device.writeBuffer(buffer, 0, words);
    perDevice.set(format, buffer);
  }
  return buffer;
}

/** The bind groups after group 0: the table buffer at group 1, if the format has one. */
function tableGroups(device: Device, pipe: GPUComputePipeline, buffer: GPUBuffer | undefined): GPUBindGroup[] {
  return buffer ? [bindGroup(device, pipe, [buffer], 1)] : [];
}

/** The source dtypes quantize() reads (shaders/lib/quantize_io.wgsl's src_kind: their shaderKind). */
const FLOAT_SOURCES: readonly DType[] = ['float32', 'float16', 'bfloat16'];

export interface QuantizeOptions {
  /**
   * Importance-matrix weights: the row length's worth of per-column weights,
   * or one such vector per expert (a 3-D tensor [experts, rows, cols], rows
   * split evenly among them). Blocks are then encoded as
   * ggml_quantize_chunk(..., quant_weights) does (formats whose descriptor
   * says 'ignored' give the same bytes as without).
   */
  imatrix?: Float32Array;
}

/**
 * Quantizes a float32/float16/bfloat16 array to ggml type `type` ('q4_K',
 * 'Q8_0', 'f16', ...): its rows (last dimension) split into blocks, each
 * encoded exactly as ggml's reference quantizer does (or its importance-matrix
 * path, with `options.imatrix`).
 */
export function quantize(a: WgArray, type: string | GGMLType, options: QuantizeOptions = {}): QuantizedArray {
  const device = a.device;
  device.check();
  const t = typeof type === 'string' ? ggmlType(type) : type;
  const kind = DTYPES[a.dtype].shaderKind;
  if (!FLOAT_SOURCES.includes(a.dtype)) {
    throw new DTypeError(`quantize: ${a.describe()} must be float32, float16 or bfloat16`);
  }
  checkBlockShape(a.shape, t, `quantize ${a.describe()} to ${t.name}`);
  // A view is gathered into row-major order by one strided copy, then quantized.
  if (!a.isContiguous) return withContiguous(a, (c) => quantize(c, type, options));

  if (t.dtype) {
    // A plain float type: the blocks are the elements.
    if (t.dtype !== 'float32' && t.dtype !== 'float16' && t.dtype !== 'bfloat16') {
      throw new DTypeError(`quantize: ${t.name} is not a float format`);
    }
    const cast = t.dtype === a.dtype ? a.view(a.shape, { offset: a.offset }) : castArray(a, t.dtype);
    const q = new QuantizedArray(cast.storage.retain(), a.shape, t, a.name);
    cast.dispose();
    return q;
  }

  const format = quantFormat(t);
  const nBlocks = a.size / t.blockSize;
  const weights = options.imatrix && format.imatrix !== 'ignored' ? options.imatrix : undefined;
  if (format.imatrix === 'required' && !weights) {
    throw new ArgumentError(`quantize ${a.describe()} to ${t.name}: ${t.name} needs an importance matrix (options.imatrix), as ggml_quantize_requires_imatrix says`);
  }
  const tablesBuffer = tableBuffer(device, format);
  let weightBinding: { buffer: GPUBuffer; blocksPerRow: number; blocksPerExpert: number } | undefined;
  if (weights) {
    const rowLength = a.shape[a.shape.length - 1];
    const rows = a.size / rowLength;
    const experts = weights.length / rowLength;
    if (!Number.isInteger(experts) || experts < 1 || rows % experts !== 0) {
      throw new ShapeError(
        `quantize ${a.describe()} to ${t.name}: ${weights.length} importance weights; expected ${rowLength} (the row length), or ${rowLength} per expert with the rows split evenly among them`,
      );
    }
    if (!format.weightedKernel) {
      throw new ArgumentError(
        `quantize ${a.describe()} to ${t.name} with an importance matrix: no WGSL kernel for it yet (quantizeHostWeighted gives ggml's bytes on the CPU)`,
      );
    }
    const buffer = device.createBuffer(Math.max(16, Math.ceil(weights.byteLength / 16) * 16), GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, 'imatrix');
    device.writeBuffer(buffer, 0, weights);
    device.releaseAfterSubmit(buffer);
    const blocksPerRow = rowLength / t.blockSize;
    weightBinding = { buffer, blocksPerRow, blocksPerExpert: (rows / experts) * blocksPerRow };
  }
  const storage = GpuStorage.allocate(device, nBlocks * t.typeSize, a.name);
  const out = new QuantizedArray(storage, a.shape, t, a.name);
  if (nBlocks === 0) return out;
  const srcBytes = DTYPES[a.dtype].bytes;
  const perGroup = quantizeBlocksPerWorkgroup(format);
  const geometry = { QUANTIZE_WORKGROUP_SIZE: format.quantize.workgroupSize, QUANTIZE_BLOCKS_PER_INVOCATION: format.quantize.blocksPerInvocation };
  const pipe = weightBinding
    ? pipeline(device, format.shader, { ...geometry, WEIGHTED: 1 }, 'quantize_weighted')
    : pipeline(device, format.shader, geometry, 'quantize');
  const chunks = elementChunks(
    device,
    nBlocks,
    [
      // Counted in blocks; a view may start mid-block, so the source offset can be fractional.
      { buffer: a.buffer, bytes: t.blockSize * srcBytes, elementOffset: a.offset / t.blockSize },
      { buffer: out.buffer, bytes: t.typeSize, elementOffset: 0 },
    ],
    256 * perGroup,
  );
  const tables = tableGroups(device, pipe, tablesBuffer);
  for (const { start, count, windows } of chunks) {
    const [from, to] = windows;
    const params = device.uniform([count, Math.round(from.skip * t.blockSize), kind, 0]);
    const group = weightBinding
      ? bindGroup(device, pipe, [
          from,
          to,
          params,
          weightBinding.buffer,
          device.uniform([weightBinding.blocksPerRow, start, weightBinding.blocksPerExpert, 0]),
        ])
      : bindGroup(device, pipe, [from, to, params]);
    device.dispatch(pipe, [group, ...tables], grid(device, Math.ceil(count / perGroup)));
  }
  return out;
}

/** Decodes a quantized array back to floats (float32 unless `dtype` says otherwise). */
export function dequantize<D extends DType = 'float32'>(q: QuantizedArray, dtype?: D): WgArray<D> {
  const device = q.device;
  device.check();
  const target = (dtype ?? 'float32') as D;
  const t = q.type;
  if (t.dtype) {
    const plain = new WgArray(q.storage.retain(), q.shape, t.dtype, { name: q.name });
    if (plain.dtype === target) return plain as WgArray<D>;
    try {
      return castArray(plain, target);
    } finally {
      plain.dispose();
    }
  }
  const format = quantFormat(t);
  const tablesBuffer = tableBuffer(device, format);
  const f32 = WgArray.empty(device, q.shape, 'float32', q.name);
  const nBlocks = q.blocks;
  if (nBlocks > 0) {
    const perGroup = dequantizeBlocksPerWorkgroup(format);
    const pipe = pipeline(
      device,
      format.shader,
      { DEQUANTIZE_WORKGROUP_SIZE: format.dequantize.workgroupSize, DEQUANTIZE_INVOCATIONS_PER_BLOCK: format.dequantize.invocationsPerBlock },
      'dequantize',
    );
    const chunks = elementChunks(
      device,
      nBlocks,
      [
        { buffer: q.buffer, bytes: t.typeSize, elementOffset: 0 },
        { buffer: f32.buffer, bytes: t.blockSize * 4, elementOffset: 0 },
      ],
      256 * perGroup,
    );
    const tables = tableGroups(device, pipe, tablesBuffer);
    for (const { count, windows } of chunks) {
      const params = device.uniform([count, 0]);
      const group = bindGroup(device, pipe, [windows[0], windows[1], params]);
      device.dispatch(pipe, [group, ...tables], grid(device, Math.ceil(count / perGroup)));
    }
  }
  if (target === 'float32') return f32 as WgArray<D>;
  try {
    return castArray(f32, target);
  } finally {
    f32.dispose();
  }
}
