// IQ4_NL: blocks of 32 weights as { d: f16, qs: u8[16] } (18 bytes), x = d * kvalues_iq4nl[q];
// byte j holds element j in its low nibble and element j + 16 in its high one.
// ggml: quantize_iq4_nl (quantize_row_iq4_nl_impl, ntry 7; with an importance
// matrix per block sigma2 = sum x^2 * 2/32 and weights qw * sqrt(sigma2 + x^2)) /
// dequantize_row_iq4_nl.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/legacy_quant.wgsl
//#include lib/d16_pair.wgsl
//#include lib/imatrix_weights.wgsl
//#include lib/iq4_search.wgsl


const BODY_WORDS: u32 = 4u;

// d, then the 16 bytes of qs as four words.
fn iq4_nl_block(b: u32) -> D16Block {
  let x = load_block32(b * QK);
  let m = abs_max32(x);
  if (!is_finite_bits(m.amax)) { return invalid_d16_block(); }
  if (weighted()) {
    let sumx2 = iq4_sum_squares32(0.0, x);
    iq4_set_weights(x, weight_vec_index(b), sumx2 * 0.0625); // sigma2 = sum * (2.f/32)
  }
  let scale = iq4_scale32(x, m);
  let qs = iq4_qs(x, inverse_or_zero(scale));
  return D16Block(iq4_scale_bits(scale), array<u32, 8>(qs.x, qs.y, qs.z, qs.w, 0u, 0u, 0u, 0u));
}

// One invocation writes two blocks: 36 bytes, 9 whole words.
fn quantize_blocks(pair: u32, b0: u32) {
  if (b0 >= qparams.n_blocks) { return; }
  // One call site in a loop: inlined twice, the search would double the shader.
  var a: D16Block;
  var c: D16Block;
  let n = min(2u, qparams.n_blocks - b0);
  for (var k = 0u; k < n; k = k + 1u) {
    let r = iq4_nl_block(b0 + k);
    if (k == 0u) { a = r; } else { c = r; }
  }
  store_d16_pair(pair, a, n == 2u, c);
}

fn dequantize_part(b: u32, part: u32) {
  let p = b * BLOCK_BYTES;
  let d = f16_bits_to_f32(block_u32_at(p) & 0xffffu);
  let qs = block_bytes16(p + 2u);
  for (var i = 0u; i < 4u; i = i + 1u) {
    out4[b * 8u + i] = d * iq4_value4(nibbles4(qs[i], false));
    out4[b * 8u + 4u + i] = d * iq4_value4(nibbles4(qs[i], true));
  }
}
