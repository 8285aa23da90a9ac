// Q5_1: blocks of 32 weights as { d: f16, m: f16, qh: u32, qs: u8[16] } (24 bytes), x = d * q + m;
// the low 4 bits of q as in Q4_1, bit 4 of element j in bit j of qh.
// ggml: quantize_row_q5_1_ref / dequantize_row_q5_1.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/legacy_quant.wgsl
//#include lib/legacy_weighted.wgsl
//#include lib/quantize_error_sums.wgsl

// The importance-matrix entry point, quantize_weighted (lib/legacy_weighted.wgsl).
const LW_ASYM: bool = true;
const LW_NMAX: f32 = 16.0;
fn lw_store(inv: u32, b0: u32, n: u32, a: LwBlock, c: LwBlock) {
  let w = b0 * 6u;
  dst[w] = a.head;
  for (var i = 0u; i < 5u; i = i + 1u) { dst[w + 1u + i] = a.words[i]; }
}


// (uint8_t)((x - min) * id + 0.5f): no clamp, (max - min) * id rounds to at most 31; NaN/±Inf
// (when id or max - min is infinite) give 0.
fn q5_1_q(x: vec4<f32>, mn: f32, id: f32) -> vec4<u32> {
  return c_small_int4((x - mn) * id + 0.5);
}

// Adds the errors of four quants' values q * dd + mm against x to s; returns q.
fn q5_1_measured(q: vec4<u32>, x: vec4<f32>, dd: f32, mm: f32, s: ptr<function, vec4<f32>>) -> vec4<u32> {
  let t = vec4<f32>(q & vec4<u32>(31u)) * dd;
  add_error4(s, x, t + mm);
  return q;
}

// One invocation writes one block: 6 words, and adds its error sums
// (lib/quantize_error_sums.wgsl). Control flow stays uniform up to their reduction.
fn quantize_blocks(inv: u32, b: u32) {
  error_sums_on = error_sums_wanted();
  var s = vec4<f32>(0.0);
  if (b < qparams.n_blocks) {
    let w = b * 6u;
    let x = load_block32(b * QK);
    if (!is_finite_bits(abs_max_bits32(x))) {
      add_invalid_block(&s);
      dst[w] = F16_NAN | (F16_NAN << 16u);
      for (var i = 1u; i < 6u; i = i + 1u) { dst[w + i] = 0u; }
    } else {
      let mm = min_max32(x);
      let d = (mm.max - mm.min) / 31.0;
      let id = inverse_or_zero(d);
      let dh = f32_to_f16_bits(d);
      let mh = f32_to_f16_bits(mm.min);
      let dd = f16_bits_to_f32(dh);
      let md = f16_bits_to_f32(mh);
      let q0 = q5_1_measured(q5_1_q(x.x0, mm.min, id), x.x0, dd, md, &s); let q1 = q5_1_measured(q5_1_q(x.x1, mm.min, id), x.x1, dd, md, &s);
      let q2 = q5_1_measured(q5_1_q(x.x2, mm.min, id), x.x2, dd, md, &s); let q3 = q5_1_measured(q5_1_q(x.x3, mm.min, id), x.x3, dd, md, &s);
      let q4 = q5_1_measured(q5_1_q(x.x4, mm.min, id), x.x4, dd, md, &s); let q5 = q5_1_measured(q5_1_q(x.x5, mm.min, id), x.x5, dd, md, &s);
      let q6 = q5_1_measured(q5_1_q(x.x6, mm.min, id), x.x6, dd, md, &s); let q7 = q5_1_measured(q5_1_q(x.x7, mm.min, id), x.x7, dd, md, &s);
      let m = vec4<u32>(15u);
      dst[w] = dh | (mh << 16u);
      dst[w + 1u] = high_bits4(q0, 0u) | high_bits4(q1, 4u) | high_bits4(q2, 8u) | high_bits4(q3, 12u) |
                    high_bits4(q4, 16u) | high_bits4(q5, 20u) | high_bits4(q6, 24u) | high_bits4(q7, 28u);
      dst[w + 2u] = pack_bytes((q0 & m) | ((q4 & m) << vec4<u32>(4u)));
      dst[w + 3u] = pack_bytes((q1 & m) | ((q5 & m) << vec4<u32>(4u)));
      dst[w + 4u] = pack_bytes((q2 & m) | ((q6 & m) << vec4<u32>(4u)));
      dst[w + 5u] = pack_bytes((q3 & m) | ((q7 & m) << vec4<u32>(4u)));
    }
  }
  write_error_sums(inv, s);
}

fn dequantize_part(b: u32, part: u32) {
  let w = b * 6u;
  let d = f16_bits_to_f32(blocks[w] & 0xffffu);
  let m = f16_bits_to_f32(blocks[w] >> 16u);
  let qh = blocks[w + 1u];
  let qs = vec4<u32>(blocks[w + 2u], blocks[w + 3u], blocks[w + 4u], blocks[w + 5u]);
  for (var i = 0u; i < 4u; i = i + 1u) {
    let lo_h = ((vec4<u32>(qh) >> (vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u)) << vec4<u32>(4u);
    let hi_h = ((vec4<u32>(qh) >> (vec4<u32>(4u * i + 16u) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u)) << vec4<u32>(4u);
    out4[b * 8u + i] = vec4<f32>(nibbles4(qs[i], false) | lo_h) * d + m;
    out4[b * 8u + 4u + i] = vec4<f32>(nibbles4(qs[i], true) | hi_h) * d + m;
  }
}
