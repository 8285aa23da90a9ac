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
//#include lib/kquant_qkx2.wgsl

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
fn k4_quantize_block(b: u32) -> vec4<u32> {
  var max_scale = 0.0;
  var max_min = 0.0;
  for (var j = 0u; j < 8u; j = j + 1u) {
    qkx2_load(b * 256u + j * 32u);
    qkx2_set_weights(sqrt(qkx2_sum_sq() / 32.0));
    let r = make_qkx2();
    k4_r[j] = r;
    if (r.scale > max_scale) { max_scale = r.scale; }
    if (r.the_min > max_min) { max_min = r.the_min; }
  }
  let inv_scale = select(0.0, 63.0 / max_scale, max_scale > 0.0);
  let inv_min = select(0.0, 63.0 / max_min, max_min > 0.0);
  let dh = f32_to_f16_bits(max_scale / 63.0);
  let mh = f32_to_f16_bits(max_min / 63.0);
  let d_all = f16_bits_to_f32(dh);
  let m_all = f16_bits_to_f32(mh);
  // scale bytes 0-3: sc[j] | (sc[j+4] >> 4) << 6; 4-7: m[j] | (m[j+4] >> 4) << 6;
  // 8-11: sc[j+4] & 15 | (m[j+4] & 15) << 4
  var words = vec3<u32>(0u);
  for (var j = 0u; j < 8u; j = j + 1u) {
    let ls = k4_quant6(inv_scale, k4_r[j].scale);
    let lm = k4_quant6(inv_min, k4_r[j].the_min);
    k4_d[j] = d_all * f32(ls);
    k4_m[j] = m_all * f32(lm);
    let sh = (j & 3u) * 8u;
    if (j < 4u) {
      words.x = words.x | (ls << sh);
      words.y = words.y | (lm << sh);
    } else {
      words.z = words.z | (((ls & 15u) | ((lm & 15u) << 4u)) << sh);
      words.x = words.x | ((ls >> 4u) << (sh + 6u));
      words.y = words.y | ((lm >> 4u) << (sh + 6u));
    }
  }
  return vec4<u32>(dh | (mh << 16u), words);
}

// Levels of weights 4c .. 4c + 3 of sub-block j of super-block b, as the four
// bytes of a word: against the rounded scale and min, or make_qkx2's where
// that scale is 0 (ggml's `if (!d) continue`).
fn k4_levels(b: u32, j: u32, c: u32) -> u32 {
  let x = load_x4(b * 256u + j * 32u + c * 4u);
  let d = k4_d[j];
  var l = vec4<u32>(clamp(ggml_nearest_int4((x + vec4<f32>(k4_m[j])) / vec4<f32>(d)),
                          vec4<i32>(0), vec4<i32>(i32(QKX2_NMAX))));
  if (d == 0.0) { l = qkx2_levels_of(k4_r[j], x); }
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
