// IQ1_S and IQ1_M against ggml itself (node-llama-cpp's prebuilt libggml-base
// through ctypes, test/helpers/ggml-quantize.ts): the CPU references and the
// WGSL kernels must give ggml_quantize_chunk's bytes with quant_weights (and,
// for IQ1_M, without: IQ1_S is one of ggml_quantize_requires_imatrix's types),
// and dequantize bit for bit as dequantize_row_iq1_s / _m.
//
// The inputs aim at what is particular to IQ1: the split search sorts each
// sub-block with qsort and a comparator without a tie-break, so equal values
// (fp16 and bf16 sources are full of them, zeros and -0 included) must come
// out in glibc's order; groups whose levels are off the grid go through the
// neighbour lists; negative best scales flip the levels; sub-blocks below
// GROUP_MAX_EPS_IQ1_S / _M (1e-12 / 1e-7) and all-zero weights skip the search.
// One python process serves the whole file: ggml builds IQ1's neighbour lists
// (ggml_quantize_init) in seconds on every start.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { array, close, dequantize, dequantizeHost, init, QuantizedArray, quantize, quantizeHost, quantizeHostWeighted } from '../src/index.js';
import { GpuStorage } from '../src/runtime/pool.js';
import { ArgumentError } from '../src/errors.js';
import { QUANT_FORMATS } from '../src/quant/registry.js';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../src/runtime/half.js';
import { mulberry32, seededNormals } from '../src/runtime/host-random.js';
import { ggmlQuantizeAvailable, ggmlQuantizeBatch, libggmlBasePath, type GgmlQuantizeJob } from './helpers/ggml-quantize.js';

const N = 512; // two super-blocks per row
const ROWS = 4;

const toF16 = (x: Float32Array) => x.map((v) => f16BitsToF32(f32ToF16Bits(v)));
const toBf16 = (x: Float32Array) => x.map((v) => bf16BitsToF32(f32ToBf16Bits(v)));
const gaussian = (n: number, sigma: number, seed: number) => seededNormals(n, seed, sigma);

interface Case {
  name: string;
  x: Float32Array;
  w: Float32Array;
}

function cases(): Case[] {
  const u = mulberry32(11);
  const logNormal = (seed: number) => seededNormals(N, seed, 1.5).map((v) => Math.exp(v));
  const n = N * ROWS;
  const levels = (sigma: number, step: number, seed: number) => gaussian(n, sigma, seed).map((v) => Math.round(v / step) * step);
  // zeros of both signs among few fp16 values: long runs of ties, -0 == +0 to the comparator
  const signedZeros = toF16(levels(0.02, 0.01, 5).map((v, i) => (v === 0 && i % 3 === 0 ? -0 : v)));
  const thresholds = gaussian(n, 1, 6);
  for (let r = 0; r < ROWS; r++) {
    const o = r * N;
    thresholds.fill(0, o, o + 32); // an all-zero sub-block
    for (let i = 32; i < 64; i++) thresholds[o + i] = (u() - 0.5) * 1e-12; // below both formats' GROUP_MAX_EPS
    for (let i = 64; i < 96; i++) thresholds[o + i] = (u() - 0.5) * 1e-8; // above IQ1_S's, below IQ1_M's
    for (let i = 96; i < 128; i++) thresholds[o + i] = (u() - 0.5) * 1e-6;
    if (r === 1) thresholds.fill(0, o + 256, o + 512); // an all-zero super-block
  }
  const constant = new Float32Array(n).map((_, i) => [0.5, -0.25, 3, -1e-3][Math.floor(i / 16) % 4]);
  const spikes = new Float32Array(n).map((_, i) => (i % 16 === i % 7 ? (i % 2 ? 1 : -1) * (1 + (i % 5)) : 0.01 * ((i % 3) - 1)));
  const skewed = gaussian(n, 1, 7).map((v) => (v > 0 ? v * v * 4 : v * 0.1)); // one-sided: negative best scales
  return [
    { name: 'gaussian rows, log-normal weights', x: gaussian(n, 0.02, 1), w: logNormal(2) },
    { name: 'fp16 values on a coarse grid (ties)', x: toF16(levels(0.03, 0.005, 3)), w: toF16(logNormal(4)) },
    { name: 'fp16 ties with +0 and -0', x: signedZeros, w: Float32Array.from({ length: N }, (_, i) => 1 + (i % 4)) },
    { name: 'bf16 values (ties)', x: toBf16(gaussian(n, 0.05, 8)), w: toBf16(logNormal(9)) },
    { name: 'constant sub-blocks, equal weights', x: constant, w: new Float32Array(N).fill(0.5) },
    { name: 'zero, tiny and threshold sub-blocks', x: thresholds, w: logNormal(10) },
    { name: 'one spike per 16, one-hot weights', x: spikes, w: Float32Array.from({ length: N }, (_, i) => (i % 37 === 3 ? 1 : 0)) },
    { name: 'one-sided values, spread weights', x: skewed, w: Float32Array.from({ length: N }, (_, i) => 10 ** (((i * 13) % 17) - 8)) },
    { name: 'all-zero imatrix', x: gaussian(n, 1, 12), w: new Float32Array(N) },
    // runs of equal values whose weights differ by orders of magnitude: the rounding of
    // IQ1_S's prefix sums depends on the order ties come in
    { name: 'fp16 ties, weights over 12 decades', x: toF16(levels(1, 0.25, 13)), w: Float32Array.from({ length: N }, () => 10 ** (12 * u() - 6)) },
    { name: 'three values, random weights', x: toF16(gaussian(n, 1, 14).map((v) => Math.sign(Math.round(v)) * 0.5)), w: Float32Array.from({ length: N }, () => u() * u()) },
  ];
}

