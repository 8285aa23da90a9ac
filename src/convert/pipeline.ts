// The one pipeline behind `wgarray convert` and `wgarray quantize`: a plan
// (every output tensor's name, shape, type and source, and the output
// metadata) is run tensor by tensor into saveGGUF's lazy tensors, so one
// tensor at a time is in memory:
//
//   source file -> GPU buffer -> [transform] -> [q/k permutation] -> quantize
//               -> quality (RMSE / SNR on the GPU) -> mapped range -> file
//
// Without a GPU the same plan runs on the host (src/quant/host.ts).

import { AbortError, ArgumentError, FormatError } from '../errors.js';
import { saveGGUF, type SaveProgress } from '../io/gguf/writer.js';
import type { LazyTensor } from '../io/tensors.js';
import { errorStatsHost, quantizationError, type ErrorStats } from '../kernels/quant-error.js';
import { dequantize, quantize } from '../kernels/quantize.js';
import { formatShape, WgArray } from '../runtime/array.js';
import type { Device } from '../runtime/device.js';
import { bf16BitsToF32, f16BitsToF32 } from '../runtime/half.js';
import { QuantizedArray } from '../runtime/quantized.js';
import { ggmlBytes, type GGMLType } from '../quant/ggml-types.js';
import { dequantizeHost, quantizeHost } from '../quant/host.js';
import type { ModelShape } from '../quant/presets.js';
import type { Metadata } from './metadata.js';
import { permuteRows } from './architecture.js';
import { permuteRowsGpu, permuteRowsHost } from './permute.js';
import { checkFiniteBytes, checkFiniteValues } from './finite.js';

/** Where one input tensor's bytes come from. */
export interface TensorSource {
  /** For messages: '<file>: <tensor name>'. */
  label: string;
  /** Row-major shape as stored. */
  shape: readonly number[];
  /** Stored ggml type (f32/f16/bf16 for safetensors; any type for GGUF). */
  type: GGMLType;
  /** Uploads it to the GPU: a WgArray for plain float types, a QuantizedArray of blocks otherwise. */
  load(device: Device): Promise<WgArray | QuantizedArray>;
  /** Its raw bytes on the host (the CPU path, and untouched copies). */
  read(): Promise<Uint8Array>;
}

export interface PlannedTensor {
  /** Output (GGUF) name. */
  name: string;
  /** Row-major output shape (the source's). */
  shape: readonly number[];
  /** Source type and output type. */
  from: GGMLType;
  to: GGMLType;
  /** Why `to` differs from the preset's default, when it does. */
  note?: string;
  source: TensorSource;
  /** Permute rows over this many heads (llama q/k from Hugging Face layout). */
  permuteHeads?: number;
  /** The tensor's name in the source (Hugging Face name for convert). */
  sourceName: string;
}

export interface ConversionPlan {
  /** What was read, in words ('Hugging Face LlamaForCausalLM folder ...'). */
  description: string;
  metadata: Metadata;
  tensors: PlannedTensor[];
  model: ModelShape;
  /** Releases what the plan holds open. */
  close?(): Promise<void>;
}

/**
 * A step between loading and q/k permutation (so it sees tensors in their
 * source layout, by `sourceName`), for float tensors on the GPU: returns the
 * array to go on with (or the same one). `applies`, when given, says which
 * tensors it changes; the others are copied as stored where they can be.
 * `wgarray convert --lora` plugs in here.
 */
export type TensorTransform = ((tensor: PlannedTensor, array: WgArray) => WgArray | Promise<WgArray>) & {
  applies?: (tensor: PlannedTensor) => boolean;
};

export interface TensorReport {
  name: string;
  shape: number[];
  from: string;
  to: string;
  note?: string;
  /** Bytes in the output file (without padding). */
  bytes: number;
  /** False when the output holds the source values exactly. */
  lossy: boolean;
  rmse: number;
  snrDb: number;
  maxAbsError: number;
  nonFinite: number;
}

export interface RunProgress {
  /** Tensors finished, of all. */
  tensorsDone: number;
  tensorCount: number;
  tensor: string;
  bytesWritten: number;
  totalBytes: number;
}

