// MLX's quantization (quantize(w, { mode, groupSize, bits }) on the GPU and the
// host reference src/quant/mlx-host.ts) against an independent model of MLX's
// CPU algorithm (test/helpers/mlx-reference.ts): packed bytes, scales, biases and
// decoded values bit for bit, for bits 2/3/4/5/6/8, groups 32/64/128, float32 /
// float16 / bfloat16 inputs, with groups that exercise the zero-point snapping and
// both signs of the scale; and mxfp4.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { array, bf16BitsToF32, close, dequantize, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, init, quantize } from '../src/index.js';
import { seededNormals } from '../src/runtime/host-random.js';
import {
  MLX_AFFINE_BITS,
  MLX_GROUP_SIZES,
  mlxAffineDequantizeHost,
  mlxAffineQuantizeHost,
  mlxMxfp4DequantizeHost,
  mlxMxfp4QuantizeHost,
} from '../src/quant/mlx-host.js';
import type { WgArray } from '../src/runtime/array.js';
import { refAffineDequantize, refAffineQuantize, refMxfp4Quantize, refMxfp4Value, refUnpack } from './helpers/mlx-reference.js';

beforeAll(async () => {
  await init();
});
afterAll(async () => {
  await close();
});

type FloatDType = 'float32' | 'float16' | 'bfloat16';
const DTYPES: FloatDType[] = ['float32', 'float16', 'bfloat16'];
const ROUND: Record<FloatDType, (x: number) => number> = {
  float32: Math.fround,
  float16: (x) => f16BitsToF32(f32ToF16Bits(x)),
  bfloat16: (x) => bf16BitsToF32(f32ToBf16Bits(x)),
};

/** Rows of Gaussian weights with special groups: constant, zero, negative-anchored, positive-anchored, tiny. */
function weights(rows: number, cols: number, groupSize: number, seed: number, dtype: FloatDType): Float32Array {
  const x = seededNormals(rows * cols, seed, 0.05);
  const g = (k: number) => x.subarray(k * groupSize, (k + 1) * groupSize);
  g(1).fill(0.375); // zero range, positive
  g(2).fill(0); // all zero
  g(3).fill(-1.25); // zero range, negative
  g(4).forEach((v, i) => (g(4)[i] = Math.abs(v) - 0.2)); // |min| > |max|: positive scale
  g(5).forEach((v, i) => (g(5)[i] = 0.2 - Math.abs(v))); // max side larger: negative scale
  g(6).forEach((v, i) => (g(6)[i] = v * 1e-6)); // range below the 1e-7 floor
  return Float32Array.from(x, ROUND[dtype]);
}

function upload(x: Float32Array, shape: number[], dtype: FloatDType): WgArray {
  if (dtype === 'float32') return array(x, { shape });
  const bits = Uint16Array.from(x, dtype === 'float16' ? f32ToF16Bits : f32ToBf16Bits);
  return array(bits, { shape, dtype });
}

async function floats(a: WgArray): Promise<Float32Array> {
  const f = a.dtype === 'float32' ? a : a.astype('float32');
  const out = (await f.data()) as Float32Array;
  if (f !== a) f.dispose();
  return out;
}

function same(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i]) && !(a[i] === 0 && b[i] === 0)) return false;
  return true;
}

