// y = x @ wᵀ with the weight w [N, K] read in its stored form: float32,
// float16, bfloat16 or ggml blocks (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K), decoded in
// registers while the product runs (shaders/matmul/linear.wgsl), so a
// quantized weight is never expanded to float32 in memory. The forward pass's
// projections (src/model/) go through here; formats without a decoder in the
// shader keep the dequantize-then-matmul path (see linearDirect).
//
// A LinearWeight is the weight's bytes on the GPU as the kernel reads them:
// ggml's blocks in order, those whose size is not a multiple of 4 bytes (Q8_0
// 34, Q4_0 18) each padded to the next multiple so the shader reads whole u32
// words, Q6_K (210) padded to 224 so that it reads whole vec4 words (one
// storage load per 16 bytes on lavapipe), and every row starting on a 16-byte
// boundary.
//
// One storage binding covers at most maxStorageBufferBindingSize bytes (128 MiB
// on lavapipe): big weights (an output projection) and big outputs are split
// into dispatches over ranges of weight rows and of token rows.

import { ArgumentError, LimitError } from '../errors.js';
import { WgArray } from '../runtime/array.js';
import type { Device } from '../runtime/device.js';
import { ggmlType, type GGMLType } from '../runtime/ggml-types.js';
import { GpuStorage } from '../runtime/pool.js';
import { bindingWindow } from './dispatch.js';
import { bindGroup, pipeline } from './shader.js';

/** Invocations per workgroup; each owns 4 weight rows. */
const WG = 64;
const ROWS_PER_GROUP = WG * 4;
/** Weights per decoded chunk (shader's K step). */
const CHUNK = 32;

/** How the shader reads each stored type (W_KIND), and the padded block size. */
const KINDS: Record<string, { kind: number; stride: number }> = {
  f32: { kind: 0, stride: 4 },
  f16: { kind: 1, stride: 2 },
  bf16: { kind: 2, stride: 2 },
  q8_0: { kind: 3, stride: 36 },
  q4_0: { kind: 4, stride: 20 },
  q4_K: { kind: 5, stride: 144 },
  q5_K: { kind: 6, stride: 176 },
  q6_K: { kind: 7, stride: 224 },
};

/** The stored types the direct kernel decodes (ggml names). */
export const LINEAR_TYPES: readonly string[] = Object.keys(KINDS);

/**
 * Whether a weight of `type` with rows of `k` elements runs on the direct
 * kernel: a decoded type and whole 32-element chunks (ggml blocks are 32 or
 * 256 wide; float rows need k % 32 == 0).
 */
export function linearDirect(type: GGMLType | string, k: number): boolean {
  const t = typeof type === 'string' ? ggmlType(type) : type;
  return t.name in KINDS && k % CHUNK === 0 && k > 0;
}

/** A weight [rows, cols] on the GPU in the layout shaders/matmul/linear.wgsl reads. */
export class LinearWeight {
  readonly rows: number;
  readonly cols: number;
  readonly type: GGMLType;
  /** Bytes per row as stored on the GPU (padded blocks). */
  readonly rowBytes: number;
  readonly name: string;
  #storage: GpuStorage | null;

  constructor(storage: GpuStorage, rows: number, cols: number, type: GGMLType, rowBytes: number, name: string) {
    this.#storage = storage;
    this.rows = rows;
    this.cols = cols;
    this.type = type;
    this.rowBytes = rowBytes;
    this.name = name;
  }

