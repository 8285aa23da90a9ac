// `npm run bench -- ops [--add 64m] [--transpose 4096x4096] [--matmul 2048] [--lora 4096x4096r16]
//                       [--runs 3] [--cpu-runs 1] [--json]`
// Array ops on the GPU next to a plain TypeScript loop doing the same work on
// the CPU, in the same run: GB/s for a large float32 elementwise add and a
// transpose (bytes read + written), GFLOP/s for a float32 matmul, and a LoRA
// fusion step (bfloat16 W + s * B @ A, in W's dtype). GPU times run from the
// call to the work's completion (device.sync()); median of --runs after a
// warm-up (pipeline build). The last column is GPU speed / CPU speed.
//
// The CPU loops are the plain ones a TypeScript author would write: one pass
// for add, a row-by-row loop for transpose, an i-k-j loop over Float32Arrays
// for matmul (the cache-friendly order; i-j-k is several times slower).
import { parseArgs } from 'node:util';
import { array, close, init, type WgArray } from '../src/index.js';
import { add } from '../src/ops/elementwise.js';
import { contiguous, transpose } from '../src/ops/layout.js';
import { addmm, matmul } from '../src/ops/linalg.js';
import { bf16BitsToF32, f32ToBf16Bits } from '../src/runtime/half.js';
import type { Device } from '../src/runtime/device.js';
import { machineDescription, median, printTable } from './machine.js';
import { throttleDawnPolling } from '../src/runtime/dawn-polling.js';

interface Row {
  op: string;
  unit: 'GB/s' | 'GFLOP/s';
  gpu: number;
  cpu: number;
  ratio: number;
  gpu_ms: number;
  cpu_ms: number;
  /** GPU speed with dawn.node's polls throttled (the CLI's setting), and its ratio to the CPU loop. */
  gpu_throttled: number;
  ratio_throttled: number;
}

function parseCount(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)$/i.exec(s.trim());
  if (!m) throw new Error(`bad count '${s}' (examples: 64m, 1000000)`);
  return Math.round(Number(m[1]) * { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g']);
}

function parseDims(s: string, what: string): number[] {
  const dims = s.split('x').map(Number);
  if (dims.some((d) => !Number.isInteger(d) || d <= 0)) throw new Error(`bad ${what} '${s}' (example: 4096x4096)`);
  return dims;
}

/** Uniform values in [-1, 1) from a fixed seed. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/**
 * GPU time of `op` with dawn.node's poll spinning (setImmediate), and as devices run it
 * (throttled, src/runtime/dawn-polling.ts): while a GPU promise is pending, the spin takes a
 * core that lavapipe's kernels would use.
 */
async function timeGpuBoth(device: Device, runs: number, op: () => WgArray): Promise<[number, number]> {
  const was = throttleDawnPolling(false);
  try {
    const plain = await timeGpu(device, runs, op);
    throttleDawnPolling(true);
    return [plain, await timeGpu(device, runs, op)];
  } finally {
    throttleDawnPolling(was);
  }
}

async function timeGpu(device: Device, runs: number, op: () => WgArray): Promise<number> {
  op().dispose();
  await device.sync();
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const out = op();
    await device.sync();
    times.push(performance.now() - t0);
    out.dispose();
  }
  return median(times);
}

function timeCpu(runs: number, op: () => void): number {
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    op();
    times.push(performance.now() - t0);
  }
  return median(times);
}

function cpuAdd(a: Float32Array, b: Float32Array, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i] + b[i];
}

function cpuTranspose(a: Float32Array, rows: number, cols: number, out: Float32Array): void {
  for (let i = 0; i < rows; i++) {
    const row = i * cols;
    for (let j = 0; j < cols; j++) out[j * rows + i] = a[row + j];
  }
}

function cpuMatmul(a: Float32Array, b: Float32Array, out: Float32Array, m: number, n: number, k: number): void {
  out.fill(0);
  for (let i = 0; i < m; i++) {
    const oi = i * n;
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p];
      const bp = p * n;
      for (let j = 0; j < n; j++) out[oi + j] += x * b[bp + j];
    }
  }
}

/** W (bfloat16 bits) + scale * B @ A, rounded back to bfloat16: the CPU twin of a LoRA fusion step. */
function cpuLora(w: Uint16Array, bm: Float32Array, am: Float32Array, out: Uint16Array, rows: number, cols: number, r: number, scale: number): void {
  const acc = new Float32Array(cols);
  for (let i = 0; i < rows; i++) {
    acc.fill(0);
    for (let p = 0; p < r; p++) {
      const x = scale * bm[i * r + p];
      const ap = p * cols;
      for (let j = 0; j < cols; j++) acc[j] += x * am[ap + j];
    }
    const row = i * cols;
    for (let j = 0; j < cols; j++) out[row + j] = f32ToBf16Bits(bf16BitsToF32(w[row + j]) + acc[j]);
  }
}

