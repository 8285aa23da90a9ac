// The one pipeline behind `wgarray convert` and `wgarray quantize`: a plan
// (every output tensor's name, shape, type and source, and the output
// metadata) is run tensor by tensor into saveGGUF's lazy tensors, each
// tensor's whole work in processTensor:
//
//   source file -> GPU buffer -> [transform] -> [q/k permutation] -> quantize
//               -> quality (RMSE / SNR on the GPU) -> mapped buffer -> file
//
// Pipelined: the next tensor is read, uploaded and quantized while the writer
// writes the previous one, in order, into the same atomic file; the tensors in
// flight stay within a memory bound (the largest tensor's working set).
//
// Without a GPU the same plan runs on the host (src/quant/host.ts).

import { AbortError, ArgumentError, FormatError } from '../errors.js';
import { saveGGUF, type SaveProgress } from '../io/gguf/writer.js';
import type { LazyTensor } from '../io/tensors.js';
import { errorStatsHost, quantizationError, quantizeMeasured, type ErrorStats } from '../kernels/quant-error.js';
import { dequantize, quantize } from '../kernels/quantize.js';
import { formatShape, WgArray } from '../runtime/array.js';
import type { Device } from '../runtime/device.js';
import { bf16BitsToF32, f16BitsToF32 } from '../runtime/half.js';
import { QuantizedArray } from '../runtime/quantized.js';
import { ggmlBytes, type GGMLType } from '../runtime/ggml-types.js';
import { dequantizeHost, quantizeHost, quantizeHostWeighted } from '../quant/host.js';
import { QUANT_FORMATS } from '../quant/registry.js';
import type { ModelShape } from '../quant/presets.js';
import type { Metadata } from './metadata.js';
import { permuteRows } from './architecture.js';
import { permuteRowsGpu, permuteRowsHost } from './permute.js';
import { UPLOAD_CHUNK_BYTES } from '../io/source.js';
import { Profile, type ProfileSummary } from '../runtime/profile.js';
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
  /**
   * Importance-matrix weights (row length x experts, from --imatrix): the
   * tensor is quantized as ggml_quantize_chunk with quant_weights does (on the
   * GPU where the format has a weighted kernel, else on the CPU).
   */
  imatrix?: Float32Array;
}

/** Whether `t`'s output type uses its importance weights (the descriptor's imatrix is not 'ignored'). */
export function usesImatrix(t: PlannedTensor): boolean {
  return t.imatrix !== undefined && (QUANT_FORMATS.get(t.to.name)?.imatrix ?? 'ignored') !== 'ignored';
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
  /** Quantized with importance-matrix weights. */
  imatrix: boolean;
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
  /** Time each stage (read, upload, quantize, stats, readback, write): RunResult.profile. */
  profile?: boolean;
  /**
   * Tensors worked on ahead of the one being written (default 1; 0 = strictly
   * serial: read, compute, read back, write, then the next tensor).
   */
  lookahead?: number;
  /**
   * Bytes the tensors in flight may hold at once (sources, float32
   * intermediates, upload chunks, outputs and their host copies); default the
   * largest tensor's working set, which the serial run needs anyway: smaller
   * tensors overlap, the largest runs alone. A tensor larger than this still runs, alone.
   */
  maxInFlightBytes?: number;
  /** Write tensors holding NaN / ±Inf instead of refusing them (default false). */
  allowNonFinite?: boolean;
}

export interface RunResult {
  path: string;
  bytes: number;
  tensors: TensorReport[];
  /**
   * Milliseconds: reading sources, computing (permute, quantize, quality, readback), the writer's
   * own time; and the whole run. Pipelined, the three overlap: their sum exceeds the total.
   */
  timings: { readMs: number; computeMs: number; writeMs: number; totalMs: number };
  backend: 'gpu' | 'cpu';
  /** Per-stage figures, with `profile: true`. */
  profile?: ProfileSummary;
  /** The in-flight bound used, the most bytes held in flight at once, and the most tensors in flight at once. */
  inFlight: { limitBytes: number; peakBytes: number; peakTensors: number };
}

const READBACK_CHUNK_BYTES = 16 * 2 ** 20;

