// IQ3_XXS: super-blocks of 256 weights as { d: f16, qs: u8[64], scales_and_signs: u32[8] }
// (98 bytes): per sub-block of 32, eight indices into the 256-point grid and a
// word of four 7-bit sign fields (the 8th sign: their parity) and a 4-bit scale
// ls in bits 28..31; x = d * (0.5 + ls) * 0.5 * grid value * sign.
// ggml: quantize_row_iq3_xxs_impl(256) / dequantize_row_iq3_xxs. The search:
// lib/iq3_search.wgsl; the grid tables: src/quant/grids/iq3xs.ts (@group(1)).

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl

const IQ3_GRID_SIZE: u32 = 256u;
const IQ3_NTRY: u32 = 15u;
const IQ3_EVEN_SIGNS: bool = true;
const IQ3_MAX_EPS: f32 = 1e-8;
const IQ3_REFIT_ALL: bool = false;
const IQ3_D_FUDGE: f32 = 1.0125;

//#include lib/iq3_search.wgsl

fn iq3_store_sub_block(blk: u32, ib: u32, slot: u32) {
  for (var k = 0u; k < iq3_opaque(8u); k = k + 1u) { img_or_byte(blk, 2u + 8u * ib + k, gi[k] & 255u); }
  for (var c = 0u; c < 4u; c = c + 1u) { img_or_byte(blk, 66u + 4u * ib + c, (sign_bytes >> (8u * c)) & 255u); }
}

fn iq3_store_scales(blk: u32, id: f32) {
  for (var ib = 0u; ib < iq3_opaque(8u); ib = ib + 1u) {
    img_or_byte(blk, 69u + 4u * ib, iq3_scale_nibble(id, iq3_scales[ib]) << 4u);
  }
}

// ggml zeroes a block whose scales are all 0.
fn iq3_zero_scale_block(blk: u32) {
  img_clear_block(blk);
}

// One invocation per sub-block of 32.
fn dequantize_part(b: u32, ib: u32) {
  let base = b * BLOCK_BYTES;
  let d = f16_bits_to_f32(block_u16(base));
  let o = base + 66u + 4u * ib;
  let aux = block_byte(o) | (block_byte(o + 1u) << 8u) | (block_byte(o + 2u) << 16u) | (block_byte(o + 3u) << 24u);
  let ds = d * (0.5 + f32(aux >> 28u));
  let db = ds * 0.5;
  for (var g = 0u; g < 8u; g = g + 1u) {
    let s7 = (aux >> (7u * (g >> 1u))) & 127u;
    let signs = s7 | ((countOneBits(s7) & 1u) << 7u);
    let p = iq3_word(block_byte(base + 2u + 8u * ib + g));
    for (var j = 0u; j < 4u; j = j + 1u) {
      let v = db * f32((p >> (8u * j)) & 255u);
      out[b * QK + 32u * ib + 4u * g + j] = select(v, -v, ((signs >> (4u * (g & 1u) + j)) & 1u) == 1u);
    }
  }
}
