// float32 <-> float16 / bfloat16 bit conversions in integer arithmetic. Bit-exact with ggml and with
// src/runtime/half.ts: round to nearest even, overflow to +-Inf, NaN kept (quieted).
// Special values are found from the bits, never by float compares, since WGSL
// lets compilers assume floats are finite.

fn f32_to_f16_bits_soft(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  let sign = (bits >> 16u) & 0x8000u;
  let a = bits & 0x7fffffffu;
  if (a > 0x7f800000u) { return sign | 0x7e00u | ((a >> 13u) & 0x1ffu); }
  if (a >= 0x477ff000u) { return sign | 0x7c00u; }
  if (a >= 0x38800000u) {
    var h = (((a >> 23u) - 112u) << 10u) | ((a >> 13u) & 0x3ffu);
    let rest = a & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) == 1u)) { h = h + 1u; }
    return sign | h;
  }
  return sign | f16_subnormal_bits(a);
}

// |x| below float16's smallest normal, as float32 magnitude bits: units of 2^-24.
fn f16_subnormal_bits(a: u32) -> u32 {
  if (a <= 0x33000000u) { return 0u; }
  let shift = 126u - (a >> 23u);
  let m = (a & 0x7fffffu) | 0x800000u;
  var h = m >> shift;
  let rest = m & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  if (rest > half || (rest == half && (h & 1u) == 1u)) { h = h + 1u; }
  return h;
}

fn f16_bits_to_f32_soft(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) { return bitcast<f32>(sign | bitcast<u32>(f32(m) * 5.9604644775390625e-8)); }
  if (e == 31u) { return bitcast<f32>(sign | 0x7f800000u | (m << 13u)); }
  return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}

fn f32_to_bf16_bits(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) { return ((bits >> 16u) | 64u) & 0xffffu; }
  return ((bits + (0x7fffu + ((bits >> 16u) & 1u))) >> 16u) & 0xffffu;
}

fn bf16_bits_to_f32(h: u32) -> f32 {
  return bitcast<f32>((h & 0xffffu) << 16u);
}
