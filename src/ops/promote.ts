// Type promotion for ops with several operands, as MLX (which follows JAX).
//
// Two arrays of dtypes a and b give promoteTypes(a, b):
//
//   same dtype              -> that dtype
//   bool with X             -> X
//   uint with uint          -> the wider            (uint8 + uint32 -> uint32)
//   int with int            -> the wider            (int8 + int32 -> int32)
//   int with uint           -> the signed type that holds both:
//                              uint8 + int8 -> int16, uint16 + int16 -> int32,
//                              uint32 + any int -> int64, uint64 + any int -> float32
//   integer or bool with a float -> the float       (int32 + float16 -> float16)
//   float16 with bfloat16   -> float32
//   float with float        -> the wider            (float16 + float32 -> float32)
//   float64 with any float  -> float64
//
// JS numbers and booleans are weakly typed, as Python scalars in MLX: they take
// the array's dtype unless their kind is higher. With an array of dtype D:
//
//   integer number          -> D (bool arrays: int32)
//   non-integer number      -> D if D is a float, else float32
//   boolean                 -> D
//
// (A JS number has no int/float distinction: 2.0 is an integer.) Only the
// computed dtypes (float32, float16, bfloat16, [u]int8/16/32) take part in
// arithmetic; a promotion to int64, uint64 or float64 is a DTypeError that
// names both operands, and bool arrays enter arithmetic as 0 and 1.

import { DTypeError } from '../errors.js';
import { WgArray } from '../runtime/array.js';
import { DTYPES, type DType } from '../runtime/dtype.js';

/** A JS scalar operand. */
export type Scalar = number | boolean;

/** An operand of an elementwise op. */
export type Operand = WgArray | Scalar;

const SIGNED_BY_BYTES: Record<number, DType> = { 1: 'int8', 2: 'int16', 4: 'int32', 8: 'int64' };
const FLOAT_RANK: Partial<Record<DType, number>> = { float16: 1, bfloat16: 1, float32: 2, float64: 3 };

/** The dtype two array dtypes promote to (see the table above). */
export function promoteTypes(a: DType, b: DType): DType {
  if (a === b) return a;
  const ka = DTYPES[a].kind;
  const kb = DTYPES[b].kind;
  if (ka === 'bool') return b;
  if (kb === 'bool') return a;
  if (ka === 'float' && kb === 'float') {
    const ra = FLOAT_RANK[a]!;
    const rb = FLOAT_RANK[b]!;
    if (ra === rb) return 'float32'; // float16 with bfloat16
    return ra > rb ? a : b;
  }
  if (ka === 'float') return a;
  if (kb === 'float') return b;
  const ba = DTYPES[a].bytes;
  const bb = DTYPES[b].bytes;
  if (ka === kb) return ba >= bb ? a : b;
  const [u, s] = ka === 'uint' ? [ba, bb] : [bb, ba];
  if (u < s) return ka === 'int' ? a : b;
  if (u === 8) return 'float32';
  return SIGNED_BY_BYTES[u * 2];
}

/** The dtype a JS scalar takes beside an array of dtype `d`. */
export function scalarDType(value: Scalar, d: DType): DType {
  if (typeof value === 'boolean') return d;
  const kind = DTYPES[d].kind;
  if (Number.isInteger(value) || !Number.isFinite(value)) {
    if (kind === 'bool') return Number.isInteger(value) ? 'int32' : 'float32';
    // Inf / NaN with an integer array need a float.
    if (!Number.isFinite(value) && kind !== 'float') return 'float32';
    return d;
  }
  return kind === 'float' ? d : 'float32';
}

/** The dtype of a scalar on its own: bool, int32 or float32. */
function ownDType(value: Scalar): DType {
  if (typeof value === 'boolean') return 'bool';
  return Number.isInteger(value) ? 'int32' : 'float32';
}

function describeOperand(x: Operand): string {
  return x instanceof WgArray ? x.describe() : `scalar ${String(x)}`;
}

/**
 * The dtype `op` computes in and returns, for these operands: arrays promote
 * with each other, then scalars promote weakly against the result.
 */
export function resultType(op: string, operands: readonly Operand[]): DType {
  const arrays = operands.filter((x): x is WgArray => x instanceof WgArray);
  let dtype: DType | null = null;
  for (const x of arrays) dtype = dtype === null ? x.dtype : promoteTypes(dtype, x.dtype);
  for (const x of operands) {
    if (x instanceof WgArray) continue;
    if (typeof x !== 'number' && typeof x !== 'boolean') {
      throw new DTypeError(`${op}: operand ${String(x)} is neither an array nor a number or boolean`);
    }
    dtype = dtype === null ? ownDType(x) : promoteTypes(dtype, scalarDType(x, dtype));
  }
  if (dtype === null) throw new DTypeError(`${op}: needs at least one operand`);
  if (dtype === 'int64' || dtype === 'uint64' || dtype === 'float64') {
    throw new DTypeError(
      `${op}: ${operands.map(describeOperand).join(' and ')} promote to ${dtype}, which is held as storage only; ` +
        `cast an operand to a computed dtype first (float32, float16, bfloat16, [u]int8/16/32)`,
    );
  }
  return dtype;
}
