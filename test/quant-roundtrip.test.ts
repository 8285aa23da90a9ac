// Every implemented block format (QUANT_FORMATS) on data other than the golden
// vectors: GPU bytes equal the CPU reference's on several shapes (odd block
// counts, a view that starts mid-block, float16/bfloat16 inputs), quantize ->
// dequantize stays within the format's error, zero and constant blocks, and
// non-finite input (GPU = CPU, finite blocks unaffected; the formats whose
// descriptor says nonFinite: 'marked' give such a block NaN scales, see src/quant/formats/block-helpers.ts).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  array,
  close,
  dequantize,
  dequantizeHost,
  f32ToBf16Bits,
  f32ToF16Bits,
  bf16BitsToF32,
  f16BitsToF32,
  init,
  QUANT_FORMATS,
  quantize,
  quantizeHost,
  quantizeHostWeighted,
  type QuantFormat,
  type QuantizedArray,
  type WgArray,
} from '../src/index.js';
import { bestIndexInt8, iq4nlIndex, KVALUES_IQ4NL } from '../src/quant/formats/block-helpers.js';
import { firstDiff, ulpDistance } from './helpers/golden.js';

/**
 * Relative RMS error (|dequantized - x| / |x| over the array) allowed per format:
 * about 1.2x what the CPU reference gives on Gaussian data. A new format needs a line.
 */
const ERROR_BOUND: Record<string, number> = {
  q8_0: 0.007,
  q4_0: 0.105,
  q4_1: 0.095,
  q5_0: 0.052,
  q5_1: 0.047,
  q2_K: 0.36,
  q3_K: 0.19,
  q4_K: 0.09,
  q5_K: 0.045,
  q6_K: 0.022,
  iq4_nl: 0.095,
  iq4_xs: 0.095,
  mxfp4: 0.14,
  // ternary: one scale per 256 weights, three levels
  tq1_0: 0.85,
  tq2_0: 0.85,
  // 3.06 / 3.44 bits per weight on a grid of 4-value points
  iq3_xxs: 0.26,
  iq3_s: 0.2,
  // 2 bits per weight on an E8 lattice grid (IQ2_XXS / IQ2_XS with a uniform imatrix)
  iq2_xxs: 0.41,
  iq2_xs: 0.36,
  iq2_s: 0.32,
  // 1.75 bits per weight, weights x^2 without an importance matrix
  iq1_m: 0.7,
  // 1.56 bits per weight with a uniform imatrix (measured 0.49)
  iq1_s: 0.55,
};

/**
 * How far a constant block's value may land: the scales' own rounding (float16,
 * 6- or 8-bit sub-scales) allows a few percent; MXFP4's largest level is
 * 1.5 * 2^floor(log2 amax), so it clips by up to 25%.
 */
const constantBound = (name: string) => (name === 'mxfp4' ? 0.25 : Math.max(0.05, ERROR_BOUND[name]));

/**
 * Formats whose blocks with NaN or ±Inf input get NaN scales and zero quants
 * (MXFP4: exponent 0xff, the OCP NaN code), dequantizing to NaN (MXFP4 in ggml: zeros).
 */
const NON_FINITE_MARKED = new Set([...QUANT_FORMATS.values()].filter((f) => f.nonFinite === 'marked').map((f) => f.type.name));

/**
 * Formats ggml quantizes only with an importance matrix (descriptor imatrix
 * 'required') are checked here with a uniform one: these IQ formats weigh each
 * super-block on its own, so one block's worth of ones stands for any row length.
 */
const REQUIRES_IMATRIX = new Set([...QUANT_FORMATS.values()].filter((f) => f.imatrix === 'required').map((f) => f.type.name));

/** quantizeHost, with a uniform importance matrix where the format requires one. */
function hostQuantize(x: Float32Array, type: string): Uint8Array {
  if (!REQUIRES_IMATRIX.has(type)) return quantizeHost(x, type);
  const bs = QUANT_FORMATS.get(type)!.type.blockSize;
  return quantizeHostWeighted(x, type, bs, new Float32Array(bs).fill(1));
}

