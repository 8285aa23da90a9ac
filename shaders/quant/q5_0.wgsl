// Q5_0: blocks of 32 weights as { d: f16, qh: u32, qs: u8[16] } (22 bytes), x = d * (q - 16);
// the low 4 bits of q as in Q4_0, bit 4 of element j in bit j of qh.
// ggml: quantize_row_q5_0_ref / dequantize_row_q5_0.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/legacy_quant.wgsl
//#include lib/d16_pair.wgsl
//#include lib/legacy_weighted.wgsl
//#include lib/quantize_error_sums.wgsl

// The importance-matrix entry point, quantize_weighted (lib/legacy_weighted.wgsl).
const LW_ASYM: bool = false;
const LW_NMAX: f32 = 16.0;
fn lw_store(inv: u32, b0: u32, n: u32, a: LwBlock, c: LwBlock) {
  store_d16_pair(inv, D16Block(a.head, a.words), n == 2u, D16Block(c.head, c.words));
}


const BODY_WORDS: u32 = 5u;

// MIN(31, (int8_t)(x * id + 16.5f)): the sum is in [0.5, 32.5], or NaN/±Inf (giving 0) when id is.
fn q5_0_q(x: vec4<f32>, id: f32) -> vec4<u32> {
  return min(vec4<u32>(31u), c_small_int4(x * id + 16.5));
}

// Adds the errors of four quants' values (q - 16) * dd against x to s; returns q.
fn q5_0_measured(q: vec4<u32>, x: vec4<f32>, dd: f32, s: ptr<function, vec4<f32>>) -> vec4<u32> {
  add_error4(s, x, vec4<f32>(vec4<i32>(q) - vec4<i32>(16)) * dd);
  return q;
}

// d, then qh and the 16 bytes of qs as four words; the block's error sums added to s.
fn d16_block(b: u32, s: ptr<function, vec4<f32>>) -> D16Block {
  let x = load_block32(b * QK);
  let m = abs_max32(x);
  if (!is_finite_bits(m.amax)) { add_invalid_block(s); return invalid_d16_block(); }
  let d = m.max / -16.0;
  let id = inverse_or_zero(d);
  let dh = f32_to_f16_bits(d);
  let dd = f16_bits_to_f32(dh);
  let q0 = q5_0_measured(q5_0_q(x.x0, id), x.x0, dd, s); let q1 = q5_0_measured(q5_0_q(x.x1, id), x.x1, dd, s);
  let q2 = q5_0_measured(q5_0_q(x.x2, id), x.x2, dd, s); let q3 = q5_0_measured(q5_0_q(x.x3, id), x.x3, dd, s);
  let q4 = q5_0_measured(q5_0_q(x.x4, id), x.x4, dd, s); let q5 = q5_0_measured(q5_0_q(x.x5, id), x.x5, dd, s);
  let q6 = q5_0_measured(q5_0_q(x.x6, id), x.x6, dd, s); let q7 = q5_0_measured(q5_0_q(x.x7, id), x.x7, dd, s);
  let lo = vec4<u32>(15u);
  let qh = high_bits4(q0, 0u) | high_bits4(q1, 4u) | high_bits4(q2, 8u) | high_bits4(q3, 12u) |
           high_bits4(q4, 16u) | high_bits4(q5, 20u) | high_bits4(q6, 24u) | high_bits4(q7, 28u);
  return D16Block(dh,
                  array<u32, 8>(qh, pack_bytes((q0 & lo) | ((q4 & lo) << vec4<u32>(4u))), pack_bytes((q1 & lo) | ((q5 & lo) << vec4<u32>(4u))),
                                pack_bytes((q2 & lo) | ((q6 & lo) << vec4<u32>(4u))), pack_bytes((q3 & lo) | ((q7 & lo) << vec4<u32>(4u))), 0u, 0u, 0u));
}

// One invocation writes two blocks, 44 bytes, 11 whole words: the second starts mid-word (lib/d16_quantize_pair.wgsl).
//#include lib/d16_quantize_pair.wgsl

fn dequantize_part(b: u32, part: u32) {
  let p = b * BLOCK_BYTES;
  let d = f16_bits_to_f32(block_u32_at(p) & 0xffffu);
  let qh = block_u32_at(p + 2u);
  let qs = block_bytes16(p + 6u);
  for (var i = 0u; i < 4u; i = i + 1u) {
    let lo_h = ((vec4<u32>(qh) >> (vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u)) << vec4<u32>(4u);
    let hi_h = ((vec4<u32>(qh) >> (vec4<u32>(4u * i + 16u) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u)) << vec4<u32>(4u);
    out4[b * 8u + i] = vec4<f32>(vec4<i32>(nibbles4(qs[i], false) | lo_h) - vec4<i32>(16)) * d;
    out4[b * 8u + 4u + i] = vec4<f32>(vec4<i32>(nibbles4(qs[i], true) | hi_h) - vec4<i32>(16)) * d;
  }
}
