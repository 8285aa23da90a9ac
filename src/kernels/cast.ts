// astype(): element conversion between computed dtypes, shaders/cast.wgsl.

import { DTypeError } from '../errors.js';
import { withContiguous } from './copy.js';
import { WgArray } from '../runtime/array.js';
import { DTYPES, requireComputed, type DType } from '../runtime/dtype.js';
import { elementChunks, grid, WORKGROUP_SIZE } from './dispatch.js';
import { bindGroup, pipeline } from './shader.js';

/** A new array with `a`'s elements converted to `dtype`. */
export function castArray<E extends DType>(a: WgArray, dtype: E): WgArray<E> {
  const device = a.device;
  device.check();
  requireComputed(a.dtype, 'astype', a.describe());
  if (!DTYPES[dtype].computed) {
    throw new DTypeError(`astype: cannot convert ${a.describe()} to ${dtype}, which is held as storage only`);
  }
  // A view is gathered into row-major order by one strided copy, then cast.
  if (!a.isContiguous) return withContiguous(a, (c) => castArray(c, dtype));
  const out = WgArray.empty(device, a.shape, dtype, a.name);
  if (a.size === 0) return out;
  const src = DTYPES[a.dtype];
  const dst = DTYPES[dtype];
  const pipe = pipeline(device, 'cast.wgsl', {
    SRC_BYTES: src.bytes,
    SRC_KIND: src.shaderKind,
    DST_BYTES: dst.bytes,
    DST_KIND: dst.shaderKind,
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
