// GGUF metadata values: explicit typed values (gguf.u32(5), gguf.array('f32', ...)),
// the rules that give plain JS values a GGUF type, and their byte encoding.
//
// Typing rules, in order:
//   1. A GGUFValue (from gguf.*) keeps its type. For a standard key (keys.ts) a
//      type llama.cpp would reject is an error (unless strictKeyTypes is false).
//   2. A plain value for a standard key is converted to the key's type
//      (llama.context_length: 4096 -> u32; rms epsilon 1e-5 -> f32), with a
//      range check; TypedArrays and WgArrays are converted the same way.
//   3. Any other key: string -> string; boolean -> bool; integer number ->
//      u32 when 0 <= n < 2^32, i32 when -2^31 <= n < 0, else u64/i64 (safe
//      integers) or f64; other numbers -> f32; bigint -> u64 (>= 0) or i64;
//      a TypedArray -> an array of its element type (Float32Array -> f32,
//      Uint16Array -> u16, BigInt64Array -> i64 ...); a 1-D WgArray -> an
//      array of its dtype's type, a 0-D one -> a scalar (float16/bfloat16 have
//      no GGUF value type); a list -> an array, its numbers typed together by
//      the same rule (all fitting u32 -> u32, else all fitting i32 -> i32, ...);
//      an empty list -> an array of u32; a list of lists -> an array of arrays.

import { ArgumentError } from '../../errors.js';
import type { TypedArray } from '../../runtime/dtype.js';
import {
  GGUF_MAX_ARRAY_DEPTH,
  GGUF_SCALAR_BYTES,
  GGUF_TYPE_IDS,
  type GGUFScalarType,
} from './constants.js';
import { standardKeyTypes } from './keys.js';
import { isWellFormed } from '../text.js';

/** A GGUF value type: a scalar name, or 'array<T>' (T may itself be an array type; 'array<array>' = arrays of mixed types). */
export type GGUFType = GGUFScalarType | `array<${string}>`;

export type GGUFNumericType = Exclude<GGUFScalarType, 'bool' | 'string'>;

/** Numeric arrays are held in the TypedArray of their element type. */
export type GGUFNumericArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array;

/** Metadata values as loadGGUF returns them: u64/i64 as bigint, numeric arrays as TypedArrays. */
export type GGUFPlainValue = number | bigint | boolean | string | GGUFNumericArray | boolean[] | string[] | GGUFPlainValue[];

type Stored = number | bigint | boolean | string | GGUFNumericArray | boolean[] | string[] | GGUFValue[];

const CONTAINERS = {
  u8: Uint8Array,
  i8: Int8Array,
  u16: Uint16Array,
  i16: Int16Array,
  u32: Uint32Array,
  i32: Int32Array,
  f32: Float32Array,
  f64: Float64Array,
  u64: BigUint64Array,
  i64: BigInt64Array,
} as const;

const INT_RANGE: Record<Exclude<GGUFNumericType, 'f32' | 'f64'>, [bigint, bigint]> = {
  u8: [0n, 255n],
  i8: [-128n, 127n],
  u16: [0n, 65535n],
  i16: [-32768n, 32767n],
  u32: [0n, 4294967295n],
  i32: [-2147483648n, 2147483647n],
  u64: [0n, 18446744073709551615n],
  i64: [-9223372036854775808n, 9223372036854775807n],
};

const F32_MAX = 3.4028234663852886e38;