/** quantize(), with a uniform importance matrix where the format requires one. */
function gpuQuantizeArray(a: WgArray, type: string): QuantizedArray {
  return quantize(a, type, REQUIRES_IMATRIX.has(type) ? { imatrix: new Float32Array(a.shape[a.shape.length - 1]).fill(1) } : {});
}

/** Shapes as [rows, blocks per row]: 3 x 512 and 1 x 8192 for 32-weight blocks, odd block counts, one block. */
const SHAPES: [number, number][] = [
  [3, 16],
  [1, 256],
  [5, 3],
  [7, 5],
  [1, 1],
];

/** Seeded Gaussian values (Box-Muller over an LCG), `sigma` wide. */
function gaussian(n: number, sigma: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  const uniform = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const t = 2 * Math.PI * uniform();
    x[i] = r * Math.cos(t) * sigma;
    if (i + 1 < n) x[i + 1] = r * Math.sin(t) * sigma;
  }
  return x;
}

function relativeRmsError(got: Float32Array, want: Float32Array): number {
  let e = 0;
  let r = 0;
  for (let i = 0; i < want.length; i++) {
    e += (got[i] - want[i]) ** 2;
    r += want[i] ** 2;
  }
  return Math.sqrt(e / r);
}

function maxUlp(got: Float32Array, want: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, ulpDistance(got[i], want[i]));
  return worst;
}

function blockDiff(f: QuantFormat, got: Uint8Array, want: Uint8Array): string {
  const at = firstDiff(got, want);
  return at < 0 ? 'equal' : `${f.type.name}: bytes differ from byte ${at} (block ${Math.floor(at / f.type.typeSize)})`;
}

async function gpuQuantize(x: Float32Array | Uint16Array, shape: number[], type: string, dtype = 'float32' as 'float32' | 'float16' | 'bfloat16'): Promise<Uint8Array> {
  const a = array(x, { shape, dtype });
  const q = gpuQuantizeArray(a, type);
  try {
    return await q.data();
  } finally {
    a.dispose();
    q.dispose();
  }
}

beforeAll(async () => {
  await init();
});
afterAll(async () => {
  await close();
});

