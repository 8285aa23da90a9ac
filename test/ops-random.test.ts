// Seeded random numbers: Philox4x32-10 against Random123's known answers, the
// GPU's raw bits against the CPU reference, independence from chunking, and
// the distributions' moments and ranges.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { close, init, type WgArray } from '../src/index.js';
import { philox4x32, seedKey } from '../src/ops/random.js';
import { random } from '../src/ops/index.js';
import { bf16BitsToF32, f16BitsToF32 } from '../src/runtime/half.js';

beforeAll(async () => {
  await init();
});
afterAll(async () => {
  await close();
});

async function floats(a: WgArray): Promise<Float64Array> {
  const raw = await a.data();
  a.dispose();
  if (a.dtype === 'float16') return Float64Array.from(raw as Uint16Array, f16BitsToF32);
  if (a.dtype === 'bfloat16') return Float64Array.from(raw as Uint16Array, bf16BitsToF32);
  return Float64Array.from(raw as ArrayLike<number>);
}

// Random123's tests/kat_vectors, the three philox4x32 10 lines: counter, key, expected.
const KAT: [[number, number, number, number], [number, number], [number, number, number, number]][] = [
  [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
  [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]],
  [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]],
];

test.each(KAT)('CPU Philox4x32-10 known answer %#', (counter, key, want) => {
  expect(philox4x32(counter, key)).toEqual(want);
});

describe('GPU bits equal the CPU reference', () => {
  const cases: { seed: number | bigint; n: number }[] = [
    { seed: 0, n: 1 },
    { seed: 0, n: 4099 },
    { seed: 0x299f31d0a4093822n, n: 333 },
    { seed: 2n ** 64n - 1n, n: 64 },
  ];
  test.each(cases)('seed $seed, $n elements', async ({ seed, n }) => {
    const got = await random.bits([n], { seed }).data();
    const key = seedKey(seed);
    for (const i of [0, 1, 2, 3, Math.floor(n / 2), n - 1].filter((i) => i < n)) {
      const g = Math.floor(i / 4);
      expect(got[i], `element ${i}`).toBe(philox4x32([g, 0, 0, 0], key)[i % 4]);
    }
  });
});

test('a prefix does not depend on the array size (chunking, dispatch shape)', async () => {
  const small = await random.uniform([1001], { seed: 7 }).data();
  // > 65535 workgroups of 256 blocks: a 2-D dispatch.
  const big = random.uniform([65536 * 256 * 4 + 12], { seed: 7 });
  const bigData = await big.data();
  big.dispose();
  expect(Array.from(bigData.subarray(0, 1001))).toEqual(Array.from(small));
  // The last elements are still Philox outputs of their own index.
  const n = bigData.length;
  const key = seedKey(7);
  const x = philox4x32([Math.floor((n - 1) / 4), 0, 0, 0], key)[(n - 1) % 4];
  expect(bigData[n - 1]).toBe(Math.fround((x >>> 8) * 2 ** -24));
});

test('same seed, same numbers; different seeds differ; unseeded calls follow random.seed', async () => {
  const a = await random.normal([100], { seed: 3 }).data();
  const b = await random.normal([100], { seed: 3 }).data();
  const c = await random.normal([100], { seed: 4 }).data();
  expect(Array.from(a)).toEqual(Array.from(b));
  expect(Array.from(a)).not.toEqual(Array.from(c));
  random.seed(11);
  const d1 = await random.uniform([50]).data();
  const d2 = await random.uniform([50]).data();
  random.seed(11);
  const e1 = await random.uniform([50]).data();
  expect(Array.from(d1)).toEqual(Array.from(e1));
  expect(Array.from(d1)).not.toEqual(Array.from(d2));
});

