// Q2_K, Q4_K and Q5_K (make_qkx2_quants) against ggml itself on inputs built
// to reach its corner cases: ggml_quantize_chunk from node-llama-cpp's prebuilt
// libggml-base (test/helpers/ggml-quantize.ts) quantizes each case, and the GPU
// kernel and the CPU reference must give its bytes. The cases reach what the
// golden vectors may not: the candidate search's offset landing at the
// sub-block's max (so ggml's nearest_int sees values past 2^22, Inf or NaN),
// float32 sums that overflow, subnormal scales, exact ties, NaN and ±Inf
// (K-quants use no float -> int conversion, so ggml's bytes are defined there).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { array, close, init, quantize, quantizeHost } from '../src/index.js';
import { ggmlType } from '../src/quant/ggml-types.js';
import { ggmlQuantize, ggmlQuantizeAvailable } from './helpers/ggml-quantize.js';

const QK = 256;

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
}

function gaussian(n: number, sigma: number, seed: number): Float32Array {
  const u = lcg(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const t = 2 * Math.PI * u();
    x[i] = r * Math.cos(t) * sigma;
    if (i + 1 < n) x[i + 1] = r * Math.sin(t) * sigma;
  }
  return x;
}

const fill = (v: number) => new Float32Array(QK).fill(v);
const each = (f: (i: number, u: () => number) => number, seed = 1) => {
  const u = lcg(seed);
  return Float32Array.from({ length: QK }, (_, i) => f(i, u));
};
const poke = (x: Float32Array, at: Record<number, number>) => {
  for (const [i, v] of Object.entries(at)) x[Number(i)] = v;
  return x;
};

/** One super-block of 256 values per case. */
const CASES: [string, Float32Array][] = [
  ...[3e38, 1e30, 1e20, 1, 1e-3, 1e-30, 1e-38, 1e-40, 1e-44].map((s, k): [string, Float32Array] => [`gaussian ${s}`, gaussian(QK, s, 10 + k)]),
  ['all negative, each 16 ending at 0', each((i, u) => (i % 16 === 5 ? 0 : -Math.abs(u() - 0.3)))],
  ['all negative, each 32 ending at 0', each((i, u) => (i % 32 === 7 ? 0 : -u()), 2)],
  ['all positive', gaussian(QK, 1, 3).map((v) => Math.abs(v) + 0.5)],
  ['one spike per 16', each((i) => (i % 16 === i % 7 ? (i % 3) - 1 : 0))],
  ['Cauchy tails', each((_, u) => Math.tan(Math.PI * (u() - 0.5)), 4)],
  ['small integers (ties)', each((_, u) => Math.floor(u() * 9) - 4, 5)],
  ['eighths (ties)', each((_, u) => (Math.floor(u() * 9) - 4) * 0.125, 6)],
  ['two values', each((i) => (i % 2 ? 0.01 : -0.01))],
  ['huge and tiny halves', each((i, u) => (i < 128 ? 1e30 : 1e-30) * (u() - 0.5), 7)],
  ['±3e38 sub-blocks', each((i, u) => (Math.floor(i / 32) % 2 ? 3e38 : -3e38) * u(), 8)],
  ...[0, -0, 1, -1, 3e38, -3e38, 1e-45].map((c): [string, Float32Array] => [`constant ${Object.is(c, -0) ? '-0' : c}`, fill(c)]),
  ['one NaN', poke(gaussian(QK, 1, 20), { 3: NaN })],
  ['one +Inf', poke(gaussian(QK, 1, 21), { 40: Infinity })],
  ['-Inf and NaN', poke(gaussian(QK, 1, 22), { 77: -Infinity, 200: NaN })],
  ['all NaN', fill(NaN)],
  ['all +Inf', fill(Infinity)],
  ...Array.from({ length: 24 }, (_, k): [string, Float32Array] => {
    const s = 10 ** (lcg(100 + k)() * 8 - 4);
    return [`gaussian 10^${Math.log10(s).toFixed(2)}`, gaussian(QK, s, 100 + k)];
  }),
];

const input = new Float32Array(CASES.length * QK);
CASES.forEach(([, x], c) => input.set(x, c * QK));

/** Names of the cases whose block differs between got and want. */
function differing(got: Uint8Array, want: Uint8Array, typeSize: number): string[] {
  const bad: string[] = [];
  CASES.forEach(([name], c) => {
    for (let i = c * typeSize; i < (c + 1) * typeSize; i++) {
      if (got[i] !== want[i]) {
        bad.push(name);
        return;
      }
    }
  });
  return bad;
}

const available = ggmlQuantizeAvailable();

beforeAll(async () => {
  await init();
});
afterAll(async () => {
  await close();
});

describe.skipIf(!available).each(['q2_K', 'q4_K', 'q5_K'])('%s', (name) => {
  const t = ggmlType(name);
  const want = available ? ggmlQuantize(t, input, QK) : new Uint8Array();

  test('CPU reference = ggml_quantize_chunk on every case', () => {
    expect(differing(quantizeHost(input, t), want, t.typeSize)).toEqual([]);
  });

  test('GPU kernel = ggml_quantize_chunk on every case', async () => {
    const x = array(input, { shape: [CASES.length, QK] });
    const q = quantize(x, t);
    const got = await q.data();
    x.dispose();
    q.dispose();
    expect(differing(got, want, t.typeSize)).toEqual([]);
  });
});
