// Q4_0: blocks of 32 weights as { d: f16, qs: u8[16] } (18 bytes), x = d * (q - 8);
// byte j holds element j in its low nibble and element j + 16 in its high one.
// ggml: quantize_row_q4_0_ref / dequantize_row_q4_0.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/legacy_quant.wgsl
//#include lib/d16_pair.wgsl
//#include lib/legacy_weighted.wgsl
//#include lib/quantize_error_sums.wgsl

// The importance-matrix entry point, quantize_weighted (lib/legacy_weighted.wgsl).
const LW_ASYM: bool = false;
const LW_NMAX: f32 = 8.0;
fn lw_store(inv: u32, b0: u32, n: u32, a: LwBlock, c: LwBlock) {
  store_d16_pair(inv, D16Block(a.head, a.words), n == 2u, D16Block(c.head, c.words));
}


const BODY_WORDS: u32 = 4u;

// MIN(15, (int8_t)(x * id + 8.5f)): the sum is in [0.5, 16.5], or NaN/±Inf (giving 0) when id is.
fn q4_0_q(x: vec4<f32>, id: f32) -> vec4<u32> {
  return min(vec4<u32>(15u), c_small_int4(x * id + 8.5));
}

// Bytes of elements j..j+3 (low nibbles) and j+16..j+19 (high nibbles), as in ggml's
// `qs[j] = xi0; qs[j] |= xi1 << 4`; their errors against (q - 8) * dd added to s.
fn q4_0_word(lo: vec4<f32>, hi: vec4<f32>, id: f32, dd: f32, s: ptr<function, vec4<f32>>) -> u32 {
  let ql = q4_0_q(lo, id);
  let qh = q4_0_q(hi, id);
  add_error4(s, lo, vec4<f32>(vec4<i32>(ql) - vec4<i32>(8)) * dd);
  add_error4(s, hi, vec4<f32>(vec4<i32>(qh) - vec4<i32>(8)) * dd);
  return pack_bytes(ql | (qh << vec4<u32>(4u)));
}

// d, then the 16 bytes of qs as four words; the block's error sums added to s.
fn d16_block(b: u32, s: ptr<function, vec4<f32>>) -> D16Block {
  let x = load_block32(b * QK);
  let m = abs_max32(x);
  if (!is_finite_bits(m.amax)) { add_invalid_block(s); return invalid_d16_block(); }
  let d = m.max / -8.0;
  let id = inverse_or_zero(d);
  let dh = f32_to_f16_bits(d);
  let dd = f16_bits_to_f32(dh);
  return D16Block(dh, array<u32, 8>(q4_0_word(x.x0, x.x4, id, dd, s), q4_0_word(x.x1, x.x5, id, dd, s),
                                    q4_0_word(x.x2, x.x6, id, dd, s), q4_0_word(x.x3, x.x7, id, dd, s), 0u, 0u, 0u, 0u));
}

// One invocation writes two blocks, 36 bytes, 9 whole words (lib/d16_quantize_pair.wgsl).
//#include lib/d16_quantize_pair.wgsl

fn dequantize_part(b: u32, part: u32) {
  let p = b * BLOCK_BYTES;
  let d = f16_bits_to_f32(block_u32_at(p) & 0xffffu);
  let qs = block_bytes16(p + 2u);
  for (var i = 0u; i < 4u; i = i + 1u) {
    out4[b * 8u + i] = vec4<f32>(vec4<i32>(nibbles4(qs[i], false)) - vec4<i32>(8)) * d;
    out4[b * 8u + 4u + i] = vec4<f32>(vec4<i32>(nibbles4(qs[i], true)) - vec4<i32>(8)) * d;
  }
}
