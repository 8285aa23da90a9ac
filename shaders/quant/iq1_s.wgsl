// IQ1_S: blocks of 256 weights as { d: f16, qs: u8[32], qh: u16[8] } (50 bytes),
// eight sub-blocks of 32, each four grid points of eight levels in {-1, 0, 1}
// (see src/quant/formats/iq1_s.ts). ggml: quantize_row_iq1_s_impl (ggml asserts
// quant_weights) / dequantize_row_iq1_s. Only the quantize_weighted entry point
// quantizes: quantize() refuses IQ1_S without an importance matrix before dispatching.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/iq1_quant.wgsl


// Two blocks' bytes (100: 25 words), assembled here, then stored.
var<private> out_words: array<u32, 25>;

fn put_byte(at: u32, v: u32) {
  out_words[at >> 2u] = out_words[at >> 2u] | ((v & 0xffu) << ((at & 3u) * 8u));
}

fn put_u16(at: u32, v: u32) {
  put_byte(at, v);
  put_byte(at + 1u, v >> 8u);
}

// The sub-block's w*x and w in sorted order.
var<private> wx_sorted: array<f32, 32>;
var<private> w_sorted: array<f32, 32>;

// The split search's state (ggml's best_score, scale, besti1, besti2, best_shift)
// and the current i1's terms, shared with split_pair.
var<private> sp_best: f32;
var<private> sp_scale: f32;
var<private> sp_i1: i32;
var<private> sp_i2: i32;
var<private> sp_shift: i32;
var<private> sp_at: u32;
var<private> sp_x0: f32;
var<private> sp_w0: f32;
var<private> sp_p0x: f32;
var<private> sp_m0x: f32;
var<private> sp_p0q: f32;
var<private> sp_m0q: f32;
var<private> sp_x1c: f32;

// One split (i1 = sp_at, i2) of ggml's search, both shifts; a: (sumx[i2], sumw[i2],
// the x_p[2] terms from i2 on), am: the x_m[2] terms.
fn split_pair(i2: u32, a: vec4<f32>, am: vec2<f32>) {
  let x1 = a.x - sp_x0;
  let w1 = a.y - sp_w0;
  // x_p[1] = 0.125 = -x_m[1]: the middle terms of both shifts, up to sign
  let t = x1 * sp_x1c;
  let w8 = iq1_keep(w1 * sp_x1c);
  let tq = w8 * sp_x1c;
  let sp = iq1_keep(sp_p0x + t);
  let sumqx_p = sp + a.z;
  let qp = iq1_keep(sp_p0q + tq);
  let sumq2_p = qp + a.w;
  let sxp = sumqx_p * sumqx_p;
  let bqp = sp_best * sumq2_p;
  if (sumq2_p > 0.0 && sxp > bqp) {
    sp_scale = sumqx_p / sumq2_p;
    sp_best = sp_scale * sumqx_p;
    sp_i1 = i32(sp_at);
    sp_i2 = i32(i2);
    sp_shift = 1;
  }
  let sm = iq1_keep(sp_m0x - t);
  let sumqx_m = sm + am.x;
  let qm = iq1_keep(sp_m0q + tq);
  let sumq2_m = qm + am.y;
  let sxm = sumqx_m * sumqx_m;
  let bqm = sp_best * sumq2_m;
  if (sumq2_m > 0.0 && sxm > bqm) {
    sp_scale = sumqx_m / sumq2_m;
    sp_best = sp_scale * sumqx_m;
    sp_i1 = i32(sp_at);
    sp_i2 = i32(i2);
    sp_shift = -1;
  }
}

struct SubBlock {
  scale: f32,
  shift: i32,  // 1: +delta, -1: -delta
  qh: u32,     // grid index high bits
}

