// Q2_K: super-blocks of 256 weights as { scales: u8[16], qs: u8[64], d: f16, dmin: f16 }
// (84 bytes, 21 words); sixteen sub-blocks of 16 with 4-bit scale and min
// (one byte each) and 2-bit levels.
// ggml: quantize_row_q2_K_ref / dequantize_row_q2_K. One invocation per super-block
// (see lib/kquant_k4.wgsl for why).

//#include lib/quant_entry.wgsl
//#include lib/kquant_io.wgsl
//#include lib/kquant_qkx2.wgsl

const QKX2_V: u32 = 4u;
const QKX2_NMAX: f32 = 3.0;
const QKX2_RMIN: f32 = -0.5;
const QKX2_NSTEP: u32 = 15u;
const QKX2_MAD: bool = true;


// Per sub-block: make_qkx2's result, and the requantization scale and offset
// (a zero scale keeps make_qkx2's levels, as ggml's `if (!d) continue`).
var<private> q2_r: array<Qkx2, 16>;
var<private> q2_d: array<f32, 16>;
var<private> q2_m: array<f32, 16>;

// Levels of weights 4c .. 4c + 3 of sub-block j of super-block b: against the
// rounded scale and min, or make_qkx2's where that scale is 0 (ggml's
// `if (!d) continue`).
fn q2_levels(b: u32, j: u32, c: u32) -> vec4<u32> {
  let x = load_x4(b * 256u + j * 16u + c * 4u);
  let d = q2_d[j];
  var l = vec4<u32>(clamp(ggml_nearest_int4((x + vec4<f32>(q2_m[j])) / vec4<f32>(d)), vec4<i32>(0), vec4<i32>(3)));
  if (d == 0.0) { l = qkx2_levels_of(q2_r[j], x); }
  return l;
}

fn quantize_blocks(inv: u32, b: u32) {
  if (b >= qparams.n_blocks) { return; }
  var max_scale = 0.0;
  var max_min = 0.0;
  for (var j = 0u; j < 16u; j = j + 1u) {
    qkx2_load(b * 256u + j * 16u);
    qkx2_set_weights(0.0);
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
