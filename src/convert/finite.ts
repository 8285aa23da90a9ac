// The one place that decides whether a tensor about to be written holds NaN
// or ±Inf: a model with such weights loads and runs on garbage, so the
// converter refuses it (naming the tensor and the first bad element) unless
// the user asked for the copy (--allow-nonfinite). A CPU scan of what is
// already on the host; the GPU path counts with its quality pass first and
// scans only a tensor that has a bad value.

import { FormatError, quoteName, WgArrayError } from '../errors.js';
import type { GGMLType } from '../runtime/ggml-types.js';
import { dequantizeHost } from '../quant/host.js';

/** Index of the first NaN / ±Inf in `values`, or -1. */
export function firstNonFiniteFloat(values: Float32Array | Float64Array): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    // v - v is NaN exactly for NaN and ±Inf
    if (v - v !== 0) return i;
  }
  return -1;
}

/**
 * Index of the first NaN / ±Inf element in tensor bytes stored as `type`, or
 * -1 (also for integer types, which hold no such values). Block formats are
 * decoded first (a NaN or infinite block scale). Types the host cannot decode
 * are not scanned (-1).
 */
export function firstNonFinite(bytes: Uint8Array, type: GGMLType): number {
  const aligned = (k: number) => (bytes.byteOffset % k === 0 ? bytes : bytes.slice());
  switch (type.name) {
    case 'f32': {
      const b = aligned(4);
      return firstNonFiniteFloat(new Float32Array(b.buffer, b.byteOffset, b.byteLength >> 2));
    }
    case 'f64': {
      const b = aligned(8);
      return firstNonFiniteFloat(new Float64Array(b.buffer, b.byteOffset, b.byteLength >> 3));
    }
    case 'f16':
    case 'bf16': {
      const b = aligned(2);
      const bits = new Uint16Array(b.buffer, b.byteOffset, b.byteLength >> 1);
      // all exponent bits set: Inf or NaN
      const mask = type.name === 'f16' ? 0x7c00 : 0x7f80;
      for (let i = 0; i < bits.length; i++) if ((bits[i] & mask) === mask) return i;
      return -1;
    }
  }
  if (type.blockSize <= 1) return -1;
  let decoded: Float32Array;
  try {
    decoded = dequantizeHost(bytes, type, type.name);
  } catch (e) {
    if (e instanceof WgArrayError) return -1; // a format the host cannot decode: left to the reader of the file
    throw e;
  }
  return firstNonFiniteFloat(decoded);
}

/** Row-major index of flat element `i` in `shape`, as "[r, c]". */
export function elementIndex(i: number, shape: readonly number[]): string {
  const idx: number[] = new Array(shape.length).fill(0);
  let rest = i;
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d] || 1;
    idx[d] = rest % n;
    rest = Math.floor(rest / n);
  }
  return `[${idx.join(', ')}]`;
}

/** The refusal: names the tensor, where it comes from, the first bad element and its value. */
export function nonFiniteError(where: string, tensor: string, shape: readonly number[], type: string, index: number, value: number | undefined): FormatError {
  const what = value === undefined ? 'NaN or infinite' : Number.isNaN(value) ? 'NaN' : value > 0 ? '+Inf' : '-Inf';
  return new FormatError(
    where,
    undefined,
    `tensor ${quoteName(tensor)} ([${shape.join(', ')}], ${type}) holds a ${what} value at element ${index} ${elementIndex(index, shape)}; ` +
      'refusing to write NaN/Inf weights (--allow-nonfinite writes them anyway)',
  );
}

/**
 * Throws nonFiniteError when bytes of `type` hold NaN / ±Inf; the message names
 * the tensor as `typeName` (the source's type when `bytes` are a lossless re-type of it).
 */
export function checkFiniteBytes(bytes: Uint8Array, type: GGMLType, where: string, tensor: string, shape: readonly number[], typeName = type.name): void {
  const i = firstNonFinite(bytes, type);
  if (i < 0) return;
  let value: number | undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (type.name === 'f32') value = dv.getFloat32(i * 4, true);
  else if (type.name === 'f64') value = dv.getFloat64(i * 8, true);
  else if (type.name === 'f16' || type.name === 'bf16') {
    const bits = dv.getUint16(i * 2, true);
    const mantissa = bits & (type.name === 'f16' ? 0x3ff : 0x7f);
    value = mantissa ? NaN : bits & 0x8000 ? -Infinity : Infinity;
  }
  throw nonFiniteError(where, tensor, shape, typeName, i, value);
}

/** Throws nonFiniteError when `values` hold NaN / ±Inf. */
export function checkFiniteValues(values: Float32Array, where: string, tensor: string, shape: readonly number[], type: string): void {
  const i = firstNonFiniteFloat(values);
  if (i >= 0) throw nonFiniteError(where, tensor, shape, type, i, values[i]);
}
