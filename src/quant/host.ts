// The CPU path of quantization: ggml's reference algorithms in TypeScript, on
// host memory. The tests' oracle, and the fallback where no WebGPU adapter exists.

import { ArgumentError, ShapeError } from '../errors.js';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../runtime/half.js';
import { ggmlType, type GGMLType } from '../runtime/ggml-types.js';
import { quantFormat } from './registry.js';

function resolve(type: string | GGMLType, elements: number, what: string): GGMLType {
  const t = typeof type === 'string' ? ggmlType(type) : type;
  if (elements % t.blockSize !== 0) {
    throw new ShapeError(`${what}: ${elements} elements are not a whole number of ${t.name} blocks of ${t.blockSize}`);
  }
  return t;
}

/** Quantizes float32 values (whole rows of whole blocks) to `type`'s bytes on the CPU. */
export function quantizeHost(x: Float32Array, type: string | GGMLType, what = 'quantizeHost'): Uint8Array {
  const t = resolve(type, x.length, what);
  const out = new Uint8Array((x.length / t.blockSize) * t.typeSize);
  switch (t.name) {
    case 'f32':
      out.set(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
      return out;
    case 'f16':
    case 'bf16': {
      const bits = new Uint16Array(out.buffer);
      const conv = t.name === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
      for (let i = 0; i < x.length; i++) bits[i] = conv(x[i]);
      return out;
    }
    default:
      quantFormat(t).quantizeCpu(x, out);
      return out;
  }
}

/**
 * Quantizes float32 rows of `nPerRow` values with an importance matrix, as
 * ggml_quantize_chunk(type, ..., quant_weights) does: `weights` holds nPerRow
 * per-column weights, or nPerRow x experts for a 3-D tensor whose rows are
 * split evenly among its experts (llama-quantize's imatrix slice per expert).
 * Formats whose descriptor says the imatrix is 'ignored' (and the plain float
 * types) give the same bytes as without one.
 */
export function quantizeHostWeighted(
  x: Float32Array,
  type: string | GGMLType,
  nPerRow: number,
  weights: Float32Array,
  what = 'quantizeHostWeighted',
): Uint8Array {
  const t = resolve(type, nPerRow, `${what} (row length)`);
  if (!(nPerRow > 0) || x.length % nPerRow !== 0) {
    throw new ShapeError(`${what}: ${x.length} values are not whole rows of ${nPerRow}`);
  }
  const rows = x.length / nPerRow;
  const experts = weights.length / nPerRow;
  if (!Number.isInteger(experts) || experts < 1 || rows % experts !== 0) {
    throw new ArgumentError(
      `${what}: ${weights.length} importance weights for ${rows} rows of ${nPerRow}; expected ${nPerRow} (or ${nPerRow} per expert, the rows split evenly among the experts)`,
    );
  }
  if (t.dtype) return quantizeHost(x, t, what);
  const format = quantFormat(t);
  if (format.imatrix === 'ignored' || !format.quantizeWeightedCpu) return quantizeHost(x, t, what);
  const out = new Uint8Array((x.length / t.blockSize) * t.typeSize);
  const rowsPerExpert = rows / experts;
  const rowBytes = (nPerRow / t.blockSize) * t.typeSize;
  for (let e = 0; e < experts; e++) {
    const from = e * rowsPerExpert;
    format.quantizeWeightedCpu(
      x.subarray(from * nPerRow, (from + rowsPerExpert) * nPerRow),
      out.subarray(from * rowBytes, (from + rowsPerExpert) * rowBytes),
      nPerRow,
      weights.subarray(e * nPerRow, (e + 1) * nPerRow),
    );
  }
  return out;
}

/** Decodes `type`'s bytes to float32 on the CPU. */
export function dequantizeHost(bytes: Uint8Array, type: string | GGMLType, what = 'dequantizeHost'): Float32Array {
  const t = typeof type === 'string' ? ggmlType(type) : type;
  if (bytes.length % t.typeSize !== 0) {
    throw new ShapeError(`${what}: ${bytes.length} bytes are not a whole number of ${t.name} blocks of ${t.typeSize} bytes`);
  }
  const n = (bytes.length / t.typeSize) * t.blockSize;
  const out = new Float32Array(n);
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  switch (t.name) {
    case 'f32':
      out.set(new Float32Array(aligned.buffer, aligned.byteOffset, n));
      return out;
    case 'f16':
    case 'bf16': {
      const bits = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
      const conv = t.name === 'f16' ? f16BitsToF32 : bf16BitsToF32;
      for (let i = 0; i < n; i++) out[i] = conv(bits[i]);
      return out;
    }
    default:
      quantFormat(t).dequantizeCpu(bytes, out);
      return out;
  }
}