  get buffer(): GPUBuffer {
    if (!this.#storage) throw new ArgumentError(`linear weight '${this.name}' was disposed`);
    return this.#storage.buffer;
  }

  dispose(): void {
    this.#storage?.release();
    this.#storage = null;
  }
}

/** The GPU row size of `type` rows of `cols` elements, padded blocks. */
function paddedRowBytes(type: GGMLType, cols: number): number {
  const { stride } = KINDS[type.name];
  return (cols / type.blockSize) * stride;
}

/**
 * Uploads a weight [rows, cols] of `type` from its ggml bytes (as a GGUF
 * stores them), padding blocks for the direct kernel. Throws ArgumentError
 * when the type or shape has no direct kernel (check linearDirect first).
 */
export function uploadLinearWeight(device: Device, bytes: Uint8Array, type: GGMLType | string, rows: number, cols: number, name: string): LinearWeight {
  const t = typeof type === 'string' ? ggmlType(type) : type;
  if (!linearDirect(t, cols)) throw new ArgumentError(`linear weight '${name}': ${t.name} rows of ${cols} have no direct matmul kernel`);
  const blocks = (rows * cols) / t.blockSize;
  if (bytes.byteLength !== blocks * t.typeSize) {
    throw new ArgumentError(`linear weight '${name}': ${bytes.byteLength} bytes for ${rows} x ${cols} ${t.name} (expected ${blocks * t.typeSize})`);
  }
  const rowBytes = paddedRowBytes(t, cols);
  if (rowBytes % 16 !== 0 && rows > 1) {
    // rows must start on 16-byte boundaries for the vec4 reads; only float rows with cols % 8 != 0 or odd block counts reach here
    return uploadRows(device, bytes, t, rows, cols, name);
  }
  const stride = KINDS[t.name].stride;
  let data = bytes;
  if (stride !== t.typeSize) {
    data = new Uint8Array(blocks * stride);
    for (let b = 0, from = 0, to = 0; b < blocks; b++, from += t.typeSize, to += stride) {
      data.set(bytes.subarray(from, from + t.typeSize), to);
    }
  }
  return upload(device, data, t, rows, cols, rowBytes, name);
}

/** Rows padded to 16 bytes each (a layout whose rows are not 16-byte multiples). */
function uploadRows(device: Device, bytes: Uint8Array, t: GGMLType, rows: number, cols: number, name: string): LinearWeight {
  const stride = KINDS[t.name].stride;
  const blocksPerRow = cols / t.blockSize;
  const rowBytes = Math.ceil((blocksPerRow * stride) / 16) * 16;
  const data = new Uint8Array(rows * rowBytes);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const from = (r * blocksPerRow + b) * t.typeSize;
      data.set(bytes.subarray(from, from + t.typeSize), r * rowBytes + b * stride);
    }
  }
  return upload(device, data, t, rows, cols, rowBytes, name);
}

function upload(device: Device, data: Uint8Array, t: GGMLType, rows: number, cols: number, rowBytes: number, name: string): LinearWeight {
  const size = Math.ceil(data.byteLength / 16) * 16;
  if (size > device.limits.maxBufferSize) {
    throw new LimitError(`linear weight '${name}' takes ${size} bytes on the GPU, more than this device's largest buffer (${device.limits.maxBufferSize} bytes)`);
  }
  const storage = GpuStorage.allocate(device, size, name);
  device.writeBuffer(storage.buffer, 0, data.byteLength % 4 === 0 ? data : padTo4(data));
  return new LinearWeight(storage, rows, cols, t, rowBytes, name);
}

function padTo4(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.byteLength / 4) * 4);
  out.set(data);
  return out;
}

/**
 * Token rows per workgroup: 32, fewer for fewer rows. Measured on lavapipe
 * (256 x 2816 x 1024, interleaved runs): 32 rows 4.2-6.1 G multiply-adds/s,
 * 16 rows 3.8-5.3, 8 rows 4.1 (each weight word is decoded once per tile).
 */
function tokenRows(m: number): number {
  return Math.min(m, TOKEN_ROWS);
}
let TOKEN_ROWS = 32;
/** Benches: another tile height (1..32). */
export function setLinearTokenRows(rows: number): void {
  TOKEN_ROWS = rows;
}

let plainLinear = false;
/** Tests and benches: use the variant without subgroup operations even where the adapter offers them. */
export function setPlainLinear(plain: boolean): void {
  plainLinear = plain;
}

let q8Linear = true;
/**
 * Tests and benches: K-quant weights (Q4_K, Q5_K, Q6_K) multiply float32
 * activations (the float path) instead of Q8_K-rounded ones in integers.
 */
export function setQ8Linear(enabled: boolean): void {
  q8Linear = enabled;
}

