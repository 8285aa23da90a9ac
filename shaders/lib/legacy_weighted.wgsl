// The importance-matrix entry point of Q4_0, Q4_1, Q5_0 and Q5_1
// (quantize_row_q4_0_impl .. q5_1_impl as ggml_quantize_chunk calls them with
// quant_weights), kept apart from their reference kernels. Per row
// sigma2 = sum x^2 / n_per_row (float32, in order: row_sigma2, computed by
// shaders/imatrix_sigma2.wgsl); per block of 32 weights qw * sqrt(sigma2 + x^2);
// then the symmetric formats (LW_ASYM false) take make_qx_quants(32, LW_NMAX,
// rmse_type 1) with them, the others make_qkx3_quants(32, 2 LW_NMAX - 1,
// -0.9f, 0.05f, 36) (lib/kquant_qkx2.wgsl's search with those parameters).
// A block holding NaN or ±Inf is marked as the reference kernels mark it.
//
// The including shader (after lib/legacy_quant.wgsl) defines LW_ASYM, LW_NMAX
// (8: 4-bit levels, 16: 5-bit) and lw_store(inv, b0, n, a, c), which writes
// the invocation's n (1 or 2) blocks. Descriptor: weightedKernel 'row-entry'.

//#include lib/imatrix_weights.wgsl
//#include lib/kquant_qkx2.wgsl
//#include lib/quantize_error_sums.wgsl

// Each row's sigma2 (rows of the whole tensor).
@group(0) @binding(5) var<storage, read> row_sigma2: array<f32>;

const QKX2_V: u32 = 8u;
const QKX2_NMAX: f32 = 2.0 * LW_NMAX - 1.0;
fn qkx2_rmin() -> f32 { return -0.9; }
fn qkx2_rdelta() -> f32 { return 0.05; }
fn qkx2_nstep() -> u32 { return 36u; }
fn qkx2_mad() -> bool { return false; }

// lib/kquant_qkx2.wgsl's loader (not used here: the block comes in whole from load_block32).
fn load_x4(i: u32) -> vec4<f32> {
  return raw_to_f32x4(src_raw4(qparams.src_skip + i));
}

// One block's bytes: the half words before the body (d; Q4_1/Q5_1: d | m << 16),
// then the body's words (5-bit formats: qh first, then the 16 bytes of qs).
struct LwBlock {
  head: u32,
  words: array<u32, 8>,
}

// The block's weights, element 4k + c in component c of wk (as Block32's values).
struct Weights32 {
  w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>,
  w4: vec4<f32>, w5: vec4<f32>, w6: vec4<f32>, w7: vec4<f32>,
}

// 32 levels, element 4k + c in component c of lk.
struct Levels32 {
  l0: vec4<f32>, l1: vec4<f32>, l2: vec4<f32>, l3: vec4<f32>,
  l4: vec4<f32>, l5: vec4<f32>, l6: vec4<f32>, l7: vec4<f32>,
}

fn lw_rolled(n: u32) -> u32 {
  return select(n, 0u, qparams.n_blocks == 0xffffffffu);
}

// make_qx_quants's levels at iscale: clamp(nearest_int(iscale x), -nmax, nmax - 1).
// lw_make_qx runs only on finite blocks whose largest |x| is mx, so |t| <= nmax + 1:
// round-half-even is nearest_int there, and the levels stay floats (no conversions).
fn lw_qx_level4(iscale: f32, x: vec4<f32>) -> vec4<f32> {
  let t = vec4<f32>(iscale) * x;
  return clamp(round(t), vec4<f32>(-LW_NMAX), vec4<f32>(LW_NMAX - 1.0));
}

fn lw_qx_levels(iscale: f32, x: Block32) -> Levels32 {
  return Levels32(lw_qx_level4(iscale, x.x0), lw_qx_level4(iscale, x.x1), lw_qx_level4(iscale, x.x2), lw_qx_level4(iscale, x.x3),
                  lw_qx_level4(iscale, x.x4), lw_qx_level4(iscale, x.x5), lw_qx_level4(iscale, x.x6), lw_qx_level4(iscale, x.x7));
}

// The (sumlx, suml2) of two candidates, a in .xy and b in .zw: ggml's
// `sumlx += w*x[i]*l; suml2 += w*l*l` over four more elements, in order, with
// w*x[i] (the same product for every candidate) computed once by the caller.
// Two candidates' chains interleaved: four independent float sums in flight
// instead of two (the adds' latency, not their count, bounded the search).
fn lw_sums2x4(s: vec4<f32>, ia: f32, ib: f32, x: vec4<f32>, wx: vec4<f32>, w: vec4<f32>) -> vec4<f32> {
  let la = lw_qx_level4(ia, x);
  let lb = lw_qx_level4(ib, x);
  let pa = wx * la;
  let pb = wx * lb;
  let wla = w * la;
  let wlb = w * lb;
  let qa = wla * la;
  let qb = wlb * lb;
  var t = s;
  t = t + vec4<f32>(pa.x, qa.x, pb.x, qb.x);
  t = t + vec4<f32>(pa.y, qa.y, pb.y, qb.y);
  t = t + vec4<f32>(pa.z, qa.z, pb.z, qb.z);
  t = t + vec4<f32>(pa.w, qa.w, pb.w, qb.w);
  return t;
}

