// The quantize stage Q4_K and Q5_K share (ggml's quantize_row_q4_K_ref /
// q5_K_ref), one invocation per super-block: eight sub-blocks of 32 through
// make_qkx2 with weights av_x + |x|, 6-bit scales and mins relative to their
// maxima packed as get_scale_min_k4 reads them, then each weight's level
// against the rounded scales (k4_levels). The including shader defines the
// QKX2_* constants (lib/kquant_qkx2.wgsl) and packs the levels.
//
// One invocation per super-block rather than one per sub-block meeting at
// workgroup barriers: measured on lavapipe, that version was no faster for
// Q4_K and slower for Q2_K (each barrier resumes every SIMD group's
// coroutine), while eight super-blocks' searches fill the SIMD lanes as well.

//#include lib/kquant_io.wgsl
//#include lib/imatrix_weights.wgsl
//#include lib/kquant_qkx2.wgsl
//#include lib/kquant_qp.wgsl
//#include lib/quantize_error_sums.wgsl

// make_qkx2 parameters of the including shader's reference path (QKX2_RMIN,
// QKX2_NSTEP); with an importance matrix ggml's _impl paths run
// make_qkx3_quants(32, nmax, -0.9f, 0.05f, 36), the same search.
fn qkx2_rmin() -> f32 { return select(QKX2_RMIN, -0.9, weighted()); }
fn qkx2_rdelta() -> f32 { return select(0.1, 0.05, weighted()); }
fn qkx2_nstep() -> u32 { return select(QKX2_NSTEP, 36u, weighted()); }
fn qkx2_mad() -> bool { return false; }

// Per sub-block: make_qkx2's result, and the requantization scale and offset.
var<private> k4_r: array<Qkx2, 8>;
var<private> k4_d: array<f32, 8>;
var<private> k4_m: array<f32, 8>;

// 6-bit scale of a sub-block: uint8_t ls = nearest_int(...), then at most 63.
fn k4_quant6(inv: f32, v: f32) -> u32 {
  return min(63u, u32(ggml_nearest_int(inv * v)) & 0xffu);
}

