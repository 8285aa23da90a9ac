// Q4_K: super-blocks of 256 weights as { d: f16, dmin: f16, scales: u8[12], qs: u8[128] }
// (144 bytes, 36 words); eight sub-blocks of 32 with 6-bit scale and min, 4-bit levels.
// ggml: quantize_row_q4_K_ref / dequantize_row_q4_K.

//#include lib/quant_entry.wgsl
//#include lib/kquant_k4.wgsl

const QKX2_V: u32 = 8u;
const QKX2_NMAX: f32 = 15.0;
const QKX2_RMIN: f32 = -1.0;
const QKX2_NSTEP: u32 = 20u;
// Q5_K's quantize_row_q5_K_impl caps the 6-bit scales and mins at 63; Q4_K's does not.
const K4_CLAMP_LS: bool = false;


// One invocation per super-block, adding to the workgroup's error sums
// (lib/quantize_error_sums.wgsl): control flow stays uniform up to their reduction.
fn quantize_blocks(inv: u32, b: u32) {
  if (b < qparams.n_blocks) { quantize_super_block(b); }
  write_error_sums(inv, error_sums);
}

fn quantize_super_block(b: u32) {
  let head = k4_quantize_block(b);
  let o = b * BLOCK_WORDS;
  dst[o] = head.x;
  dst[o + 1u] = head.y;
  dst[o + 2u] = head.z;
  dst[o + 3u] = head.w;
  // qs byte 32p + l: level of weight 64p + l (low nibble) and 64p + 32 + l (high)
  for (var w = 0u; w < 32u; w = w + 1u) {
    let p = w >> 3u;
    let c = w & 7u;
    dst[o + 4u + w] = k4_levels(b, 2u * p, c) | (k4_levels(b, 2u * p + 1u, c) << 4u);
  }
}

// One invocation per sub-block of 32: x = d * sc * q - dmin * m.
fn dequantize_part(b: u32, j: u32) {
  let s = b * 8u + j;
  let base = b * BLOCK_WORDS * 4u;
  let d = f16_bits_to_f32(block_u16(base));
  let dmin = f16_bits_to_f32(block_u16(base + 2u));
  let sm = k4_scale_min(base + 4u, j);
  let dl = d * f32(sm.x);
  let ml = dmin * f32(sm.y);
  // the sub-block's levels: nibble (j & 1) of qs bytes 32 (j / 2) .. + 31, read a word at a time
  let q = (base + 16u + (j >> 1u) * 32u) >> 2u;
  let shift = (j & 1u) * 4u;
  for (var w = 0u; w < 8u; w = w + 1u) {
    let v = (blocks[q + w] >> shift) & 0x0f0f0f0fu;
    for (var t = 0u; t < 4u; t = t + 1u) {
      let y = dl * f32((v >> (8u * t)) & 0xffu); // its own statement: not fused with - ml
      out[s * 32u + w * 4u + t] = y - ml;
    }
  }
}