const SCALARS = new Set<string>(['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'u64', 'i64', 'f64']);

export function isScalarType(t: string): t is GGUFScalarType {
  return SCALARS.has(t);
}

export function isNumericType(t: string): t is GGUFNumericType {
  return isScalarType(t) && t !== 'bool' && t !== 'string';
}

/** The element type of 'array<T>' ('array' for 'array<array>'), or undefined for a scalar type. */
export function elementType(t: GGUFType): GGUFType | 'array' | undefined {
  if (!t.startsWith('array<')) return undefined;
  return t.slice(6, -1) as GGUFType | 'array';
}

/** Checks a type descriptor such as 'u32', 'array<f32>', 'array<array<string>>'. */
export function checkType(t: string, what = 'type'): GGUFType {
  let rest = t;
  let depth = 0;
  while (rest.startsWith('array<') && rest.endsWith('>')) {
    rest = rest.slice(6, -1);
    depth++;
  }
  const ok = (isScalarType(rest) || (rest === 'array' && depth > 0)) && depth <= GGUF_MAX_ARRAY_DEPTH;
  if (!ok) {
    throw new ArgumentError(
      `${what}: '${t}' is not a GGUF value type; expected one of u8 i8 u16 i16 u32 i32 u64 i64 f32 f64 bool string, ` +
        `or array<T> of one (arrays nest at most ${GGUF_MAX_ARRAY_DEPTH} deep)`,
    );
  }
  return t as GGUFType;
}

/** A metadata value with its GGUF type. Make one with the gguf.* functions. */
export class GGUFValue {
  readonly type: GGUFType;
  /** Scalars as number/bigint/boolean/string; numeric arrays as TypedArrays; bool/string arrays as lists; arrays of arrays as GGUFValue[]. */
  readonly value: Stored;

  /** Use the gguf.* functions: they check the value against the type. */
  constructor(type: GGUFType, value: Stored) {
    this.type = type;
    this.value = value;
  }

  /** The value without type information, as loadGGUF's `metadata` holds it. */
  plain(): GGUFPlainValue {
    const el = elementType(this.type);
    if (el === 'array' || (el !== undefined && elementType(el) !== undefined)) return (this.value as GGUFValue[]).map((v) => v.plain());
    return this.value as GGUFPlainValue;
  }

  toString(): string {
    return `gguf.${this.type}(${String(this.value)})`;
  }
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'an object';
  return `${typeof v} ${String(v)}`;
}

function fail(what: string, expected: string, got: unknown): never {
  throw new ArgumentError(`metadata ${what}: expected ${expected}, got ${typeName(got)}`);
}

function toInteger(v: unknown, t: Exclude<GGUFNumericType, 'f32' | 'f64'>, what: string): number | bigint {
  let big: bigint;
  if (typeof v === 'number' && Number.isInteger(v)) big = BigInt(v);
  else if (typeof v === 'bigint') big = v;
  else return fail(what, `an integer for ${t}`, v);
  const [lo, hi] = INT_RANGE[t];
  if (big < lo || big > hi) {
    throw new ArgumentError(`metadata ${what}: ${big} is out of ${t}'s range [${lo}, ${hi}]`);
  }
  return t === 'u64' || t === 'i64' ? big : Number(big);
}

function toFloat(v: unknown, t: 'f32' | 'f64', what: string): number {
  if (typeof v !== 'number' && typeof v !== 'bigint') return fail(what, `a number for ${t}`, v);
  const x = Number(v);
  if (t === 'f64') return x;
  if (Number.isFinite(x) && !Number.isFinite(Math.fround(x))) {
    throw new ArgumentError(`metadata ${what}: ${x} is out of f32's range (±${F32_MAX}); pass gguf.f64(...) for a double`);
  }
  return Math.fround(x);
}

function toScalar(v: unknown, t: GGUFScalarType, what: string): number | bigint | boolean | string {
  switch (t) {
    case 'bool':
      return typeof v === 'boolean' ? v : fail(what, 'a boolean', v);
    case 'string':
      if (typeof v !== 'string') return fail(what, 'a string', v);
      if (!isWellFormed(v)) throw new ArgumentError(`metadata ${what}: the string has a lone UTF-16 surrogate and cannot be written as UTF-8`);
      return v;
    case 'f32':
    case 'f64':
      return toFloat(v, t, what);
    default:
      return toInteger(v, t, what);
  }
}

function isListLike(v: unknown): v is ArrayLike<unknown> {
  return Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView));
}

