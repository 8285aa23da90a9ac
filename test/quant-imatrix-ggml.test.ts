// Importance-matrix quantization against ggml itself: every format in the
// registry, quantized by its CPU reference with per-column weights, must give
// the bytes of ggml_quantize_chunk(type, ..., quant_weights) from
// node-llama-cpp's prebuilt libggml-base (test/helpers/ggml-quantize.ts):
// the _impl paths for the formats that use the weights, the reference bytes
// for those whose descriptor says they ignore them. Inputs: random rows with
// random weights, odd imatrices (all zero, ratios up to 1e30, one-hot, equal),
// fp16-tied values (the ties fp16 sources produce), all-zero and tiny blocks,
// and a 3-D tensor whose experts each get their own slice. Formats with a
// weighted WGSL kernel (descriptor weightedKernel) are checked on the GPU too.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { array, close, init, quantize, quantizeHost, quantizeHostWeighted } from '../src/index.js';
import { QUANT_FORMATS } from '../src/quant/registry.js';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../src/runtime/half.js';
import { mulberry32, seededNormals } from '../src/runtime/host-random.js';
import { ggmlQuantizeAvailable, ggmlQuantizeBatch, type GgmlQuantizeJob } from './helpers/ggml-quantize.js';

const N = 512; // row length: two K-quant super-blocks, sixteen 32-blocks
const ROWS = 3;

const gaussian = (n: number, sigma: number, seed: number) => seededNormals(n, seed, sigma);

const toF16 = (x: Float32Array): Float32Array => x.map((v) => f16BitsToF32(f32ToF16Bits(v)));

interface Case {
  name: string;
  x: Float32Array;
  w: Float32Array;
  /** only these formats (the others' searches are not sensitive to it) */
  formats?: readonly string[];
}

/** Rows of unit normals (one seed each) rounded to multiples of 1 / grid. */
function gridRows(seeds: number[], grid: number): Float32Array {
  const x = new Float32Array(seeds.length * N);
  seeds.forEach((seed, r) => x.set(gaussian(N, 1, seed).map((v) => Math.round(v * grid) / grid), r * N));
  return x;
}
const candidateWeights = ((u) => Float32Array.from({ length: N }, () => Math.exp(3 * (u() - 0.5))))(mulberry32(21));

function cases(): Case[] {
  const u = mulberry32(7);
  const x = gaussian(N * ROWS, 0.02, 1);
  const sparse = gaussian(N * ROWS, 1, 2);
  sparse.fill(0, 40, 300); // an all-zero 32-block and most of a super-block
  sparse.fill(1e-20, 700, 760); // tiny values below GROUP_MAX_EPS's reach
  const ties = toF16(x.map((v) => Math.round(v * 400) / 400)); // few distinct values, many exact ties
  return [
    { name: 'random rows, random weights', x, w: Float32Array.from({ length: N }, () => Math.exp(4 * (u() - 0.5))) },
    { name: 'all-zero imatrix', x, w: new Float32Array(N) },
    { name: 'huge ratios (1e-30 .. 1e30)', x: gaussian(N * ROWS, 3, 3), w: Float32Array.from({ length: N }, (_, i) => 10 ** (((i * 37) % 61) - 30)) },
    { name: 'one-hot', x, w: Float32Array.from({ length: N }, (_, i) => (i === 77 ? 1 : 0)) },
    { name: 'equal weights', x: gaussian(N * ROWS, 50, 4), w: new Float32Array(N).fill(0.25) },
    { name: 'fp16-tied values and weights', x: ties, w: toF16(Float32Array.from({ length: N }, (_, i) => 1 + (i % 3))) },
    { name: 'zero and tiny blocks', x: sparse, w: Float32Array.from({ length: N }, () => u() * u()) },
    // Rows where make_qkx3's candidate scales an ulp apart pick different levels:
    // (rmin + rdelta * is) + nmax rounded twice, as ggml does, against
    // rdelta * is + (rmin + nmax) (what Mesa's NIR made of it) changes the bytes
    // of Q2_K (row 0), Q4_K and Q4_1 (row 2), Q5_K and Q5_1 (row 1). Found by
    // search over rows of values on a 1/32 grid (as the blocks of a real
    // model's llama-quantize check that first showed it).
    {
      name: 'candidate scales an ulp apart',
      x: gridRows([1016, 1130, 1613], 32),
      w: candidateWeights,
      formats: ['q2_K', 'q4_K', 'q5_K', 'q4_1', 'q5_1'], // make_qkx3_quants' users
    },
  ];
}