// Candidate k's iscale: -nmax / max for k = 0 (ggml's first), then
// -(nmax + 0.1 is) / max for is = -9..-1, 1..9 (k = 1..18).
fn lw_qx_iscale(k: u32, mx: f32) -> f32 {
  let is = select(i32(k) - 10, i32(k) - 9, k >= 10u);
  let tenth = 0.1 * f32(is);
  let num = LW_NMAX + tenth;
  return select(-num / mx, -LW_NMAX / mx, k == 0u);
}

struct QxResult {
  scale: f32,
  l: Levels32,
}

// make_qx_quants(32, LW_NMAX, x, L, 1, weights) for a block whose largest |x| is `mx`
// (the first, on ties) and at least GROUP_MAX_EPS: the scale and the levels (before
// + nmax). The 19 candidates two per pass of a rolled loop (a 20th, past the end,
// is never taken), each one's 32 values written out (values in registers: a private
// array indexed by a variable costs a memory access per lane on lavapipe). ggml
// keeps the levels of the best candidate so far; the search keeps its iscale and
// recomputes its levels once at the end, the same values.
fn lw_make_qx(x: Block32, w: Weights32, mx: f32) -> QxResult {
  let wx = Block32(w.w0 * x.x0, w.w1 * x.x1, w.w2 * x.x2, w.w3 * x.x3, w.w4 * x.x4, w.w5 * x.x5, w.w6 * x.x6, w.w7 * x.x7);
  var scale = 0.0;
  var best = 0.0;
  var best_iscale = 0.0;
  for (var p = 0u; p < lw_rolled(10u); p = p + 1u) {
    let ka = 2u * p;
    let kb = ka + 1u;
    let ia = lw_qx_iscale(ka, mx);
    let ib = lw_qx_iscale(kb, mx);
    var s = lw_sums2x4(vec4<f32>(0.0), ia, ib, x.x0, wx.x0, w.w0);
    s = lw_sums2x4(s, ia, ib, x.x1, wx.x1, w.w1);
    s = lw_sums2x4(s, ia, ib, x.x2, wx.x2, w.w2);
    s = lw_sums2x4(s, ia, ib, x.x3, wx.x3, w.w3);
    s = lw_sums2x4(s, ia, ib, x.x4, wx.x4, w.w4);
    s = lw_sums2x4(s, ia, ib, x.x5, wx.x5, w.w5);
    s = lw_sums2x4(s, ia, ib, x.x6, wx.x6, w.w6);
    s = lw_sums2x4(s, ia, ib, x.x7, wx.x7, w.w7);
    // candidate a, then b, in ggml's order: `suml2 > 0 && sumlx*sumlx > best*suml2`
    // (candidate 0 is taken whatever its sums, its scale C's `suml2 ? sumlx/suml2 : 0`)
    let lhs_a = s.x * s.x;
    let rhs_a = best * s.y;
    let take_a = ka == 0u || (s.y > 0.0 && lhs_a > rhs_a);
    let scale_a = select(0.0, s.x / s.y, ka > 0u || (bitcast<u32>(s.y) & 0x7fffffffu) != 0u);
    let best_a = scale_a * s.x;
    scale = select(scale, scale_a, take_a);
    best = select(best, best_a, take_a);
    best_iscale = select(best_iscale, ia, take_a);
    let lhs_b = s.z * s.z;
    let rhs_b = best * s.w;
    let take_b = kb < 19u && s.w > 0.0 && lhs_b > rhs_b;
    let scale_b = s.z / s.w;
    let best_b = scale_b * s.z;
    scale = select(scale, scale_b, take_b);
    best = select(best, best_b, take_b);
    best_iscale = select(best_iscale, ib, take_b);
  }
  return QxResult(scale, lw_qx_levels(best_iscale, x));
}

// load_block32 (lib/legacy_quant.wgsl), shaped for a quick compile: the inlined
// copies of the loader are most of a legacy kernel's compile time. The two
// common layouts (float32 from a whole vector, float16 / bfloat16 from a whole
// vector) load straight into registers; a view that starts mid-vector takes a
// rolled loop through a private array (a memory access per lane on lavapipe:
// ~30% slower, so not the common path). Same values, NaN for a window too short.
var<private> lw_raw: array<vec4<f32>, 8>;