/** Converts `v` to a value of type `t`, checking every element; throws ArgumentError naming `what`. */
export function coerce(v: unknown, t: GGUFType, what: string): GGUFValue {
  if (v instanceof GGUFValue) {
    if (v.type === t) return v;
    throw new ArgumentError(`metadata ${what}: expected ${t}, got a value typed ${v.type}`);
  }
  const el = elementType(t);
  if (el === undefined) return new GGUFValue(t, toScalar(v, t as GGUFScalarType, what));
  if (!isListLike(v)) return fail(what, `a list or TypedArray for ${t}`, v);
  const n = v.length;
  if (el === 'array') {
    const out: GGUFValue[] = [];
    for (let i = 0; i < n; i++) {
      const item = (v as ArrayLike<unknown>)[i];
      out.push(item instanceof GGUFValue && elementType(item.type) !== undefined ? item : infer(item, `${what}[${i}]`));
      if (elementType(out[i].type) === undefined) fail(`${what}[${i}]`, 'an array', item);
    }
    return new GGUFValue(t, out);
  }
  if (elementType(el) !== undefined) {
    const out: GGUFValue[] = [];
    for (let i = 0; i < n; i++) out.push(coerce((v as ArrayLike<unknown>)[i], el, `${what}[${i}]`));
    return new GGUFValue(t, out);
  }
  if (el === 'bool' || el === 'string') {
    const out: (boolean | string)[] = [];
    for (let i = 0; i < n; i++) out.push(toScalar((v as ArrayLike<unknown>)[i], el, `${what}[${i}]`) as boolean | string);
    return new GGUFValue(t, out as boolean[] | string[]);
  }
  const num = el as GGUFNumericType;
  const Container = CONTAINERS[num];
  if (v instanceof Container) return new GGUFValue(t, v as GGUFNumericArray);
  const out = new Container(n);
  for (let i = 0; i < n; i++) (out as unknown as (number | bigint)[])[i] = toScalar((v as ArrayLike<unknown>)[i], num, `${what}[${i}]`) as never;
  return new GGUFValue(t, out);
}

/** The GGUF type of a TypedArray's elements. */
export function typedArrayElementType(a: TypedArray): GGUFNumericType {
  if (a instanceof Uint8Array || a instanceof Uint8ClampedArray) return 'u8';
  if (a instanceof Int8Array) return 'i8';
  if (a instanceof Uint16Array) return 'u16';
  if (a instanceof Int16Array) return 'i16';
  if (a instanceof Uint32Array) return 'u32';
  if (a instanceof Int32Array) return 'i32';
  if (a instanceof Float32Array) return 'f32';
  if (a instanceof Float64Array) return 'f64';
  if (a instanceof BigUint64Array) return 'u64';
  return 'i64';
}

/** The type rule 3 gives a group of plain numbers / bigints. */
function numberType(values: ArrayLike<number | bigint>): GGUFNumericType {
  let allInt = true;
  let min = Infinity;
  let max = -Infinity;
  let big = false;
  let bigMin = 0n;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (typeof x === 'bigint') {
      big = true;
      if (x < bigMin) bigMin = x;
      continue;
    }
    if (!Number.isInteger(x)) allInt = false;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  if (big) {
    if (!allInt) return 'f64';
    return bigMin < 0n || min < 0 ? 'i64' : 'u64';
  }
  if (!allInt) return 'f32';
  if (values.length === 0 || (min >= 0 && max <= 0xffffffff)) return 'u32';
  if (min >= -0x80000000 && max <= 0x7fffffff) return 'i32';
  if (min >= Number.MIN_SAFE_INTEGER && max <= Number.MAX_SAFE_INTEGER) return min < 0 ? 'i64' : 'u64';
  return 'f64';
}

