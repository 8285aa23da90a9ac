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
// q - min: a few ulps of |w|), folded into the same sum by a factor 4. These
// checks run the float path (setQ8Linear(false)) for every type.
//
// K-quant weights (Q4_K, Q5_K, Q6_K) normally take the integer path: x's rows
// rounded to Q8_K, then integer products, as llama.cpp's CPU backend does.
// Its oracle is ggml itself (test/helpers/ggml-vec-dot.ts): the Q8_K rows
// byte for byte against quantize_row_q8_K_ref, and every output element
// against ggml_vec_dot_*_q8_K within float32 rounding of the per-chunk scale
// products (both against the float64 value of the same integer sums).
import { afterAll, beforeAll, expect, test } from 'vitest';
import { close, init, type Device } from '../src/index.js';
import { LINEAR_TYPES, linearKernel, quantizeRowsQ8K, setPlainLinear, setQ8Linear, uploadLinearWeight } from '../src/kernels/matmul-linear.js';
import { dequantizeHost, quantizeHost } from '../src/quant/host.js';
import { f32ToBf16Bits, f32ToF16Bits } from '../src/runtime/half.js';
import { fromBytes } from '../src/runtime/upload.js';
import { ggmlVecDotAvailable, ggmlVecDotQ8K, Q8K_BLOCK_BYTES } from './helpers/ggml-vec-dot.js';

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
  setQ8Linear(false);
  let y;
  try {
    y = linearKernel(x, w);
  } finally {
    setQ8Linear(true);
  }
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

const haveVecDot = ggmlVecDotAvailable();

/** Activations with an all-zero 256-block (row 0's first), a row whose largest magnitudes tie with opposite signs (row 1), and rounding ties. */
function activations(m: number, k: number, seed: number): Float32Array {
  const xs = values(m * k, seed, 1);
  xs.fill(0, 0, 256);
  xs[k + 3] = -0.9999;
  xs[k + 200] = 0.9999;
  for (let t = 0; t < k; t += 7) xs[2 * k + t] = (t % 254) / 127 - 1; // 127 / max * x lands on halves
  return xs;
}

test.runIf(haveVecDot).each(['q4_K', 'q5_K', 'q6_K'] as const)('%s on Q8_K-rounded rows against ggml (quantize_row_q8_K, vec_dot)', async (type) => {
  const [m, n, k] = [37, 9, 512];
  const xs = activations(m, k, 11);
  const { bytes, exact } = storedWeight(type, values(n * k, 12, 0.5));
  const ref = ggmlVecDotQ8K(type, xs, bytes, m, n, k);
  const x = fromBytes(xs, [m, k], 'float32', device);
  const w = uploadLinearWeight(device, bytes, type, n, k, `w.${type}`);
  const xq = quantizeRowsQ8K(x);
  const y = linearKernel(x, w);
  // q4_K also through the variant without subgroup operations (linear_q8k.wgsl)
  setPlainLinear(type === 'q4_K');
  let yPlain;
  try {
    yPlain = type === 'q4_K' ? linearKernel(x, w) : undefined;
  } finally {
    setPlainLinear(false);
  }
  const q = (await xq.data()) as Uint32Array;
  const got = (await y.data()) as Float32Array;
  const gotPlain = yPlain ? ((await yPlain.data()) as Float32Array) : undefined;
  for (const a of [x, w, xq, y, yPlain]) a?.dispose();
  // the Q8_K rows: ggml's block_q8_K (d, qs[256], bsums[16]) against the kernel's 12 words per 32 values
  const view = new DataView(ref.q8.buffer, ref.q8.byteOffset, ref.q8.byteLength);
  const xq8 = new Float64Array(m * k); // x as ggml rounds it: d * q
  let mismatches = 0;
  for (let i = 0; i < m; i++) {
    for (let b = 0; b < k / 256; b++) {
      const at = (i * (k / 256) + b) * Q8K_BLOCK_BYTES;
      const d = view.getFloat32(at, true);
      for (let c = 0; c < 8; c++) {
        const words = q.subarray(((i * k) / 32 + b * 8 + c) * 12, ((i * k) / 32 + b * 8 + c + 1) * 12);
        for (let t = 0; t < 32; t++) {
          const ggml = view.getInt8(at + 4 + c * 32 + t);
          if (ggml !== ((words[t >> 2] << (24 - 8 * (t & 3))) >> 24)) mismatches++;
          xq8[i * k + b * 256 + c * 32 + t] = d * ggml;
        }
        for (let h = 0; h < 2; h++) if (view.getInt16(at + 260 + 2 * (2 * c + h), true) !== (words[8 + h] | 0)) mismatches++;
        if (new Float32Array(new Uint32Array([words[10]]).buffer)[0] !== d) mismatches++;
      }
    }
  }
  expect(mismatches, 'Q8_K bytes, sums and scales differing from ggml').toBe(0);
  // the products: both sides against the float64 sum over (d q) * w
  let worst = 0;
  let worstGgml = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      let mag = 0;
      let wmax = 0;
      for (let t = 0; t < k; t++) wmax = Math.max(wmax, Math.abs(exact[j * k + t]));
      for (let t = 0; t < k; t++) {
        sum += xq8[i * k + t] * exact[j * k + t];
        mag += Math.abs(xq8[i * k + t]) * (Math.abs(exact[j * k + t]) + wmax);
      }
      // per-chunk float32 scale products (the weight's min term can exceed |w|: wmax covers it), summed over K / 32 chunks
      const bound = (k / 32 + 8) * 2 ** -24 * mag + 1e-30;
      worst = Math.max(worst, Math.abs(got[i * n + j] - sum) / bound);
      if (gotPlain) worst = Math.max(worst, Math.abs(gotPlain[i * n + j] - sum) / bound);
      worstGgml = Math.max(worstGgml, Math.abs(ref.y[i * n + j] - sum) / bound);
    }
  }
  console.log(`${type}: worst error / bound ${worst.toFixed(4)} (ggml ${worstGgml.toFixed(4)})`);
  expect(worstGgml, `ggml's own ${type} products against float64: worst error / bound`).toBeLessThan(1);
  expect(worst, `${type} ${m}x${n}x${k} on Q8_K rows: worst error / bound`).toBeLessThan(1);
});

test('a wrong input shape is an ArgumentError naming the weight', async () => {
  const w = uploadLinearWeight(device, new Uint8Array(4 * 32 * 2), 'f16', 4, 32, 'blk.0.attn_q.weight');
  const x = fromBytes(new Float32Array(64), [1, 64], 'float32', device);
  expect(() => linearKernel(x, w)).toThrow(/blk\.0\.attn_q\.weight/);
  x.dispose();
  w.dispose();
});