export interface RunOptions {
  /** GPU device; without one the plan runs on the CPU. */
  device?: Device;
  transform?: TensorTransform;
  signal?: AbortSignal;
  onProgress?: (p: RunProgress) => void;
  /** Compute RMSE / SNR per tensor (default true). */
  quality?: boolean;
  /** Write tensors holding NaN / ±Inf instead of refusing them (default false). */
  allowNonFinite?: boolean;
}

export interface RunResult {
  path: string;
  bytes: number;
  tensors: TensorReport[];
  /** Milliseconds: reading sources, computing (permute, quantize, quality), writing; and the whole run. */
  timings: { readMs: number; computeMs: number; writeMs: number; totalMs: number };
  backend: 'gpu' | 'cpu';
}

const READBACK_CHUNK_BYTES = 16 * 2 ** 20;

const EXACT: ErrorStats = { count: 0, rmse: 0, snrDb: Infinity, maxAbsError: 0, nonFinite: 0 };

function decodeHost(bytes: Uint8Array, type: GGMLType, what: string): Float32Array {
  if (type.name === 'f32') {
    const copy = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
    return new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
  }
  if (type.name === 'f16' || type.name === 'bf16') {
    const copy = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
    const bits = new Uint16Array(copy.buffer, copy.byteOffset, copy.byteLength / 2);
    const conv = type.name === 'f16' ? f16BitsToF32 : bf16BitsToF32;
    const out = new Float32Array(bits.length);
    for (let i = 0; i < bits.length; i++) out[i] = conv(bits[i]);
    return out;
  }
  if (type.blockSize > 1) return dequantizeHost(bytes, type, what);
  throw new ArgumentError(`${what}: ${type.name} tensors cannot be converted to floats`);
}