export default async function run(argv: string[]): Promise<void> {
  const { values: opts } = parseArgs({
    args: argv,
    options: {
      add: { type: 'string', default: '64m' },
      transpose: { type: 'string', default: '4096x4096' },
      matmul: { type: 'string', default: '2048' },
      lora: { type: 'string', default: '4096x4096r16' },
      runs: { type: 'string', default: '3' },
      'cpu-runs': { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      // which ops to run (comma-separated)
      ops: { type: 'string', default: 'add,transpose,matmul,lora' },
    },
  });
  const only = new Set(opts.ops!.split(','));
  const runs = Number(opts.runs);
  const cpuRuns = Number(opts['cpu-runs']);
  const device = await init();
  const rows: Row[] = [];
  const log = opts.json ? () => {} : (s: string) => process.stderr.write(s);
  const record = (op: string, unit: Row['unit'], amount: number, [gpuMs, throttledMs]: [number, number], cpuMs: number) => {
    const gpu = amount / (gpuMs / 1000) / 1e9;
    const cpu = amount / (cpuMs / 1000) / 1e9;
    const gpuThrottled = amount / (throttledMs / 1000) / 1e9;
    rows.push({ op, unit, gpu, cpu, ratio: gpu / cpu, gpu_ms: gpuMs, cpu_ms: cpuMs, gpu_throttled: gpuThrottled, ratio_throttled: gpuThrottled / cpu });
  };

  try {
    if (only.has('add')) {
      const n = parseCount(opts.add!);
      log(`add ${n} `);
      const ha = values(n, 1);
      const hb = values(n, 2);
      const a = array(ha);
      const b = array(hb);
      const gpuMs = await timeGpuBoth(device, runs, () => add(a, b));
      a.dispose();
      b.dispose();
      const out = new Float32Array(n);
      const cpuMs = timeCpu(Math.max(runs, cpuRuns), () => cpuAdd(ha, hb, out));
      record(`add ${n} f32`, 'GB/s', 3 * 4 * n, gpuMs, cpuMs);
    }
    if (only.has('transpose')) {
      const [r, c] = parseDims(opts.transpose!, '--transpose');
      log(`transpose ${r}x${c} `);
      const host = values(r * c, 3);
      const a = array(host, { shape: [r, c] });
      const gpuMs = await timeGpuBoth(device, runs, () => {
        const view = transpose(a);
        try {
          return contiguous(view);
        } finally {
          view.dispose();
        }
      });
      a.dispose();
      const out = new Float32Array(r * c);
      const cpuMs = timeCpu(Math.max(runs, cpuRuns), () => cpuTranspose(host, r, c, out));
      record(`transpose ${r}x${c} f32`, 'GB/s', 2 * 4 * r * c, gpuMs, cpuMs);
    }
    if (only.has('matmul')) {
      const s = Number(opts.matmul);
      log(`matmul ${s}^3 `);
      const ha = values(s * s, 4);
      const hb = values(s * s, 5);
      const a = array(ha, { shape: [s, s] });
      const b = array(hb, { shape: [s, s] });
      const gpuMs = await timeGpuBoth(device, runs, () => matmul(a, b));
      a.dispose();
      b.dispose();
      const out = new Float32Array(s * s);
      const cpuMs = timeCpu(cpuRuns, () => cpuMatmul(ha, hb, out, s, s, s));
      record(`matmul ${s}^3 f32`, 'GFLOP/s', 2 * s ** 3, gpuMs, cpuMs);
    }
    if (only.has('lora')) {
      const m = /^(\d+)x(\d+)r(\d+)$/.exec(opts.lora!);
      if (!m) throw new Error(`bad --lora '${opts.lora}' (example: 4096x4096r16)`);
      const [outDim, inDim, rank] = m.slice(1).map(Number);
      log(`lora ${opts.lora} `);
      const w = new Uint16Array(outDim * inDim);
      const wf = values(outDim * inDim, 6);
      for (let i = 0; i < w.length; i++) w[i] = f32ToBf16Bits(wf[i]);
      const hB = values(outDim * rank, 7);
      const hA = values(rank * inDim, 8);
      const W = array(w, { shape: [outDim, inDim], dtype: 'bfloat16' });
      const B = array(hB, { shape: [outDim, rank] });
      const A = array(hA, { shape: [rank, inDim] });
      const scale = 2;
      const gpuMs = await timeGpuBoth(device, runs, () => addmm(W, B, A, { alpha: scale, dtype: 'bfloat16' }));
      for (const x of [W, B, A]) x.dispose();
      const out = new Uint16Array(outDim * inDim);
      const cpuMs = timeCpu(Math.max(runs, cpuRuns), () => cpuLora(w, hB, hA, out, outDim, inDim, rank, scale));
      // Bytes of W read and W' written: fusion is bound by moving the weight.
      record(`lora fuse ${outDim}x${inDim} r${rank} bf16`, 'GB/s', 2 * 2 * outDim * inDim, gpuMs, cpuMs);
    }
  } finally {
    log('\n');
    await close();
  }

  if (opts.json) {
    console.log(JSON.stringify({ machine: machineDescription(device), runs, rows }, null, 2));
    return;
  }
  console.log(`ops: GPU (WebGPU) vs a plain TypeScript loop, same run; ${machineDescription(device)}`);
  console.log(`GPU: median of ${runs} after a warm-up; CPU: median of ${Math.max(runs, cpuRuns)} (matmul: ${cpuRuns})`);
  printTable([
    ['op', 'unit', 'webgpu', 'ts loop', 'gpu ms', 'cpu ms', 'gpu/cpu', 'webgpu, polls throttled', 'gpu/cpu throttled'],
    ...rows.map((r) => [
      r.op,
      r.unit,
      r.gpu.toFixed(2),
      r.cpu.toFixed(2),
      r.gpu_ms.toFixed(0),
      r.cpu_ms.toFixed(0),
      `${r.ratio.toFixed(1)}x`,
      r.gpu_throttled.toFixed(2),
      `${r.ratio_throttled.toFixed(1)}x`,
    ]),
  ]);
}
