// The same functions as lib/half_soft.wgsl, using the shader-f16 feature's
// hardware conversions for normal numbers. Subnormals, overflow, Inf and NaN
// take the integer path: WGSL leaves them implementation-defined and some
// GPUs flush float16 subnormals.
enable f16;

//#include lib/half_soft_core.wgsl

fn f32_to_f16_bits(x: f32) -> u32 {
  let a = bitcast<u32>(x) & 0x7fffffffu;
  if (a >= 0x38800000u && a < 0x477ff000u) {
    return bitcast<u32>(vec2<f16>(f16(x), 0.0h)) & 0xffffu;
  }
  return f32_to_f16_bits_soft(x);
}

fn f16_bits_to_f32(h: u32) -> f32 {
  let e = (h >> 10u) & 0x1fu;
  if (e != 0u && e != 31u) { return f32(bitcast<vec2<f16>>(h & 0xffffu).x); }
  return f16_bits_to_f32_soft(h);
}