/** Runs `plan` into a GGUF file at `out` (atomically: an error or abort leaves no partial file). */
export async function runPlan(plan: ConversionPlan, out: string, options: RunOptions = {}): Promise<RunResult> {
  const { device, transform, signal } = options;
  const allowNonFinite = options.allowNonFinite ?? false;
  const quality = options.quality ?? true;
  if (transform && !device) throw new ArgumentError('a tensor transform needs a GPU device');
  const started = performance.now();
  let readMs = 0;
  let computeMs = 0;
  const reports: TensorReport[] = [];
  let done = 0;

  const checkAbort = () => {
    if (signal?.aborted) throw new AbortError(`writing ${out} was aborted; nothing was written`);
  };

  const report = (t: PlannedTensor, stats: ErrorStats, lossy: boolean) => {
    // llama-quantize refuses such tensors too (ggml_validate_row_data after quantizing):
    // a model with NaN or infinite weights runs on garbage.
    if (stats.nonFinite > 0 && !allowNonFinite) {
      throw new FormatError(
        t.source.label,
        undefined,
        `tensor '${t.name}' (${formatShape(t.shape)}, ${t.from.name}) decodes to ${stats.nonFinite} NaN or infinite value(s) ` +
          `as ${t.to.name}: its source holds NaN/Inf or values beyond ${t.to.name}'s range; refusing to write it, as llama-quantize does`,
      );
    }
    reports.push({
      name: t.name,
      shape: [...t.shape],
      from: t.from.name,
      to: t.to.name,
      ...(t.note ? { note: t.note } : {}),
      bytes: ggmlBytes(t.to, t.shape.reduce((a, b) => a * b, 1)),
      lossy,
      rmse: stats.rmse,
      snrDb: stats.snrDb,
      maxAbsError: stats.maxAbsError,
      nonFinite: stats.nonFinite,
    });
  };

  const produceGpu = async (t: PlannedTensor, d: Device): Promise<WgArray | QuantizedArray | Uint8Array> => {
    const transforms = transform !== undefined && (transform.applies?.(t) ?? true);
    const untouched = t.from === t.to && !t.permuteHeads && !transforms;
    if (untouched) {
      // copied as stored: no need to go through the GPU
      const r0 = performance.now();
      const bytes = await t.source.read();
      readMs += performance.now() - r0;
      if (!allowNonFinite) checkFiniteBytes(bytes, t.from, t.source.label, t.name, t.shape);
      report(t, EXACT, false);
      return bytes;
    }
    const r0 = performance.now();
    const loaded = await t.source.load(d);
    readMs += performance.now() - r0;
    checkAbort();
    const c0 = performance.now();
    let arr: WgArray | undefined;
    try {
      if (loaded instanceof QuantizedArray) {
        arr = dequantize(loaded, 'float32');
        loaded.dispose();
      } else arr = loaded;
      if (transforms) {
        const next = await transform!(t, arr);
        if (next !== arr) {
          arr.dispose();
          arr = next;
        }
      }
      if (t.permuteHeads) {
        const perm = permuteRows(t.shape[0], t.permuteHeads);
        const permuted = permuteRowsGpu(arr, perm);
        arr.dispose();
        arr = permuted;
      }
      const q = quantize(arr, t.to);
      let stats = EXACT;
      const lossy = !(t.to.dtype && (t.to.dtype === arr.dtype || t.to.name === 'f32'));
      if (quality && lossy) stats = await quantizationError(arr, q);
      else await d.sync();
      if (!allowNonFinite) {
        // the quality pass counts NaN / Inf; a source value is then named with its index
        if (stats.nonFinite > 0) checkFiniteValues(await arr.toFloat32(), t.source.label, t.name, t.shape, t.from.name);
        else if (!(quality && lossy)) {
          if (transforms) {
            // a transform makes new values: count them on the GPU
            const counted = await quantizationError(arr, q);
            if (counted.nonFinite > 0) checkFiniteValues(await arr.toFloat32(), t.source.label, t.name, t.shape, t.from.name);
            stats = { ...EXACT, nonFinite: counted.nonFinite };
          } else {
            // a lossless re-type or permutation: the source's bytes decide (a CPU scan is cheaper than a GPU pass on lavapipe)
            checkFiniteBytes(await t.source.read(), t.from, t.source.label, t.name, t.source.shape);
          }
        }
      }
      computeMs += performance.now() - c0;
      report(t, stats, lossy);
      return q;
    } finally {
      if (!loaded.disposed) loaded.dispose();
      arr?.dispose();
    }
  };

  const produceHost = async (t: PlannedTensor): Promise<Uint8Array> => {
    const r0 = performance.now();
    const bytes = await t.source.read();
    readMs += performance.now() - r0;
    if (t.from === t.to && !t.permuteHeads) {
      if (!allowNonFinite) checkFiniteBytes(bytes, t.from, t.source.label, t.name, t.shape);
      report(t, EXACT, false);
      return bytes;
    }
    checkAbort();
    const c0 = performance.now();
    let x = decodeHost(bytes, t.from, t.source.label);
    if (!allowNonFinite) checkFiniteValues(x, t.source.label, t.name, t.shape, t.from.name);
    if (t.permuteHeads) x = permuteRowsHost(x, t.shape[0], permuteRows(t.shape[0], t.permuteHeads));
    const q = quantizeHost(x, t.to, `${t.name} (${formatShape(t.shape)})`);
    const lossy = !(t.to.dtype && (t.to.name === 'f32' || t.to === t.from));
    const stats = quality && lossy ? errorStatsHost(x, decodeHost(q, t.to, t.name)) : EXACT;
    computeMs += performance.now() - c0;
    report(t, stats, lossy);
    return q;
  };

  const tensors: [string, LazyTensor][] = plan.tensors.map((t) => [
    t.name,
    {
      shape: t.shape,
      type: t.to,
      produce: async () => {
        checkAbort();
        const data = device ? await produceGpu(t, device) : await produceHost(t);
        return data;
      },
    },
  ]);

  const saved = await saveGGUF(out, tensors, plan.metadata.entries, {
    signal,
    // readback staging: two chunks in flight; small chunks keep memory flat at no cost in speed
    chunkBytes: READBACK_CHUNK_BYTES,
    onProgress: (p: SaveProgress) => {
      done = p.index + (p.tensorBytesWritten === p.tensorBytes ? 1 : 0);
      options.onProgress?.({
        tensorsDone: done,
        tensorCount: p.tensorCount,
        tensor: p.tensor,
        bytesWritten: p.bytesWritten,
        totalBytes: p.totalBytes,
      });
    },
  });
  const totalMs = performance.now() - started;
  return {
    path: saved.path,
    bytes: saved.bytes,
    tensors: reports,
    timings: { readMs, computeMs, writeMs: Math.max(0, totalMs - readMs - computeMs), totalMs },
    backend: device ? 'gpu' : 'cpu',
  };
}
