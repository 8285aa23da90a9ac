// The quality report's numbers: RMSE / SNR / max error of dequantized against
// source, on the GPU in chunks (src/kernels/quant-error.ts), against the same
// sums in float64 on the CPU.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { array, close, dequantizeHost, init, quantize } from '../src/index.js';
import { errorStatsHost, quantizationError, quantizeMeasured, type ErrorStats } from '../src/kernels/quant-error.js';
import { f32ToBf16Bits, bf16BitsToF32, f32ToF16Bits, f16BitsToF32 } from '../src/runtime/half.js';
import { QUANT_FORMATS } from '../src/quant/registry.js';
import { quantizeHost, quantizeHostWeighted } from '../src/quant/host.js';
import { GpuStorage } from '../src/runtime/pool.js';
import { QuantizedArray } from '../src/runtime/quantized.js';
import { deviceOf } from '../src/runtime/device.js';

beforeAll(async () => {
  await init();
});
afterAll(async () => {
  await close();
});

function noise(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    out[i] = (u - 0.5) * (i % 97 === 0 ? 40 : 1);
  }
  return out;
}

interface Case {
  type: string;
  dtype: 'float32' | 'float16' | 'bfloat16';
  rows: number;
  cols: number;
  /** Elements per GPU chunk (small: many chunks). */
  chunk?: number;
}

const CASES: Case[] = [
  { type: 'q8_0', dtype: 'float32', rows: 64, cols: 256 },
  { type: 'q8_0', dtype: 'bfloat16', rows: 33, cols: 96, chunk: 512 },
  { type: 'q8_0', dtype: 'float16', rows: 7, cols: 64, chunk: 128 },
  { type: 'f16', dtype: 'float32', rows: 16, cols: 100, chunk: 300 },
  { type: 'bf16', dtype: 'float32', rows: 5, cols: 10 },
  ...['q4_0', 'q4_K', 'q6_K', 'iq4_nl', 'mxfp4'].map((type): Case => ({ type, dtype: 'float32', rows: 12, cols: 256, chunk: 1024 })),
];

/**
 * x as a GPU array of `dtype` (float16/bfloat16: x rounded to it), viewed as `shape` from
 * element `offset`; `ref`: the float32 values that view holds.
 */
function sourceAt(x: Float32Array, dtype: 'float32' | 'float16' | 'bfloat16', offset: number, shape: number[]) {
  let values: Float32Array = x;
  let whole;
  if (dtype === 'float32') whole = array(x);
  else {
    const bits = Uint16Array.from(x, dtype === 'float16' ? f32ToF16Bits : f32ToBf16Bits);
    values = Float32Array.from(bits, dtype === 'float16' ? f16BitsToF32 : bf16BitsToF32);
    whole = array(bits, { dtype });
  }
  return { ref: values.subarray(offset), whole, src: whole.view(shape, { offset }) };
}

/** The GPU's statistics of n values against errorStatsHost's float64 ones: the same counts, the sums to float32 accuracy. */
function expectSameStats(gpu: ErrorStats, cpu: ErrorStats, n: number) {
  expect(gpu.count).toBe(n);
  expect(gpu.nonFinite).toBe(cpu.nonFinite);
  expect(Math.abs(gpu.rmse - cpu.rmse) / cpu.rmse).toBeLessThan(1e-4);
  expect(Math.abs(gpu.snrDb - cpu.snrDb)).toBeLessThan(1e-3);
  expect(Math.abs(gpu.maxAbsError - cpu.maxAbsError)).toBeLessThanOrEqual(cpu.maxAbsError * 2 ** -22);
}