// Quantizes super-block `b` of the chunk; returns its first four words:
// d | dmin << 16, then the 12 scale bytes. k4_levels() then gives its levels.
// The reference path (quantize_row_q4_K_ref / q5_K_ref): weights av_x + |x|,
// 6-bit scales and mins relative to their maxima. With an importance matrix
// (quantize_row_q4_K_impl / q5_K_impl): sigma2 = 2 sum x^2 / 256, weights
// qw * sqrt(sigma2 + x^2), the 6-bit scales and mins by make_qp_quants(8, 63)
// weighted by each sub-block's weight sum (K4_CLAMP_LS: Q5_K's MIN(63, ls)).
fn k4_quantize_block(b: u32) -> vec4<u32> {
  let wt = weighted();
  let wi = weight_vec_index(b);
  var sumx2 = 0.0;
  var sigma2 = 0.0;
  var sw: array<f32, 8>;
  var max_scale = 0.0;
  var max_min = 0.0;
  // Weighted, steps 0-7 first sum x^2 over the super-block (sigma2); steps 8-15
  // search the sub-blocks. One loop, so that the loads are inlined once (each
  // copy costs lavapipe seconds of compile time).
  for (var step = select(8u, 0u, wt); step < 16u; step = step + 1u) {
    let j = step & 7u;
    qkx2_load(b * 256u + j * 32u);
    if (step < 8u) {
      sumx2 = qkx2_add_sq_all(sumx2);
      let twice = 2.0 * sumx2;
      sigma2 = twice / 256.0;
      continue;
    }
    if (wt) {
      sw[j] = qkx2_set_imatrix_weights(wi + 8u * j, sigma2);
    } else {
      qkx2_set_weights(sqrt(qkx2_add_sq_all(0.0) / 32.0));
    }
    let r = make_qkx2();
    k4_r[j] = r;
    if (r.scale > max_scale) { max_scale = r.scale; }
    if (r.the_min > max_min) { max_min = r.the_min; }
  }
  // The 6-bit scales (ls) and mins (lm), as the uint8_t ggml packs.
  var ls: array<u32, 8>;
  var lm: array<u32, 8>;
  var d_block = max_scale / 63.0;
  var m_block = max_min / 63.0;
  if (wt) {
    // make_qp_quants over the scales (k = 0), then the mins (k = 1): one call site
    for (var k = 0u; k < opaque2(); k = k + 1u) {
      for (var j = 0u; j < 8u; j = j + 1u) {
        qp_x[j] = select(k4_r[j].scale, k4_r[j].the_min, k == 1u);
        qp_w[j] = sw[j];
      }
      let d = make_qp(8u, 63.0);
      for (var j = 0u; j < 8u; j = j + 1u) {
        let l = select(qp_l[j], min(63u, qp_l[j]), K4_CLAMP_LS);
        if (k == 0u) { ls[j] = l; } else { lm[j] = l; }
      }
      if (k == 0u) { d_block = d; } else { m_block = d; }
    }
  } else {
    let inv_scale = select(0.0, 63.0 / max_scale, max_scale > 0.0);
    let inv_min = select(0.0, 63.0 / max_min, max_min > 0.0);
    for (var j = 0u; j < 8u; j = j + 1u) {
      ls[j] = k4_quant6(inv_scale, k4_r[j].scale);
      lm[j] = k4_quant6(inv_min, k4_r[j].the_min);
    }
  }
  let dh = f32_to_f16_bits(d_block);
  let mh = f32_to_f16_bits(m_block);
  let d_all = f16_bits_to_f32(dh);
  let m_all = f16_bits_to_f32(mh);
  // scale bytes 0-3: sc[j] | (sc[j+4] >> 4) << 6; 4-7: m[j] | (m[j+4] >> 4) << 6;
  // 8-11: sc[j+4] & 15 | (m[j+4] & 15) << 4 (bytes, as C's uint8_t stores)
  var words = vec3<u32>(0u);
  for (var j = 0u; j < 8u; j = j + 1u) {
    let sh = (j & 3u) * 8u;
    if (j < 4u) {
      words.x = words.x | (ls[j] << sh);
      words.y = words.y | (lm[j] << sh);
    } else {
      words.z = words.z | ((((ls[j] & 15u) | (lm[j] << 4u)) & 0xffu) << sh);
      words.x = words.x | ((((ls[j] >> 4u) << 6u) & 0xffu) << sh);
      words.y = words.y | ((((lm[j] >> 4u) << 6u) & 0xffu) << sh);
    }
  }
  // the requantization scales from the packed bytes, as get_scale_min_k4 reads them
  for (var j = 0u; j < 8u; j = j + 1u) {
    let sh = (j & 3u) * 8u;
    var sm: vec2<u32>;
    if (j < 4u) {
      sm = vec2<u32>((words.x >> sh) & 63u, (words.y >> sh) & 63u);
    } else {
      let lo = (words.z >> sh) & 0xffu;
      sm = vec2<u32>((lo & 15u) | ((((words.x >> sh) >> 6u) & 3u) << 4u), (lo >> 4u) | ((((words.y >> sh) >> 6u) & 3u) << 4u));
    }
    k4_d[j] = d_all * f32(sm.x);
    k4_m[j] = m_all * f32(sm.y);
  }
  return vec4<u32>(dh | (mh << 16u), words);
}

// 2, in a form the compiler cannot fold (a loop bounded by it stays rolled).
fn opaque2() -> u32 {
  return select(2u, 0u, qparams.n_blocks == 0xffffffffu);
}

// Levels of weights 4c .. 4c + 3 of sub-block j of super-block b, as the four
// bytes of a word: against the rounded scale and min, or make_qkx2's where
// that scale is 0 (ggml's `if (!d) continue`). Their error is added to error_sums.
fn k4_levels(b: u32, j: u32, c: u32) -> u32 {
  let x = load_x4(b * 256u + j * 32u + c * 4u);
  let d = k4_d[j];
  var l = vec4<u32>(clamp(ggml_nearest_int4((x + vec4<f32>(k4_m[j])) / vec4<f32>(d)),
                          vec4<i32>(0), vec4<i32>(i32(QKX2_NMAX))));
  if (d == 0.0) { l = qkx2_levels_of(k4_r[j], x); }
  // their error as dequantize_part decodes them: d * l, then - m (a statement of its own)
  let y = vec4<f32>(d) * vec4<f32>(l);
  accumulate_error4(x, y - vec4<f32>(k4_m[j]));
  return l.x | (l.y << 8u) | (l.z << 16u) | (l.w << 24u);
}

// get_scale_min_k4: sub-block j's 6-bit scale and min from the 12 scale bytes at byte `o` of
// the blocks (lib/dequantize_io.wgsl), for `dequantize`.
fn k4_scale_min(o: u32, j: u32) -> vec2<u32> {
  if (j < 4u) {
    return vec2<u32>(block_byte(o + j) & 63u, block_byte(o + j + 4u) & 63u);
  }
  let lo = block_byte(o + j + 4u);
  return vec2<u32>((lo & 15u) | ((block_byte(o + j - 4u) >> 6u) << 4u), (lo >> 4u) | ((block_byte(o + j) >> 6u) << 4u));
}
