// The direct projection kernel (src/kernels/matmul-linear.ts): y = x @ Wᵀ with
// W read as stored, for every type it decodes, against a float64 CPU product
// of x and the weight's ggml dequantization (src/quant/host.ts, itself checked
// against ggml's bytes elsewhere). Shapes hit the kernel's edges: one token row
// (a one-row tile), token rows past a 32-row tile, weight rows not a multiple
// of 4, blocks padded to whole words, rows padded to 16 bytes (q6_K, q8_0 with
// 3 blocks per row), and the variant without subgroup operations.
//
// Bound per element: float32 accumulation of K products, (K + 2) * 2^-24 *
// Σ|x_k w_k|, plus the decoder's own float32 rounding of each weight (scale *
// q - min: a few ulps of |w|), folded into the same sum by a factor 4.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { close, init, type Device } from '../src/index.js';
import { LINEAR_TYPES, linearKernel, setPlainLinear, uploadLinearWeight } from '../src/kernels/matmul-linear.js';
import { dequantizeHost, quantizeHost } from '../src/quant/host.js';
import { f32ToBf16Bits, f32ToF16Bits } from '../src/runtime/half.js';
import { fromBytes } from '../src/runtime/upload.js';

let device: Device;
beforeAll(async () => {
  device = await init();
});
afterAll(async () => {
  await close();
});

function values(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 31 - 1) * scale;
  }
  return out;
}

/** The weight's bytes as a GGUF stores them, and their exact values. */
function storedWeight(type: string, w: Float32Array): { bytes: Uint8Array; exact: Float32Array } {
  if (type === 'f32') return { bytes: new Uint8Array(w.buffer.slice(0)), exact: w };
  if (type === 'f16' || type === 'bf16') {
    const bits = Uint16Array.from(w, (v) => (type === 'f16' ? f32ToF16Bits(v) : f32ToBf16Bits(v)));
    const bytes = new Uint8Array(bits.buffer);
    return { bytes, exact: dequantizeHost(bytes, type) };
  }
  const bytes = quantizeHost(w, type);
  return { bytes, exact: dequantizeHost(bytes, type) };
}

async function check(type: string, m: number, n: number, k: number, seed: number): Promise<void> {
  const xs = values(m * k, seed, 1);
  const { bytes, exact } = storedWeight(type, values(n * k, seed + 1, 0.5));
  const x = fromBytes(xs, [m, k], 'float32', device);
  const w = uploadLinearWeight(device, bytes, type, n, k, `w.${type}`);
  const y = linearKernel(x, w);
  const got = (await y.data()) as Float32Array;
  x.dispose();
  w.dispose();
  y.dispose();
  let worst = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      let mag = 0;
      for (let t = 0; t < k; t++) {
        const p = xs[i * k + t] * exact[j * k + t];
        sum += p;
        mag += Math.abs(p);
      }
      const bound = (k + 2) * 2 ** -24 * mag * 4 + 1e-30;
      worst = Math.max(worst, Math.abs(got[i * n + j] - sum) / bound);
    }
  }
  expect(worst, `${type} ${m}x${n}x${k}: worst error / bound`).toBeLessThan(1);
}

test.each(LINEAR_TYPES)('%s: one token row and 37 token rows against float64', async (type) => {
  await check(type, 1, 9, 256, 3);
  await check(type, 37, 9, 256, 5);
});

test('q8_0 rows of 3 blocks (rows padded to 16 bytes), 5 token rows', async () => {
  await check('q8_0', 5, 6, 96, 7);
});

test('the variant without subgroup operations', async () => {
  setPlainLinear(true);
  try {
    await check('q4_K', 37, 9, 256, 9);
  } finally {
    setPlainLinear(false);
  }
});

test('a wrong input shape is an ArgumentError naming the weight', async () => {
  const w = uploadLinearWeight(device, new Uint8Array(4 * 32 * 2), 'f16', 4, 32, 'blk.0.attn_q.weight');
  const x = fromBytes(new Float32Array(64), [1, 64], 'float32', device);
  expect(() => linearKernel(x, w)).toThrow(/blk\.0\.attn_q\.weight/);
  x.dispose();
  w.dispose();
});