describe('quantization error', () => {
  test.each(CASES)('$type from $dtype, $rows x $cols, chunk $chunk', async (c) => {
    const n = c.rows * c.cols;
    const x = noise(n, n + c.cols);
    // the source as the GPU holds it, and its exact float32 values
    let ref: Float32Array = x;
    let src;
    if (c.dtype === 'float32') src = array(x, { shape: [c.rows, c.cols] });
    else {
      const enc = c.dtype === 'float16' ? f32ToF16Bits : f32ToBf16Bits;
      const dec = c.dtype === 'float16' ? f16BitsToF32 : bf16BitsToF32;
      const bits = Uint16Array.from(x, enc);
      ref = Float32Array.from(bits, dec);
      src = array(bits, { shape: [c.rows, c.cols], dtype: c.dtype });
    }
    const q = quantize(src, c.type);
    const gpu = await quantizationError(src, q, { chunkElements: c.chunk });
    const cpu = errorStatsHost(ref, dequantizeHost(await q.data(), c.type));
    expect(gpu.count).toBe(n);
    expect(gpu.nonFinite).toBe(0);
    expect(gpu.rmse).toBeGreaterThan(0);
    expect(gpu.rmse).toBeCloseTo(cpu.rmse, 6);
    expect(Math.abs(gpu.rmse - cpu.rmse) / cpu.rmse).toBeLessThan(1e-4);
    expect(Math.abs(gpu.snrDb - cpu.snrDb)).toBeLessThan(1e-3);
    // the GPU's dequantizer may differ from ggml's by 1 ulp (see the golden README)
    expect(Math.abs(gpu.maxAbsError - cpu.maxAbsError)).toBeLessThanOrEqual(cpu.maxAbsError * 2 ** -22);
    q.dispose();
    src.dispose();
  });

  // Every format's one-pass quant_error entry (shaders/lib/quant_entry.wgsl) on blocks
  // made by the CPU reference (no quantize pipeline to compile): each source dtype,
  // views starting on a vector, mid-vector and mid-word; Q8_0 (quick on the CPU)
  // also in three chunks of 256 blocks.
  const SOURCES = [
    { dtype: 'float32', offset: 0 },
    { dtype: 'float16', offset: 4 },
    { dtype: 'bfloat16', offset: 3 },
    { dtype: 'float32', offset: 5 },
    { dtype: 'float16', offset: 0 },
  ] as const;
  const ONE_PASS = [
    ...[...QUANT_FORMATS.keys()].map((type, i) => ({ type, blocks: 20, chunks: 1, ...SOURCES[i % SOURCES.length] })),
    { type: 'q8_0', blocks: 600, chunks: 3, dtype: 'bfloat16' as const, offset: 3 },
  ];
  test.each(ONE_PASS)(
    'one pass: $type from $dtype at element offset $offset, $blocks blocks in $chunks chunk(s)',
    async ({ type, dtype, offset, blocks }) => {
      const f = QUANT_FORMATS.get(type)!;
      const qk = f.type.blockSize;
      const n = blocks * qk;
      const x = noise(n + offset, n + qk);
      const { ref, whole, src } = sourceAt(x, dtype, offset, [n / qk, qk]);
      // formats ggml quantizes only with an importance matrix get a uniform one
      const bytes = f.imatrix === 'required' ? quantizeHostWeighted(ref, f.type, qk, new Float32Array(qk).fill(1)) : quantizeHost(ref, f.type, type);
      const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
      padded.set(bytes);
      const storage = GpuStorage.allocate(deviceOf(), padded.length);
      deviceOf().writeBuffer(storage.buffer, 0, padded);
      const q = new QuantizedArray(storage, [n / qk, qk], f.type);
      const gpu = await quantizationError(src, q, { chunkElements: 256 * qk });
      const cpu = errorStatsHost(ref, dequantizeHost(bytes, type));
      expectSameStats(gpu, cpu, n);
      q.dispose();
      src.dispose();
      whole.dispose();
    },
  );

  test('exact copy: zero error, infinite SNR', async () => {
    const src = array(noise(512, 3), { shape: [2, 256] });
    const q = quantize(src, 'f32');
    const s = await quantizationError(src, q);
    expect(s).toMatchObject({ count: 512, rmse: 0, snrDb: Infinity, maxAbsError: 0, nonFinite: 0 });
  });

  test('a view into a larger buffer compares the right elements', async () => {
    const whole = array(noise(4 * 256, 9), { shape: [4, 256] });
    const rows = whole.view([2, 256], { offset: 256 });
    const q = quantize(rows, 'q8_0');
    const gpu = await quantizationError(rows, q, { chunkElements: 64 });
    const ref = ((await whole.data()) as Float32Array).subarray(256, 768);
    const cpu = errorStatsHost(ref, dequantizeHost(await q.data(), 'q8_0'));
    expect(Math.abs(gpu.rmse - cpu.rmse) / cpu.rmse).toBeLessThan(1e-4);
    expect(gpu.maxAbsError).toBe(cpu.maxAbsError);
  });

  test('non-finite source values are counted, not summed', async () => {
    const x = noise(64, 5);
    x[3] = Infinity;
    const src = array(x, { shape: [2, 32] });
    const q = quantize(src, 'f16');
    const s = await quantizationError(src, q);
    expect(s.nonFinite).toBe(1);
    expect(Number.isFinite(s.rmse)).toBe(true);
  });

  // formats whose quantize kernel writes the error sums itself (the CLI's path for them)
  const SELF_MEASURED = [...QUANT_FORMATS.values()].filter((f) => f.quantize.errorSums);
  test.each(SELF_MEASURED.flatMap((f) => SOURCES.map((s) => ({ type: f.type.name, ...s }))))(
    'measured by the quantize dispatch: $type from $dtype at element offset $offset, non-finite and out-of-range blocks',
    async ({ type, dtype, offset }) => {
      const f = QUANT_FORMATS.get(type)!;
      const qk = f.type.blockSize;
      // 300 blocks: several workgroups, the last one partly past the end
      const n = 300 * qk;
      const x = noise(n + offset, n + 7);
      x[offset + 5 * qk + 3] = NaN; // block 5 is written invalid: all its values decode to NaN
      x[offset + 9 * qk] = -Infinity;
      // a scale past float16: infinite decodes (the K-quants pass it from ~1e7; with values near
      // 1e37 some of their decodes stay finite and float32 sums of their squares overflow, in either GPU pass)
      const [big, bigger] = f.nonFinite === 'marked' ? [1e37, 3e38] : [1e9, 3e10];
      for (let j = 0; j < qk; j++) x[offset + 12 * qk + j] = j === 1 ? bigger : big;
      const { ref, whole, src } = sourceAt(x, dtype, offset, [n / qk, qk]);
      const { q, stats } = quantizeMeasured(src, f.type)!;
      const bytes = await q.data();
      expect(Buffer.compare(Buffer.from(bytes), Buffer.from(quantizeHost(ref, f.type, type)))).toBe(0);
      const gpu = await stats;
      const cpu = errorStatsHost(ref, dequantizeHost(bytes, type));
      // a marked format's bad blocks decode whole to NaN; the K-quants' ('as-ggml') as ggml's bytes give
      expect(cpu.nonFinite).toBeGreaterThan(f.nonFinite === 'marked' ? 2 * qk : 1);
      expectSameStats(gpu, cpu, n);
      q.dispose();
      src.dispose();
      whole.dispose();
    },
  );

  // the same with an importance matrix: every self-measuring kernel measures its weighted path too
  test.each(
    SELF_MEASURED.filter((f) => f.imatrix !== 'ignored').flatMap((f) =>
      SOURCES.slice(0, 2).map((s) => ({ type: f.type.name, ...s })),
    ),
  )(
    'measured by the weighted quantize dispatch: $type from $dtype at element offset $offset, 2 experts, non-finite and out-of-range blocks',
    async ({ type, dtype, offset }) => {
      const f = QUANT_FORMATS.get(type)!;
      const qk = f.type.blockSize;
      // rows of 3 blocks, 100 rows in 2 experts: 300 blocks, the last workgroup partly past the end
      const cols = 3 * qk;
      const n = 100 * cols;
      const x = noise(n + offset, n + 11);
      x[offset + 5 * qk + 3] = NaN;
      x[offset + 9 * qk] = -Infinity;
      for (let j = 0; j < qk; j++) x[offset + 12 * qk + j] = j === 1 ? 3e10 : 1e9; // a scale past float16, as above
      const { ref, whole, src } = sourceAt(x, dtype, offset, [2, 50, cols]);
      // per expert: some zero weights, ratios up to e^160
      const weights = Float32Array.from(noise(2 * cols, 5), (v, i) => (i % 7 === 0 ? 0 : Math.exp(4 * v)));
      const { q, stats } = quantizeMeasured(src, f.type, { imatrix: weights })!;
      const bytes = await q.data();
      const expected = new Uint8Array(bytes.length);
      for (let e = 0; e < 2; e++) {
        const half = ref.subarray((e * n) / 2, ((e + 1) * n) / 2);
        expected.set(quantizeHostWeighted(half, f.type, cols, weights.subarray(e * cols, (e + 1) * cols)), (e * bytes.length) / 2);
      }
      expect(Buffer.compare(Buffer.from(bytes), Buffer.from(expected))).toBe(0);
      const gpu = await stats;
      const cpu = errorStatsHost(ref, dequantizeHost(bytes, type));
      expect(cpu.nonFinite).toBeGreaterThan(1);
      expectSameStats(gpu, cpu, n);
      q.dispose();
      src.dispose();
      whole.dispose();
    },
  );
});
