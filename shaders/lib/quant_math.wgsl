// Rounding as ggml's reference quantizers round. ggml's CPU code has no fused
// multiply-add and uses IEEE division; quantizers must keep its order of
// operations for their bytes to match.

// C's roundf: nearest integer, halfway cases away from zero.
fn roundf(x: f32) -> f32 {
  let a = abs(x);
  var r = floor(a);
  if (a - r >= 0.5) { r = r + 1.0; }
  return select(r, -r, x < 0.0);
}

// ggml's nearest_int (the 1.5 * 2^23 trick): nearest integer, halfway cases to even.
fn nearest_int(x: f32) -> i32 {
  return i32(round(x));
}
