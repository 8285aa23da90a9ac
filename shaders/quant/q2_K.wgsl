// Q2_K: super-blocks of 256 weights as { scales: u8[16], qs: u8[64], d: f16, dmin: f16 }
// (84 bytes, 21 words); sixteen sub-blocks of 16 with 4-bit scale and min
// (one byte each) and 2-bit levels.
// ggml: quantize_row_q2_K_ref / dequantize_row_q2_K; with an importance matrix
// quantize_row_q2_K_impl (the same pipeline, lib/imatrix_weights.wgsl). One
// invocation per super-block (see lib/kquant_k4.wgsl for why).

//#include lib/quant_entry.wgsl
//#include lib/kquant_io.wgsl
//#include lib/imatrix_weights.wgsl
//#include lib/kquant_qkx2.wgsl
//#include lib/kquant_qp.wgsl
//#include lib/quantize_error_sums.wgsl

const QKX2_V: u32 = 4u;
const QKX2_NMAX: f32 = 3.0;
// make_qkx2_quants(16, 3, -0.5f, 0.1f, 15, true); weighted make_qkx3_quants(16, 3, -0.9f, 0.05f, 36, false)
fn qkx2_rmin() -> f32 { return select(-0.5, -0.9, weighted()); }
fn qkx2_rdelta() -> f32 { return select(0.1, 0.05, weighted()); }
fn qkx2_nstep() -> u32 { return select(15u, 36u, weighted()); }
fn qkx2_mad() -> bool { return !weighted(); }


// Per sub-block: make_qkx2's result, and the requantization scale and offset
// (a zero scale keeps make_qkx2's levels, as ggml's `if (!d) continue`).
var<private> q2_r: array<Qkx2, 16>;
var<private> q2_d: array<f32, 16>;
var<private> q2_m: array<f32, 16>;

// Levels of weights 4c .. 4c + 3 of sub-block j of super-block b: against the
// rounded scale and min, or make_qkx2's where that scale is 0 (ggml's
// `if (!d) continue`). Their error is added to error_sums (lib/quantize_error_sums.wgsl).
fn q2_levels(b: u32, j: u32, c: u32) -> vec4<u32> {
  let x = load_x4(b * 256u + j * 16u + c * 4u);
  let d = q2_d[j];
  var l = vec4<u32>(clamp(ggml_nearest_int4((x + vec4<f32>(q2_m[j])) / vec4<f32>(d)), vec4<i32>(0), vec4<i32>(3)));
  if (d == 0.0) { l = qkx2_levels_of(q2_r[j], x); }
  // as dequantize_part decodes them: d * l, then - m (a statement of its own)
  let y = vec4<f32>(d) * vec4<f32>(l);
  accumulate_error4(x, y - vec4<f32>(q2_m[j]));
  return l;
}

// The reference path: weights |x|, 4-bit scales and mins relative to their
// maxima. With an importance matrix: sigma2 = sum x^2 / 256, weights
// qw * sqrt(sigma2 + x^2), the 4-bit scales and mins by make_qp_quants(16, 15)
// weighted by each sub-block's weight sum.
// One invocation per super-block, adding to the workgroup's error sums.
// Control flow stays uniform up to their reduction.
fn quantize_blocks(inv: u32, b: u32) {
  if (b < qparams.n_blocks) { quantize_super_block(b); }
  write_error_sums(inv, error_sums);
}