/** Rule 3: the type of a plain value for a key llama.cpp does not know. */
export function infer(v: unknown, what: string, depth = 0): GGUFValue {
  if (v instanceof GGUFValue) return v;
  if (typeof v === 'string' || typeof v === 'boolean') return coerce(v, typeof v === 'string' ? 'string' : 'bool', what);
  if (typeof v === 'number' || typeof v === 'bigint') return coerce(v, numberType([v]), what);
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    const t = typedArrayElementType(v as TypedArray);
    return coerce(v instanceof Uint8ClampedArray ? new Uint8Array(v.buffer, v.byteOffset, v.length) : v, `array<${t}>`, what);
  }
  if (Array.isArray(v)) {
    if (depth >= GGUF_MAX_ARRAY_DEPTH) throw new ArgumentError(`metadata ${what}: lists nest deeper than ${GGUF_MAX_ARRAY_DEPTH} levels`);
    if (v.length === 0) return new GGUFValue('array<u32>', new Uint32Array(0));
    const kinds = new Set(v.map((x) => (x instanceof GGUFValue ? 'typed' : Array.isArray(x) || ArrayBuffer.isView(x) ? 'list' : typeof x)));
    if (kinds.size === 1 && kinds.has('string')) return coerce(v, 'array<string>', what);
    if (kinds.size === 1 && kinds.has('boolean')) return coerce(v, 'array<bool>', what);
    if ([...kinds].every((k) => k === 'number' || k === 'bigint')) return coerce(v, `array<${numberType(v as (number | bigint)[])}>`, what);
    if ([...kinds].every((k) => k === 'list' || k === 'typed')) {
      const inner = v.map((x, i) => infer(x, `${what}[${i}]`, depth + 1));
      for (let i = 0; i < inner.length; i++) {
        if (elementType(inner[i].type) === undefined) fail(`${what}[${i}]`, 'a list', v[i]);
      }
      const same = inner.every((x) => x.type === inner[0].type);
      return new GGUFValue(same ? `array<${inner[0].type}>` : 'array<array>', inner);
    }
    throw new ArgumentError(`metadata ${what}: a list mixes ${[...kinds].join(' and ')}; GGUF arrays hold one type`);
  }
  return fail(what, 'a string, number, bigint, boolean, TypedArray, list, 1-D WgArray or gguf.* value', v);
}

/** Explicit types that llama.cpp also accepts where the standard type is array<i32> (its get_arr reads i32 and u32 alike). */
function compatible(standard: GGUFType, given: GGUFType): boolean {
  return standard === given || (standard === 'array<i32>' && given === 'array<u32>');
}

/**
 * Types one metadata entry: explicit types kept (and checked against a
 * standard key's type when `strict`), plain values converted to the standard
 * type or typed by rule 3.
 */
export function typeMetadataValue(key: string, v: unknown, strict = true): GGUFValue {
  const what = `'${key}'`;
  const standard = standardKeyTypes(key);
  if (!standard) return infer(v, what);
  if (v instanceof GGUFValue) {
    if (!strict || standard.some((t) => compatible(t, v.type))) return v;
    throw new ArgumentError(
      `metadata ${what} is given as ${v.type}, but llama.cpp reads it as ${standard.join(' or ')} and rejects other types; ` +
        `pass a plain value (it is converted) or gguf.${standard[0].startsWith('array') ? `array('${elementType(standard[0])}', ...)` : `${standard[0]}(...)`}` +
        ` (or strictKeyTypes: false to write it anyway)`,
    );
  }
  const t = standard.length === 2 && isListLike(v) ? standard[1] : standard[0];
  return coerce(v, t, `${what} (llama.cpp reads it as ${t})`);
}

// ---- encoding ----

/** Bytes of a GGUF string: u64 length + UTF-8. */
export function stringBytes(s: string): number {
  return 8 + Buffer.byteLength(s, 'utf8');
}

/** Bytes of a value's payload (after its u32 type id). */
export function payloadBytes(v: GGUFValue): number {
  const el = elementType(v.type);
  if (el === undefined) return v.type === 'string' ? stringBytes(v.value as string) : GGUF_SCALAR_BYTES[v.type as GGUFNumericType | 'bool'];
  let n = 12; // element type + count
  if (el === 'string') for (const s of v.value as string[]) n += stringBytes(s);
  else if (el === 'bool') n += (v.value as boolean[]).length;
  else if (Array.isArray(v.value)) for (const x of v.value as GGUFValue[]) n += payloadBytes(x);
  else n += (v.value as GGUFNumericArray).byteLength;
  return n;
}

