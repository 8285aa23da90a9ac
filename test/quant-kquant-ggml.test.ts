// Block formats against ggml itself on inputs built to reach its corner cases:
// ggml_quantize_chunk from node-llama-cpp's prebuilt libggml-base
// (test/helpers/ggml-quantize.ts) quantizes each case, and the GPU kernel and
// the CPU reference must give its bytes.
//
// The K-quants get every case. Q2_K/Q4_K/Q5_K (make_qkx2_quants): the candidate
// search's offset landing at the sub-block's max (so nearest_int sees values
// past 2^22, Inf or NaN). Q3_K/Q6_K (make_q3_quants, make_qx_quants): NaN
// scales, d = ±Inf in float16, groups whose d is then NaN. All five: float32
// sums that overflow, subnormal scales, exact ties, NaN and ±Inf (K-quants
// convert floats to ints only through nearest_int's bit trick, so ggml's
// bytes are defined there).
//
// The legacy, IQ4, MXFP4 and ternary formats get the finite cases only: on NaN
// and Inf ggml reaches undefined float -> int conversions, and those formats
// mark such blocks invalid instead (src/quant/formats/block-helpers.ts). Their
// finite out-of-range conversions (±3e38, overflowing sums, subnormal scales)
// follow x86-64's, which ggml's bytes here come from.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { array, close, init, QUANT_FORMATS, quantize, quantizeHost } from '../src/index.js';
import { ggmlType } from '../src/runtime/ggml-types.js';
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

const F32_MAX = 3.4028234663852886e38;
const fill = (v: number) => new Float32Array(QK).fill(v);
const each = (f: (i: number, u: () => number) => number, seed = 1) => {
  const u = lcg(seed);
  return Float32Array.from({ length: QK }, (_, i) => f(i, u));
};
const poke = (x: Float32Array, at: Record<number, number>) => {
  for (const [i, v] of Object.entries(at)) x[Number(i)] = v;
  return x;
};
/** x with the float32 bit patterns `at` written in (NaNs with payloads). */
const pokeBits = (x: Float32Array, at: Record<number, number>) => {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (const [i, v] of Object.entries(at)) bits[Number(i)] = v;
  return x;
};

/** One super-block of 256 values per case (8 blocks of the 32-weight formats). */
const CASES: [string, Float32Array][] = [
  ...[3e38, 1e30, 1e20, 1e13, 1e7, 1, 1e-3, 1e-30, 1e-36, 1e-38, 1e-40, 1e-44].map((s, k): [string, Float32Array] => [
    `gaussian ${s}`,
    gaussian(QK, s, 10 + k),
  ]),
  ['all negative, each 16 ending at 0', each((i, u) => (i % 16 === 5 ? 0 : -Math.abs(u() - 0.3)))],
  ['all negative, each 32 ending at 0', each((i, u) => (i % 32 === 7 ? 0 : -u()), 2)],
  ['all positive', gaussian(QK, 1, 3).map((v) => Math.abs(v) + 0.5)],
  ['one spike per 16', each((i) => (i % 16 === i % 7 ? (i % 3) - 1 : 0))],
  ['Cauchy tails', each((_, u) => Math.tan(Math.PI * (u() - 0.5)), 4)],
  ['Cauchy tails 1e12', each((_, u) => Math.tan(Math.PI * (u() - 0.5)) * 1e12, 11)],
  ['small integers (ties)', each((_, u) => Math.floor(u() * 9) - 4, 5)],
  ['eighths (ties)', each((_, u) => (Math.floor(u() * 9) - 4) * 0.125, 6)],
  ['halves up to 8 (ties)', each((_, u) => (Math.floor(u() * 33) - 16) * 0.5, 9)],
  ['two values', each((i) => (i % 2 ? 0.01 : -0.01))],
  ['huge and tiny halves', each((i, u) => (i < 128 ? 1e30 : 1e-30) * (u() - 0.5), 7)],
  ['±3e38 sub-blocks', each((i, u) => (Math.floor(i / 32) % 2 ? 3e38 : -3e38) * u(), 8)],
  ['±float32 max in each 16', each((i, u) => (i % 16 === 3 ? F32_MAX : i % 16 === 9 ? -F32_MAX : (u() - 0.5) * 1e38), 12)],
  ['one huge value among tiny ones', poke(gaussian(QK, 1e-30, 13), { 7: 3e38, 100: -2e38, 201: 1e20 })],
  ['smallest normals and subnormals', each((i, u) => (u() - 0.5) * (i % 3 ? 1.1754943508222875e-38 : 1e-44), 14)],
  ...[0, -0, 1, -1, 3e38, -3e38, 1e-45].map((c): [string, Float32Array] => [`constant ${Object.is(c, -0) ? '-0' : c}`, fill(c)]),
  ['one NaN', poke(gaussian(QK, 1, 20), { 3: NaN })],
  ['one +Inf', poke(gaussian(QK, 1, 21), { 40: Infinity })],
  ['-Inf and NaN', poke(gaussian(QK, 1, 22), { 77: -Infinity, 200: NaN })],
  ['NaN and Inf beside 1e10 values (d = Inf)', poke(gaussian(QK, 1e10, 23), { 5: NaN, 30: Infinity, 99: -Infinity })],
  ['one NaN per 16', each((i, u) => (i % 16 === i % 5 ? NaN : u() - 0.5), 24)],
  ['all NaN', fill(NaN)],
  ['all +Inf', fill(Infinity)],
  // ggml carries a NaN's payload into nearest_int's bits, in whatever operand
  // order its compiler chose; wgarray reads every NaN as the default NaN, so
  // these cases want ggml's bytes for that NaN.
  ['NaNs with payloads', pokeBits(gaussian(QK, 1, 25), { 2: 0x7fc00001, 50: 0x7f800001, 140: 0xffffffff, 141: 0xffc00003 })],
  ...Array.from({ length: 24 }, (_, k): [string, Float32Array] => {
    const s = 10 ** (lcg(100 + k)() * 8 - 4);
    return [`gaussian 10^${Math.log10(s).toFixed(2)}`, gaussian(QK, s, 100 + k)];
  }),
];