describe.each([...QUANT_FORMATS.values()].map((f) => ({ name: f.type.name, f })))('$name', ({ name, f }) => {
  const bs = f.type.blockSize;

  test('random data of several shapes: GPU bytes = CPU bytes, dequantized within the error bound', async () => {
    const bound = ERROR_BOUND[name];
    expect(bound, `no error bound for ${name} in this test`).toBeDefined();
    let err2 = 0;
    let ref2 = 0;
    for (const [i, [rows, blocks]] of SHAPES.entries()) {
      for (const sigma of [0.02, 1]) {
        const shape = [rows, blocks * bs];
        const x = gaussian(rows * blocks * bs, sigma, 1000 * i + (sigma === 1 ? 1 : 2));
        const want = hostQuantize(x, name);
        const got = await gpuQuantize(x, shape, name);
        expect(blockDiff(f, got, want), `shape [${shape}], sigma ${sigma}`).toBe('equal');
        const back = dequantizeHost(want, name);
        // Few blocks give a noisy estimate: each case gets twice the bound, all together the bound.
        const rel = relativeRmsError(back, x);
        expect(rel, `shape [${shape}], sigma ${sigma}`).toBeLessThan(2 * bound);
        const norm2 = x.reduce((a, v) => a + v * v, 0) / sigma ** 2;
        err2 += rel ** 2 * norm2;
        ref2 += norm2;
        if (sigma === 1) {
          const a = array(x, { shape });
          const q = gpuQuantizeArray(a, name);
          const y = dequantize(q);
          const gpuBack = (await y.data()) as Float32Array;
          a.dispose();
          q.dispose();
          y.dispose();
          expect(maxUlp(gpuBack, back), `GPU dequantize, shape [${shape}]`).toBeLessThanOrEqual(1);
        }
      }
    }
    expect(Math.sqrt(err2 / ref2), 'over all shapes').toBeLessThan(bound);
  });

  test('a view that starts mid-block quantizes its own elements (float32 and float16)', async () => {
    for (const dtype of ['float32', 'float16'] as const) {
      for (const offset of [1, 3, 6]) {
        const n = 4 * bs;
        const all = gaussian(n + offset, 1, 77 + offset);
        const bits = Uint16Array.from(all, (v) => f32ToF16Bits(v));
        const values = dtype === 'float32' ? all : Float32Array.from(bits, (h) => f16BitsToF32(h));
        const base = dtype === 'float32' ? array(all) : array(bits, { dtype });
        const view = base.slice([offset, offset + n]).reshape(2, 2 * bs);
        const q = gpuQuantizeArray(view, name);
        const got = await q.data();
        q.dispose();
        base.dispose();
        view.dispose();
        expect(blockDiff(f, got, hostQuantize(values.slice(offset), name)), `${dtype}, offset ${offset}`).toBe('equal');
      }
    }
  });

  test('float16 and bfloat16 inputs give the bytes of their float32 values', async () => {
    const shape = [3, 2 * bs];
    const x = gaussian(6 * bs, 0.5, 5);
    for (const [dtype, toBits, fromBits] of [
      ['float16', f32ToF16Bits, f16BitsToF32],
      ['bfloat16', f32ToBf16Bits, bf16BitsToF32],
    ] as const) {
      const bits = Uint16Array.from(x, (v) => toBits(v));
      const got = await gpuQuantize(bits, shape, name, dtype);
      expect(blockDiff(f, got, hostQuantize(Float32Array.from(bits, (h) => fromBits(h)), name)), dtype).toBe('equal');
    }
  });

  test('zero blocks decode to zeros, constant blocks to one value', async () => {
    const constants = [0, 1, -0.37, 1e-3, 250, 0, -7.5, 0.7];
    const x = new Float32Array(constants.length * bs);
    constants.forEach((c, b) => x.fill(c, b * bs, (b + 1) * bs));
    const bytes = hostQuantize(x, name);
    expect(blockDiff(f, await gpuQuantize(x, [2, 4 * bs], name), bytes)).toBe('equal');
    const back = dequantizeHost(bytes, name);
    constants.forEach((c, b) => {
      const block = back.subarray(b * bs, (b + 1) * bs);
      // grid formats (descriptor `tables`: the IQ grids) snap each 4 values to a grid point, whose values
      // need not be equal (IQ3: up to ~30% apart; IQ2_XXS's grid has no constant point at most levels): their least-squares fit keeps the mean
      if (f.tables) {
        const mean = block.reduce((a, v) => a + v, 0) / block.length;
        if (c !== 0) expect(Math.abs(mean - c) / Math.abs(c), `mean of the block of ${c}`).toBeLessThan(constantBound(name));
      } else expect(new Set(block).size, `block of ${c}`).toBe(1);
      if (c === 0) expect(block[0] === 0, `zero block decodes to ${block[0]}`).toBe(true); // ggml gives -0 for some
      else if (!f.tables) expect(Math.abs(block[0] - c) / Math.abs(c), `block of ${c}`).toBeLessThan(constantBound(name));
    });
  });

  test('finite extremes: huge values (float32 sums overflow), tiny and subnormal ones, GPU = CPU', async () => {
    const scales = [3e38, 1e30, 1e20, 1e-30, 1e-38, 1e-40, 1e-44];
    const x = new Float32Array(scales.length * 2 * bs);
    scales.forEach((sc, k) => x.set(gaussian(2 * bs, sc, 300 + k), k * 2 * bs));
    expect(blockDiff(f, await gpuQuantize(x, [scales.length, 2 * bs], name), hostQuantize(x, name))).toBe('equal');
  });

  test('NaN and ±Inf: GPU = CPU, finite blocks unaffected, the block marked invalid', async () => {
    // Blocks: finite, one NaN, +Inf, finite, -Inf, all NaN, finite, NaN and Inf.
    const poison: (number[] | null)[] = [null, [NaN], [Infinity], null, [-Infinity], null, null, [NaN, Infinity]];
    const x = gaussian(poison.length * bs, 1, 99);
    poison.forEach((p, b) => p?.forEach((v, k) => (x[b * bs + 3 + 5 * k] = v)));
    x.fill(NaN, 5 * bs, 6 * bs);
    poison[5] = [NaN];
    const bytes = hostQuantize(x, name);
    expect(blockDiff(f, await gpuQuantize(x, [2, 4 * bs], name), bytes)).toBe('equal');
    const ts = f.type.typeSize;
    poison.forEach((p, b) => {
      const block = bytes.subarray(b * ts, (b + 1) * ts);
      if (!p) {
        expect(blockDiff(f, block, hostQuantize(x.subarray(b * bs, (b + 1) * bs), name)), `finite block ${b}`).toBe('equal');
      } else if (!NON_FINITE_MARKED.has(name)) {
        // ggml's own behaviour here hits undefined float -> int conversions; only GPU = CPU is required.
      } else if (name === 'mxfp4') {
        // E8M0 0xff is the OCP NaN code; ggml reads 2^127 and the zero quants decode to zeros.
        expect([...block], `block ${b}`).toEqual([0xff, ...new Array(ts - 1).fill(0)]);
      } else {
        const back = dequantizeHost(block, name);
        expect(back.every(Number.isNaN), `block ${b} dequantizes to NaN`).toBe(true);
      }
    });
  });
});

