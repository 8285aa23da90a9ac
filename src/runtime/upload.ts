// Uploading host bytes into a new array: the one way data from the CPU enters a
// GPU buffer (array(), take()'s index lists, the file readers' CPU paths).

import { ShapeError } from '../errors.js';
import { formatShape, shapeSize, WgArray, type Shape } from './array.js';
import { deviceOf, type Device } from './device.js';
import { dtypeInfo, type DType } from './dtype.js';

/** Bytes per writeBuffer call, so uploads of huge arrays stay bounded in staging memory. */
const UPLOAD_CHUNK = 64 * 2 ** 20;

/** Uploads raw little-endian element bytes into a new array. */
export function fromBytes<D extends DType>(bytes: ArrayBufferView, shape: Shape, dtype: D, device?: Device, name?: string): WgArray<D> {
  const d = deviceOf(device);
  const size = shapeSize(shape);
  const nbytes = size * dtypeInfo(dtype).bytes;
  if (bytes.byteLength !== nbytes) {
    throw new ShapeError(
      `${name ? `'${name}': ` : ''}${bytes.byteLength} bytes of data do not fill shape ${formatShape(shape)} of ${dtype} (${nbytes} bytes)`,
    );
  }
  const out = WgArray.empty(d, shape, dtype, name);
  const src = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const whole = nbytes - (nbytes % 4);
  for (let at = 0; at < whole; at += UPLOAD_CHUNK) {
    d.writeBuffer(out.buffer, at, src.subarray(at, Math.min(whole, at + UPLOAD_CHUNK)));
  }
  if (whole < nbytes) {
    // writeBuffer moves whole words: pad the last one.
    const tail = new Uint8Array(4);
    tail.set(src.subarray(whole));
    d.writeBuffer(out.buffer, whole, tail);
  }
  return out;
}
