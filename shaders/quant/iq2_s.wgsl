// IQ2_S: blocks of 256 weights as { d: f16, qs: u8[64], qh: u8[8], scales: u8[8] } (82 bytes):
// sixteen sub-blocks of 16, each two groups of 8 on the 1024-point E8 grid: group
// i8's index is qs[i8] | (2 bits of qh[i8 / 4]) << 8, its 8 sign bits qs[32 + i8];
// x = d * (0.5 + s) / 4 * grid[j] * sign, s the sub-block's 4-bit scale.
// ggml: quantize_iq2_s (quantize_row_iq2_s_impl, with or without quant_weights) /
// dequantize_row_iq2_s. CPU reference: src/quant/formats/iq2_s.ts.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/iq2_search.wgsl

const IQ2_GRID: u32 = 1024u;
const PAIR_WORDS: u32 = 2u * BLOCK_BYTES / 4u;
const GROUP_MAX_EPS: f32 = 1e-8; // GROUP_MAX_EPS_IQ2_S
const QH: u32 = 66u; // qh's offset; scales follow at QH + 8

// Block b of the chunk into byte blk * BLOCK_BYTES of the pair image.
fn iq2_block(blk: u32, b: u32) {
  let first = b * QK;
  let at = blk * BLOCK_BYTES;
  let ss = iq2_sum_squares(first);
  if (ss.y == 0.0) {
    iq2_img_u16(at, IQ2_F16_NAN);
    return;
  }
  let twice = 2.0 * ss.x;
  let sigma2 = twice / 256.0;
  var max_scale = 0.0;
  for (var ib = 0u; ib < iq2_opaque(16u); ib = ib + 1u) {
    iq2_load_sub(first, 16u * ib, 16u, sigma2);
    let p0 = iq2_split(0u, false);
    let p1 = iq2_split(8u, false);
    var s0 = p0.signs;
    var s1 = p1.signs;
    let max = iq2_max(16u);
    iq2_scales[ib] = 0.0;
    if (max < GROUP_MAX_EPS) { continue; }
    let r = iq2_search16(p0.g, p1.g, max);
    var scale = r.scale;
    if (scale < 0.0) {
      scale = -scale;
      s0 = ~s0 & 255u;
      s1 = ~s1 & 255u;
    }
    let i0 = iq2_index(r.code0);
    let i1 = iq2_index(r.code1);
    iq2_img_byte(at + 2u + 2u * ib, i0);
    iq2_img_byte(at + 3u + 2u * ib, i1);
    iq2_img_byte(at + QH + (ib >> 1u), ((i0 >> 8u) << (4u * (ib & 1u))) | ((i1 >> 8u) << (4u * (ib & 1u) + 2u)));
    iq2_img_byte(at + 34u + 2u * ib, s0);
    iq2_img_byte(at + 35u + 2u * ib, s1);
    iq2_scales[ib] = scale;
    max_scale = select(scale, max_scale, max_scale > scale);
  }
  if (max_scale == 0.0) { return; }
  let d = max_scale / 31.0;
  let dd = d * 0.9875;
  iq2_img_u16(at, f32_to_f16_bits(dd));
  let id = 1.0 / d;
  for (var ib = 0u; ib < 16u; ib = ib + 1u) {
    iq2_img_byte(at + QH + 8u + (ib >> 1u), iq2_scale_code(id, iq2_scales[ib]) << (4u * (ib & 1u)));
  }
}

// Eight invocations per block, one per 32 outputs (two sub-blocks).
fn dequantize_part(b: u32, part: u32) {
  let base = b * BLOCK_BYTES;
  let d = f16_bits_to_f32(block_u16(base));
  let sc = block_byte(base + QH + 8u + part);
  let qh = block_byte(base + QH + part);
  for (var l = 0u; l < 4u; l = l + 1u) {
    let db = iq2_sub_scale(d, (sc >> (4u * (l >> 1u))) & 15u);
    let i8 = 4u * part + l;
    let idx = block_byte(base + 2u + i8) | (((qh >> (2u * l)) & 3u) << 8u);
    iq2_decode_group(b * QK + 8u * i8, db, idx, block_byte(base + 34u + i8));
  }
}