const isFinite = (x: Float32Array) => x.every(Number.isFinite);

/**
 * Formats and the cases they must match ggml on (those ggml quantizes only with an
 * importance matrix are in test/quant-imatrix-ggml.test.ts): those whose non-finite bytes are
 * ggml's (the K-quants) every case, those that mark non-finite blocks the finite ones.
 */
/**
 * The lattice formats (descriptor `tables`: IQ1) search grid neighbours by weighted
 * distance; ggml asserts (GGML_ASSERT(grid_index >= 0)) when every distance overflows
 * to Inf or NaN, so they take the cases whose squares stay far inside float32's range.
 */
const latticeTakes = (x: Float32Array) => isFinite(x) && x.every((v) => Math.abs(v) < 1e9);

const FORMATS: [string, (x: Float32Array) => boolean][] = [...QUANT_FORMATS.values()].filter((f) => f.imatrix !== 'required').map((f) => [
  f.type.name,
  f.tables ? latticeTakes : f.nonFinite === 'as-ggml' ? () => true : isFinite,
]);

const available = ggmlQuantizeAvailable();

beforeAll(async () => {
  await init();
});
afterAll(async () => {
  await close();
});

describe.skipIf(!available).each(FORMATS)('%s', (name, takes) => {
  const t = ggmlType(name);
  const cases = CASES.filter(([, x]) => takes(x));
  const input = new Float32Array(cases.length * QK);
  cases.forEach(([, x], c) => input.set(x, c * QK));
  // ggml sees every NaN as the default NaN (see the payload case above)
  const want = available ? ggmlQuantize(t, input.map((v) => (Number.isNaN(v) ? NaN : v)), QK) : new Uint8Array();
  const caseBytes = (QK / t.blockSize) * t.typeSize;

  /** Names of the cases whose bytes differ between got and want. */
  const differing = (got: Uint8Array): string[] =>
    cases.flatMap(([caseName], c) => {
      for (let i = c * caseBytes; i < (c + 1) * caseBytes; i++) if (got[i] !== want[i]) return [caseName];
      return [];
    });

  test('CPU reference = ggml_quantize_chunk on every case', () => {
    expect(want.length).toBe((input.length / t.blockSize) * t.typeSize);
    expect(differing(quantizeHost(input, t))).toEqual([]);
  });

  test('GPU kernel = ggml_quantize_chunk on every case', async () => {
    const x = array(input, { shape: [cases.length, QK] });
    const q = quantize(x, t);
    const got = await q.data();
    x.dispose();
    q.dispose();
    expect(differing(got)).toEqual([]);
  });
});