test('MXFP4: block maxima just below powers of two get the exponent of a correctly rounded log2f', async () => {
  // floorf(log2f(amax)) rounds up to the next integer when amax is within a few
  // float steps of a power of two and that integer is coarse enough in float32.
  const maxima: number[] = [];
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let e = 1; e < 255; e += 3) {
    for (const j of [1, 2, 3, 5, 11, 12, 22, 23, 44, 45, 88, 89]) {
      u[0] = ((e << 23) | (0x800000 - j)) >>> 0;
      maxima.push(f[0]);
    }
  }
  const x = new Float32Array(maxima.length * 32);
  maxima.forEach((m, b) => {
    for (let j = 0; j < 32; j++) x[b * 32 + j] = (m * (j - 15.5)) / 16.5;
    x[b * 32 + (b % 32)] = b % 2 ? -m : m;
  });
  const shape = [maxima.length, 32];
  expect(blockDiff(QUANT_FORMATS.get('mxfp4')!, await gpuQuantize(x, shape, 'mxfp4'), hostQuantize(x, 'mxfp4'))).toBe('equal');
});

test('IQ4: the midpoint count (CPU and WGSL) equals ggml\'s best_index_int8 for every float near every midpoint', () => {
  // The kernels and iq4nlIndex pick the level by comparing x with the midpoints
  // between levels; ggml compares x - val[k] with val[k+1] - x in float32. Every
  // float32 within 20000 ulps of a midpoint, a level or zero, and NaN.
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const mids = KVALUES_IQ4NL.slice(1).map((v, k) => (v + KVALUES_IQ4NL[k]) / 2);
  let mismatches = 0;
  let checked = 0;
  for (const centre of [...mids, ...KVALUES_IQ4NL, 0].flatMap((c) => [c, -c])) {
    f[0] = centre;
    const bits = u[0];
    for (let d = -20000; d <= 20000; d++) {
      u[0] = (bits + d) >>> 0;
      const x = f[0];
      if (!Number.isFinite(x)) continue;
      checked++;
      if (bestIndexInt8(KVALUES_IQ4NL, x) !== iq4nlIndex(x)) mismatches++;
    }
  }
  expect(checked).toBeGreaterThan(1_000_000);
  expect(mismatches).toBe(0);
  expect(iq4nlIndex(NaN)).toBe(bestIndexInt8(KVALUES_IQ4NL, NaN));
});