fn lw_halves_to_f32x4(v: vec2<u32>) -> vec4<f32> {
  return raw_to_f32x4(halves_raw4(v));
}

fn lw_load_block32(e: u32) -> Block32 {
  let g = qparams.src_skip + e;
  let shift = select(3u, 2u, src_kind() == 0u);
  if (((g + 31u) >> shift) >= arrayLength(&src4)) {
    let nan = vec4<f32>(bitcast<f32>(0x7fc00000u | (g & 0u)));
    return Block32(nan, nan, nan, nan, nan, nan, nan, nan);
  }
  if (src_kind() == 0u && (qparams.src_skip & 3u) == 0u) {
    let k = g >> 2u;
    return Block32(bitcast<vec4<f32>>(src4[k]), bitcast<vec4<f32>>(src4[k + 1u]), bitcast<vec4<f32>>(src4[k + 2u]), bitcast<vec4<f32>>(src4[k + 3u]),
                   bitcast<vec4<f32>>(src4[k + 4u]), bitcast<vec4<f32>>(src4[k + 5u]), bitcast<vec4<f32>>(src4[k + 6u]), bitcast<vec4<f32>>(src4[k + 7u]));
  }
  if (src_kind() != 0u && (qparams.src_skip & 7u) == 0u) {
    let k = g >> 3u;
    let v0 = src4[k]; let v1 = src4[k + 1u]; let v2 = src4[k + 2u]; let v3 = src4[k + 3u];
    return Block32(lw_halves_to_f32x4(v0.xy), lw_halves_to_f32x4(v0.zw), lw_halves_to_f32x4(v1.xy), lw_halves_to_f32x4(v1.zw),
                   lw_halves_to_f32x4(v2.xy), lw_halves_to_f32x4(v2.zw), lw_halves_to_f32x4(v3.xy), lw_halves_to_f32x4(v3.zw));
  }
  // a view that starts mid-vector
  for (var i = 0u; i < lw_rolled(8u); i = i + 1u) {
    lw_raw[i] = raw_to_f32x4(src_raw4(g + 4u * i));
  }
  return Block32(lw_raw[0], lw_raw[1], lw_raw[2], lw_raw[3], lw_raw[4], lw_raw[5], lw_raw[6], lw_raw[7]);
}

