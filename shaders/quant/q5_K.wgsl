// Q5_K: super-blocks of 256 weights as { d: f16, dmin: f16, scales: u8[12], qh: u8[32], qs: u8[128] }
// (176 bytes, 44 words); eight sub-blocks of 32 with 6-bit scale and min, 5-bit
// levels (low 4 bits in qs, the fifth in qh).
// ggml: quantize_row_q5_K_ref / dequantize_row_q5_K.

//#include lib/quant_entry.wgsl
//#include lib/kquant_k4.wgsl

const QKX2_V: u32 = 8u;
const QKX2_NMAX: f32 = 31.0;
const QKX2_RMIN: f32 = -0.5;
const QKX2_NSTEP: u32 = 15u;
// Q5_K's quantize_row_q5_K_impl caps the 6-bit scales and mins at 63; Q4_K's does not.
const K4_CLAMP_LS: bool = true;


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
  // qs byte 32p + l: low 4 bits of the levels of weights 64p + l and 64p + 32 + l;
  // qh byte l: their fifth bits at bits 2p and 2p + 1
  for (var c = 0u; c < 8u; c = c + 1u) {
    var qh = 0u;
    for (var p = 0u; p < 4u; p = p + 1u) {
      let lo = k4_levels(b, 2u * p, c);
      let hi = k4_levels(b, 2u * p + 1u, c);
      dst[o + 12u + p * 8u + c] = (lo & 0x0f0f0f0fu) | ((hi & 0x0f0f0f0fu) << 4u);
      qh = qh | (((lo >> 4u) & 0x01010101u) << (2u * p)) | (((hi >> 4u) & 0x01010101u) << (2u * p + 1u));
    }
    dst[o + 4u + c] = qh;
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
  // the sub-block's levels: nibble (j & 1) of qs bytes 32 (j / 2) .. + 31 and bit j
  // of qh bytes 0 .. 31, read a word at a time
  let q = (base + 48u + (j >> 1u) * 32u) >> 2u;
  let qh = (base + 16u) >> 2u;
  let shift = (j & 1u) * 4u;
  for (var w = 0u; w < 8u; w = w + 1u) {
    let v = ((blocks[q + w] >> shift) & 0x0f0f0f0fu) | (((blocks[qh + w] >> j) & 0x01010101u) << 4u);
    for (var t = 0u; t < 4u; t = t + 1u) {
      let y = dl * f32((v >> (8u * t)) & 0xffu); // its own statement: not fused with - ml
      out[s * 32u + w * 4u + t] = y - ml;
    }
  }
}