/** K-quant types the integer kernel (shaders/matmul/linear_q8k.wgsl) reads, with x rounded to Q8_K as llama.cpp does. */
const Q8K_TYPES: ReadonlySet<string> = new Set(['q4_K', 'q5_K', 'q6_K']);

/** Whether `w` goes through the integer kernel: a Q8_K-dotted type (as ggml's vec_dot_type) and whole 256-value blocks. */
export function linearUsesQ8K(w: LinearWeight): boolean {
  return q8Linear && Q8K_TYPES.has(w.type.name) && w.cols % 256 === 0;
}

/** Bytes of x's Q8_K rows per 32 values in the integer kernel's layout (shaders/matmul/q8k_rows.wgsl). */
const Q8K_CHUNK_BYTES = 48;

/**
 * x [M, K] float32 (contiguous rows, K a multiple of 256) rounded to Q8_K as
 * ggml's quantize_row_q8_K does, in the integer kernel's layout: per 32 values
 * 8 words of signed bytes, the two 16-value byte sums, d, 0. Exported for the
 * tests, which compare it with ggml's own.
 */
export function quantizeRowsQ8K(x: WgArray<'float32'>): WgArray<'uint32'> {
  const device = x.device;
  const [m, k] = x.shape;
  if (x.dtype !== 'float32' || x.ndim !== 2 || !x.isContiguous || k % 256 !== 0 || x.offset % 4 !== 0) {
    throw new ArgumentError(`quantizeRowsQ8K: needs contiguous float32 [M, K] with K a multiple of 256 starting at a multiple of 4 elements, got [${x.shape.join(', ')}] ${x.dtype}`);
  }
  const out = WgArray.empty(device, [m, (k / 32) * (Q8K_CHUNK_BYTES / 4)], 'uint32', 'x as Q8_K');
  const limits = device.limits;
  const align = limits.minStorageBufferOffsetAlignment;
  const mStep = Math.max(1, Math.floor((limits.maxStorageBufferBindingSize - align - 16) / (4 * k)));
  const pipe = pipeline(device, 'matmul/q8k_rows.wgsl', { WG });
  for (let m0 = 0; m0 < m; m0 += mStep) {
    const mc = Math.min(mStep, m - m0);
    const xw = bindingWindow(x.buffer, (x.offset + m0 * k) * 4, (x.offset + (m0 + mc) * k) * 4, align, 16);
    const qFrom = (m0 * k * Q8K_CHUNK_BYTES) / 32;
    const qw = bindingWindow(out.buffer, qFrom, qFrom + (mc * k * Q8K_CHUNK_BYTES) / 32, align, 16);
    const params = device.uniform([mc, k, ((x.offset + m0 * k) * 4 - xw.offset) / 16, (qFrom - qw.offset) / 16]);
    const groups = Math.ceil((mc * (k / 256)) / WG);
    const gx = Math.min(groups, limits.maxComputeWorkgroupsPerDimension);
    device.dispatch(pipe, [bindGroup(device, pipe, [xw, qw, params])], [gx, Math.ceil(groups / gx)]);
  }
  return out;
}

/**
 * x [M, K] (float32, contiguous rows) @ wᵀ for w [N, K]: a new float32 [M, N]
 * array. Recorded on the device's queue like every kernel. K-quant weights
 * (linearUsesQ8K) round x's rows to Q8_K first and take integer products, as
 * llama.cpp's CPU backend does; the others decode w to float32 in registers.
 */
