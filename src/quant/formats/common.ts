// Rounding and helpers shared by the CPU reference quantizers, as ggml's C
// code computes them. Float32 arithmetic is emulated with Math.fround after
// every operation, in ggml's order of operations.

/** C's roundf on a float32 value: nearest integer, halfway cases away from zero. */
export function roundf(x: number): number {
  const r = Math.floor(Math.abs(x) + 0.5); // exact in double for float32 inputs
  return x < 0 ? -r : r;
}

/** ggml's nearest_int: nearest integer, halfway cases to even (|x| < 2^22). */
export function nearestInt(x: number): number {
  const fl = Math.floor(x);
  const rest = x - fl;
  if (rest > 0.5) return fl + 1;
  if (rest < 0.5) return fl;
  return fl % 2 === 0 ? fl : fl + 1;
}