fn quantize_super_block(b: u32) {
  let wt = weighted();
  let wi = weight_vec_index(b);
  var sumx2 = 0.0;
  var sigma2 = 0.0;
  var sw: array<f32, 16>;
  var max_scale = 0.0;
  var max_min = 0.0;
  // Weighted, steps 0-15 first sum x^2 over the super-block (sigma2); steps
  // 16-31 search the sub-blocks: one loop, the loads inlined once (lib/kquant_k4.wgsl).
  for (var step = select(16u, 0u, wt); step < 32u; step = step + 1u) {
    let j = step & 15u;
    qkx2_load(b * 256u + j * 16u);
    if (step < 16u) {
      sumx2 = qkx2_add_sq_all(sumx2);
      sigma2 = sumx2 / 256.0;
      continue;
    }
    if (wt) {
      sw[j] = qkx2_set_imatrix_weights(wi + 4u * j, sigma2);
    } else {
      qkx2_set_weights(0.0);
    }
    let r = make_qkx2();
    q2_r[j] = r;
    if (r.scale > max_scale) { max_scale = r.scale; }
    if (r.the_min > max_min) { max_min = r.the_min; }
  }
  // scale byte j: the sub-block's scale in the low nibble, its min in the high
  // one; ggml stores the whole int, so bits past a nibble spill as uint8_t would
  var dh = 0u;
  var mh = 0u;
  var sc = array<u32, 16>();
  if (wt) {
    // make_qp_quants over the scales (k = 0), then the mins (k = 1): one call site
    for (var k = 0u; k < select(2u, 0u, qparams.n_blocks == 0xffffffffu); k = k + 1u) {
      for (var j = 0u; j < 16u; j = j + 1u) {
        qp_x[j] = select(q2_r[j].scale, q2_r[j].the_min, k == 1u);
        qp_w[j] = sw[j];
      }
      let d = f32_to_f16_bits(make_qp(16u, 15.0));
      for (var j = 0u; j < 16u; j = j + 1u) { sc[j] = (sc[j] | (qp_l[j] << (4u * k))) & 0xffu; }
      if (k == 0u) { dh = d; } else { mh = d; }
    }
  } else {
    if (max_scale > 0.0) {
      let iscale = 15.0 / max_scale;
      for (var j = 0u; j < 16u; j = j + 1u) { sc[j] = u32(ggml_nearest_int(iscale * q2_r[j].scale)) & 0xffu; }
      dh = f32_to_f16_bits(max_scale / 15.0);
    }
    if (max_min > 0.0) {
      let iscale = 15.0 / max_min;
      for (var j = 0u; j < 16u; j = j + 1u) { sc[j] = sc[j] | ((u32(ggml_nearest_int(iscale * q2_r[j].the_min)) << 4u) & 0xffu); }
      mh = f32_to_f16_bits(max_min / 15.0);
    }
  }
  let d_all = f16_bits_to_f32(dh);
  let m_all = f16_bits_to_f32(mh);
  let o = b * BLOCK_WORDS;
  for (var j = 0u; j < 16u; j = j + 1u) {
    q2_d[j] = d_all * f32(sc[j] & 15u);
    q2_m[j] = m_all * f32(sc[j] >> 4u);
  }
  for (var w = 0u; w < 4u; w = w + 1u) {
    dst[o + w] = sc[4u * w] | (sc[4u * w + 1u] << 8u) | (sc[4u * w + 2u] << 16u) | (sc[4u * w + 3u] << 24u);
  }
  // qs byte 32h + l: levels of weights 128h + l + 32k at bits 2k, 2k + 1
  for (var w = 0u; w < 16u; w = w + 1u) {
    let h = w >> 3u;
    let l = (w & 7u) * 4u;
    let j = h * 8u + (l >> 4u);
    var v = vec4<u32>(0u);
    for (var k = 0u; k < 4u; k = k + 1u) {
      v = v | (q2_levels(b, j + 2u * k, (l & 15u) >> 2u) << vec4<u32>(2u * k));
    }
    dst[o + 4u + w] = v.x | (v.y << 8u) | (v.z << 16u) | (v.w << 24u);
  }
  dst[o + 20u] = dh | (mh << 16u);
}

// One invocation per sub-block of 16: x = d * sc * q - dmin * m.
fn dequantize_part(b: u32, j: u32) {
  let s = b * 16u + j;
  let base = b * BLOCK_WORDS * 4u;
  let d = f16_bits_to_f32(block_u16(base + 80u));
  let dmin = f16_bits_to_f32(block_u16(base + 82u));
  let sc = block_byte(base + j);
  let dl = d * f32(sc & 15u);
  let ml = dmin * f32(sc >> 4u);
  // sub-block j sits in qs bytes 32 * (j >> 3) + 16 * (j & 1), bits 2 * ((j >> 1) & 3)
  let q = (base + 16u + 32u * (j >> 3u) + 16u * (j & 1u)) >> 2u;
  let shift = 2u * ((j >> 1u) & 3u);
  for (var w = 0u; w < 4u; w = w + 1u) {
    let v = (blocks[q + w] >> shift) & 0x03030303u;
    for (var t = 0u; t < 4u; t = t + 1u) {
      let y = dl * f32((v >> (8u * t)) & 0xffu); // its own statement: not fused with - ml
      out[s * 16u + w * 4u + t] = y - ml;
    }
  }
}
