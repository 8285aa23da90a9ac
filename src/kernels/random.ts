// Seeded random fills: shaders/random.wgsl (Philox4x32-10, counter-based).

import type { WgArray } from '../runtime/array.js';
import { DTYPES } from '../runtime/dtype.js';
import { elementChunks, grid, u32, WORKGROUP_SIZE } from './dispatch.js';
import { bindGroup, pipeline } from './shader.js';

/** Which numbers the kernel makes; see shaders/random.wgsl. */
export type RandomDistribution = 'bits' | 'uniform' | 'normal' | 'integers';

const DIST_CODE: Record<RandomDistribution, number> = { bits: 0, uniform: 1, normal: 2, integers: 3 };

/**
 * Fills `out` (fresh, contiguous) with element i = f(philox([i / 4, 0, 0], key)[i % 4]).
 * `words` are the distribution's three parameter words (float32 or integer bits).
 */
export function fillRandom(out: WgArray, dist: RandomDistribution, key: readonly [number, number], words: readonly [number, number, number]): void {
  const device = out.device;
  device.check();
  if (out.size === 0) return;
  const bytes = DTYPES[out.dtype].bytes;
  // shaders/random.wgsl's OUT_KIND: the float kinds as every shader codes them, 3 for integer bits.
  const shaderKind = DTYPES[out.dtype].shaderKind;
  const kind = shaderKind >= 0 && shaderKind <= 2 ? shaderKind : 3;
  const pipe = pipeline(device, 'random.wgsl', { DIST: DIST_CODE[dist], OUT_KIND: kind, OUT_BYTES: bytes });
  const blocks = Math.ceil(out.size / 4);
  // Counted in counter blocks of four elements: a chunk's window starts on a whole word.
  const chunks = elementChunks(device, blocks, [{ buffer: out.buffer, bytes: 4 * bytes, elementOffset: out.offset / 4 }]);
  for (const { start, count, windows } of chunks) {
    const [w] = windows;
    const params = device.uniform([
      u32(start),
      Math.floor(start / 2 ** 32),
      count,
      Math.min(out.size - start * 4, 2 ** 32 - 1),
      u32(key[0]),
      u32(key[1]),
      Math.round(w.skip * bytes),
      0,
      u32(words[0]),
      u32(words[1]),
      u32(words[2]),
      0,
    ]);
    device.dispatch(pipe, [bindGroup(device, pipe, [w, params])], grid(device, Math.ceil(count / WORKGROUP_SIZE)));
  }
}