export function linearKernel(x: WgArray<'float32'>, w: LinearWeight, name?: string): WgArray<'float32'> {
  const device = x.device;
  device.check();
  if (x.dtype !== 'float32' || x.ndim !== 2 || x.shape[1] !== w.cols || !x.isContiguous) {
    throw new ArgumentError(`linear: input of shape [${x.shape.join(', ')}] ${x.dtype} does not multiply weight '${w.name}' [${w.rows}, ${w.cols}] (needs contiguous float32 [M, ${w.cols}])`);
  }
  if (x.offset % 4 !== 0) throw new ArgumentError(`linear: input view starts at element ${x.offset}, not a multiple of 4`);
  const [m, k] = x.shape;
  const n = w.rows;
  const y = WgArray.empty(device, [m, n], 'float32', name);
  if (m === 0 || n === 0) return y;
  if (linearUsesQ8K(w)) {
    const xq = quantizeRowsQ8K(x);
    try {
      const shader = device.features.subgroups && !plainLinear ? 'matmul/linear_q8k_subgroup.wgsl' : 'matmul/linear_q8k.wgsl';
      tiles(y, xq.buffer, 0, (k / 32) * Q8K_CHUNK_BYTES, w, pipeline(device, shader, { W_KIND: KINDS[w.type.name].kind, WG }), false);
    } finally {
      xq.dispose();
    }
    return y;
  }
  const shader = device.features.subgroups && !plainLinear ? 'matmul/linear_subgroup.wgsl' : 'matmul/linear.wgsl';
  tiles(y, x.buffer, x.offset * 4, k * 4, w, pipeline(device, shader, { W_KIND: KINDS[w.type.name].kind, WG }), true);
  return y;
}

/**
 * Dispatches `pipe` over y [M, N] in workgroup tiles of ROWS_PER_GROUP weight
 * rows by bm token rows, in ranges that fit one binding each: x's rows (from
 * byte `xFrom` of `xBuffer`, `xRowBytes` each), w's rows and y's.
 */
function tiles(y: WgArray<'float32'>, xBuffer: GPUBuffer, xFrom: number, xRowBytes: number, w: LinearWeight, pipe: GPUComputePipeline, wordsW: boolean): void {
  const device = y.device;
  const [m, n] = y.shape;
  const k = w.cols;
  const limits = device.limits;
  const maxBinding = limits.maxStorageBufferBindingSize;
  const align = limits.minStorageBufferOffsetAlignment;
  const bm = tokenRows(m);
  // Weight rows per dispatch: a whole number of workgroups whose bytes fit one binding (with alignment slack).
  const nStep = Math.max(ROWS_PER_GROUP, Math.floor((maxBinding - align - 16) / w.rowBytes / ROWS_PER_GROUP) * ROWS_PER_GROUP);
  // Token rows per dispatch: x's rows and y's rows (one weight-row range of them) fit one binding.
  const mStep = Math.max(bm, Math.floor((maxBinding - align - 16) / Math.max(xRowBytes, 4 * n) / bm) * bm);
  if (w.rowBytes * Math.min(n, ROWS_PER_GROUP) > maxBinding || Math.max(xRowBytes, 4 * n) > maxBinding) {
    throw new LimitError(`linear: weight '${w.name}' [${n}, ${k}] does not fit this device's maxStorageBufferBindingSize of ${maxBinding} bytes`);
  }
  const maxGroups = limits.maxComputeWorkgroupsPerDimension;
  for (let m0 = 0; m0 < m; m0 += mStep) {
    const mc = Math.min(mStep, m - m0);
    if (Math.ceil(mc / bm) > maxGroups) throw new LimitError(`linear: ${mc} token rows exceed this device's dispatch limit`);
    const xStart = xFrom + m0 * xRowBytes;
    const xw = bindingWindow(xBuffer, xStart, xStart + mc * xRowBytes, align, 16);
    for (let n0 = 0; n0 < n; n0 += nStep) {
      const nc = Math.min(nStep, n - n0);
      const ww = bindingWindow(w.buffer, n0 * w.rowBytes, (n0 + nc) * w.rowBytes, align, 16);
      const yFrom = (m0 * n + n0) * 4;
      const yw = bindingWindow(y.buffer, yFrom, yFrom + ((mc - 1) * n + nc) * 4, align);
      const params = device.uniform([
        mc, nc, k, (xStart - xw.offset) / 16,
        n0 * w.rowBytes - ww.offset, w.rowBytes, (yFrom - yw.offset) / 4, n,
        bm, 0, 0, 0,
      ]);
      // the float kernels bind w twice (as u32 and as vec4 words)
      const bind = bindGroup(device, pipe, wordsW ? [xw, ww, yw, params, ww] : [xw, ww, yw, params]);
      device.dispatch(pipe, [bind], [Math.ceil(nc / ROWS_PER_GROUP), Math.ceil(mc / bm)]);
    }
  }
}