interface DistCase {
  name: string;
  make: () => WgArray;
  lo: number;
  hi: number;
  mean: number;
  std: number;
}
const N = 200_000;
const distCases: DistCase[] = [
  { name: 'uniform float32', make: () => random.uniform([N], { seed: 1 }), lo: 0, hi: 1, mean: 0.5, std: Math.sqrt(1 / 12) },
  { name: 'uniform float16 [-2, 3)', make: () => random.uniform([N], { seed: 2, dtype: 'float16', low: -2, high: 3 }), lo: -2, hi: 3, mean: 0.5, std: 5 * Math.sqrt(1 / 12) },
  { name: 'uniform bfloat16 [0, 1)', make: () => random.uniform([N], { seed: 2, dtype: 'bfloat16' }), lo: 0, hi: 1, mean: 0.5, std: Math.sqrt(1 / 12) },
  { name: 'normal float32', make: () => random.normal([N], { seed: 5 }), lo: -6, hi: 6, mean: 0, std: 1 },
  { name: 'normal bfloat16 mean 2 std 0.5', make: () => random.normal([N + 3], { seed: 5, dtype: 'bfloat16', mean: 2, std: 0.5 }), lo: -1, hi: 5, mean: 2, std: 0.5 },
  { name: 'randint int32 [-5, 7)', make: () => random.randint(-5, 7, [N], { seed: 9 }), lo: -5, hi: 6, mean: 0.5, std: Math.sqrt((12 * 12 - 1) / 12) },
  { name: 'randint uint8 [250, 256)', make: () => random.randint(250, 256, [N + 1], { seed: 9, dtype: 'uint8' }), lo: 250, hi: 255, mean: 252.5, std: Math.sqrt((36 - 1) / 12) },
  { name: 'randint int16', make: () => random.randint(-32768, 32768, [N + 2], { seed: 9, dtype: 'int16' }), lo: -32768, hi: 32767, mean: -0.5, std: 65536 / Math.sqrt(12) },
];

test.each(distCases)('$name: range and moments', async ({ make, lo, hi, mean, std }) => {
  const x = await floats(make());
  let s = 0;
  let s2 = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of x) {
    s += v;
    s2 += v * v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const m = s / x.length;
  const sd = Math.sqrt(s2 / x.length - m * m);
  expect(min).toBeGreaterThanOrEqual(lo);
  expect(max).toBeLessThanOrEqual(hi);
  expect(max).toBeLessThan(hi === 1 || hi === 3 ? hi : Infinity);
  // 6 standard errors: a correct generator fails this about once in 10^9 runs.
  expect(Math.abs(m - mean)).toBeLessThan((6 * std) / Math.sqrt(x.length));
  expect(Math.abs(sd - std) / std).toBeLessThan(0.01);
});

test('normal: the GPU transform matches Box-Muller on the CPU reference bits', async () => {
  const n = 1000;
  const got = await random.normal([n], { seed: 12 }).data();
  const key = seedKey(12);
  const unit = (x: number) => (x >>> 8) * 2 ** -24;
  for (let g = 0; g < n / 4; g++) {
    const x = philox4x32([g, 0, 0, 0], key);
    for (const p of [0, 2]) {
      const r = Math.sqrt(-2 * Math.log(unit(x[p]) + 2 ** -24));
      const t = 2 * Math.PI * unit(x[p + 1]);
      expect(got[4 * g + p]).toBeCloseTo(r * Math.cos(t), 4);
      expect(got[4 * g + p + 1]).toBeCloseTo(r * Math.sin(t), 4);
    }
  }
});

test('bad arguments are typed errors', () => {
  expect(() => random.uniform([2], { dtype: 'int32' as 'float32' })).toThrow(/not a float dtype/);
  expect(() => random.uniform([2], { low: 1, high: 1 })).toThrow(/low < high/);
  expect(() => random.normal([2], { std: -1 })).toThrow(/std >= 0/);
  expect(() => random.randint(0, 300, [2], { dtype: 'uint8' })).toThrow(/low < high <= 256/);
  expect(() => random.uniform([2], { seed: -1 })).toThrow(/outside/);
  expect(() => random.uniform([2], { seed: 0.5 })).toThrow(/not an integer/);
  expect(() => random.uniform([-1])).toThrow(/dimension -1/);
});
