// Every quantization format against ggml's own output (test/fixtures/golden), on
// the GPU and on the CPU: quantized bytes equal, dequantized floats within 1 ulp.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  array,
  close,
  dequantize,
  dequantizeHost,
  fromBytes,
  init,
  QUANT_FORMATS,
  QuantizedArray,
  quantize,
  quantizeHost,
} from '../src/index.js';
import { deviceOf } from '../src/runtime/device.js';
import { firstDiff, goldenData, goldenDequant, goldenInput, manifest, ulpDistance, type GoldenType } from './helpers/golden.js';

const m = manifest();
const input = goldenInput();
const shape = [m.rows, m.n_per_row];
const implemented = (t: GoldenType) => t.name === 'f16' || t.name === 'bf16' || QUANT_FORMATS.has(t.name);

beforeAll(async () => {
  await init();
});
afterAll(async () => {
  await close();
});

function describeDiff(t: GoldenType, got: Uint8Array, want: Uint8Array): string {
  const at = firstDiff(got, want);
  if (at < 0) return 'equal';
  const block = Math.floor(at / t.type_size);
  const perRow = m.n_per_row / t.block_size;
  let diffs = 0;
  for (let b = 0; b < want.length / t.type_size; b++) {
    const s = b * t.type_size;
    if (firstDiff(got.subarray(s, s + t.type_size), want.subarray(s, s + t.type_size)) >= 0) diffs++;
  }
  return `${t.name}: ${diffs} of ${want.length / t.type_size} blocks differ; first at byte ${at} (block ${block}, row ${Math.floor(block / perRow)}, row case ${Math.floor(block / perRow) % 10})`;
}

function maxUlp(got: Float32Array, want: Float32Array): { ulp: number; at: number } {
  let worst = { ulp: 0, at: -1 };
  for (let i = 0; i < want.length; i++) {
    const u = ulpDistance(got[i], want[i]);
    if (u > worst.ulp) worst = { ulp: u, at: i };
  }
  return worst;
}

describe.each(m.types.filter(implemented))('$name', (t) => {
  const want = goldenData(t);
  const wantDequant = goldenDequant(t);

  test('GPU quantize matches ggml byte for byte', async () => {
    const x = array(input, { shape });
    const q = quantize(x, t.name);
    const got = await q.data();
    x.dispose();
    q.dispose();
    expect(got.length).toBe(want.length);
    expect(describeDiff(t, got, want)).toBe('equal');
  });

  test('CPU quantize matches ggml byte for byte', () => {
    const got = quantizeHost(input, t.name);
    expect(describeDiff(t, got, want)).toBe('equal');
  });

  test('GPU dequantize matches ggml within 1 ulp', async () => {
    const d = deviceOf();
    const blocks = fromBytes(want, [want.length], 'uint8');
    const q = new QuantizedArray(blocks.storage.retain(), shape, t.name);
    blocks.dispose();
    const x = dequantize(q);
    const got = await x.data();
    q.dispose();
    x.dispose();
    expect(d.isClosed).toBe(false);
    expect(maxUlp(got, wantDequant).ulp).toBeLessThanOrEqual(1);
  });

  test('CPU dequantize matches ggml exactly', () => {
    const got = dequantizeHost(want, t.name);
    expect(maxUlp(got, wantDequant)).toEqual({ ulp: 0, at: -1 });
  });
});

test('every golden type has a quantizer', () => {
  const missing = m.types.filter((t) => !implemented(t)).map((t) => t.name);
  expect(missing).toEqual([]);
});

