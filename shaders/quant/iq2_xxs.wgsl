// IQ2_XXS: blocks of 256 weights as { d: f16, qs: u16[32] } (66 bytes): eight
// sub-blocks of 32, each two u32: four indices into the 256-point E8 grid (one
// byte per group of 8), then four 7-bit sign fields (the 8th sign makes the count
// of negatives even) and the 4-bit sub-block scale s in bits 28-31;
// x = d * (0.5 + s) / 4 * grid[j] * sign.
// ggml: quantize_iq2_xxs (quantize_row_iq2_xxs_impl, with quant_weights only) /
// dequantize_row_iq2_xxs. CPU reference: src/quant/formats/iq2_xxs.ts.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/iq2_search.wgsl

const IQ2_GRID: u32 = 256u;
const PAIR_WORDS: u32 = 2u * BLOCK_BYTES / 4u;
const GROUP_MAX_EPS: f32 = 1e-15;

// make_qp_quants(32, 4, xval, L, w): the scale (L is scratch in la).
fn iq2_qp_scale() -> f32 {
  let max = iq2_max(32u);
  if (max < GROUP_MAX_EPS) { return 0.0; }
  var iscale = 4.0 / max;
  let scale = 1.0 / iscale;
  var best_mse = 0.0;
  for (var i = 0u; i < 32u; i = i + 1u) {
    let v = iscale * iq2_xval[i];
    let l = u32(iq2_nearest_int(v)) & 0xffu;
    let sl = scale * f32(l);
    let diff = iq2_xval[i] - sl;
    let wd = iq2_w[i] * diff;
    let t = wd * diff;
    best_mse = best_mse + t;
  }
  for (var is = -4; is <= i32(iq2_opaque(4u)); is = is + 1) {
    if (is == 0) { continue; }
    let a = 0.1 * f32(is);
    let num = a + 4.0;
    let iscale_is = num / max;
    let scale_is = 1.0 / iscale_is;
    var mse = 0.0;
    for (var i = 0u; i < 32u; i = i + 1u) {
      let v = iscale_is * iq2_xval[i];
      let l = min(4, iq2_nearest_int(v));
      let sl = scale_is * f32(l);
      let diff = iq2_xval[i] - sl;
      let wd = iq2_w[i] * diff;
      let t = wd * diff;
      mse = mse + t;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  var sumlx = 0.0;
  var suml2 = 0.0;
  for (var i = 0u; i < 32u; i = i + 1u) {
    let v = iscale * iq2_xval[i];
    let l = min(4, iq2_nearest_int(v));
    iq2_la[i] = u32(l) & 0xffu;
    let w = iq2_w[i];
    let wx = w * iq2_xval[i];
    let a = wx * f32(l);
    sumlx = sumlx + a;
    let wl = w * f32(l);
    let b = wl * f32(l);
    suml2 = suml2 + b;
  }
  for (var itry = 0u; itry < iq2_opaque(5u); itry = itry + 1u) {
    var changed = 0u;
    for (var i = 0u; i < 32u; i = i + 1u) {
      let w = iq2_w[i];
      let x = iq2_xval[i];
      let li = f32(iq2_la[i]);
      let wx = w * x;
      let a = wx * li;
      var slx = sumlx - a;
      let wl = w * li;
      let b = wl * li;
      var sl2 = suml2 - b;
      if (slx > 0.0 && sl2 > 0.0) {
        let xs = x * sl2;
        let r = xs / slx;
        let new_l = min(4, iq2_nearest_int(r));
        if (new_l != i32(iq2_la[i])) {
          let c = wx * f32(new_l);
          slx = slx + c;
          let wn = w * f32(new_l);
          let e = wn * f32(new_l);
          sl2 = sl2 + e;
          let s1 = slx * slx;
          let lhs = s1 * suml2;
          let s2 = sumlx * sumlx;
          let rhs = s2 * sl2;
          if (lhs > rhs) {
            iq2_la[i] = u32(new_l) & 0xffu;
            sumlx = slx;
            suml2 = sl2;
            changed = changed + 1u;
          }
        }
      }
    }
    if (changed == 0u) { break; }
  }
  return select(0.0, sumlx / suml2, suml2 > 0.0);
}

// Block b of the chunk into byte blk * BLOCK_BYTES of the pair image.
fn iq2_block(blk: u32, b: u32) {
  let first = b * QK;
  let at = blk * BLOCK_BYTES;
  let ss = iq2_sum_squares(first);
  if (ss.y == 0.0) {
    iq2_img_u16(at, IQ2_F16_NAN);
    return;
  }
  let sigma2 = ss.x / 256.0;
  var max_scale = 0.0;
  for (var ib = 0u; ib < iq2_opaque(8u); ib = ib + 1u) {
    iq2_load_sub(first, 32u * ib, 32u, sigma2);
    let p0 = iq2_split(0u, true);
    let p1 = iq2_split(8u, true);
    let p2 = iq2_split(16u, true);
    let p3 = iq2_split(24u, true);
    var signs = (p0.signs & 127u) | ((p1.signs & 127u) << 7u) | ((p2.signs & 127u) << 14u) | ((p3.signs & 127u) << 21u);
    iq2_scales[ib] = 0.0;
    let max = iq2_max(32u);
    if (max < GROUP_MAX_EPS) { continue; }
    var scale = iq2_qp_scale();
    let eff_max = scale * 3.0;
    if (eff_max <= 0.0) { continue; }
    var best = 0.0;
    var lv = vec4(0u);
    iq2_groups[0] = p0.g;
    iq2_groups[1] = p1.g;
    iq2_groups[2] = p2.g;
    iq2_groups[3] = p3.g;
    for (var is = -6; is <= i32(iq2_opaque(6u)); is = is + 1) {
      let t = f32(is) * 0.1;
      let num = 5.0 + t;
      let id = num / eff_max;
      let this_scale = 1.0 / id;
      let c = iq2_snap_groups(4u, id, this_scale) & vec4(0xffffu);
      let s = iq2_accumulate(iq2_accumulate(iq2_accumulate(iq2_accumulate(vec2(0.0), p0.g, c.x), p1.g, c.y), p2.g, c.z), p3.g, c.w);
      let lhs = s.x * s.x;
      let rhs = best * s.y;
      if (s.y > 0.0 && lhs > rhs) {
        scale = s.x / s.y;
        best = scale * s.x;
        lv = c;
      }
    }
    if (scale > 0.0) {
      let id = 1.0 / scale;
      lv = iq2_snap_groups(4u, id, scale) & vec4(0xffffu);
      let s = iq2_accumulate(iq2_accumulate(iq2_accumulate(iq2_accumulate(vec2(0.0), p0.g, lv.x), p1.g, lv.y), p2.g, lv.z), p3.g, lv.w);
      if (s.y > 0.0) { scale = s.x / s.y; }
    }
    if (scale < 0.0) {
      scale = -scale;
      signs = ~signs & 0x0fffffffu;
    }
    let word0 = iq2_index(lv.x) | (iq2_index(lv.y) << 8u) | (iq2_index(lv.z) << 16u) | (iq2_index(lv.w) << 24u);
    iq2_img_u32(at + 2u + 8u * ib, word0);
    iq2_img_u32(at + 6u + 8u * ib, signs);
    iq2_scales[ib] = scale;
    max_scale = select(scale, max_scale, max_scale > scale);
  }
  if (max_scale == 0.0) {
    iq2_img_zero(at + 2u, at + 66u);
    return;
  }
  let d = max_scale / 31.0;
  iq2_img_u16(at, f32_to_f16_bits(d));
  let id = 1.0 / d;
  for (var ib = 0u; ib < 8u; ib = ib + 1u) { iq2_img_byte(at + 9u + 8u * ib, iq2_scale_code(id, iq2_scales[ib]) << 4u); }
}

// Eight invocations per block, one per sub-block of 32.
fn dequantize_part(b: u32, ib: u32) {
  let base = b * BLOCK_BYTES;
  let d = f16_bits_to_f32(block_u16(base));
  let aux1 = iq2_block_u32(base + 6u + 8u * ib);
  let db = iq2_sub_scale(d, aux1 >> 28u);
  for (var l = 0u; l < 4u; l = l + 1u) {
    let s7 = (aux1 >> (7u * l)) & 127u;
    iq2_decode_group(b * QK + 32u * ib + 8u * l, db, block_byte(base + 2u + 8u * ib + l), s7 | ((countOneBits(s7) & 1u) << 7u));
  }
}
