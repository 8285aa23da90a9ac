// Q8_0: blocks of 32 weights as { d: f16, qs: i8[32] } (34 bytes), x = d * q.
// ggml: quantize_row_q8_0_ref / dequantize_row_q8_0. CPU reference: src/quant/formats/q8_0.ts.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/legacy_quant.wgsl
//#include lib/d16_pair.wgsl
//#include lib/quantize_error_sums.wgsl


const BODY_WORDS: u32 = 8u;

// (int8_t)roundf(x * id) as ggml's x86-64 build computes it: 0 where x * id is not finite.
// Adds the error of its dequantized value (the stored byte times dd) to s.
fn q8_word(x: vec4<f32>, id: f32, dd: f32, s: ptr<function, vec4<f32>>) -> u32 {
  let q = bitcast<vec4<u32>>(c_lround4(x * id)) & vec4<u32>(0xffu);
  add_error4(s, x, vec4<f32>(bitcast<vec4<i32>>(q << vec4<u32>(24u)) >> vec4<u32>(24u)) * dd);
  return pack_bytes(q);
}

// d, then the 32 bytes of qs as eight words; the block's error sums added to s.
fn d16_block(b: u32, s: ptr<function, vec4<f32>>) -> D16Block {
  let x = load_block32(b * QK);
  let amax_bits = abs_max_bits32(x);
  // an invalid block decodes to NaN (a NaN scale): all 32 differences are non-finite
  if (!is_finite_bits(amax_bits)) { add_invalid_block(s); return invalid_d16_block(); }
  let d = bitcast<f32>(amax_bits) / 127.0;
  let id = inverse_or_zero(d);
  let dh = f32_to_f16_bits(d);
  let dd = f16_bits_to_f32(dh);
  return D16Block(dh,
                  array<u32, 8>(q8_word(x.x0, id, dd, s), q8_word(x.x1, id, dd, s), q8_word(x.x2, id, dd, s), q8_word(x.x3, id, dd, s),
                                q8_word(x.x4, id, dd, s), q8_word(x.x5, id, dd, s), q8_word(x.x6, id, dd, s), q8_word(x.x7, id, dd, s)));
}

// One invocation writes two blocks, 68 bytes, 17 whole words (lib/d16_quantize_pair.wgsl).
//#include lib/d16_quantize_pair.wgsl

fn dequantize_part(b: u32, part: u32) {
  let p = b * BLOCK_BYTES;
  let d = f16_bits_to_f32(block_u32_at(p) & 0xffffu);
  let lo = block_bytes16(p + 2u);
  let hi = block_bytes16(p + 18u);
  for (var i = 0u; i < 4u; i = i + 1u) {
    out4[b * 8u + i] = vec4<f32>(bitcast<vec4<i32>>(bytes4(lo[i]) << vec4<u32>(24u)) >> vec4<u32>(24u)) * d;
    out4[b * 8u + 4u + i] = vec4<f32>(bitcast<vec4<i32>>(bytes4(hi[i]) << vec4<u32>(24u)) >> vec4<u32>(24u)) * d;
  }
}
