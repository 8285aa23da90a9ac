// IQ2_XXS, IQ2_XS and IQ2_S (src/quant/formats/iq2_*.ts) against ggml's own code:
// quantize_iq2_* / dequantize_row_iq2_* compiled from the llama.cpp source
// node-llama-cpp ships (test/helpers/ggml-iq2xs-init.ts: its init takes
// milliseconds where the prebuilt library's takes seconds per type; the
// registry tests compare with the prebuilt ggml_quantize_chunk as well):
//   - quantize with quant_weights = ggml_quantize_chunk's bytes, and for IQ2_S
//     (the one ggml quantizes without an imatrix) also without, on random rows,
//     odd imatrices (all zero, ratios up to 1e30, one-hot, equal), fp16-tied
//     values, all-zero / tiny / just-above-threshold sub-blocks, odd sign counts,
//     -0 and all-negative groups;
//   - IQ2_XXS / IQ2_XS refuse to quantize without an imatrix, as ggml asserts;
//   - dequantize = ggml's, bit for bit, on ggml's blocks and random ones.
import { describe, expect, test } from 'vitest';
import type { QuantFormat } from '../src/quant/format.js';
import { iq2_s } from '../src/quant/formats/iq2_s.js';
import { iq2_xs } from '../src/quant/formats/iq2_xs.js';
import { iq2_xxs } from '../src/quant/formats/iq2_xxs.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/runtime/half.js';
import { mulberry32, seededNormals } from '../src/runtime/host-random.js';
import { ggmlIq2Dequantize, ggmlIq2InitAvailable, ggmlIq2Quantize } from './helpers/ggml-iq2xs-init.js';

const FORMATS: readonly QuantFormat[] = [iq2_xxs, iq2_xs, iq2_s];
const N = 512; // row length: two super-blocks
const ROWS = 2;

const toF16 = (x: Float32Array): Float32Array => x.map((v) => f16BitsToF32(f32ToF16Bits(v)));

interface Case {
  name: string;
  x: Float32Array;
  w: Float32Array;
}

function cases(): Case[] {
  const u = mulberry32(11);
  const x = seededNormals(N * ROWS, 1, 0.02);
  const sparse = seededNormals(N * ROWS, 2, 1);
  sparse.fill(0, 40, 300); // all-zero sub-blocks and most of a super-block
  sparse.fill(1e-20, 700, 760); // below every GROUP_MAX_EPS
  for (let i = 800; i < 832; i++) sparse[i] = (i % 2 ? 1 : -1) * (1e-8 + (i % 5) * 1e-9); // around IQ2_S's 1e-8
  const signs = seededNormals(N * ROWS, 3, 1);
  for (let i = 0; i < 64; i++) signs[i] = -Math.abs(signs[i]); // all-negative groups (even and odd counts)
  for (let i = 64; i < 128; i += 3) signs[i] = -0; // -0 counts as non-negative
  for (let i = 128; i < 136; i++) signs[i] = i === 130 ? -0.5 : 0.5; // one negative: the parity flip
  const ties = toF16(x.map((v) => Math.round(v * 400) / 400)); // few distinct values, many exact ties
  return [
    { name: 'random rows, random weights', x, w: Float32Array.from({ length: N }, () => Math.exp(4 * (u() - 0.5))) },
    { name: 'all-zero imatrix', x, w: new Float32Array(N) },
    { name: 'huge ratios (1e-30 .. 1e30)', x: seededNormals(N * ROWS, 4, 3), w: Float32Array.from({ length: N }, (_, i) => 10 ** (((i * 37) % 61) - 30)) },
    { name: 'one-hot', x, w: Float32Array.from({ length: N }, (_, i) => (i === 77 ? 1 : 0)) },
    { name: 'equal weights', x: seededNormals(N * ROWS, 5, 50), w: new Float32Array(N).fill(0.25) },
    { name: 'fp16-tied values and weights', x: ties, w: toF16(Float32Array.from({ length: N }, (_, i) => 1 + (i % 3))) },
    { name: 'zero, tiny and threshold blocks', x: sparse, w: Float32Array.from({ length: N }, () => u() * u()) },
    { name: 'signs: all negative, -0, odd counts', x: signs, w: Float32Array.from({ length: N }, () => 0.5 + u()) },
    { name: 'tiny and huge rows', x: Float32Array.from(seededNormals(N * ROWS, 6, 1), (v, i) => v * (i < N ? 1e-30 : 1e12)), w: new Float32Array(N).fill(1) },
  ];
}

