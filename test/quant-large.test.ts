// Quantized arrays beyond one storage binding, and through GGUF files:
//   - a float32 tensor larger than maxStorageBufferBindingSize (128 MiB on
//     lavapipe) quantizes and dequantizes in row chunks to the CPU reference's
//     bytes and floats (Q8_0 checked whole; Q4_K on every block near a chunk
//     boundary, the ends, and a sample between, since its CPU reference is slow);
//   - every format's quantize() output saves through saveGGUF with its ggml
//     type and loads back as the same blocks (f16/bf16 as float16/bfloat16 arrays).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  close,
  dequantize,
  dequantizeHost,
  init,
  loadGGUF,
  QUANT_FORMATS,
  QuantizedArray,
  quantize,
  quantizeHost,
  random,
  saveGGUF,
  type Device,
  type WgArray,
} from '../src/index.js';

let device: Device;
let dir: string;
beforeAll(async () => {
  device = await init();
  dir = mkdtempSync(join(tmpdir(), 'wgarray-quant-large-'));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await close();
});

describe('a tensor larger than one storage binding', () => {
  const COLS = 4096;
  let x: WgArray<'float32'>;
  let host: Float32Array;

  beforeAll(async () => {
    const binding = device.limits.maxStorageBufferBindingSize;
    const rows = Math.ceil((binding + 8 * 2 ** 20) / (COLS * 4)) + 3; // > binding by 8 MiB and an odd tail
    x = random.normal([rows, COLS], { seed: 5, std: 0.02 });
    host = await x.data();
    expect(x.nbytes).toBeGreaterThan(binding);
  });

  afterAll(() => x?.dispose());

  /** Block indices to check: all, or the ends, every block within 300 of a multiple of 1024 blocks, and every 97th. */
  function blocksToCheck(total: number, all: boolean): number[] {
    if (all) return Array.from({ length: total }, (_, i) => i);
    const keep = new Set<number>();
    for (let b = 0; b < total; b++) {
      const nearBoundary = b % 1024 < 300 || b % 1024 > 1024 - 300;
      if (b < 300 || b >= total - 300 || b % 97 === 0 || (nearBoundary && b % 8 === 0)) keep.add(b);
    }
    return [...keep];
  }

  test.each([
    ['q8_0', true],
    ['q4_K', false],
  ])('%s: GPU bytes and dequantized floats = the CPU reference (all blocks: %s)', async (type, all) => {
    const q = quantize(x, type);
    const t = q.type;
    const bytes = await q.data();
    const back = await dequantize(q).data();
    q.dispose();
    const blocks = blocksToCheck(q.blocks, all);
    const mismatched: number[] = [];
    for (const b of blocks) {
      const src = host.subarray(b * t.blockSize, (b + 1) * t.blockSize);
      const want = quantizeHost(src, t);
      const got = bytes.subarray(b * t.typeSize, (b + 1) * t.typeSize);
      const wantFloats = dequantizeHost(want, t);
      const gotFloats = back.subarray(b * t.blockSize, (b + 1) * t.blockSize);
      if (!want.every((v, i) => v === got[i]) || !wantFloats.every((v, i) => Object.is(v, gotFloats[i]))) mismatched.push(b);
      if (mismatched.length >= 5) break;
    }
    expect(mismatched, `blocks that differ (of ${blocks.length} checked)`).toEqual([]);
  });
});

describe('quantize() output through GGUF', () => {
  test.each([...QUANT_FORMATS.keys(), 'f16', 'bf16'])('%s saves with its ggml type and loads back as the same blocks', async (type) => {
    const x = random.normal([6, 512], { seed: 3 });
    const imatrix = QUANT_FORMATS.get(type)?.imatrix === 'required' ? { imatrix: new Float32Array(512).fill(1) } : {};
    const q = quantize(x, type, imatrix);
    const file = join(dir, `${type}.gguf`);
    await saveGGUF(file, { 'blk.0.ffn_up.weight': q, 'blk.0.ffn_norm.weight': x.slice(0) }, { 'general.architecture': 'llama' });
    const f = await loadGGUF(file);
    expect(f.tensorInfos.map((i) => [i.name, i.type.name, [...i.shape]])).toEqual([
      ['blk.0.ffn_up.weight', q.type.name, [6, 512]],
      ['blk.0.ffn_norm.weight', 'f32', [512]],
    ]);
    const loaded = await f.arrays['blk.0.ffn_up.weight']();
    // block formats load as QuantizedArray; f16/bf16 as float16/bfloat16 WgArrays
    expect(loaded instanceof QuantizedArray).toBe(!q.type.dtype);
    const bytes = loaded instanceof QuantizedArray ? await loaded.data() : new Uint8Array((await loaded.data()).buffer);
    expect(bytes).toEqual(await q.data());
    x.dispose();
    q.dispose();
    loaded.dispose();
  });
});