const run = ggmlQuantizeAvailable();

beforeAll(async () => {
  await init();
});
afterAll(async () => {
  await close();
});

describe.runIf(run)('imatrix quantization is byte-identical to ggml_quantize_chunk with quant_weights', () => {
  const formats = [...QUANT_FORMATS.values()];
  const all = cases();
  const jobs: GgmlQuantizeJob[] = [];
  const applies = (fmt: (typeof formats)[number], c: Case) => !c.formats || c.formats.includes(fmt.type.name);
  // jobAt[fi][ci]: the index of format fi's job for case ci
  const jobAt = formats.map((fmt) => all.map((c) => (applies(fmt, c) ? jobs.push({ type: fmt.type, x: c.x, nPerRow: N, weights: c.w }) - 1 : -1)));
  let expected: Uint8Array[] = [];

  test('ggml quantizes every case', () => {
    expected = ggmlQuantizeBatch(jobs);
    expect(expected.length).toBe(jobs.length);
  }, 120_000); // ggml_quantize_init builds the IQ1 neighbour lists: seconds

  formats.forEach((fmt, fi) => {
    test(`${fmt.type.name} (${fmt.imatrix}${fmt.weightedKernel ? ', CPU and WGSL' : ', CPU'})`, async () => {
      all.forEach((c, ci) => {
        if (!applies(fmt, c)) return;
        const got = quantizeHostWeighted(c.x, fmt.type, N, c.w);
        const want = expected[jobAt[fi][ci]];
        const at = got.findIndex((b, i) => b !== want[i]);
        expect(at, `${fmt.type.name}, ${c.name}: first differing byte (block ${Math.floor(at / fmt.type.typeSize)})`).toBe(-1);
        expect(got.length).toBe(want.length);
      });
      if (fmt.weightedKernel) {
        for (const [ci, c] of all.entries()) {
          if (!applies(fmt, c)) continue;
          const a = array(c.x, { shape: [ROWS, N] });
          const q = quantize(a, fmt.type, { imatrix: c.w });
          const got = await q.data();
          a.dispose();
          q.dispose();
          const want = expected[jobAt[fi][ci]];
          const at = got.findIndex((b, i) => b !== want[i]);
          expect(at, `WGSL ${fmt.type.name}, ${c.name}: first differing byte (block ${Math.floor(at / fmt.type.typeSize)})`).toBe(-1);
        }
      }
      if (fmt.imatrix === 'ignored') {
        expect(fmt.quantizeWeightedCpu).toBeUndefined();
      } else if (fmt.imatrix === 'required') {
        // ggml_quantize_chunk asserts quant_weights for these
        expect(() => quantizeHost(all[0].x, fmt.type)).toThrow(/needs an importance matrix/);
        const a = array(all[0].x, { shape: [ROWS, N] });
        expect(() => quantize(a, fmt.type)).toThrow(/needs an importance matrix/);
        a.dispose();
      } else {
        // the weights change the bytes (the test would not see a path that drops them)
        const c = all[0];
        expect(Buffer.compare(quantizeHostWeighted(c.x, fmt.type, N, c.w), quantizeHost(c.x, fmt.type))).not.toBe(0);
      }
    });
  });

  test('a 3-D tensor: each expert\'s rows get their own slice of the weights', async () => {
    const x = gaussian(N * 4, 1, 9);
    const w = Float32Array.from({ length: 2 * N }, (_, i) => (i < N ? 1 + (i % 5) : 1 / (1 + (i % 7))));
    const names = ['q4_K', 'iq4_xs', 'q5_0', ...[...QUANT_FORMATS.values()].filter((f) => f.weightedKernel).map((f) => f.type.name)];
    // one python process for all (ggml_quantize_init of the lattice formats takes seconds per process)
    const halves = ggmlQuantizeBatch(
      names.flatMap((name) => [
        { type: QUANT_FORMATS.get(name)!.type, x: x.subarray(0, 2 * N), nPerRow: N, weights: w.subarray(0, N) },
        { type: QUANT_FORMATS.get(name)!.type, x: x.subarray(2 * N), nPerRow: N, weights: w.subarray(N) },
      ]),
    );
    for (const [k, name] of names.entries()) {
      const fmt = QUANT_FORMATS.get(name)!;
      const [a, b] = halves.slice(2 * k, 2 * k + 2);
      const got = quantizeHostWeighted(x, fmt.type, N, w);
      expect(Buffer.from(got).equals(Buffer.concat([a, b])), name).toBe(true);
      if (fmt.weightedKernel) {
        const arr = array(x, { shape: [2, 2, N] });
        const q = quantize(arr, fmt.type, { imatrix: w });
        expect(Buffer.from(await q.data()).equals(Buffer.concat([a, b])), `WGSL ${name}`).toBe(true);
        arr.dispose();
        q.dispose();
      }
    }
    expect(() => quantizeHostWeighted(x, 'q4_K', N, new Float32Array(3 * N))).toThrow(/3 x|1536 importance weights for 4 rows of 512/);
  }, 120_000);

  test('weighted kernels read float16, bfloat16 and views that start mid-vector as their float32 values', async () => {
    // The CPU path is ggml's bytes (above); every dtype and window alignment of the kernels' loaders against it.
    const u = mulberry32(11);
    const w = Float32Array.from({ length: N }, () => Math.exp(3 * (u() - 0.5)));
    const all = gaussian(2 * N + 8, 1, 12);
    for (const fmt of formats.filter((f) => f.weightedKernel)) {
      for (const [dtype, toBits, fromBits] of [
        ['float16', f32ToF16Bits, f16BitsToF32],
        ['bfloat16', f32ToBf16Bits, bf16BitsToF32],
      ] as const) {
        for (const offset of [0, 3]) {
          const bits = Uint16Array.from(all, (v) => toBits(v));
          const values = Float32Array.from(bits.subarray(offset, offset + 2 * N), (h) => fromBits(h));
          const base = array(bits, { dtype });
          const view = base.slice([offset, offset + 2 * N]).reshape(2, N);
          const q = quantize(view, fmt.type, { imatrix: w });
          const got = await q.data();
          q.dispose();
          view.dispose();
          base.dispose();
          const want = quantizeHostWeighted(values, fmt.type, N, w);
          const at = got.findIndex((b, i) => b !== want[i]);
          expect(at, `WGSL ${fmt.type.name}, ${dtype}, offset ${offset}: first differing byte`).toBe(-1);
        }
      }
      const view32 = array(all).slice([5, 5 + 2 * N]).reshape(2, N);
      const q = quantize(view32, fmt.type, { imatrix: w });
      const got = await q.data();
      q.dispose();
      view32.dispose();
      const want = quantizeHostWeighted(all.slice(5, 5 + 2 * N), fmt.type, N, w);
      expect(got.findIndex((b, i) => b !== want[i]), `WGSL ${fmt.type.name}, float32 at offset 5`).toBe(-1);
    }
  });

  test('quantize() with an imatrix refuses a wrong weight count, and formats without a weighted kernel', () => {
    const a = array(new Float32Array(2 * N), { shape: [2, N] });
    expect(() => quantize(a, 'q6_K', { imatrix: new Float32Array(N - 1) })).toThrow(/511 importance weights; expected 512 \(the row length\)/);
    const without = [...QUANT_FORMATS.values()].find((f) => f.imatrix === 'optional' && !f.weightedKernel);
    if (without) expect(() => quantize(a, without.type, { imatrix: new Float32Array(N) })).toThrow(/no WGSL kernel for it yet \(quantizeHostWeighted/);
    // formats that ignore the weights take them and give the reference bytes
    quantize(a, 'q8_0', { imatrix: new Float32Array(N) }).dispose();
    a.dispose();
  });
});

