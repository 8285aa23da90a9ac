// astype() on the GPU: ggml's golden float16/bfloat16 bytes, every pair of
// computed dtypes against the CPU oracle (src/runtime/host-cast.ts castBits) on
// edge values and random bits, with and without shader-f16, and an array
// larger than one storage binding.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { COMPUTED_DTYPES, Device, DTYPES, fromBytes, type DType, WgArray, arange } from '../src/index.js';
import { castBits } from '../src/runtime/host-cast.js';
import { f32Bits, f32ToBf16Bits } from '../src/runtime/half.js';
import { firstDiff, goldenData, goldenInput, manifest } from './helpers/golden.js';

const paths: { name: string; f16: boolean; device?: Device }[] = [
  { name: 'shader-f16', f16: true },
  { name: 'integer f16', f16: false },
];

beforeAll(async () => {
  for (const p of paths) p.device = await Device.open({ shaderF16: p.f16 });
});
afterAll(() => {
  for (const p of paths) p.device?.close();
});

/** xorshift32: reproducible random bits. */
function randomWords(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s;
  }
  return out;
}

const FLOAT_EDGES = [
  0, -0, 1, -1, 0.5, 1.5, 2.5, -2.5, 127, 127.5, -128, -128.5, -129, 255, 255.9, 256, 32767.5, -32768.9, 65504, 65519.99,
  65520, -65520, 65535.9, 65536, 2 ** 24 + 1, 2 ** 31 - 128, 2 ** 31, -(2 ** 31), -(2 ** 31) - 256, 2 ** 32, 1e10, -1e10,
  3.4e38, Infinity, -Infinity, NaN, 1e-40, -1e-40, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0000001, 6.1e-5, 5.96e-8, 1e-7, 0.1,
];
const FLOAT_EDGE_BITS = [
  ...FLOAT_EDGES.map(f32Bits),
  0x7fc00001, 0xffc00000, 0x7f800001, 0xff800123, // NaNs with payloads, quiet and signalling
  0x3f808000, 0x3f818000, 0x3f80ffff, 0x477fefff, 0x477ff000, 0x33000001, 0x00000001, 0x807fffff, // ties and boundaries
];
const INT_EDGES = [
  0, 1, -1, 2, -2, 127, 128, -128, -129, 255, 256, 32767, 32768, -32768, -32769, 65535, 65536, 2 ** 24, 2 ** 24 + 1, 2 ** 24 + 3,
  2 ** 31 - 1, -(2 ** 31), -(2 ** 31) + 1, 0x7fffff80, 0x7fffffc0, 65504, 65519, 65520, 2049, 4097,
];

/** Raw element bits of a source dtype: edge values, then random bits (all 65536 for 16-bit floats). */
function sourceBits(dtype: DType): number[] {
  const { bytes, kind } = DTYPES[dtype];
  const mask = bytes === 4 ? 0xffffffff : (1 << (bytes * 8)) - 1;
  if (dtype === 'float16' || dtype === 'bfloat16') return Array.from({ length: 65536 }, (_, i) => i);
  const edges = kind === 'float' ? FLOAT_EDGE_BITS : INT_EDGES.map((v) => (v & mask) >>> 0);
  const random = [...randomWords(1999, bytes * 7 + 1)].map((w) => (w & mask) >>> 0);
  // Moderate floats exercise the float -> int paths away from saturation.
  const moderate = kind === 'float' ? [...randomWords(500, 9)].map((w) => f32Bits(((w / 2 ** 32) - 0.5) * 1e5)) : [];
  return [...edges, ...random, ...moderate];
}

function container(dtype: DType, bits: number[]): Uint8Array {
  const { bytes } = DTYPES[dtype];
  const raw = bytes === 4 ? Uint32Array.from(bits) : bytes === 2 ? Uint16Array.from(bits) : Uint8Array.from(bits);
  return new Uint8Array(raw.buffer);
}

function rawBits(dtype: DType, data: ArrayBufferView): number[] {
  const { bytes } = DTYPES[dtype];
  const b = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  return [...(bytes === 4 ? new Uint32Array(b) : bytes === 2 ? new Uint16Array(b) : new Uint8Array(b))];
}

describe.each(paths)('$name', (path) => {
  test('float32 -> float16 and bfloat16: ggml’s golden bytes', async () => {
    const m = manifest();
    const x = fromBytes(goldenInput(), [m.rows, m.n_per_row], 'float32', path.device);
    for (const [dtype, name] of [['float16', 'f16'], ['bfloat16', 'bf16']] as const) {
      const got = new Uint8Array((await x.astype(dtype).data()).buffer);
      const want = goldenData(m.types.find((t) => t.name === name)!);
      expect(firstDiff(got, want), `${name}: first differing byte`).toBe(-1);
    }
  });

  const pairs = COMPUTED_DTYPES.flatMap((from) => COMPUTED_DTYPES.filter((to) => to !== from).map((to) => ({ from, to })));
  test.each(pairs)('$from -> $to matches the CPU oracle', async ({ from, to }) => {
    const bits = sourceBits(from);
    const a = fromBytes(container(from, bits), [bits.length], from, path.device);
    const got = rawBits(to, await a.astype(to).data());
    const mismatches: string[] = [];
    for (let i = 0; i < bits.length && mismatches.length < 5; i++) {
      const want = castBits(from, bits[i], to);
      if (got[i] !== want) mismatches.push(`element ${i}: 0x${bits[i].toString(16)} -> 0x${got[i].toString(16)}, expected 0x${want.toString(16)}`);
    }
    expect(mismatches).toEqual([]);
    a.dispose();
  });

  test.each([1, 2, 3, 5, 7, 1023, 1025])('odd length %i: packed tails are exact', async (n) => {
    const a = arange(0, n, { dtype: 'int32', device: path.device });
    for (const to of ['int8', 'uint16', 'float16'] as const) {
      const got = rawBits(to, await a.astype(to).data());
      expect(got).toEqual(Array.from({ length: n }, (_, i) => castBits('int32', i, to)));
      // and back again from the packed dtype
      const back = await a.astype(to).astype('int32').data();
      expect([...back]).toEqual(Array.from({ length: n }, (_, i) => (to === 'int8' ? (i << 24) >> 24 : i)));
    }
  });
});

describe('larger than one storage binding', () => {
  test('a 300 MiB int32 array casts to uint8 and a float32 one to bfloat16', async () => {
    const device = paths[0].device!;
    const binding = device.limits.maxStorageBufferBindingSize;
    const n = Math.max(Math.ceil((300 * 2 ** 20) / 4), Math.ceil(binding / 4) + 4099);
    expect(n * 4).toBeGreaterThan(binding);

    const ints = arange(0, n, { dtype: 'int32', device });
    const bytes = await ints.astype('uint8').data();
    ints.dispose();
    let bad = -1;
    for (let i = 0; i < n; i++) if (bytes[i] !== (i & 255)) { bad = i; break; }
    expect(bad).toBe(-1);

    const floats: WgArray = arange(0, n, { dtype: 'float32', device });
    const halves = await floats.astype('bfloat16').data();
    floats.dispose();
    for (let i = 0; i < n; i++) if (halves[i] !== f32ToBf16Bits(Math.fround(i))) { bad = i; break; }
    expect(bad).toBe(-1);
  });
});
