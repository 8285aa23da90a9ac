// The elementwise op table, apart from src/kernels/elementwise.ts so that the
// WGSL generator (src/kernels/wgsl-gen.ts) can read it without a cycle.

/**
 * Op codes of shaders/elementwise.wgsl: the one table. The shader gets them as
 * named constants (OP_ADD, OP_FLOOR_DIVIDE, ...) generated from it
 * (gen/elementwise_ops.wgsl, src/kernels/wgsl-gen.ts). Codes 0-15 are binary
 * arithmetic, 16-31 comparisons, 32-63 unary ops, 64 where.
 */
export const EW = {
  add: 0,
  subtract: 1,
  multiply: 2,
  divide: 3,
  maximum: 4,
  minimum: 5,
  power: 6,
  floor_divide: 7,
  remainder: 8,
  equal: 16,
  not_equal: 17,
  less: 18,
  less_equal: 19,
  greater: 20,
  greater_equal: 21,
  negative: 32,
  abs: 33,
  sign: 34,
  square: 35,
  sqrt: 36,
  rsqrt: 37,
  reciprocal: 38,
  exp: 39,
  expm1: 40,
  log: 41,
  log1p: 42,
  log2: 43,
  log10: 44,
  sin: 45,
  cos: 46,
  tanh: 47,
  sigmoid: 48,
  floor: 49,
  ceil: 50,
  round: 51,
  clip: 52,
  where: 64,
} as const;

export type EwOp = keyof typeof EW;

/** The WGSL constant naming op `op`: OP_ADD, OP_FLOOR_DIVIDE, ... */
export function wgslOpName(op: EwOp): string {
  return `OP_${op.toUpperCase()}`;
}
