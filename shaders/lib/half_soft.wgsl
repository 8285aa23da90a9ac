// lib/half.wgsl on a device without shader-f16: the integer conversions alone.

//#include lib/half_soft_core.wgsl

fn f32_to_f16_bits(x: f32) -> u32 { return f32_to_f16_bits_soft(x); }
fn f16_bits_to_f32(h: u32) -> f32 { return f16_bits_to_f32_soft(h); }
