// safetensors' fixed facts (huggingface/safetensors: docs and the Rust crate).

import type { DType } from '../../runtime/dtype.js';

/** The crate refuses headers over 100 MB (MAX_HEADER_SIZE); so does wgarray, before allocating. */
export const MAX_HEADER_BYTES = 100_000_000;
/** Writers pad the JSON header with spaces to a multiple of 8, so tensor data starts aligned. */
export const HEADER_ALIGN = 8;
export const METADATA_KEY = '__metadata__';
export const INDEX_SUFFIX = '.index.json';

export const DTYPE_TO_SAFETENSORS: Readonly<Record<DType, string>> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint64: 'U64',
  uint32: 'U32',
  uint16: 'U16',
  uint8: 'U8',
  bool: 'BOOL',
};

export const SAFETENSORS_TO_DTYPE: Readonly<Record<string, DType>> = Object.fromEntries(
  Object.entries(DTYPE_TO_SAFETENSORS).map(([d, s]) => [s, d as DType]),
);