// Block b of the chunk (rows of blocks_per_row blocks); its error sums added to s.
fn lw_block(b: u32, s: ptr<function, vec4<f32>>) -> LwBlock {
  let x = lw_load_block32(b * QK);
  let m = abs_max32(x);
  if (!is_finite_bits(m.amax)) {
    add_invalid_block(s);
    return LwBlock(select(F16_NAN, F16_NAN | (F16_NAN << 16u), LW_ASYM), array<u32, 8>());
  }
  let g = wparams.first_block + b;
  let sigma2 = row_sigma2[g / wparams.blocks_per_row];
  let wi = weight_vec_index(b);
  let w = Weights32(imatrix_weights4(imatrix_w4[wi], sigma2, x.x0), imatrix_weights4(imatrix_w4[wi + 1u], sigma2, x.x1),
                    imatrix_weights4(imatrix_w4[wi + 2u], sigma2, x.x2), imatrix_weights4(imatrix_w4[wi + 3u], sigma2, x.x3),
                    imatrix_weights4(imatrix_w4[wi + 4u], sigma2, x.x4), imatrix_weights4(imatrix_w4[wi + 5u], sigma2, x.x5),
                    imatrix_weights4(imatrix_w4[wi + 6u], sigma2, x.x6), imatrix_weights4(imatrix_w4[wi + 7u], sigma2, x.x7));
  var head = 0u;
  var l: array<vec4<u32>, 8>;
  if (LW_ASYM) {
    qx_x = array<vec4<f32>, 8>(x.x0, x.x1, x.x2, x.x3, x.x4, x.x5, x.x6, x.x7);
    qx_w = array<vec4<f32>, 8>(w.w0, w.w1, w.w2, w.w3, w.w4, w.w5, w.w6, w.w7);
    let r = make_qkx2();
    head = f32_to_f16_bits(r.scale) | (f32_to_f16_bits(-r.the_min) << 16u);
    l = array<vec4<u32>, 8>(qkx2_levels_of(r, x.x0), qkx2_levels_of(r, x.x1), qkx2_levels_of(r, x.x2), qkx2_levels_of(r, x.x3),
                            qkx2_levels_of(r, x.x4), qkx2_levels_of(r, x.x5), qkx2_levels_of(r, x.x6), qkx2_levels_of(r, x.x7));
  } else if (m.amax >= 0x26901d7du) {
    let q = lw_make_qx(x, w, m.max);
    head = f32_to_f16_bits(q.scale);
    let n = vec4<f32>(LW_NMAX);
    l = array<vec4<u32>, 8>(vec4<u32>(q.l.l0 + n), vec4<u32>(q.l.l1 + n), vec4<u32>(q.l.l2 + n), vec4<u32>(q.l.l3 + n),
                            vec4<u32>(q.l.l4 + n), vec4<u32>(q.l.l5 + n), vec4<u32>(q.l.l6 + n), vec4<u32>(q.l.l7 + n));
  } // else: largest |x| below GROUP_MAX_EPS, d 0 and levels 0
  // the values the format's dequantize_part decodes: d (l - nmax), or d l + m
  if (error_sums_wanted()) {
    let dd = f16_bits_to_f32(head & 0xffffu);
    if (LW_ASYM) {
      let mm = f16_bits_to_f32(head >> 16u);
      add_error4(s, x.x0, vec4<f32>(l[0]) * dd + mm); add_error4(s, x.x1, vec4<f32>(l[1]) * dd + mm);
      add_error4(s, x.x2, vec4<f32>(l[2]) * dd + mm); add_error4(s, x.x3, vec4<f32>(l[3]) * dd + mm);
      add_error4(s, x.x4, vec4<f32>(l[4]) * dd + mm); add_error4(s, x.x5, vec4<f32>(l[5]) * dd + mm);
      add_error4(s, x.x6, vec4<f32>(l[6]) * dd + mm); add_error4(s, x.x7, vec4<f32>(l[7]) * dd + mm);
    } else {
      let n = vec4<i32>(i32(LW_NMAX));
      add_error4(s, x.x0, vec4<f32>(vec4<i32>(l[0]) - n) * dd); add_error4(s, x.x1, vec4<f32>(vec4<i32>(l[1]) - n) * dd);
      add_error4(s, x.x2, vec4<f32>(vec4<i32>(l[2]) - n) * dd); add_error4(s, x.x3, vec4<f32>(vec4<i32>(l[3]) - n) * dd);
      add_error4(s, x.x4, vec4<f32>(vec4<i32>(l[4]) - n) * dd); add_error4(s, x.x5, vec4<f32>(vec4<i32>(l[5]) - n) * dd);
      add_error4(s, x.x6, vec4<f32>(vec4<i32>(l[6]) - n) * dd); add_error4(s, x.x7, vec4<f32>(vec4<i32>(l[7]) - n) * dd);
    }
  }
  // elements j (low nibble) and j + 16 (high) share byte j of qs
  let lo = vec4<u32>(15u);
  let sh = vec4<u32>(4u);
  let qs = array<u32, 4>(pack_bytes((l[0] & lo) | ((l[4] & lo) << sh)), pack_bytes((l[1] & lo) | ((l[5] & lo) << sh)),
                         pack_bytes((l[2] & lo) | ((l[6] & lo) << sh)), pack_bytes((l[3] & lo) | ((l[7] & lo) << sh)));
  if (LW_NMAX == 16.0) {
    let qh = high_bits4(l[0], 0u) | high_bits4(l[1], 4u) | high_bits4(l[2], 8u) | high_bits4(l[3], 12u) |
             high_bits4(l[4], 16u) | high_bits4(l[5], 20u) | high_bits4(l[6], 24u) | high_bits4(l[7], 28u);
    return LwBlock(head, array<u32, 8>(qh, qs[0], qs[1], qs[2], qs[3], 0u, 0u, 0u));
  }
  return LwBlock(head, array<u32, 8>(qs[0], qs[1], qs[2], qs[3], 0u, 0u, 0u, 0u));
}

@compute @workgroup_size(QUANTIZE_WORKGROUP_SIZE)
fn quantize_weighted(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let inv = workgroup_index(wid, nwg) * QUANTIZE_WORKGROUP_SIZE + lid;
  let b0 = inv * QUANTIZE_BLOCKS_PER_INVOCATION;
  var s = vec4<f32>(0.0);
  if (b0 < qparams.n_blocks) {
    let n = min(QUANTIZE_BLOCKS_PER_INVOCATION, qparams.n_blocks - b0);
    // one call site in a loop: inlined twice, the search would double the shader
    var a: LwBlock;
    var c: LwBlock;
    for (var k = 0u; k < n; k = k + 1u) {
      let r = lw_block(b0 + k, &s);
      if (k == 0u) { a = r; } else { c = r; }
    }
    lw_store(inv, b0, n, a, c);
  }
  // the workgroup's error sums (lib/quantize_error_sums.wgsl): control flow uniform up to here
  write_error_sums(inv, s);
}
