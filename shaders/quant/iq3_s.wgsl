// IQ3_S: super-blocks of 256 weights as { d: f16, qs: u8[64], qh: u8[8], signs: u8[32], scales: u8[4] }
// (110 bytes): per sub-block of 32, eight 9-bit indices into the 512-point grid
// (the 9th bit of group k in bit k of qh[ib]), 32 sign bits and a 4-bit scale ls;
// x = d * (1 + 2 ls) * grid value * sign.
// ggml: quantize_row_iq3_s_impl / dequantize_row_iq3_s. The search:
// lib/iq3_search.wgsl; the grid tables: src/quant/grids/iq3xs.ts (@group(1)).
// As ggml, indices and signs go to the next free slot (`slot`: an all-zero
// sub-block takes none), qh to the sub-block's own byte.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl

const IQ3_GRID_SIZE: u32 = 512u;
const IQ3_NTRY: u32 = 9u;
const IQ3_EVEN_SIGNS: bool = false;
const IQ3_MAX_EPS: f32 = 0.0;
const IQ3_REFIT_ALL: bool = true;
const IQ3_D_FUDGE: f32 = 1.033;

//#include lib/iq3_search.wgsl

fn iq3_store_sub_block(blk: u32, ib: u32, slot: u32) {
  var qh = 0u;
  for (var k = 0u; k < iq3_opaque(8u); k = k + 1u) {
    img_or_byte(blk, 2u + 8u * slot + k, gi[k] & 255u);
    qh = qh | (((gi[k] >> 8u) & 1u) << k);
  }
  img_or_byte(blk, 66u + ib, qh);
  for (var c = 0u; c < 4u; c = c + 1u) { img_or_byte(blk, 74u + 4u * slot + c, (sign_bytes >> (8u * c)) & 255u); }
}

fn iq3_store_scales(blk: u32, id: f32) {
  for (var ib = 0u; ib < iq3_opaque(8u); ib = ib + 1u) {
    img_or_byte(blk, 106u + (ib >> 1u), iq3_scale_nibble(id, iq3_scales[ib]) << (4u * (ib & 1u)));
  }
}

// ggml keeps what it wrote of a block whose scales are all 0 (d stays 0).
fn iq3_zero_scale_block(blk: u32) {
}

// One invocation per sub-block of 32.
fn dequantize_part(b: u32, ib: u32) {
  let base = b * BLOCK_BYTES;
  let d = f16_bits_to_f32(block_u16(base));
  let ls = (block_byte(base + 106u + (ib >> 1u)) >> (4u * (ib & 1u))) & 15u;
  let db = d * f32(1u + 2u * ls);
  let qh = block_byte(base + 66u + ib);
  for (var g = 0u; g < 8u; g = g + 1u) {
    let signs = block_byte(base + 74u + 4u * ib + (g >> 1u));
    let p = iq3_word(block_byte(base + 2u + 8u * ib + g) | (((qh >> g) & 1u) << 8u));
    for (var j = 0u; j < 4u; j = j + 1u) {
      let v = db * f32((p >> (8u * j)) & 255u);
      out[b * QK + 32u * ib + 4u * g + j] = select(v, -v, ((signs >> (4u * (g & 1u) + j)) & 1u) == 1u);
    }
  }
}
