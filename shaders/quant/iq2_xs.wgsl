// IQ2_XS: blocks of 256 weights as { d: f16, qs: u16[32], scales: u8[8] } (74 bytes):
// sixteen sub-blocks of 16, each two groups of 8 whose u16 holds a point of the
// 512-point E8 grid (bits 0-8) and 7 sign bits (the 8th makes the count of
// negatives even); x = d * (0.5 + s) / 4 * grid[j] * sign, s the sub-block's 4-bit scale.
// ggml: quantize_iq2_xs (quantize_row_iq2_xs_impl, with quant_weights only) /
// dequantize_row_iq2_xs. CPU reference: src/quant/formats/iq2_xs.ts.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/iq2_search.wgsl

const IQ2_GRID: u32 = 512u;
const PAIR_WORDS: u32 = 2u * BLOCK_BYTES / 4u;
const GROUP_MAX_EPS: f32 = 1e-15;

// Block b of the chunk into byte blk * BLOCK_BYTES of the pair image.
fn iq2_block(blk: u32, b: u32) {
  let first = b * QK;
  let at = blk * BLOCK_BYTES;
  let ss = iq2_sum_squares(first);
  if (ss.y == 0.0) {
    iq2_img_u16(at, IQ2_F16_NAN);
    return;
  }
  let sigma2 = ss.x / 256.0;
  var max_scale = 0.0;
  for (var ib = 0u; ib < iq2_opaque(16u); ib = ib + 1u) {
    iq2_load_sub(first, 16u * ib, 16u, sigma2);
    let p0 = iq2_split(0u, true);
    let p1 = iq2_split(8u, true);
    var s0 = p0.signs & 127u;
    var s1 = p1.signs & 127u;
    let max = iq2_max(16u);
    iq2_scales[ib] = 0.0;
    if (max < GROUP_MAX_EPS) { continue; }
    let r = iq2_search16(p0.g, p1.g, max);
    var scale = r.scale;
    if (scale < 0.0) {
      scale = -scale;
      s0 = ~s0 & 127u;
      s1 = ~s1 & 127u;
    }
    iq2_img_u16(at + 2u + 4u * ib, iq2_index(r.code0) | (s0 << 9u));
    iq2_img_u16(at + 4u + 4u * ib, iq2_index(r.code1) | (s1 << 9u));
    iq2_scales[ib] = scale;
    max_scale = select(scale, max_scale, max_scale > scale);
  }
  if (max_scale == 0.0) {
    iq2_img_zero(at + 2u, at + 66u);
    return;
  }
  let d = max_scale / 31.0;
  iq2_img_u16(at, f32_to_f16_bits(d));
  let id = 1.0 / d;
  for (var ib = 0u; ib < 16u; ib = ib + 1u) {
    iq2_img_byte(at + 66u + (ib >> 1u), iq2_scale_code(id, iq2_scales[ib]) << (4u * (ib & 1u)));
  }
}

// Eight invocations per block, one per 32 outputs (two sub-blocks).
fn dequantize_part(b: u32, part: u32) {
  let base = b * BLOCK_BYTES;
  let d = f16_bits_to_f32(block_u16(base));
  let sc = block_byte(base + 66u + part);
  for (var h = 0u; h < 2u; h = h + 1u) {
    let db = iq2_sub_scale(d, (sc >> (4u * h)) & 15u);
    for (var k = 0u; k < 2u; k = k + 1u) {
      let q = block_u16(base + 2u + 2u * (4u * part + 2u * h + k));
      let s7 = q >> 9u;
      iq2_decode_group(b * QK + 32u * part + 16u * h + 8u * k, db, q & 511u, s7 | ((countOneBits(s7) & 1u) << 7u));
    }
  }
}