// Sub-block ib of block b (bytes at `at` in out_words): ggml's split search, grid
// points and scale. The values and weights are in iq1_x / iq1_w.
fn quantize_sub_block(at: u32, ib: u32, xmax: f32) -> SubBlock {
  iq1_sort(32u);
  for (var i = 0u; i < iq1_n(32u); i = i + 1u) {
    let r = iq1_rank[i];
    let wx = iq1_w[i] * iq1_x[i];
    wx_sorted[r] = wx;
    w_sorted[r] = iq1_w[i];
  }
  // ggml's x_p[0], x_p[2], x_m[0], x_m[2] and x_p[1] = -x_m[1], hidden from constant folding (iq1_hide)
  let XP0 = iq1_hide(-0.875);
  let XP2 = iq1_hide(1.125);
  let XM0 = iq1_hide(-1.125);
  let XM2 = iq1_hide(0.875);
  let X1 = iq1_hide(0.125);
  // Prefix sums sumx, sumw of the sorted w*x and w (ggml's order), then per split
  // point i: (sumx[i], sumw[i], the x_p[2] terms of sumqx and sumq2 from i on) and
  // the x_m[2] terms. Loops over `split` / `split_m` have literal bounds: the compiler
  // unrolls them, so these arrays live in registers instead of per-lane memory.
  var cw2: array<vec2<f32>, 33>;
  var split: array<vec4<f32>, 33>;
  var split_m: array<vec2<f32>, 33>;
  var sx = 0.0;
  var sw = 0.0;
  cw2[0] = vec2(0.0, 0.0);
  for (var j = 0u; j < 32u; j = j + 1u) {
    sx = iq1_keep(sx + wx_sorted[j]);
    sw = iq1_keep(sw + w_sorted[j]);
    cw2[j + 1u] = vec2(sx, sw);
  }
  for (var i2 = 0u; i2 < 33u; i2 = i2 + 1u) {
    let c = cw2[i2];
    let x2 = sx - c.x;
    let w2 = sw - c.y;
    let wp = iq1_keep(w2 * XP2);
    let wm = iq1_keep(w2 * XM2);
    split[i2] = vec4(c.x, c.y, x2 * XP2, wp * XP2);
    split_m[i2] = vec2(x2 * XM2, wm * XM2);
  }
  sp_best = -IQ1_FLT_MAX;
  sp_scale = xmax;
  sp_i1 = -1;
  sp_i2 = -1;
  sp_shift = 0;
  sp_x1c = X1;
  for (var i1 = 0u; i1 <= iq1_n(32u); i1 = i1 + 1u) {
    // sumx[i1] - sumx[0] is sumx[i1] (sumx[0] = +0)
    let c0 = cw2[i1];
    sp_at = i1;
    sp_x0 = c0.x;
    sp_w0 = c0.y;
    sp_p0x = c0.x * XP0;
    sp_m0x = c0.x * XM0;
    let wp0 = iq1_keep(c0.y * XP0);
    sp_p0q = wp0 * XP0;
    let wm0 = iq1_keep(c0.y * XM0);
    sp_m0q = wm0 * XM0;
    // 32 iterations and the last split on its own: the compiler unrolls the loop
    // (at most 32), so `split` is indexed by literals only and stays in registers.
    for (var i2 = 0u; i2 < 32u; i2 = i2 + 1u) {
      if (i2 >= i1) { split_pair(i2, split[i2], split_m[i2]); }
    }
    split_pair(32u, split[32], split_m[32]);
  }
  var scale = sp_scale;
  var best_shift = sp_shift;
  let besti1 = sp_i1;
  let besti2 = sp_i2;
  if (besti1 < 0 || besti2 < 0 || best_shift == 0) { return SubBlock(0.0, 1, 0u); }
  let flip = scale < 0.0;
  for (var i = 0u; i < iq1_n(32u); i = i + 1u) {
    let r = i32(iq1_rank[i]);
    let l = select(select(2u, 1u, r < besti2), 0u, r < besti1);
    iq1_l[i] = select(l, 2u - l, flip);
  }
  if (flip) {
    scale = -scale;
    best_shift = -best_shift;
  }
  // the four groups share the sub-block's shift
  scale = iq1_snap_groups(4u, scale, select(0u, 15u, best_shift == -1));
  var h = 0u;
  for (var k = 0u; k < iq1_n(4u); k = k + 1u) {
    put_byte(at + 2u + 4u * ib + k, iq1_index[k]);
    h = h | ((iq1_index[k] >> 8u) << (3u * k));
  }
  return SubBlock(scale, best_shift, h);
}

