// The forward pass's matrix products, y = x @ Wᵀ (+ b), in one place for every
// architecture's graph: weights whose type the direct kernel decodes
// (src/kernels/matmul-linear.ts: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)
// are read from the file into the GPU as stored and multiplied in that form;
// the others are dequantized to float32 on the GPU and go through the generic
// matmul, as before.

import { open } from 'node:fs/promises';
import { ArgumentError, FormatError } from '../errors.js';
import type { GGUFFile } from '../io/gguf/reader.js';
import { castArray } from '../kernels/cast.js';
import { linearDirect, linearKernel, LinearWeight, uploadLinearWeight } from '../kernels/matmul-linear.js';
import { dequantize } from '../kernels/quantize.js';
import { add } from '../ops/elementwise.js';
import { matmul, matrixTranspose } from '../ops/linalg.js';
import { WgArray } from '../runtime/array.js';
import type { Device } from '../runtime/device.js';
import { QuantizedArray } from '../runtime/quantized.js';

/** A projection weight [out, in]: as stored (direct kernel) or a float GPU array. */
export type ModelWeight = LinearWeight | WgArray;

let directDisabled = false;
/** Tests and benches: route every product through dequantize + generic matmul (the path the direct kernel replaces). */
export function setDirectLinear(enabled: boolean): void {
  directDisabled = !enabled;
}

/**
 * Loads the 2-D weight `name` of `file` for linear(): as stored when the
 * direct kernel reads its type and shape, else dequantized (ggml blocks) or
 * kept as F16/BF16/F32 for the generic matmul.
 */
export async function loadProjection(file: GGUFFile, name: string, device: Device): Promise<ModelWeight> {
  const t = file.tensorInfos.find((x) => x.name === name);
  if (!t) throw new FormatError(file.path, undefined, `tensor '${name}' is missing`);
  if (t.shape.length === 2 && !directDisabled && linearDirect(t.type, t.shape[1])) {
    const bytes = new Uint8Array(t.nbytes);
    const fh = await open(file.path, 'r');
    try {
      const { bytesRead } = await fh.read(bytes, 0, t.nbytes, t.fileOffset);
      if (bytesRead !== t.nbytes) throw new FormatError(file.path, t.fileOffset, `tensor '${name}' is truncated: ${bytesRead} of ${t.nbytes} bytes`);
    } finally {
      await fh.close();
    }
    return uploadLinearWeight(device, bytes, t.type, t.shape[0], t.shape[1], name);
  }
  const raw = await file.arrays[name]();
  try {
    if (raw instanceof QuantizedArray) return dequantize(raw, 'float32');
    return raw.dtype === 'float32' || raw.dtype === 'float16' || raw.dtype === 'bfloat16' ? raw.view(raw.shape) : castArray(raw, 'float32');
  } finally {
    raw.dispose();
  }
}

/** x [tokens, in] @ Wᵀ (+ b): float32 [tokens, out]. */
export function linear(x: WgArray, w: ModelWeight, b?: WgArray): WgArray<'float32'> {
  const y =
    w instanceof LinearWeight && x.dtype === 'float32' && x.isContiguous && x.offset % 4 === 0
      ? linearKernel(x as WgArray<'float32'>, w)
      : (matmul(x, matrixTranspose(w instanceof LinearWeight ? unsupported(w) : w), { dtype: 'float32' }) as WgArray<'float32'>);
  if (!b) return y;
  try {
    return add(y, b) as WgArray<'float32'>;
  } finally {
    y.dispose();
  }
}

function unsupported(w: LinearWeight): never {
  throw new ArgumentError(`linear: weight '${w.name}' (direct kernel) needs a contiguous float32 input whose view starts at a multiple of 4 elements`);
}
