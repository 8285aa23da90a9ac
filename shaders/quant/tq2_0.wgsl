// TQ2_0 (ternary, 2 bits a weight): blocks of 256 weights as { qs: u8[64], d: f16 } (66 bytes),
// x = d * (q - 1) with q in 0..2. Each 128 weights fill 32 bytes: byte m holds
// weights m, m + 32, m + 64, m + 96 in bits 0-1, 2-3, 4-5, 6-7.
// ggml: quantize_row_tq2_0_ref / dequantize_row_tq2_0.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/legacy_quant.wgsl
//#include lib/ternary_quant.wgsl

const QS_WORDS: u32 = 16u;

// The 2-bit codes (lroundf(x * id) + 1) & 3 of xs[i].
fn tq2_codes(i: u32, id: f32) -> vec4<u32> {
  return bitcast<vec4<u32>>(c_lround4(xs[i] * id) + vec4<i32>(1)) & vec4<u32>(3u);
}

// Word k (bytes 4k..4k+3) of the block's qs: weights 128c + m + 32n, m = 4k' + 0..3.
fn tq_word(k: u32, id: f32) -> u32 {
  let i = (k >> 3u) * 32u + (k & 7u);
  return pack_bytes(tq2_codes(i, id) | (tq2_codes(i + 8u, id) << vec4<u32>(2u)) |
                    (tq2_codes(i + 16u, id) << vec4<u32>(4u)) | (tq2_codes(i + 24u, id) << vec4<u32>(6u)));
}

// One invocation per pair of blocks (lib/ternary_quant.wgsl).
fn quantize_blocks(pair: u32, first: u32) {
  tq_quantize_pair(pair);
}

fn dequantize_part(b: u32, part: u32) {
  let p = b * BLOCK_BYTES;
  let d = f16_bits_to_f32(block_u32_at(p + 64u) & 0xffffu);
  // Byte m of 32-byte chunk c holds weights 128c + 32l + m in bits 2l, 2l + 1.
  for (var k = 0u; k < 16u; k = k + 1u) {
    let q = bytes4(block_u32_at(p + 4u * k));
    let o = b * 64u + (k >> 3u) * 32u + (k & 7u);
    for (var l = 0u; l < 4u; l = l + 1u) {
      out4[o + 8u * l] = vec4<f32>(vec4<i32>((q >> vec4<u32>(2u * l)) & vec4<u32>(3u)) - vec4<i32>(1)) * d;
    }
  }
}
