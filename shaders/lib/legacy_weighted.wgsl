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

// The block's values, weights and (symmetric search) levels, indexed by a rolled loop.
var<private> lw_x: array<vec4<f32>, 8>;
var<private> lw_w: array<vec4<f32>, 8>;
var<private> lw_l: array<vec4<u32>, 8>;

fn lw_rolled(n: u32) -> u32 {
  return select(n, 0u, qparams.n_blocks == 0xffffffffu);
}

fn lw_add4(acc: f32, v: vec4<f32>) -> f32 {
  return (((acc + v.x) + v.y) + v.z) + v.w;
}

// make_qx_quants's levels at iscale for vec4 k: clamp(nearest_int(iscale x), -nmax, nmax - 1).
fn lw_qx_level4(iscale: f32, k: u32) -> vec4<i32> {
  let t = vec4<f32>(iscale) * lw_x[k];
  return clamp(ggml_nearest_int4(t), vec4<i32>(-i32(LW_NMAX)), vec4<i32>(i32(LW_NMAX) - 1));
}

// make_qx_quants(32, LW_NMAX, x, L, 1, weights) for a block whose largest |x| is `mx`
// (the first, on ties) and at least GROUP_MAX_EPS: the scale; levels + nmax in lw_l.
fn lw_make_qx(mx: f32) -> f32 {
  var scale = 0.0;
  var best = 0.0;
  // candidate 0: -nmax / max (levels stored, scale taken whatever the sums);
  // then -(nmax + 0.1 is) / max for is = -9..-1, 1..9
  for (var k = 0u; k < lw_rolled(19u); k = k + 1u) {
    var iscale = -LW_NMAX / mx;
    if (k > 0u) {
      let is = select(i32(k) - 10, i32(k) - 9, k >= 10u);
      let tenth = 0.1 * f32(is);
      let num = LW_NMAX + tenth;
      iscale = -num / mx;
    }
    var sumlx = 0.0;
    var suml2 = 0.0;
    for (var i = 0u; i < lw_rolled(8u); i = i + 1u) {
      let l = vec4<f32>(lw_qx_level4(iscale, i));
      let w = lw_w[i];
      let wx = w * lw_x[i];
      let a = wx * l;
      sumlx = lw_add4(sumlx, a);
      let wl = w * l;
      let b = wl * l;
      suml2 = lw_add4(suml2, b);
    }
    var take = false;
    if (k == 0u) {
      take = true;
    } else {
      let lhs = sumlx * sumlx;
      let rhs = best * suml2;
      take = suml2 > 0.0 && lhs > rhs;
    }
    if (take) {
      for (var i = 0u; i < lw_rolled(8u); i = i + 1u) {
        lw_l[i] = vec4<u32>(lw_qx_level4(iscale, i) + vec4<i32>(i32(LW_NMAX)));
      }
      // C's `suml2 ? sumlx/suml2 : 0` (a NaN suml2 divides), then the candidates' rule
      scale = select(0.0, sumlx / suml2, k > 0u || (bitcast<u32>(suml2) & 0x7fffffffu) != 0u);
      best = scale * sumlx;
    }
  }
  return scale;
}

// Block b of the chunk (rows of blocks_per_row blocks).
fn lw_block(b: u32) -> LwBlock {
  let x = load_block32(b * QK);
  let m = abs_max32(x);
  if (!is_finite_bits(m.amax)) {
    return LwBlock(select(F16_NAN, F16_NAN | (F16_NAN << 16u), LW_ASYM), array<u32, 8>());
  }
  let g = wparams.first_block + b;
  let sigma2 = row_sigma2[g / wparams.blocks_per_row];
  let wi = weight_vec_index(b);
  lw_x = array<vec4<f32>, 8>(x.x0, x.x1, x.x2, x.x3, x.x4, x.x5, x.x6, x.x7);
  for (var i = 0u; i < lw_rolled(8u); i = i + 1u) { lw_w[i] = imatrix_weights4(imatrix_w4[wi + i], sigma2, lw_x[i]); }
  var head = 0u;
  var l: array<vec4<u32>, 8>;
  if (LW_ASYM) {
    for (var i = 0u; i < 8u; i = i + 1u) { qx_x[i] = lw_x[i]; qx_w[i] = lw_w[i]; }
    let r = make_qkx2();
    head = f32_to_f16_bits(r.scale) | (f32_to_f16_bits(-r.the_min) << 16u);
    for (var i = 0u; i < 8u; i = i + 1u) { l[i] = qkx2_levels_of(r, lw_x[i]); }
  } else {
    var d = 0.0;
    if (m.amax >= 0x26901d7du) { d = lw_make_qx(m.max); } // else below GROUP_MAX_EPS: d 0, levels 0
    else { for (var i = 0u; i < 8u; i = i + 1u) { lw_l[i] = vec4<u32>(0u); } }
    head = f32_to_f16_bits(d);
    for (var i = 0u; i < 8u; i = i + 1u) { l[i] = lw_l[i]; }
  }
  // elements j (low nibble) and j + 16 (high) share byte j of qs
  let lo = vec4<u32>(15u);
  var qs = array<u32, 4>();
  for (var i = 0u; i < 4u; i = i + 1u) { qs[i] = pack_bytes((l[i] & lo) | ((l[i + 4u] & lo) << vec4<u32>(4u))); }
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
  if (b0 >= qparams.n_blocks) { return; }
  let n = min(QUANTIZE_BLOCKS_PER_INVOCATION, qparams.n_blocks - b0);
  // one call site in a loop: inlined twice, the search would double the shader
  var a: LwBlock;
  var c: LwBlock;
  for (var k = 0u; k < n; k = k + 1u) {
    let r = lw_block(b0 + k);
    if (k == 0u) { a = r; } else { c = r; }
  }
  lw_store(inv, b0, n, a, c);
}
