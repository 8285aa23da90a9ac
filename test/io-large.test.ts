// A tensor larger than one storage binding (128 MiB on lavapipe) streams to a
// file in bounded chunks and back to the GPU in bounded chunks, every byte in
// its place.
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { deviceOf, fromBytes, loadGGUF, loadSafetensors, saveGGUF, saveSafetensors, WgArray } from '../src/index.js';
import { dir, setUpDeviceAndTempDir } from './helpers/files.js';

setUpDeviceAndTempDir('wgarray-io-large-');

/** Compares bytes [offset, offset + want.length) of a file with `want`, 16 MiB at a time. */
async function fileMatches(path: string, offset: number, want: Uint8Array): Promise<number> {
  const h = await open(path, 'r');
  try {
    const buf = new Uint8Array(16 * 2 ** 20);
    for (let at = 0; at < want.length; at += buf.length) {
      const n = Math.min(buf.length, want.length - at);
      const { bytesRead } = await h.read(buf, 0, n, offset + at);
      if (bytesRead !== n) return at + bytesRead;
      if (Buffer.compare(buf.subarray(0, n), want.subarray(at, at + n)) !== 0) {
        for (let i = 0; i < n; i++) if (buf[i] !== want[at + i]) return at + i;
      }
    }
    return -1;
  } finally {
    await h.close();
  }
}

test('a 132 MiB tensor (over the 128 MiB binding limit) saves and loads byte for byte', async () => {
  const binding = deviceOf().limits.maxStorageBufferBindingSize;
  const rows = Math.floor(binding / 4 / (1 << 20)) + 1;
  const shape = [rows, 1 << 20];
  const words = new Uint32Array(rows << 20);
  for (let i = 0; i < words.length; i++) words[i] = Math.imul(i, 2654435761) >>> 0;
  const want = new Uint8Array(words.buffer);
  expect(want.length).toBeGreaterThan(binding);
  const a = fromBytes(want, shape, 'uint32').view(shape, {}, 'int32') as WgArray;

  const path = join(dir, 'large.gguf');
  let chunks = 0;
  await saveGGUF(path, { a }, {}, { onProgress: () => chunks++ });
  expect(chunks).toBeGreaterThanOrEqual(3); // 64 MiB chunks
  const f = await loadGGUF(path);
  expect(f.tensorInfos[0].nbytes).toBe(want.length);
  expect(await fileMatches(path, f.tensorInfos[0].fileOffset, want)).toBe(-1);
  const back = (await f.arrays.a()) as WgArray;
  expect(Buffer.compare(new Uint8Array((await back.data()).buffer), want)).toBe(0);
  back.dispose();

  const st = join(dir, 'large.safetensors');
  await saveSafetensors(st, { a });
  const s = await loadSafetensors(st);
  expect(await fileMatches(st, s.tensorInfos[0].fileOffset, want)).toBe(-1);
  a.dispose();
});
