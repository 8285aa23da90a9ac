// GGUF's fixed numbers (ggml's docs/gguf.md, ggml/src/gguf.cpp).

/** "GGUF" as the four bytes that open every file. */
export const GGUF_MAGIC = new Uint8Array([0x47, 0x47, 0x55, 0x46]);
/** The version wgarray writes; it reads 2 and 3 (same little-endian layout). */
export const GGUF_VERSION = 3;
export const GGUF_READ_VERSIONS: readonly number[] = [2, 3];
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** llama.cpp's GGML_MAX_NAME: names are stored in 64-byte buffers with a NUL, so at most 63 bytes. */
export const GGML_MAX_NAME = 64;
/** llama.cpp's GGML_MAX_DIMS. */
export const GGML_MAX_DIMS = 4;
/** Arrays of arrays deeper than this are refused (llama.cpp itself reads none). */
export const GGUF_MAX_ARRAY_DEPTH = 8;

/** The 13 GGUF metadata value types, by their short names. */
export type GGUFScalarType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'string' | 'u64' | 'i64' | 'f64';
export type GGUFValueTypeName = GGUFScalarType | 'array';

/** Value type ids as stored in the file (gguf_type in gguf.h). */
export const GGUF_TYPE_IDS: Readonly<Record<GGUFValueTypeName, number>> = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
};

export const GGUF_TYPE_NAMES: readonly GGUFValueTypeName[] = [
  'u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64',
];

/** Bytes of one value of a fixed-size type. */
export const GGUF_SCALAR_BYTES: Readonly<Record<Exclude<GGUFScalarType, 'string'>, number>> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  bool: 1,
  u64: 8,
  i64: 8,
  f64: 8,
};

/** The smallest encoding of a value of each type (for bounding counts against the file size). */
export function minEncodedBytes(type: GGUFValueTypeName): number {
  if (type === 'string') return 8; // u64 length, no bytes
  if (type === 'array') return 12; // u32 element type + u64 count
  return GGUF_SCALAR_BYTES[type];
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0 && n <= 2 ** 30;
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}
