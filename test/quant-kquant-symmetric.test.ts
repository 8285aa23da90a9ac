// Q3_K and Q6_K beyond the golden vectors: the GPU kernels against the CPU
// reference (itself byte-exact with ggml on the golden input, see
// quant-golden.test.ts) on the paths the golden input does not reach: a float16
// source, views that start mid-block, odd block counts (a pair
// kernel's lone last block), groups whose quantized scale rounds to zero, and
// magnitudes from 1e-14 to 1e8.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { array, close, init, quantize, quantizeHost, type WgArray } from '../src/index.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/runtime/half.js';

beforeAll(async () => {
  await init();
});
afterAll(async () => {
  await close();
});

const QK = 256;

/** Gaussian values from a fixed seed (LCG + Box-Muller), scaled by sigma. */
function gauss(n: number, sigma: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = sigma * Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
  return out;
}

/** Every 16-value group scaled by 10^(-k) for k cycling 0..5: small groups quantize with scale 0. */
function mixedGroups(n: number): Float32Array {
  const x = gauss(n, 1, 11);
  for (let i = 0; i < n; i++) x[i] *= 10 ** -((i >> 4) % 6);
  return x;
}

function withZeros(n: number): Float32Array {
  const x = gauss(n, 0.02, 12);
  for (let i = 0; i < n; i++) if (((i >> 4) * 7) % 5 === 0 || i >= n - QK) x[i] = 0; // zero groups and a zero block
  return x;
}

const INPUTS: [string, Float32Array][] = [
  ['weights (sigma 0.02)', gauss(8 * QK, 0.02, 1)],
  ['sigma 1e-14', gauss(4 * QK, 1e-14, 2)],
  ['sigma 1e-7', gauss(4 * QK, 1e-7, 3)],
  ['sigma 1e4', gauss(4 * QK, 1e4, 4)],
  ['sigma 1e8', gauss(4 * QK, 1e8, 5)],
  ['groups 1 .. 1e-5', mixedGroups(8 * QK)],
  ['zero groups and a zero block', withZeros(6 * QK)],
  ['one spike', Object.assign(new Float32Array(2 * QK), { 17: 3, 300: -1e-3 })],
];

function blockDiffs(got: Uint8Array, want: Uint8Array, typeSize: number): number[] {
  const bad: number[] = [];
  for (let b = 0; b < want.length / typeSize; b++) {
    const s = b * typeSize;
    if (!Buffer.from(got.subarray(s, s + typeSize)).equals(Buffer.from(want.subarray(s, s + typeSize)))) bad.push(b);
  }
  return bad;
}

async function gpuBytes(x: WgArray, type: string): Promise<Uint8Array> {
  const q = quantize(x, type);
  try {
    return await q.data();
  } finally {
    q.dispose();
  }
}

describe.each([
  { type: 'q6_K', typeSize: 210 },
  { type: 'q3_K', typeSize: 110 },
])('$type', ({ type, typeSize }) => {
  test.each(INPUTS)('GPU equals the CPU reference: %s', async (_name, x) => {
    const a = array(x, { shape: [x.length / QK, QK] });
    const got = await gpuBytes(a, type);
    a.dispose();
    expect(blockDiffs(got, quantizeHost(x, type), typeSize)).toEqual([]);
  });

  // One 16-bit source is enough here: the kernels read every source dtype
  // through quantize_io's load_x (each extra dtype is one more pipeline to compile).
  test('float16 source', async () => {
    const x = gauss(6 * QK, 0.5, 21);
    const a = array(x, { shape: [6, QK] });
    const half = a.astype('float16');
    const got = await gpuBytes(half, type);
    a.dispose();
    half.dispose();
    expect(blockDiffs(got, quantizeHost(x.map((v) => f16BitsToF32(f32ToF16Bits(v))), type), typeSize)).toEqual([]);
  });

  test('views starting anywhere, odd and even block counts', async () => {
    const x = gauss(12 * QK, 0.02, 31);
    const all = array(x, { shape: [x.length] });
    for (const [start, blocks] of [
      [0, 1],
      [QK, 2],
      [1, 3],
      [3 * QK + 5, 5],
      [64, 8],
    ]) {
      const v = all.view([blocks * QK], { offset: start });
      const got = await gpuBytes(v, type);
      v.dispose();
      expect(blockDiffs(got, quantizeHost(x.subarray(start, start + blocks * QK), type), typeSize), `start ${start}`).toEqual([]);
    }
    all.dispose();
  });
});
