// astype(): element conversion between computed dtypes, shaders/cast.wgsl.

import { DTypeError } from '../errors.js';
import { contiguous } from './copy.js';
import { WgArray } from '../runtime/array.js';
import { DTYPES, requireComputed, type DType } from '../runtime/dtype.js';
import { elementChunks, grid, WORKGROUP_SIZE } from './dispatch.js';
import { bindGroup, pipeline } from './shader.js';

/** The kind code shaders/cast.wgsl uses for a dtype. */
function kindCode(dtype: DType): number {
  if (dtype === 'float32') return 0;
  if (dtype === 'float16') return 1;
  if (dtype === 'bfloat16') return 2;
  return DTYPES[dtype].kind === 'int' ? 3 : 4;
}

/** A new array with `a`'s elements converted to `dtype`. */
export function castArray<E extends DType>(a: WgArray, dtype: E): WgArray<E> {
  const device = a.device;
  device.check();
  requireComputed(a.dtype, 'astype', a.describe());
  if (!DTYPES[dtype].computed) {
    throw new DTypeError(`astype: cannot convert ${a.describe()} to ${dtype}, which is held as storage only`);
  }
  if (!a.isContiguous) {
    // A view is gathered into row-major order by one strided copy, then cast.
    const c = contiguous(a);
    try {
      return castArray(c, dtype);
    } finally {
      c.dispose();
    }
  }
  const out = WgArray.empty(device, a.shape, dtype, a.name);
  if (a.size === 0) return out;
  const src = DTYPES[a.dtype];
  const dst = DTYPES[dtype];
  const pipe = pipeline(device, 'cast.wgsl', {
    SRC_BYTES: src.bytes,
    SRC_KIND: kindCode(a.dtype),
    DST_BYTES: dst.bytes,
    DST_KIND: kindCode(dtype),
  });
  const chunks = elementChunks(device, a.size, [
    { buffer: a.buffer, bytes: src.bytes, elementOffset: a.offset },
    { buffer: out.buffer, bytes: dst.bytes, elementOffset: 0 },
  ]);
  for (const { count, windows } of chunks) {
    const [from, to] = windows;
    const params = device.uniform([count, from.skip]);
    const group = bindGroup(device, pipe, [from, to, params]);
    const words = Math.ceil((count * dst.bytes) / 4);
    device.dispatch(pipe, [group], grid(device, Math.ceil(words / WORKGROUP_SIZE)));
  }
  return out;
}