// quantize_row_iq1_s_impl for block b, its bytes at `at` in out_words (zeroed).
fn quantize_block(b: u32, at: u32) {
  // a block with NaN or ±Inf: d float16 NaN, every other byte 0 (the invalid-block marker)
  var finite = true;
  for (var i = 0u; i < iq1_n(256u); i = i + 1u) {
    finite = finite && (bitcast<u32>(load_x(b * QK + i)) & 0x7fffffffu) < 0x7f800000u;
  }
  if (!finite) {
    put_u16(at, 0x7e00u);
    return;
  }
  let sigma2 = iq1_sigma2(b);
  var scales: array<f32, 8>;
  var shifts: array<i32, 8>;
  var qh: array<u32, 8>;
  var max_scale = 0.0;
  for (var ib = 0u; ib < iq1_n(8u); ib = ib + 1u) {
    var xmax = 0.0;
    for (var i = 0u; i < iq1_n(32u); i = i + 1u) {
      let v = load_x(b * QK + 32u * ib + i);
      iq1_x[i] = v;
      let v2 = v * v;
      let s = sigma2 + v2;
      iq1_w[i] = iq1_qw[32u * ib + i] * sqrt(s);
      let a = abs(v);
      xmax = select(a, xmax, i > 0u && xmax > a);
    }
    var sb = SubBlock(0.0, 1, 0u);
    if (!(xmax < 1e-12)) { sb = quantize_sub_block(at, ib, xmax); }
    scales[ib] = sb.scale;
    shifts[ib] = sb.shift;
    qh[ib] = sb.qh;
    max_scale = select(sb.scale, max_scale, max_scale > sb.scale);
  }
  if (max_scale == 0.0) {
    for (var ib = 0u; ib < iq1_n(8u); ib = ib + 1u) { put_u16(at + 34u + 2u * ib, qh[ib]); }
    return;
  }
  let d = max_scale / iq1_hide(15.0);
  let dd = d * 1.125;
  put_u16(at, f32_to_f16_bits(dd));
  let id = 1.0 / d;
  for (var ib = 0u; ib < iq1_n(8u); ib = ib + 1u) {
    let s = id * scales[ib];
    let h = 0.5 * (s - 1.0);
    var l = u32(clamp(iq1_nearest_int(h), 0, 7));
    if (shifts[ib] == -1) { l = l | 8u; }
    put_u16(at + 34u + 2u * ib, qh[ib] | (l << 12u));
  }
}

// Blocks first, first + 1 (those below n_blocks): 25 words.
fn quantize_pair(first: u32) {
  if (first >= qparams.n_blocks) { return; }
  iq1_start();
  for (var i = 0u; i < iq1_n(25u); i = i + 1u) { out_words[i] = 0u; }
  let n = min(2u, qparams.n_blocks - first);
  for (var k = 0u; k < n; k = k + 1u) {
    if (WEIGHTED) { iq1_load_weights(first + k); }
    quantize_block(first + k, 50u * k);
  }
  let words = select(25u, 13u, n == 1u);
  for (var i = 0u; i < words; i = i + 1u) { dst[(first / 2u) * 25u + i] = out_words[i]; }
}

// IQ1_S has no reference path without weights (ggml asserts quant_weights) and
// quantize() refuses it: this entry point writes nothing.
fn quantize_blocks(inv: u32, first: u32) {
}

@compute @workgroup_size(QUANTIZE_WORKGROUP_SIZE)
fn quantize_weighted(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let inv = workgroup_index(wid, nwg) * QUANTIZE_WORKGROUP_SIZE + lid;
  quantize_pair(2u * inv);
}

// One invocation per sub-block of 32: 8 per block.
fn dequantize_part(b: u32, ib: u32) {
  let base = b * BLOCK_BYTES;
  let d = f16_bits_to_f32(block_u16(base));
  let qh = block_u16(base + 34u + 2u * ib);
  let dl = d * f32(2u * ((qh >> 12u) & 7u) + 1u);
  let delta = select(0.125, -0.125, (qh & 0x8000u) != 0u);
  for (var l = 0u; l < 4u; l = l + 1u) {
    let g = block_byte(base + 2u + 4u * ib + l) | (((qh >> (3u * l)) & 7u) << 8u);
    let code = iq1_code(g);
    for (var j = 0u; j < 8u; j = j + 1u) {
      let v = f32(i32((code >> (2u * j)) & 3u) - 1) + delta;
      out[b * QK + 32u * ib + 8u * l + j] = dl * v;
    }
  }
}