describe('affine quantize / dequantize = MLX CPU', () => {
  for (const bits of MLX_AFFINE_BITS) {
    test(`${bits} bits, groups 32/64/128, float32/float16/bfloat16`, async () => {
      for (const groupSize of MLX_GROUP_SIZES) {
        for (const dtype of DTYPES) {
          const rows = 3;
          const cols = groupSize * 3;
          const x = weights(rows, cols, groupSize, bits * 1000 + groupSize, dtype);
          const ref = refAffineQuantize(x, groupSize, bits);
          const refScales = ref.scales.map(ROUND[dtype]);
          const refBiases = ref.biases.map(ROUND[dtype]);
          const what = `${bits} bits, group ${groupSize}, ${dtype}`;
          // the special groups hit both signs of the scale and the snapping
          expect(ref.scales.some((s) => s > 0) && ref.scales.some((s) => s < 0), what).toBe(true);

          const a = upload(x, [rows, cols], dtype);
          const q = quantize(a, { mode: 'affine', groupSize, bits });
          expect(q.wq.shape, what).toEqual([rows, (cols * bits) / 32]);
          expect(q.scales.dtype, what).toBe(dtype);
          const wq = (await q.wq.data()) as Uint32Array;
          expect(Buffer.from(wq.buffer, wq.byteOffset, wq.byteLength).equals(Buffer.from(ref.bytes)), `${what}: packed bytes`).toBe(true);
          expect(same(await floats(q.scales), refScales), `${what}: scales`).toBe(true);
          expect(same(await floats(q.biases!), refBiases), `${what}: biases`).toBe(true);

          const host = mlxAffineQuantizeHost(x, cols, groupSize, bits, dtype);
          expect(Buffer.from(host.wq.buffer).equals(Buffer.from(ref.bytes)), `${what}: host packed bytes`).toBe(true);
          expect(same(host.scales, refScales) && same(host.biases, refBiases), `${what}: host scales/biases`).toBe(true);

          const want = refAffineDequantize(ref.bytes, refScales, refBiases, groupSize, bits);
          const back = dequantize(q, { mode: 'affine', groupSize, bits });
          expect(back.shape).toEqual([rows, cols]);
          expect(same((await back.data()) as Float32Array, want), `${what}: GPU dequantize`).toBe(true);
          expect(same(mlxAffineDequantizeHost(host.wq, host.scales, host.biases, groupSize, bits), want), `${what}: host dequantize`).toBe(true);
          // the special groups decode as MLX keeps them: constants exactly, zero exactly
          expect(want[groupSize], what).toBe(ROUND[dtype](0.375));
          expect(want[2 * groupSize], what).toBe(0);
          expect(want[3 * groupSize], what).toBe(-1.25);
          for (const t of [a, q.wq, q.scales, q.biases!, back]) t.dispose();
        }
      }
    });
  }

  test('views (a transpose, rows from an offset) quantize as their row-major copies', async () => {
    const { slice, transpose } = await import('../src/index.js');
    const x = weights(128, 128, 64, 5, 'bfloat16');
    const a = upload(x, [128, 128], 'bfloat16');
    for (const v of [transpose(a), slice(a, [3, 9])]) {
      const want = refAffineQuantize(await floats(v), 64, 4);
      const q = quantize(v, { mode: 'affine', groupSize: 64, bits: 4 });
      const wq = (await q.wq.data()) as Uint32Array;
      expect(Buffer.from(wq.buffer, wq.byteOffset, wq.byteLength).equals(Buffer.from(want.bytes))).toBe(true);
      const back = dequantize({ wq: q.wq, scales: q.scales, biases: q.biases }, { groupSize: 64, bits: 4 });
      expect(same((await back.data()) as Float32Array, refAffineDequantize(want.bytes, want.scales.map(ROUND.bfloat16), want.biases.map(ROUND.bfloat16), 64, 4))).toBe(true);
      for (const t of [v, q.wq, q.scales, q.biases!, back]) t.dispose();
    }
    a.dispose();
  });

  test('bad specs and shapes are refused with what was expected', () => {
    const a = array(new Float32Array(96), { shape: [96] });
    expect(() => quantize(a, { mode: 'affine', groupSize: 64, bits: 4 })).toThrow(/row length 96 .* group size 64/);
    expect(() => quantize(a, { mode: 'affine', groupSize: 32, bits: 7 })).toThrow(/bits 2, 3, 4, 5, 6 or 8, not 7/);
    expect(() => quantize(a, { mode: 'nvfp4' as 'affine', groupSize: 32, bits: 4 })).toThrow(/unknown quantization mode 'nvfp4'/);
    a.dispose();
  });
});

describe('mxfp4 = MLX CPU', () => {
  test('codes, E8M0 scales and decoded values', async () => {
    for (const dtype of DTYPES) {
      const x = weights(4, 256, 32, 77, dtype);
      // subnormal magnitudes (float32 and bfloat16 keep them; float16 flushes them to zero)
      x.subarray(7 * 32, 8 * 32).forEach((_, i, s) => (s[i] = ROUND[dtype]((i - 16) * 1e-39)));
      const ref = refMxfp4Quantize(x);
      const a = upload(x, [4, 256], dtype);
      const q = quantize(a, { mode: 'mxfp4' });
      const wq = (await q.wq.data()) as Uint32Array;
      const codes = refUnpack(new Uint8Array(wq.buffer, wq.byteOffset, wq.byteLength), x.length, 4);
      expect(codes, dtype).toEqual(ref.codes);
      expect(Array.from((await q.scales.data()) as Uint8Array), dtype).toEqual(ref.scales);
      const host = mlxMxfp4QuantizeHost(x);
      expect(Array.from(host.scales)).toEqual(ref.scales);
      expect(Buffer.from(host.wq.buffer).equals(Buffer.from(wq.buffer, wq.byteOffset, wq.byteLength))).toBe(true);
      const want = Float32Array.from(ref.codes, (c, i) => refMxfp4Value(c, ref.scales[i >> 5]));
      const back = dequantize(q, { mode: 'mxfp4' });
      expect(same((await back.data()) as Float32Array, want), dtype).toBe(true);
      expect(same(mlxMxfp4DequantizeHost(host.wq, host.scales), want)).toBe(true);
      for (const t of [a, q.wq, q.scales, back]) t.dispose();
    }
  });
});
