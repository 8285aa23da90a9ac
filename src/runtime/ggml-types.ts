// ggml's tensor types (ggml.h: enum ggml_type) and their block geometry
// (ggml-common.h). This is the one table of block sizes in wgarray: the GGUF
// reader and writer, the quantize/dequantize kernels and the CLI all read it.
// Types wgarray can quantize to carry a codec (src/quant/formats/<type>.ts),
// attached in src/quant/registry.ts.

import { ArgumentError } from '../errors.js';
import type { DType } from '../runtime/dtype.js';

export interface GGMLType {
  /** ggml's name, as llama.cpp and gguf-dump print it (lower case, K upper: 'q4_K'). */
  readonly name: string;
  /** ggml_type value stored in GGUF tensor infos. */
  readonly id: number;
  /** Elements per block (1 for plain types). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
  /** The wgarray dtype of a plain (non-block) type. */
  readonly dtype?: DType;
}

const t = (name: string, id: number, blockSize: number, typeSize: number, dtype?: DType): GGMLType =>
  Object.freeze({ name, id, blockSize, typeSize, dtype });

/** Every ggml type a GGUF file may hold (ids 4, 5, 31-33 and 36-38 were removed from ggml). */
export const GGML_TYPES: readonly GGMLType[] = Object.freeze([
  t('f32', 0, 1, 4, 'float32'),
  t('f16', 1, 1, 2, 'float16'),
  t('q4_0', 2, 32, 18),
  t('q4_1', 3, 32, 20),
  t('q5_0', 6, 32, 22),
  t('q5_1', 7, 32, 24),
  t('q8_0', 8, 32, 34),
  t('q8_1', 9, 32, 36),
  t('q2_K', 10, 256, 84),
  t('q3_K', 11, 256, 110),
  t('q4_K', 12, 256, 144),
  t('q5_K', 13, 256, 176),
  t('q6_K', 14, 256, 210),
  t('q8_K', 15, 256, 292),
  t('iq2_xxs', 16, 256, 66),
  t('iq2_xs', 17, 256, 74),
  t('iq3_xxs', 18, 256, 98),
  t('iq1_s', 19, 256, 50),
  t('iq4_nl', 20, 32, 18),
  t('iq3_s', 21, 256, 110),
  t('iq2_s', 22, 256, 82),
  t('iq4_xs', 23, 256, 136),
  t('i8', 24, 1, 1, 'int8'),
  t('i16', 25, 1, 2, 'int16'),
  t('i32', 26, 1, 4, 'int32'),
  t('i64', 27, 1, 8, 'int64'),
  t('f64', 28, 1, 8, 'float64'),
  t('iq1_m', 29, 256, 56),
  t('bf16', 30, 1, 2, 'bfloat16'),
  t('tq1_0', 34, 256, 54),
  t('tq2_0', 35, 256, 66),
  t('mxfp4', 39, 32, 17),
]);

const byId = new Map(GGML_TYPES.map((x) => [x.id, x]));
const byName = new Map(GGML_TYPES.map((x) => [x.name.toLowerCase(), x]));

export function ggmlTypeById(id: number): GGMLType | undefined {
  return byId.get(id);
}

/** Looks a type up by name, case-insensitively ('Q4_K', 'q4_k', 'q4_K'). */
export function ggmlTypeByName(name: string): GGMLType | undefined {
  return byName.get(name.toLowerCase());
}

export function ggmlType(nameOrId: string | number): GGMLType {
  const found = typeof nameOrId === 'number' ? ggmlTypeById(nameOrId) : ggmlTypeByName(nameOrId);
  if (!found) {
    throw new ArgumentError(
      `unknown ggml type ${JSON.stringify(nameOrId)}; known: ${GGML_TYPES.map((x) => x.name).join(', ')}`,
    );
  }
  return found;
}

/** The plain ggml type that stores a wgarray dtype, if any (bool and uint* have none). */
export function ggmlTypeOfDType(dtype: DType): GGMLType | undefined {
  return GGML_TYPES.find((x) => x.dtype === dtype);
}

/** Bytes of `elements` elements of a type (elements must be whole blocks). */
export function ggmlBytes(type: GGMLType, elements: number): number {
  return (elements / type.blockSize) * type.typeSize;
}
