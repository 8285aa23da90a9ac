// Q4_1: blocks of 32 weights as { d: f16, m: f16, qs: u8[16] } (20 bytes), x = d * q + m;
// byte j holds element j in its low nibble and element j + 16 in its high one.
// ggml: quantize_row_q4_1_ref / dequantize_row_q4_1.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/legacy_quant.wgsl
//#include lib/legacy_weighted.wgsl
//#include lib/quantize_error_sums.wgsl

// The importance-matrix entry point, quantize_weighted (lib/legacy_weighted.wgsl).
const LW_ASYM: bool = true;
const LW_NMAX: f32 = 8.0;
fn lw_store(inv: u32, b0: u32, n: u32, a: LwBlock, c: LwBlock) {
  let w = b0 * 5u;
  dst[w] = a.head;
  for (var i = 0u; i < 4u; i = i + 1u) { dst[w + 1u + i] = a.words[i]; }
}


// MIN(15, (int8_t)((x - min) * id + 0.5f)): the sum is in [0.5, 15.5], or NaN/±Inf (giving 0)
// when id or max - min is infinite.
fn q4_1_q(x: vec4<f32>, mn: f32, id: f32) -> vec4<u32> {
  return min(vec4<u32>(15u), c_small_int4((x - mn) * id + 0.5));
}

// Elements j..j+3 (low nibbles) and j+16..j+19 (high nibbles); their errors against
// q * dd + mm added to s.
fn q4_1_word(lo: vec4<f32>, hi: vec4<f32>, mn: f32, id: f32, dd: f32, mm: f32, s: ptr<function, vec4<f32>>) -> u32 {
  let ql = q4_1_q(lo, mn, id);
  let qh = q4_1_q(hi, mn, id);
  let tl = vec4<f32>(ql) * dd;
  let th = vec4<f32>(qh) * dd;
  add_error4(s, lo, tl + mm);
  add_error4(s, hi, th + mm);
  return pack_bytes(ql | (qh << vec4<u32>(4u)));
}

// One invocation writes one block: 5 words, and adds its error sums
// (lib/quantize_error_sums.wgsl). Control flow stays uniform up to their reduction.
fn quantize_blocks(inv: u32, b: u32) {
  error_sums_on = error_sums_wanted();
  var s = vec4<f32>(0.0);
  if (b < qparams.n_blocks) {
    let w = b * 5u;
    let x = load_block32(b * QK);
    if (!is_finite_bits(abs_max_bits32(x))) {
      add_invalid_block(&s);
      dst[w] = F16_NAN | (F16_NAN << 16u);
      for (var i = 1u; i < 5u; i = i + 1u) { dst[w + i] = 0u; }
    } else {
      let mm = min_max32(x);
      let d = (mm.max - mm.min) / 15.0;
      let id = inverse_or_zero(d);
      let dh = f32_to_f16_bits(d);
      let mh = f32_to_f16_bits(mm.min);
      let dd = f16_bits_to_f32(dh);
      let md = f16_bits_to_f32(mh);
      dst[w] = dh | (mh << 16u);
      dst[w + 1u] = q4_1_word(x.x0, x.x4, mm.min, id, dd, md, &s);
      dst[w + 2u] = q4_1_word(x.x1, x.x5, mm.min, id, dd, md, &s);
      dst[w + 3u] = q4_1_word(x.x2, x.x6, mm.min, id, dd, md, &s);
      dst[w + 4u] = q4_1_word(x.x3, x.x7, mm.min, id, dd, md, &s);
    }
  }
  write_error_sums(inv, s);
}

fn dequantize_part(b: u32, part: u32) {
  let p = b * BLOCK_BYTES;
  let dm = blocks[p >> 2u];
  let d = f16_bits_to_f32(dm & 0xffffu);
  let m = f16_bits_to_f32(dm >> 16u);
  let qs = block_bytes16(p + 4u);
  for (var i = 0u; i < 4u; i = i + 1u) {
    out4[b * 8u + i] = vec4<f32>(nibbles4(qs[i], false)) * d + m;
    out4[b * 8u + 4u + i] = vec4<f32>(nibbles4(qs[i], true)) * d + m;
  }
}