const FORMATS = ['iq1_s', 'iq1_m'].map((name) => QUANT_FORMATS.get(name)!);

const DEQUANT_SCRIPT = String.raw`
import ctypes, sys, json
lib = ctypes.CDLL(sys.argv[1])
for j in json.load(open(sys.argv[2])):
    data = open(j['blocks'], 'rb').read()
    src = ctypes.create_string_buffer(data, len(data))
    out = ctypes.create_string_buffer(4 * j['n'])
    getattr(lib, 'dequantize_row_' + j['type'])(src, out, ctypes.c_int64(j['n']))
    open(j['out'], 'wb').write(out.raw)
`;

/** ggml's dequantize_row_<type> of each job's blocks, in one python3 process. */
function ggmlDequantize(jobs: { type: string; blocks: Uint8Array; n: number }[]): Float32Array[] {
  const dir = mkdtempSync(join(tmpdir(), 'wgarray-iq1-'));
  try {
    const manifest = jobs.map((j, i) => {
      const blocks = join(dir, `b${i}`);
      writeFileSync(blocks, j.blocks);
      return { type: j.type, n: j.n, blocks, out: join(dir, `o${i}`) };
    });
    writeFileSync(join(dir, 'jobs.json'), JSON.stringify(manifest));
    const r = spawnSync('python3', ['-c', DEQUANT_SCRIPT, libggmlBasePath()!, join(dir, 'jobs.json')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`dequantize_row (batch of ${jobs.length}) failed: ${r.stderr || r.error}`);
    return manifest.map((j) => {
      const b = readFileSync(j.out);
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const firstDiff = (got: Uint8Array, want: Uint8Array) => {
  const at = got.findIndex((b, i) => b !== want[i]);
  return got.length !== want.length && at < 0 ? Math.min(got.length, want.length) : at;
};

const run = ggmlQuantizeAvailable();

beforeAll(async () => {
  await init();
});
afterAll(async () => {
  await close();
});

describe.runIf(run)('IQ1_S and IQ1_M are byte-identical to ggml', () => {
  const all = cases();
  // per format: every case with weights, then (IQ1_M) every case without
  const jobs: GgmlQuantizeJob[] = FORMATS.flatMap((f) => [
    ...all.map((c) => ({ type: f.type, x: c.x, nPerRow: N, weights: c.w })),
    ...(f.imatrix === 'required' ? [] : all.map((c) => ({ type: f.type, x: c.x, nPerRow: N }))),
  ]);
  let expected: Uint8Array[] = [];
  const want = (name: string, ci: number, weighted: boolean) => {
    let k = 0;
    for (const f of FORMATS) {
      if (f.type.name === name) return expected[k + (weighted ? 0 : all.length) + ci];
      k += all.length * (f.imatrix === 'required' ? 1 : 2);
    }
    throw new Error(name);
  };

  test('ggml quantizes every case', () => {
    expected = ggmlQuantizeBatch(jobs);
    expect(expected.length).toBe(jobs.length);
  }, 120_000);

  test('the inputs hold ties within sub-blocks, as fp16 sources do', () => {
    // guards the sort's tie order: most sub-blocks of the tied cases have equal values
    for (const [i, c] of all.slice(1, 4).entries()) {
      let tied = 0;
      for (let o = 0; o < c.x.length; o += 16) if (new Set(c.x.subarray(o, o + 16)).size < 16) tied++;
      // bf16 keeps 8 significant bits: fewer ties among 16 Gaussian values, still many
      expect(tied, c.name).toBeGreaterThan(c.x.length / 16 / (i === 2 ? 16 : 2));
    }
  });

  for (const f of FORMATS) {
    const name = f.type.name;
    test(`${name}: CPU reference = ggml, with quant_weights${f.imatrix === 'required' ? '' : ' and without'}`, () => {
      all.forEach((c, ci) => {
        expect(firstDiff(quantizeHostWeighted(c.x, name, N, c.w), want(name, ci, true)), `${name} weighted, ${c.name}`).toBe(-1);
        if (f.imatrix !== 'required') expect(firstDiff(quantizeHost(c.x, name), want(name, ci, false)), `${name}, ${c.name}`).toBe(-1);
      });
    }, 120_000);

    test(`${name}: WGSL kernel = ggml, with quant_weights${f.imatrix === 'required' ? '' : ' and without'}`, async () => {
      for (const [ci, c] of all.entries()) {
        const a = array(c.x, { shape: [ROWS, N] });
        const q = quantize(a, name, { imatrix: c.w });
        expect(firstDiff(await q.data(), want(name, ci, true)), `WGSL ${name} weighted, ${c.name}`).toBe(-1);
        q.dispose();
        if (f.imatrix !== 'required') {
          const p = quantize(a, name);
          expect(firstDiff(await p.data(), want(name, ci, false)), `WGSL ${name}, ${c.name}`).toBe(-1);
          p.dispose();
        }
        a.dispose();
      }
    }, 300_000);

    test(`${name}: dequantize (CPU and WGSL) = ggml's dequantize_row_${name}, bit for bit`, async () => {
      // ggml's own blocks, and random bytes whose float16 scale is finite
      const u = mulberry32(21);
      const random = Uint8Array.from({ length: 16 * f.type.typeSize }, () => Math.floor(u() * 256));
      for (let b = 0; b < 16; b++) {
        if (name === 'iq1_s') random[b * f.type.typeSize + 1] &= 0x3b; // d: exponent below 31
        else random[b * f.type.typeSize + 55] &= 0x3b; // d's top nibble in scales[7]
      }
      const inputs = [want(name, 0, true), want(name, 5, true), random];
      const ref = ggmlDequantize(inputs.map((blocks) => ({ type: name, blocks, n: (blocks.length / f.type.typeSize) * 256 })));
      for (const [i, blocks] of inputs.entries()) {
        const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);
        const cpu = dequantizeHost(blocks, name);
        expect(bits(cpu)).toEqual(bits(ref[i]));
        const dev = await init();
        const storage = GpuStorage.allocate(dev, blocks.length, 'iq1 blocks');
        dev.writeBuffer(storage.buffer, 0, blocks);
        const q = new QuantizedArray(storage, [blocks.length / f.type.typeSize, 256], f.type);
        const d = dequantize(q);
        expect(bits(await d.data())).toEqual(bits(ref[i]));
        d.dispose();
        q.dispose();
      }
    }, 120_000);
  }

  test('IQ1_S without an importance matrix is refused, as ggml asserts', () => {
    const x = gaussian(256, 1, 1);
    expect(() => quantizeHost(x, 'iq1_s')).toThrow(ArgumentError);
    const a = array(x, { shape: [1, 256] });
    expect(() => quantize(a, 'iq1_s')).toThrow(/needs an importance matrix/);
    a.dispose();
  });

  test('float16 input and 3-D expert weights on the GPU = the CPU reference', async () => {
    const x = toF16(gaussian(2 * 3 * N, 0.05, 30));
    const w = Float32Array.from({ length: 2 * N }, (_, i) => 1 + ((i * 7) % 11));
    for (const name of ['iq1_s', 'iq1_m']) {
      const a = array(x, { shape: [2, 3, N], dtype: 'float16' });
      const q = quantize(a, name, { imatrix: w });
      expect(firstDiff(await q.data(), quantizeHostWeighted(x, name, N, w)), name).toBe(-1);
      a.dispose();
      q.dispose();
    }
  }, 120_000);
});
