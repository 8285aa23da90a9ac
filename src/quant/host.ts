// The CPU path of quantization: ggml's reference algorithms in TypeScript, on
// host memory. The tests' oracle, and the fallback where no WebGPU adapter exists.

import { ShapeError } from '../errors.js';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../runtime/half.js';
import { ggmlType, type GGMLType } from './ggml-types.js';
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