function firstDifference(f: QuantFormat, got: Uint8Array, want: Uint8Array): string {
  if (got.length !== want.length) return `${got.length} bytes, expected ${want.length}`;
  const at = got.findIndex((b, i) => b !== want[i]);
  return at < 0 ? 'equal' : `byte ${at} (block ${Math.floor(at / f.type.typeSize)}): ${got[at]}, ggml ${want[at]}`;
}

const run = ggmlIq2InitAvailable();

describe.runIf(run)('IQ2 formats are byte-identical to ggml', () => {
  const all = cases();
  // every case in one oracle call per format and path: rows of all cases, weights per row
  const xs = new Float32Array(all.length * N * ROWS);
  const ws = new Float32Array(all.length * N * ROWS);
  all.forEach((c, ci) => {
    xs.set(c.x, ci * N * ROWS);
    for (let r = 0; r < ROWS; r++) ws.set(c.w, (ci * ROWS + r) * N);
  });
  const memo = new Map<string, Uint8Array>();
  const want = (f: QuantFormat, ci: number, weighted: boolean): Uint8Array => {
    const key = `${f.type.name} ${weighted}`;
    if (!memo.has(key)) memo.set(key, ggmlIq2Quantize(f.type.id, xs, N, weighted ? ws : undefined));
    const bytes = ((N * ROWS) / 256) * f.type.typeSize;
    return memo.get(key)!.subarray(ci * bytes, (ci + 1) * bytes);
  };

  describe.each(FORMATS.map((f) => [f.type.name, f] as const))('%s', (_name, f) => {
    test(`quantize with quant_weights (${f.imatrix})`, () => {
      all.forEach((c, ci) => {
        const got = new Uint8Array((c.x.length / 256) * f.type.typeSize);
        f.quantizeWeightedCpu!(c.x, got, N, c.w);
        expect(firstDifference(f, got, want(f, ci, true)), c.name).toBe('equal');
      });
    });

    if (f.imatrix === 'optional') {
      test('quantize without quant_weights', () => {
        all.forEach((c, ci) => {
          const got = new Uint8Array((c.x.length / 256) * f.type.typeSize);
          f.quantizeCpu(c.x, got);
          expect(firstDifference(f, got, want(f, ci, false)), c.name).toBe('equal');
        });
      });
    } else {
      test('refuses to quantize without an importance matrix, as ggml_quantize_requires_imatrix', () => {
        expect(() => f.quantizeCpu(new Float32Array(256), new Uint8Array(f.type.typeSize))).toThrow(/needs an importance matrix/);
      });
    }

    test("dequantize = ggml's, bit for bit (ggml's blocks and random ones)", () => {
      const u = mulberry32(f.type.id);
      const random = Uint8Array.from({ length: 24 * f.type.typeSize }, () => Math.floor(u() * 256));
      for (let b = 0; b < 24; b++) {
        // a finite float16 scale (random bits could be NaN or Inf)
        const d = f32ToF16Bits((u() - 0.5) * 2 ** (Math.floor(u() * 40) - 20));
        random[b * f.type.typeSize] = d & 255;
        random[b * f.type.typeSize + 1] = d >> 8;
      }
      const blocks = Buffer.concat([...all.map((_, ci) => want(f, ci, true)), random]);
      const got = new Float32Array((blocks.length / f.type.typeSize) * 256);
      f.dequantizeCpu(blocks, got);
      const ref = ggmlIq2Dequantize(f.type.id, blocks);
      expect(Buffer.from(got.buffer).equals(Buffer.from(ref.buffer))).toBe(true);
    });
  });
});