const EXACT: ErrorStats = { count: 0, rmse: 0, snrDb: Infinity, maxAbsError: 0, nonFinite: 0 };
/** A lossy tensor whose error was not computed (quality: false). */
const NOT_MEASURED: ErrorStats = { count: 0, rmse: NaN, snrDb: NaN, maxAbsError: NaN, nonFinite: 0 };

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

/** One tensor's output bytes on the host, ready for the writer, and what to free once written. */
interface Produced {
  data: Uint8Array;
  release(): void;
}

/** Admits tensors while their reserved bytes fit under a limit (one tensor always fits). */
class InFlightBudget {
  used = 0;
  tensors = 0;
  peakBytes = 0;
  peakTensors = 0;
  private waiters: (() => void)[] = [];
  constructor(readonly limit: number) {}

  fits(bytes: number): boolean {
    return this.tensors === 0 || this.used + bytes <= this.limit;
  }

  async acquire(bytes: number, stopped: () => boolean): Promise<void> {
    while (!this.fits(bytes) && !stopped()) await new Promise<void>((r) => this.waiters.push(r));
    this.used += bytes;
    this.tensors++;
    this.peakBytes = Math.max(this.peakBytes, this.used);
    this.peakTensors = Math.max(this.peakTensors, this.tensors);
  }

  /** Gives back `bytes` (a tensor shrinking to its host copy); `done` when the tensor leaves. */
  release(bytes: number, done: boolean): void {
    this.used -= bytes;
    if (done) this.tensors--;
    this.wake();
  }

  wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}

// One tensor worked on while the previous one is written: on the e2e bench (256 MiB llama) a
// lookahead of 8 ran no faster under load and took the peak RSS 25-35 MiB over its budget.
const DEFAULT_LOOKAHEAD = 1;

const elementsOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Runs `plan` into a GGUF file at `out` (atomically: an error or abort leaves no partial file).
 *
 * Pipelined: while the writer writes tensor i, the next one is read,
 * uploaded, quantized and read back (up to `lookahead` of them, within
 * `maxInFlightBytes`). Each tensor's output is copied into a host-mapped
 * buffer right after its dispatches, so the writer never waits on a later
 * tensor's GPU work; it writes in plan order into the same atomic file.
 */
