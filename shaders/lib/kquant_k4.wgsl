// The super-block stage Q4_K and Q5_K share (ggml's quantize_row_q4_K_ref /
// q5_K_ref): eight sub-blocks of 32 through make_qkx2 with weights
// av_x + |x|, 6-bit scales and mins relative to their maxima packed as
// get_scale_min_k4 reads them, then each weight's level against the rounded
// scales. The including shader defines the QKX2_* constants (lib/kquant_qkx2.wgsl).

//#include lib/kquant_qkx2.wgsl

// Per sub-block: make_qkx2's result, and the requantization scale and offset
// (a zero scale keeps make_qkx2's levels, as ggml's `if (!d) continue`).
var<private> k4_r: array<Qkx2, 8>;
var<private> k4_d: array<f32, 8>;
var<private> k4_m: array<f32, 8>;

// Quantizes super-block `b` of the chunk; returns the first four words of its
// bytes: d | dmin << 16, then the 12 scale bytes.
fn k4_quantize_block(b: u32) -> vec4<u32> {
  var max_scale = 0.0;
  var max_min = 0.0;
  for (var j = 0u; j < 8u; j = j + 1u) {
    let base = b * 256u + j * 32u;
    var sum_x2 = 0.0;
    for (var k = 0u; k < 8u; k = k + 1u) {
      let i = base + k * 4u;
      let x = vec4<f32>(load_x(i), load_x(i + 1u), load_x(i + 2u), load_x(i + 3u));
      qx_x[k] = x;
      let x2 = x * x;
      sum_x2 = (((sum_x2 + x2.x) + x2.y) + x2.z) + x2.w;
    }
    let av_x = sqrt(sum_x2 / 32.0);
    for (var k = 0u; k < 8u; k = k + 1u) {
      qx_w[k] = vec4<f32>(av_x) + abs(qx_x[k]);
    }
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
    // uint8_t ls = nearest_int(...): 8 bits kept, then at most 63
    let ls = min(63u, u32(ggml_nearest_int(inv_scale * k4_r[j].scale)) & 0xffu);
    let lm = min(63u, u32(ggml_nearest_int(inv_min * k4_r[j].the_min)) & 0xffu);
    k4_d[j] = d_all * f32(ls);
    k4_m[j] = m_all * f32(lm);
    let jj = j & 3u;
    let sh = jj * 8u;
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

// Levels of four consecutive weights of sub-block j, super-block b, from element i of the chunk.
fn k4_levels(j: u32, i: u32) -> vec4<u32> {
  let x = vec4<f32>(load_x(i), load_x(i + 1u), load_x(i + 2u), load_x(i + 3u));
  let d = k4_d[j];
  let m = k4_m[j];
  let r = k4_r[j];
  if (d == 0.0) {
    return vec4<u32>(qkx2_level(r, x.x), qkx2_level(r, x.y), qkx2_level(r, x.z), qkx2_level(r, x.w));
  }
  let l = ggml_nearest_int4((x + vec4<f32>(m)) / vec4<f32>(d));
  return vec4<u32>(clamp(l, vec4<i32>(0), vec4<i32>(i32(QKX2_NMAX))));
}

// Four levels (each < 256) as the bytes of one word.
fn bytes4(l: vec4<u32>) -> u32 {
  return l.x | (l.y << 8u) | (l.z << 16u) | (l.w << 24u);
}

// get_scale_min_k4: sub-block j's 6-bit scale and min from the 12 scale bytes at byte `o` of the blocks.
fn k4_scale_min(o: u32, j: u32) -> vec2<u32> {
  if (j < 4u) {
    return vec2<u32>(block_byte(o + j) & 63u, block_byte(o + j + 4u) & 63u);
  }
  let lo = block_byte(o + j + 4u);
  return vec2<u32>((lo & 15u) | ((block_byte(o + j - 4u) >> 6u) << 4u), (lo >> 4u) | ((block_byte(o + j) >> 6u) << 4u));
}
