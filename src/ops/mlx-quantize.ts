// quantize / dequantize as public ops: a ggml type name gives ggml blocks
// (src/kernels/quantize.ts), an MLX spec `{ mode, groupSize, bits }` gives MLX's
// packed words, scales and biases (src/kernels/mlx-quantize.ts), as MLX's
// mx.quantize / mx.dequantize do.

import { ArgumentError, ShapeError } from '../errors.js';
import type { WgArray } from '../runtime/array.js';
import type { DType } from '../runtime/dtype.js';
import { QuantizedArray } from '../runtime/quantized.js';
import type { GGMLType } from '../runtime/ggml-types.js';
import { castArray } from '../kernels/cast.js';
import { dequantize as ggmlDequantize, quantize as ggmlQuantize, type QuantizeOptions } from '../kernels/quantize.js';
import { mlxAffineDequantizeGpu, mlxAffineQuantizeGpu, mlxMxfp4DequantizeGpu, mlxMxfp4QuantizeGpu } from '../kernels/mlx-quantize.js';
import { checkMlxRows, checkMlxSpec, type MlxMode } from '../quant/mlx-host.js';

export interface MlxQuantizeOptions {
  mode?: MlxMode;
  /** 32, 64 (default) or 128; mxfp4: 32. */
  groupSize?: number;
  /** 2, 3, 4 (default), 5, 6 or 8; mxfp4: 4. */
  bits?: number;
}

export interface MlxQuantized {
  /** uint32 words, last dimension row * bits / 32. */
  wq: WgArray;
  /** One per group: the input's dtype (affine), uint8 E8M0 bytes (mxfp4). */
  scales: WgArray;
  /** One per group, the input's dtype (affine only). */
  biases?: WgArray;
}

function spec(options: MlxQuantizeOptions): { mode: MlxMode; groupSize: number; bits: number } {
  const mode = options.mode ?? 'affine';
  const s = { mode, groupSize: options.groupSize ?? (mode === 'mxfp4' ? 32 : 64), bits: options.bits ?? 4 };
  checkMlxSpec(s, 'quantize');
  return s;
}

/** MLX quantization: `quantize(w, { mode: 'affine', groupSize: 64, bits: 4 })` -> `{ wq, scales, biases }`. */
export function quantize(a: WgArray, options: MlxQuantizeOptions): MlxQuantized;
/** ggml quantization: `quantize(w, 'q4_K', { imatrix })` -> ggml blocks. */
export function quantize(a: WgArray, type: string | GGMLType, options?: QuantizeOptions): QuantizedArray;
export function quantize(a: WgArray, how: string | GGMLType | MlxQuantizeOptions, options?: QuantizeOptions): QuantizedArray | MlxQuantized {
  if (typeof how === 'string' || 'blockSize' in how) return ggmlQuantize(a, how as string | GGMLType, options);
  const s = spec(how);
  checkMlxRows(a.shape, s, `quantize ${a.describe()}`);
  if (s.mode === 'mxfp4') return mlxMxfp4QuantizeGpu(a);
  return mlxAffineQuantizeGpu(a, s.groupSize, s.bits);
}

/** MLX decoding of `{ wq, scales, biases }` (float32 unless `dtype` says otherwise). */
export function dequantize<D extends DType = 'float32'>(q: MlxQuantized, options: MlxQuantizeOptions & { dtype?: D }): WgArray<D>;
/** ggml decoding of a QuantizedArray. */
export function dequantize<D extends DType = 'float32'>(q: QuantizedArray, dtype?: D): WgArray<D>;
export function dequantize<D extends DType = 'float32'>(q: QuantizedArray | MlxQuantized, how?: D | (MlxQuantizeOptions & { dtype?: D })): WgArray<D> {
  if (q instanceof QuantizedArray) return ggmlDequantize(q, how as D | undefined);
  const o = (how ?? {}) as MlxQuantizeOptions & { dtype?: D };
  const s = spec(o);
  const nGroups = q.scales.size;
  if (q.wq.dtype !== 'uint32') throw new ArgumentError(`dequantize: the packed weights ${q.wq.describe()} must be uint32`);
  if (q.wq.size * 32 !== nGroups * s.groupSize * s.bits) {
    throw new ShapeError(
      `dequantize: packed weights of shape [${q.wq.shape.join(', ')}] and scales of shape [${q.scales.shape.join(', ')}] ` +
        `do not fit group size ${s.groupSize} and ${s.bits} bits`,
    );
  }
  let out: WgArray<'float32'>;
  if (s.mode === 'mxfp4') out = mlxMxfp4DequantizeGpu(q.wq, q.scales);
  else {
    if (!q.biases) throw new ArgumentError('dequantize: affine mode needs biases');
    if (q.biases.size !== nGroups) throw new ShapeError(`dequantize: scales of shape [${q.scales.shape.join(', ')}] and biases of shape [${q.biases.shape.join(', ')}] differ`);
    out = mlxAffineDequantizeGpu(q.wq, q.scales, q.biases, s.groupSize, s.bits);
  }
  const target = (o.dtype ?? 'float32') as D;
  if (target === 'float32') return out as unknown as WgArray<D>;
  try {
    return castArray(out, target);
  } finally {
    out.dispose();
  }
}