/** Writes little-endian GGUF values into a Buffer of known size. */
export class ByteWriter {
  pos = 0;
  readonly buf: Buffer;
  constructor(size: number) {
    this.buf = Buffer.alloc(size);
  }
  u32(x: number): void {
    this.buf.writeUInt32LE(x, this.pos);
    this.pos += 4;
  }
  u64(x: number | bigint): void {
    this.buf.writeBigUInt64LE(BigInt(x), this.pos);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  string(s: string): void {
    const n = this.buf.write(s, this.pos + 8, 'utf8');
    this.u64(n);
    this.pos += n;
  }
  scalar(t: GGUFScalarType, x: number | bigint | boolean | string): void {
    const b = this.buf;
    switch (t) {
      case 'u8': b.writeUInt8(x as number, this.pos); break;
      case 'i8': b.writeInt8(x as number, this.pos); break;
      case 'u16': b.writeUInt16LE(x as number, this.pos); break;
      case 'i16': b.writeInt16LE(x as number, this.pos); break;
      case 'u32': b.writeUInt32LE(x as number, this.pos); break;
      case 'i32': b.writeInt32LE(x as number, this.pos); break;
      case 'f32': b.writeFloatLE(x as number, this.pos); break;
      case 'f64': b.writeDoubleLE(x as number, this.pos); break;
      case 'u64': b.writeBigUInt64LE(x as bigint, this.pos); break;
      case 'i64': b.writeBigInt64LE(x as bigint, this.pos); break;
      case 'bool': b.writeUInt8(x ? 1 : 0, this.pos); break;
      case 'string': this.string(x as string); return;
    }
    this.pos += GGUF_SCALAR_BYTES[t];
  }
  /** A value's payload (no type id). */
  payload(v: GGUFValue): void {
    const el = elementType(v.type);
    if (el === undefined) return this.scalar(v.type as GGUFScalarType, v.value as number);
    this.u32(GGUF_TYPE_IDS[el.startsWith('array') ? 'array' : (el as GGUFScalarType)]);
    const items = v.value as ArrayLike<unknown>;
    this.u64(items.length);
    if (el === 'string') for (const s of items as string[]) this.string(s);
    else if (el === 'bool') for (const x of items as boolean[]) this.scalar('bool', x);
    else if (Array.isArray(items)) for (const x of items as GGUFValue[]) this.payload(x);
    else {
      const a = items as GGUFNumericArray;
      this.bytes(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    }
  }
  /** A value with its type id. */
  value(v: GGUFValue): void {
    this.u32(GGUF_TYPE_IDS[elementType(v.type) === undefined ? (v.type as GGUFScalarType) : 'array']);
    this.payload(v);
  }
}

// ---- explicit typed values ----

function typed(t: GGUFScalarType) {
  return (x: unknown): GGUFValue => coerce(x, t, `gguf.${t}(${typeof x === 'string' ? JSON.stringify(x) : String(x)})`);
}

/**
 * Explicitly typed metadata values, one per GGUF value type:
 * gguf.u32(5), gguf.f64(x), gguf.string('llama'), gguf.array('i32', [1, 2]),
 * gguf.array('array<string>', [['a'], ['b', 'c']]).
 */
export const gguf = {
  u8: typed('u8'),
  i8: typed('i8'),
  u16: typed('u16'),
  i16: typed('i16'),
  u32: typed('u32'),
  i32: typed('i32'),
  u64: typed('u64'),
  i64: typed('i64'),
  f32: typed('f32'),
  f64: typed('f64'),
  bool: typed('bool'),
  string: typed('string'),
  /** An array of `element` values ('f32', 'string', 'array<i32>' ...). */
  array(element: string, values: ArrayLike<unknown>): GGUFValue {
    const t = checkType(`array<${element}>`, `gguf.array('${element}', ...)`);
    return coerce(values, t, `gguf.array('${element}', ...)`);
  },
  /** A value of any type descriptor ('u32', 'array<f32>' ...). */
  value(type: string, value: unknown): GGUFValue {
    return coerce(value, checkType(type, `gguf.value('${type}', ...)`), `gguf.value('${type}', ...)`);
  },
} as const;

/** The descriptor of a numeric array's TypedArray (for readers building GGUFValues). */
export function containerOf(t: GGUFNumericType): (typeof CONTAINERS)[GGUFNumericType] {
  return CONTAINERS[t];
}
