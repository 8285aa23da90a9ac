// IQ3_XXS and IQ3_S against ggml itself, beyond what the registry-wide tests
// (quant-roundtrip, quant-kquant-ggml, quant-imatrix-ggml) check:
//   - the grid tables (src/quant/grids/iq3xs-data.ts) regenerate byte for byte
//     from the llama.cpp source node-llama-cpp ships (scripts/gen-iq3xs-grids.mjs);
//   - the CPU references give ggml_quantize_chunk's bytes, with and without
//     quant_weights, on inputs that reach the search's corners: sub-blocks
//     skipped in the middle of a super-block (IQ3_S then writes the next ones'
//     indices and signs early), values around IQ3_XXS's 1e-8 threshold,
//     subnormals, odd sign counts, fp16 ties, constant and one-spike sub-blocks,
//     odd importance matrices;
//   - the CPU dequantizers give ggml's to_float floats exactly;
//   - blocks where ggml aborts (its distance sums overflow) are marked invalid.
//   - the WGSL kernels give ggml's bytes on the same inputs (the registry-wide
//     tests check them on the rest).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { array, close, init, quantize } from '../src/index.js';
import { iq3_s } from '../src/quant/formats/iq3_s.js';
import { iq3_xxs } from '../src/quant/formats/iq3_xxs.js';
import { iq3Grid } from '../src/quant/grids/iq3xs.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/runtime/half.js';
import { mulberry32, seededNormals } from '../src/runtime/host-random.js';
import { BUNDLE } from './helpers/bundle-oracle.js';
import { REPO } from './helpers/child.js';
import { ggmlQuantizeAvailable, ggmlQuantizeBatch, libggmlBasePath, oracleAvailable, type GgmlQuantizeJob } from './helpers/ggml-quantize.js';

const QK = 256;
const N = 512; // row length: two super-blocks
const FORMATS = [iq3_xxs, iq3_s];

const toF16 = (x: Float32Array): Float32Array => x.map((v) => f16BitsToF32(f32ToF16Bits(v)));

/** Rows of N values, each built from its index i and a seeded uniform u. */
function rows(count: number, seed: number, g: (i: number, u: () => number) => number): Float32Array {
  const u = mulberry32(seed);
  return Float32Array.from({ length: count * N }, (_, i) => g(i, u));
}

/** Unweighted cases (three rows of two super-blocks each). */
function cases(): [string, Float32Array][] {
  const gauss = seededNormals(3 * N, 1, 0.02);
  const holes = seededNormals(3 * N, 2, 1);
  holes.fill(0, 64, 96); // sub-block 2 of super-block 0 skipped (IQ3_S: later indices land early)
  holes.fill(0, 256 + 160, 256 + 224); // sub-blocks 5, 6 of super-block 1
  holes.fill(0, 2 * N, 2 * N + QK); // a whole super-block
  holes.fill(-0, 2 * N + QK, 2 * N + QK + 32);
  const eps = seededNormals(3 * N, 3, 1);
  for (let sb = 0; sb < 24; sb++) {
    // sub-blocks whose largest |x| is just below, at and above 1e-8 (IQ3_XXS skips below), and subnormal
    const scale = [0.99e-8, 1e-8, 1.01e-8, 3e-9, 1e-40, 1e-44, 1e-30, 1][sb % 8];
    for (let i = 0; i < 32; i++) eps[32 * sb + i] *= scale / 4;
  }
  return [
    ['gaussian 0.02', gauss],
    ['gaussian 1, zero sub-blocks and super-blocks', holes],
    ['tiny and subnormal sub-blocks', eps],
    ['fp16-tied values', toF16(gauss.map((v) => Math.round(v * 300) / 300))],
    ['small integers (ties)', rows(3, 4, (_, u) => Math.floor(u() * 9) - 4)],
    ['constant sub-blocks', rows(3, 5, (i) => [0.5, -0.5, 3, -1e-3, 7, 0, 1e5, -2][(i >> 5) % 8])],
    ['one spike per sub-block', rows(3, 6, (i) => (i % 32 === (i >> 5) % 32 ? ((i >> 5) % 3) - 1.5 : 0))],
    ['odd sign counts per 8', rows(3, 7, (i, u) => (i % 8 < 1 + ((i >> 3) % 4) * 2 ? -1 : 1) * (0.1 + u()))],
    ['gaussian 1e10', seededNormals(3 * N, 8, 1e10)],
    ['Cauchy tails', rows(3, 9, (_, u) => Math.tan(Math.PI * (u() - 0.5)))],
  ];
}

