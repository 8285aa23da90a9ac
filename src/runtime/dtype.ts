import { DTypeError } from '../errors.js';

/** Element types an array can hold. */
export type DType =
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'float64'
  | 'bool';

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** The TypedArray an array of each dtype reads back into (float16/bfloat16: raw bits). */
export interface ReadbackTypes {
  float32: Float32Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
  float64: Float64Array;
  bool: Uint8Array;
}

type TypedArrayConstructor<T extends TypedArray = TypedArray> = {
  new (length: number): T;
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): T;
  readonly BYTES_PER_ELEMENT: number;
};

export interface DTypeInfo {
  readonly name: DType;
  /** Bytes per element in memory, on the GPU and in files. */
  readonly bytes: 1 | 2 | 4 | 8;
  readonly kind: 'float' | 'int' | 'uint' | 'bool';
  /** True where WGSL kernels compute on it; false for dtypes held only as storage. */
  readonly computed: boolean;
  /** The TypedArray holding its raw little-endian elements. */
  readonly container: TypedArrayConstructor;
  /**
   * How shaders read it (their `*_KIND` constants): 0 float32, 1 float16,
   * 2 bfloat16, 3 signed integer, 4 unsigned integer, 5 bool; -1 for float64,
   * which no kernel reads.
   */
  readonly shaderKind: -1 | 0 | 1 | 2 | 3 | 4 | 5;
}

const info = (
  name: DType,
  bytes: DTypeInfo['bytes'],
  kind: DTypeInfo['kind'],
  computed: boolean,
  container: TypedArrayConstructor,
  shaderKind: DTypeInfo['shaderKind'],
): DTypeInfo => ({ name, bytes, kind, computed, container, shaderKind });

export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  float32: info('float32', 4, 'float', true, Float32Array, 0),
  float16: info('float16', 2, 'float', true, Uint16Array, 1),
  bfloat16: info('bfloat16', 2, 'float', true, Uint16Array, 2),
  int8: info('int8', 1, 'int', true, Int8Array, 3),
  uint8: info('uint8', 1, 'uint', true, Uint8Array, 4),
  int16: info('int16', 2, 'int', true, Int16Array, 3),
  uint16: info('uint16', 2, 'uint', true, Uint16Array, 4),
  int32: info('int32', 4, 'int', true, Int32Array, 3),
  uint32: info('uint32', 4, 'uint', true, Uint32Array, 4),
  int64: info('int64', 8, 'int', false, BigInt64Array as unknown as TypedArrayConstructor, 3),
  uint64: info('uint64', 8, 'uint', false, BigUint64Array as unknown as TypedArrayConstructor, 4),
  float64: info('float64', 8, 'float', false, Float64Array, -1),
  bool: info('bool', 1, 'bool', false, Uint8Array, 5),
};

export const ALL_DTYPES = Object.keys(DTYPES) as DType[];
export const COMPUTED_DTYPES = ALL_DTYPES.filter((d) => DTYPES[d].computed);

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, x);
}

export function dtypeInfo(dtype: DType | string): DTypeInfo {
  if (!isDType(dtype)) {
    throw new DTypeError(`unknown dtype '${String(dtype)}'; expected one of ${ALL_DTYPES.join(', ')}`);
  }
  return DTYPES[dtype];
}

/** Throws unless WGSL kernels can compute on `dtype`; `op` and `what` name the failing call. */
export function requireComputed(dtype: DType, op: string, what: string): void {
  if (!DTYPES[dtype].computed) {
    throw new DTypeError(
      `${op}: ${what} has dtype ${dtype}, which is held as storage only (created, read back and saved, ` +
        `not computed on the GPU); computed dtypes are ${COMPUTED_DTYPES.join(', ')}`,
    );
  }
}

/** The dtype a TypedArray holds by default (Uint16Array is uint16: pass dtype for float16/bfloat16 bits). */
export function dtypeOfTypedArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint8Array || a instanceof Uint8ClampedArray) return 'uint8';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Uint16Array) return 'uint16';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint32Array) return 'uint32';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof BigUint64Array) return 'uint64';
  throw new DTypeError(`unsupported data container ${Object.prototype.toString.call(a)}`);
}

export function isTypedArray(x: unknown): x is TypedArray {
  return ArrayBuffer.isView(x) && !(x instanceof DataView);
}
