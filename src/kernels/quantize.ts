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

const tableBuffers = new WeakMap<Device, Map<() => Uint32Array, GPUBuffer>>();
const tableGroups = new WeakMap<GPUComputePipeline, GPUBindGroup>();

/**
 * The format's static tables (descriptor `tables`: the IQ grids) as a storage
 * buffer on `device`, created on first use and kept for the device's life; undefined without.
 */
export function formatTables(device: Device, format: QuantFormat): GPUBuffer | undefined {
  const tables = format.tables;
  if (!tables) return undefined;
  let buffers = tableBuffers.get(device);
  if (!buffers) tableBuffers.set(device, (buffers = new Map()));
  let buffer = buffers.get(tables);
  if (!buffer) {
    const words = tables();
    // filled through its mapping: writeBuffer would submit the batch (and free the dispatch's uniforms) first
    buffer = device.createBuffer(Math.ceil(words.byteLength / 16) * 16, GPUBufferUsage.STORAGE, `${format.type.name} tables`, true);
    new Uint32Array(buffer.getMappedRange()).set(words);
    buffer.unmap();
    buffers.set(tables, buffer);
  }
  return buffer;
}

/** The bind groups of a dispatch: `group`, and the format's static tables at group 1 @binding(0). */
function withTables(device: Device, format: QuantFormat, pipe: GPUComputePipeline, group: GPUBindGroup): GPUBindGroup[] {
  const buffer = formatTables(device, format);
  if (!buffer) return [group];
  let tablesGroup = tableGroups.get(pipe);
  if (!tablesGroup) {
    tablesGroup = bindGroup(device, pipe, [buffer], 1);
    tableGroups.set(pipe, tablesGroup);
  }
  return [group, tablesGroup];
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
  /**
   * For formats whose kernel measures its own error (descriptor quantize.errorSums): called per
   * dispatch with its workgroup count, returns where those workgroups' sums go (one vec4 each).
   * src/kernels/quant-error.ts's quantizeMeasured uses it.
   */
  errorSums?: (workgroups: number) => GPUBufferBinding;
}

const errorSumsPlaceholders = new WeakMap<Device, GPUBuffer>();

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
  const entry = weightBinding ? format.weightedKernel : undefined;
  const pipe =
    entry === 'own-entry'
      ? pipeline(device, format.shader, { ...geometry, WEIGHTED: 1 }, 'quantize_weighted')
      : entry === 'row-entry'
        ? pipeline(device, format.shader, geometry, 'quantize_weighted')
        : pipeline(device, format.shader, geometry, 'quantize');
  const rowSigma2 = entry === 'row-entry' ? imatrixRowSigma2(a, srcBytes, kind) : undefined;
  // A 'shared-entry' kernel reads bindings 3 and 4 in its reference path too: a placeholder, weighted 0.
  if (!weightBinding && format.weightedKernel === 'shared-entry') {
    const buffer = device.createBuffer(16, GPUBufferUsage.STORAGE, 'no imatrix');
    device.releaseAfterSubmit(buffer);
    weightBinding = { buffer, blocksPerRow: 1, blocksPerExpert: 1 };
  }
  const weightedFlag = weights ? 1 : 0;
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
  for (const { start, count, windows } of chunks) {
    const [from, to] = windows;
    const params = device.uniform([count, Math.round(from.skip * t.blockSize), kind, 0]);
    const dims = grid(device, Math.ceil(count / perGroup));
    let sums: GPUBufferBinding | GPUBuffer | undefined;
    if (format.quantize.errorSums) {
      sums = options.errorSums?.(dims[0] * dims[1]);
      if (!sums) {
        sums = errorSumsPlaceholders.get(device);
        if (!sums) errorSumsPlaceholders.set(device, (sums = device.createBuffer(16, GPUBufferUsage.STORAGE, 'error sums placeholder')));
      }
    }
    // 3-4: the importance weights, 5: the row-entry kernels' row sigma2, 6: the error sums
    const group = bindGroup(device, pipe, [
      from,
      to,
      params,
      weightBinding?.buffer,
      weightBinding && device.uniform([weightBinding.blocksPerRow, start, weightBinding.blocksPerExpert, weightedFlag]),
      rowSigma2,
      sums,
    ]);
    device.dispatch(pipe, withTables(device, format, pipe, group), dims);
  }
  return out;
}

/**
 * Each row's sigma2 = sum x^2 / row length (float32, in element order), as
 * ggml's legacy _impl paths compute it: one invocation per row
 * (shaders/imatrix_sigma2.wgsl), into a buffer released after the submit.
 */
function imatrixRowSigma2(a: WgArray, srcBytes: number, kind: number): GPUBuffer {
  const device = a.device;
  const rowLength = a.shape[a.shape.length - 1];
  const rows = a.size / rowLength;
  const buffer = device.createBuffer(Math.max(16, Math.ceil((rows * 4) / 16) * 16), GPUBufferUsage.STORAGE, 'imatrix row sigma2');
  device.releaseAfterSubmit(buffer);
  const pipe = pipeline(device, 'imatrix_sigma2.wgsl');
  const chunks = elementChunks(device, rows, [
    { buffer: a.buffer, bytes: rowLength * srcBytes, elementOffset: a.offset / rowLength },
    { buffer, bytes: 4, elementOffset: 0 },
  ]);
  for (const { count, windows } of chunks) {
    const [from, to] = windows;
    const params = device.uniform([count, Math.round(from.skip * rowLength), kind, rowLength]);
    device.dispatch(pipe, [bindGroup(device, pipe, [from, to, params])], grid(device, Math.ceil(count / 64)));
  }
  return buffer;
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
      for (const { count, windows } of chunks) {
      const params = device.uniform([count, 0]);
      const group = bindGroup(device, pipe, [windows[0], windows[1], params]);
      device.dispatch(pipe, withTables(device, format, pipe, group), grid(device, Math.ceil(count / perGroup)));
    }
  }
  if (target === 'float32') return f32 as WgArray<D>;
  try {
    return castArray(f32, target);
  } finally {
    f32.dispose();
  }
}