/** Importance matrices (one row's N weights). */
function weightSets(): [string, Float32Array][] {
  const u = mulberry32(11);
  return [
    ['random', Float32Array.from({ length: N }, () => Math.exp(4 * (u() - 0.5)))],
    ['all zero', new Float32Array(N)],
    ['huge ratios (1e-20 .. 1e20)', Float32Array.from({ length: N }, (_, i) => 10 ** (((i * 37) % 41) - 20))],
    ['one-hot', Float32Array.from({ length: N }, (_, i) => (i === 77 ? 1 : 0))],
    ['one-hot per sub-block', Float32Array.from({ length: N }, (_, i) => (i % 32 === 5 ? 3 : 0))],
    ['fp16 ties', toF16(Float32Array.from({ length: N }, (_, i) => 1 + (i % 3)))],
  ];
}

beforeAll(async () => {
  await init();
});
afterAll(async () => {
  await close();
});

const firstDiff = (a: Uint8Array, b: Uint8Array) => (a.length !== b.length ? -2 : a.findIndex((v, i) => v !== b[i]));

describe('the grid tables', () => {
  const canRegenerate = oracleAvailable(
    "llama.cpp's source bundle and git",
    existsSync(BUNDLE) && spawnSync('git', ['--version'], { stdio: 'ignore' }).status === 0 ? BUNDLE : undefined,
  );

  test.runIf(canRegenerate)('regenerate byte for byte from the llama.cpp source node-llama-cpp ships', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgarray-iq3-grids-'));
    try {
      const out = join(dir, 'iq3xs-data.ts');
      const r = spawnSync(process.execPath, [join(REPO, 'scripts', 'gen-iq3xs-grids.mjs'), '--out', out], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(out).equals(readFileSync(join(REPO, 'src', 'quant', 'grids', 'iq3xs-data.ts')))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each([256, 512] as const)('grid %i: kmap finds every grid point, and every other quadruple has neighbours on the grid', (size) => {
    const g = iq3Grid(size);
    let onGrid = 0;
    const bad: number[] = [];
    for (let u = 0; u < 4096; u++) {
      const m = g.kmap[u];
      if (m >= 0) {
        onGrid++;
        let levels = 0;
        for (let i = 0; i < 4; i++) levels |= ((((g.grid[m] >>> (8 * i)) & 255) - 1) / 2) << (3 * i);
        if (levels !== u) bad.push(u);
      } else {
        const n = g.neighbours[-m - 1];
        if (!(n > 0)) bad.push(u);
        for (let j = 1; j <= n; j++) if (g.neighbours[-m - 1 + j] >= size) bad.push(u);
      }
    }
    expect(bad).toEqual([]);
    expect(onGrid).toBe(size);
  });
});

const run = ggmlQuantizeAvailable();

describe.runIf(run)('CPU references = ggml_quantize_chunk', () => {
  const all = cases();
  const weights = weightSets();
  const base = all[1][1]; // the case with skipped sub-blocks
  const jobs: GgmlQuantizeJob[] = [];
  for (const fmt of FORMATS) {
    for (const [, x] of all) jobs.push({ type: fmt.type, x, nPerRow: N });
    for (const [, w] of weights) {
      jobs.push({ type: fmt.type, x: base, nPerRow: N, weights: w });
      jobs.push({ type: fmt.type, x: all[3][1], nPerRow: N, weights: w });
    }
  }
  const want = run ? ggmlQuantizeBatch(jobs) : [];
  const perFormat = jobs.length / FORMATS.length;

  describe.each(FORMATS.map((f, fi) => ({ name: f.type.name, f, fi })))('$name', ({ f, fi }) => {
    test('without an importance matrix', () => {
      all.forEach(([name, x], c) => {
        const got = new Uint8Array((x.length / QK) * f.type.typeSize);
        f.quantizeCpu(x, got);
        const at = firstDiff(got, want[fi * perFormat + c]);
        expect(at, `${name}: first differing byte (block ${Math.floor(at / f.type.typeSize)})`).toBe(-1);
      });
    });

    test('with quant_weights', () => {
      weights.forEach(([name, w], k) => {
        [base, all[3][1]].forEach((x, h) => {
          const got = new Uint8Array((x.length / QK) * f.type.typeSize);
          f.quantizeWeightedCpu!(x, got, N, w);
          const at = firstDiff(got, want[fi * perFormat + all.length + 2 * k + h]);
          expect(at, `${name} weights, input ${h}: first differing byte (block ${Math.floor(at / f.type.typeSize)})`).toBe(-1);
        });
      });
    });

    test('the WGSL kernel gives the same bytes, with and without quant_weights', async () => {
      const gpu = async (x: Float32Array, w?: Float32Array) => {
        const a = array(x, { shape: [x.length / N, N] });
        const q = quantize(a, f.type, w ? { imatrix: w } : {});
        try {
          return await q.data();
        } finally {
          a.dispose();
          q.dispose();
        }
      };
      for (const [c, [name, x]] of all.entries()) {
        const at = firstDiff(await gpu(x), want[fi * perFormat + c]);
        expect(at, `${name}: first differing byte (block ${Math.floor(at / f.type.typeSize)})`).toBe(-1);
      }
      for (const [k, [name, w]] of weights.entries()) {
        const at = firstDiff(await gpu(base, w), want[fi * perFormat + all.length + 2 * k]);
        expect(at, `${name} weights: first differing byte (block ${Math.floor(at / f.type.typeSize)})`).toBe(-1);
      }
    });

    test('dequantize gives ggml\'s to_float floats exactly', () => {
      const blocks = want[fi * perFormat];
      const got = new Float32Array((blocks.length / f.type.typeSize) * QK);
      f.dequantizeCpu(blocks, got);
      const ref = ggmlDequantize(f.type.id, blocks, got.length);
      expect(Buffer.from(got.buffer).equals(Buffer.from(ref.buffer))).toBe(true);
    });
  });
});

test.each(FORMATS.map((f) => ({ name: f.type.name, f })))(
  '$name: a super-block where ggml aborts (overflowed distance sums) is marked invalid, the others unaffected',
  ({ f }) => {
    const x = seededNormals(2 * QK, 12, 1);
    x.set(seededNormals(QK, 13, 1e15), QK);
    const got = new Uint8Array(2 * f.type.typeSize);
    f.quantizeCpu(x, got);
    const first = new Uint8Array(f.type.typeSize);
    f.quantizeCpu(x.subarray(0, QK), first);
    expect(got.subarray(0, f.type.typeSize)).toEqual(first);
    expect([...got.subarray(f.type.typeSize)]).toEqual([0x00, 0x7e, ...new Array(f.type.typeSize - 2).fill(0)]);
  },
);

const DEQUANT_SCRIPT = String.raw`
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
class Traits(ctypes.Structure):
    _fields_ = [('type_name', ctypes.c_char_p), ('blck_size', ctypes.c_int64), ('blck_size_interleave', ctypes.c_int64),
                ('type_size', ctypes.c_size_t), ('is_quantized', ctypes.c_bool), ('to_float', ctypes.c_void_p), ('from_float_ref', ctypes.c_void_p)]
lib.ggml_get_type_traits.restype = ctypes.POINTER(Traits)
tr = lib.ggml_get_type_traits(int(sys.argv[2])).contents
to_float = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(tr.to_float)
n = int(sys.argv[3])
data = open(sys.argv[4], 'rb').read()
src = ctypes.create_string_buffer(data, len(data))
dst = ctypes.create_string_buffer(4 * n)
to_float(src, dst, n)
open(sys.argv[5], 'wb').write(dst.raw)
`;

/** ggml's dequantizer (type traits' to_float from libggml-base) on `blocks`. */
function ggmlDequantize(typeId: number, blocks: Uint8Array, n: number): Float32Array {
  const dir = mkdtempSync(join(tmpdir(), 'wgarray-ggml-dq-'));
  try {
    writeFileSync(join(dir, 'q.bin'), blocks);
    const r = spawnSync('python3', ['-c', DEQUANT_SCRIPT, libggmlBasePath()!, String(typeId), String(n), join(dir, 'q.bin'), join(dir, 'y.f32')], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`ggml to_float failed: ${r.stderr}`);
    const b = readFileSync(join(dir, 'y.f32'));
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
