// Row permutation (the q/k reordering for llama.cpp's rope layout) on the GPU
// as buffer-to-buffer copies, and on the host for the CPU path.

import { WgArray } from '../runtime/array.js';
import { DTYPES } from '../runtime/dtype.js';

/** A new array whose row j is `a`'s row perm[j] (rows = the first dimension). */
export function permuteRowsGpu(a: WgArray, perm: Int32Array): WgArray {
  const rows = a.shape[0];
  const item = DTYPES[a.dtype].bytes;
  const rowBytes = (a.size / rows) * item;
  const base = a.offset * item;
  if (rowBytes % 4 !== 0 || base % 4 !== 0) {
    // copies move whole 32-bit words: widen 16-bit rows of odd length (a bias) first
    const wide = a.astype('float32');
    try {
      return permuteRowsGpu(wide, perm);
    } finally {
      wide.dispose();
    }
  }
  const out = WgArray.empty(a.device, a.shape, a.dtype, a.name);
  const enc = a.device.commandEncoder();
  for (let j = 0; j < rows; ) {
    let k = j + 1;
    while (k < rows && perm[k] === perm[k - 1] + 1) k++;
    enc.copyBufferToBuffer(a.buffer, base + perm[j] * rowBytes, out.buffer, j * rowBytes, (k - j) * rowBytes);
    j = k;
  }
  return out;
}

/** The same permutation of float32 rows on the host. */
export function permuteRowsHost(x: Float32Array, rows: number, perm: Int32Array): Float32Array {
  const cols = x.length / rows;
  const out = new Float32Array(x.length);
  for (let j = 0; j < rows; j++) out.set(x.subarray(perm[j] * cols, (perm[j] + 1) * cols), j * cols);
  return out;
}