export async function runPlan(plan: ConversionPlan, out: string, options: RunOptions = {}): Promise<RunResult> {
  const { device, transform, signal } = options;
  const allowNonFinite = options.allowNonFinite ?? false;
  const quality = options.quality ?? true;
  if (transform && !device) throw new ArgumentError('a tensor transform needs a GPU device');
  if (transform && plan.tensors.some((t) => t.imatrix)) throw new ArgumentError('an importance matrix cannot be combined with a tensor transform');
  const started = performance.now();
  const profile = options.profile ? (device ? device.startProfile() : new Profile()) : null;
  // Without timestamp queries a GPU stage is timed by waiting for the queue after it.
  const waitToTime = profile !== null && device !== undefined && !device.timesGpu;
  let readMs = 0;
  let computeMs = 0;
  const reports: TensorReport[] = [];

  const checkAbort = () => {
    if (signal?.aborted) throw new AbortError(`writing ${out} was aborted; nothing was written`);
  };

  const makeReport = (t: PlannedTensor, stats: ErrorStats, lossy: boolean): TensorReport => {
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
    return {
      name: t.name,
      shape: [...t.shape],
      from: t.from.name,
      to: t.to.name,
      ...(t.note ? { note: t.note } : {}),
      bytes: ggmlBytes(t.to, elementsOf(t.shape)),
      lossy,
      rmse: stats.rmse,
      snrDb: stats.snrDb,
      maxAbsError: stats.maxAbsError,
      nonFinite: stats.nonFinite,
      imatrix: lossy && usesImatrix(t),
    };
  };

  const transforms = (t: PlannedTensor) => transform !== undefined && (transform.applies?.(t) ?? true);
  const untouched = (t: PlannedTensor) => t.from === t.to && !t.permuteHeads && !transforms(t);
  // importance-matrix tensors of a format without a weighted WGSL kernel take the (exact) CPU path
  const onHost = (t: PlannedTensor) => !device || (usesImatrix(t) && !QUANT_FORMATS.get(t.to.name)?.weightedKernel);

  /** Bytes tensor `t` holds while in flight, and after its output reached the host. */
  const footprint = (t: PlannedTensor): { working: number; held: number } => {
    const n = elementsOf(t.shape);
    const source = ggmlBytes(t.from, n);
    if (untouched(t) || onHost(t)) return { working: source + (device && untouched(t) ? 0 : n * 8), held: ggmlBytes(t.to, n) };
    // dequantized or transformed: a float32 copy; permuted: a copy in the source's own dtype
    const float32 = t.from.blockSize > 1 || transforms(t) ? n * 4 : 0;
    const permuted = t.permuteHeads ? Math.max(float32, source) : 0;
    const output = ggmlBytes(t.to, n);
    // the upload's host chunk (io/source.ts) and the driver's staging copy of the source, which
    // lives until the queue reaches the copy (behind the previous tensor's kernels when pipelined)
    const uploadChunk = Math.min(source, UPLOAD_CHUNK_BYTES);
    return { working: 2 * source + uploadChunk + float32 + permuted + 2 * output, held: output };
  };

  /** Copies `q`'s bytes into a mappable buffer and maps it: the writer's bytes, without another GPU wait. */
  const readBack = async (d: Device, q: QuantizedArray): Promise<Produced> => {
    const size = Math.ceil(q.nbytes / 4) * 4;
    if (size === 0) return { data: new Uint8Array(0), release: () => {} };
    const staging = d.createBuffer(size, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, `${q.name ?? 'tensor'} readback`);
    // the GPU work before the copy: done when this settles (profile only, to time the copy alone)
    const before = profile ? d.gpuDevice.queue.onSubmittedWorkDone().then(() => performance.now()) : undefined;
    d.commandEncoder().copyBufferToBuffer(q.buffer, 0, staging, 0, size);
    d.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, size);
    } catch (e) {
      staging.destroy();
      d.check();
      throw e;
    }
    if (before) {
      const mapped = performance.now();
      profile!.add('readback', Math.max(0, mapped - (await before)), q.nbytes);
    }
    return {
      data: new Uint8Array(staging.getMappedRange(0, size), 0, q.nbytes),
      release: () => {
        staging.unmap();
        staging.destroy();
      },
    };
  };

  /**
   * One tensor's whole work, from its source to host bytes ready for the
   * writer: read, upload, [dequantize], [transform], [q/k permutation],
   * quantize, quality, read back. Everything per tensor happens here.
   */
  const processTensor = async (t: PlannedTensor): Promise<{ produced: Produced; report: TensorReport }> => {
    checkAbort();
    if (onHost(t) || untouched(t)) {
      const r0 = performance.now();
      const bytes = await t.source.read();
      readMs += performance.now() - r0;
      profile?.add('read', performance.now() - r0, bytes.length);
      if (untouched(t)) {
        if (!allowNonFinite) checkFiniteBytes(bytes, t.from, t.source.label, t.name, t.shape);
        return { produced: { data: bytes, release: () => {} }, report: makeReport(t, EXACT, false) };
      }
      checkAbort();
      // the CPU path (no GPU, or an importance matrix for a format without a weighted kernel)
      const c0 = performance.now();
      let x = decodeHost(bytes, t.from, t.source.label);
      if (!allowNonFinite) checkFiniteValues(x, t.source.label, t.name, t.shape, t.from.name);
      if (t.permuteHeads) x = permuteRowsHost(x, t.shape[0], permuteRows(t.shape[0], t.permuteHeads));
      const what = `${t.name} (${formatShape(t.shape)})`;
      const q = usesImatrix(t) ? quantizeHostWeighted(x, t.to, t.shape[t.shape.length - 1], t.imatrix!, what) : quantizeHost(x, t.to, what);
      const lossy = !(t.to.dtype && (t.to.name === 'f32' || t.to === t.from));
      const s0 = performance.now();
      profile?.add('quantize', s0 - c0);
      const stats = !lossy ? EXACT : quality ? errorStatsHost(x, decodeHost(q, t.to, t.name)) : NOT_MEASURED;
      profile?.add('stats', performance.now() - s0);
      computeMs += performance.now() - c0;
      return { produced: { data: q, release: () => {} }, report: makeReport(t, stats, lossy) };
    }
    const d = device!; // onHost(t) is true without a device
    const r0 = performance.now();
    const loaded = await t.source.load(d);
    readMs += performance.now() - r0;
    const c0 = performance.now();
    let arr: WgArray | undefined;
    let q: QuantizedArray | undefined;
    try {
      checkAbort();
      if (loaded instanceof QuantizedArray) {
        arr = d.gpuStage('quantize', () => dequantize(loaded, 'float32'));
        loaded.dispose();
      } else arr = loaded;
      if (transforms(t)) {
        const next = await transform!(t, arr);
        if (next !== arr) {
          arr.dispose();
          arr = next;
        }
      }
      if (t.permuteHeads) {
        const perm = permuteRows(t.shape[0], t.permuteHeads);
        const src = arr;
        const permuted = d.gpuStage('quantize', () => permuteRowsGpu(src, perm));
        arr.dispose();
        arr = permuted;
      }
      const src = arr;
      const q0 = performance.now();
      const lossy = !(t.to.dtype && (t.to.dtype === arr.dtype || t.to.name === 'f32'));
      const measured = lossy && quality;
      // NaN / Inf: the quality pass counts them; without it, the new values of a transform are counted on the GPU
      const counted = measured || (!allowNonFinite && transforms(t));
      const unmeasured = lossy ? NOT_MEASURED : EXACT;
      // a format whose kernel measures itself (Q8_0, Q2_K-Q6_K): the statistics come with the quantize dispatch
      const options = usesImatrix(t) ? { imatrix: t.imatrix } : {};
      const both = counted ? d.gpuStage('quantize', () => quantizeMeasured(src, t.to, options)) : undefined;
      q = both?.q ?? d.gpuStage('quantize', () => quantize(src, t.to, options));
      if (waitToTime) await d.sync();
      profile?.add('quantize', performance.now() - q0);
      // The quality pass is recorded now and read back later: nothing here waits for the GPU.
      const s0 = performance.now();
      const statsPromise = counted
        ? (both?.stats ?? d.gpuStage('stats', () => quantizationError(src, q!))).then((s) => (measured ? s : { ...unmeasured, nonFinite: s.nonFinite }))
        : Promise.resolve(unmeasured);
      statsPromise.catch(() => {});
      if (waitToTime && counted && !both) await d.sync();
      if (counted && !both) profile?.add('stats', performance.now() - s0);
      const produced = await readBack(d, q);
      try {
        const stats = await statsPromise;
        if (!allowNonFinite) {
          // name the first bad element: in the values quantized; when nothing was counted on the GPU,
          // by a CPU scan of the output read back (a lossless re-type or permutation holds the
          // source's values) or, under --no-report, of the source's bytes
          if (stats.nonFinite > 0) checkFiniteValues(await src.toFloat32(), t.source.label, t.name, t.shape, t.from.name);
          else if (!counted && !lossy) checkFiniteBytes(produced.data, t.to, t.source.label, t.name, t.shape, t.from.name);
          else if (!counted) checkFiniteBytes(await t.source.read(), t.from, t.source.label, t.name, t.source.shape);
        }
        computeMs += performance.now() - c0;
        return { produced, report: makeReport(t, stats, lossy) };
      } catch (e) {
        produced.release();
        throw e;
      }
    } finally {
      if (!loaded.disposed) loaded.dispose();
      arr?.dispose();
      q?.dispose();
    }
  };

  // The pipeline: a feeder starts tensors ahead of the writer within the budget; the writer takes them in order.
  const n = plan.tensors.length;
  const lookahead = Math.max(0, Math.floor(options.lookahead ?? DEFAULT_LOOKAHEAD));
  // By default: the largest tensor's working set, what the serial run needs anyway. Smaller
  // tensors overlap; the largest runs alone. (The e2e bench's RSS budget, 2 x the largest tensor
  // + 300 MB over a process that already holds ~300 MB, leaves no more: with one largest output
  // more in flight, its 1 GiB model peaked 100 MiB over it.)
  const sets = plan.tensors.map(footprint);
  const budget = new InFlightBudget(options.maxInFlightBytes ?? Math.max(0, ...sets.map((f) => f.working)));
  type Slot = { promise: Promise<Produced>; produced?: Produced; held: number; released: boolean };
  const slots: (Slot | undefined)[] = new Array(n);
  let writerAt = -1; // the tensor the writer asked for last
  // the writer's own time: from handing it a tensor's bytes to its next request (or the end)
  let writeMs = 0;
  let writing: number | undefined;
  let stopped = false;
  let wakeFeeder: (() => void) | null = null;
  const feederWait = () => new Promise<void>((r) => (wakeFeeder = r));
  const nudge = () => {
    const w = wakeFeeder;
    wakeFeeder = null;
    w?.();
    budget.wake();
  };
  const slotReady: (() => void)[] = [];
  const slotStarted = new Array<Promise<void>>(n);
  for (let i = 0; i < n; i++) slotStarted[i] = new Promise<void>((r) => (slotReady[i] = r));

  const releaseSlot = (i: number) => {
    const s = slots[i];
    if (!s || s.released) return;
    s.released = true;
    s.produced?.release();
    budget.release(s.held, true);
  };

  const feeder = (async () => {
    for (let i = 0; i < n && !stopped; i++) {
      while (!stopped && i > writerAt + lookahead) await feederWait();
      const t = plan.tensors[i];
      const { working, held } = footprint(t);
      await budget.acquire(working, () => stopped);
      if (stopped) {
        budget.release(working, true);
        break;
      }
      const slot: Slot = { promise: undefined as unknown as Promise<Produced>, held: working, released: false };
      slot.promise = processTensor(t).then(
        ({ produced, report }) => {
          reports[i] = report;
          slot.produced = produced;
          if (slot.released) produced.release();
          else {
            // down to the host copy the writer needs
            budget.release(working - held, false);
            slot.held = held;
          }
          return produced;
        },
        (e: unknown) => {
          stopped = true; // nothing after a failed tensor is started
          throw e;
        },
      );
      slot.promise.catch(() => {});
      slots[i] = slot;
      slotReady[i]();
    }
  })();

  const tensors: [string, LazyTensor][] = plan.tensors.map((t, i) => [
    t.name,
    {
      shape: t.shape,
      type: t.to,
      produce: async () => {
        // the writer is past tensor i - 1: its host copy can go
        if (i > 0) releaseSlot(i - 1);
        if (writing !== undefined) writeMs += performance.now() - writing;
        writing = undefined;
        writerAt = i;
        nudge();
        checkAbort();
        await Promise.race([slotStarted[i], feeder]);
        const slot = slots[i];
        if (!slot) {
          checkAbort();
          throw new Error(`internal: tensor '${t.name}' was never started`);
        }
        const data = (await slot.promise).data;
        writing = performance.now();
        return data;
      },
    },
  ]);

  let saved: Awaited<ReturnType<typeof saveGGUF>>;
  try {
    saved = await saveGGUF(out, tensors, plan.metadata.entries, {
      signal,
      // host bytes: written in chunks of this size
      chunkBytes: READBACK_CHUNK_BYTES,
      profile,
      onProgress: (p: SaveProgress) => {
        options.onProgress?.({
          tensorsDone: p.index + (p.tensorBytesWritten === p.tensorBytes ? 1 : 0),
          tensorCount: p.tensorCount,
          tensor: p.tensor,
          bytesWritten: p.bytesWritten,
          totalBytes: p.totalBytes,
        });
      },
    });
    if (writing !== undefined) writeMs += performance.now() - writing;
  } finally {
    // Stop the feeder, let every started tensor settle (its GPU work may still be queued), free their bytes.
    stopped = true;
    nudge();
    await feeder.catch(() => {});
    await Promise.allSettled(slots.map((s) => s?.promise));
    for (let i = 0; i < n; i++) releaseSlot(i);
    if (device && profile) await device.stopProfile().catch(() => null);
  }
  const totalMs = performance.now() - started;
  const summary = profile?.summary();
  return {
    path: saved.path,
    bytes: saved.bytes,
    tensors: reports.filter((r) => r !== undefined),
    timings: { readMs, computeMs, writeMs, totalMs },
    backend: device ? 'gpu' : 'cpu',
    ...(summary ? { profile: summary } : {}),
    inFlight: { limitBytes: budget.limit, peakBytes: budget.peakBytes, peakTensors: budget.peakTensors },
  };
}
