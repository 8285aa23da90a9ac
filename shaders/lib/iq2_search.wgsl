// What the kernels of IQ2_XXS, IQ2_XS and IQ2_S share (shaders/quant/iq2_*.wgsl),
// mirroring src/quant/formats/iq2_common.ts: the lattice tables (one storage
// buffer per device, src/quant/grids/iq2xs.ts), ggml's snap of a group of 8
// magnitudes to the grid (kmap, and iq2_find_best_neighbour for codes off it),
// the weighted least-squares sums, the 16-value sub-block search of IQ2_XS /
// IQ2_S, and the pair image the blocks are assembled in. Float32 in ggml's
// order, one product per `let` (no contraction). The including shader defines
// IQ2_GRID (its grid's size) and PAIR_WORDS, and includes lib/quantize_io.wgsl
// and lib/dequantize_io.wgsl. One invocation quantizes a pair of blocks, one
// after the other: blocks of 66 / 74 / 82 bytes fill whole words in pairs.

// The format's tables (src/quant/grids/iq2xs.ts iq2xsGpuTables), read as vec4s:
// the grid's 2-bit codes (one word each), then kmap (43692 words, i32; -(v + 1)
// for a code off the grid, v its list's vec4 offset), then from vec4
// IQ2_LISTS_AT the neighbour lists (u16, eight per vec4: a count, then the
// neighbours' codes; each list starts on a vec4).
@group(1) @binding(0) var<storage, read> iq2_tables: array<vec4<u32>>;
const IQ2_KMAP_SIZE: u32 = 43692u;
const IQ2_LISTS_AT: u32 = (IQ2_GRID + IQ2_KMAP_SIZE + 3u) / 4u;

fn iq2_word(i: u32) -> u32 {
  return iq2_tables[i >> 2u][i & 3u];
}

// With WEIGHTED (the quantize_weighted pipelines) the block's importance weights
// are in iq2_bw (filled by that entry point from bindings 3 and 4).
override WEIGHTED: bool = false;

const IQ2_FLT_MAX: f32 = 0x1.fffffep+127f;
// float16 NaN: the scale of a block whose input holds NaN or ±Inf.
const IQ2_F16_NAN: u32 = 0x7e00u;

// `n`, in a form the compiler cannot fold: loops bounded by it stay rolled
// (unrolled, these searches take lavapipe minutes to compile).
fn iq2_opaque(n: u32) -> u32 {
  return select(n, 0u, qparams.n_blocks == 0xffffffffu);
}

// ggml's nearest_int bit trick; NaN gives 0 (as the CPU reference).
fn iq2_nearest_int(x: f32) -> i32 {
  let b = bitcast<i32>(x + 12582912.0);
  return select((b & 0x7fffff) - 0x400000, 0, (b & 0x7fffffff) > 0x7f800000);
}

fn iq2_code(idx: u32) -> u32 {
  return iq2_word(idx);
}

fn iq2_map(u: u32) -> i32 {
  return bitcast<i32>(iq2_word(IQ2_GRID + u));
}

// One group of 8 of a sub-block, in registers: magnitudes x (after the sign
// split), weights w and their square roots a, elements 0-3 in *0, 4-7 in *1.
// The searches below read only these: they are the same for every candidate scale.
struct Group {
  x0: vec4<f32>, x1: vec4<f32>,
  w0: vec4<f32>, w1: vec4<f32>,
  a0: vec4<f32>, a1: vec4<f32>,
}

// The sub-block's values (32 for IQ2_XXS, 16 otherwise), magnitudes and weights,
// for the sign split and IQ2_XXS's make_qp_quants; the block's importance weights
// (WEIGHTED) and sub-block scales.
var<private> iq2_xs: array<f32, 32>;
var<private> iq2_xval: array<f32, 32>;
var<private> iq2_w: array<f32, 32>;
var<private> iq2_la: array<u32, 32>;
var<private> iq2_bw: array<f32, 256>;
var<private> iq2_scales: array<f32, 16>;

fn iq2_nearest_int4(x: vec4<f32>) -> vec4<i32> {
  let b = bitcast<vec4<i32>>(x + vec4(12582912.0));
  return select((b & vec4(0x7fffff)) - vec4(0x400000), vec4(0), (b & vec4(0x7fffffff)) > vec4(0x7f800000));
}

// Levels 0..2 of four magnitudes at inverse scale id: nearest_int(0.5 * (id * x - 1)) clamped.
fn iq2_levels4(x: vec4<f32>, id: f32) -> vec4<u32> {
  let t = id * x;
  let h = t - vec4(1.0);
  let v = vec4(0.5) * h;
  return vec4<u32>(clamp(iq2_nearest_int4(v), vec4(0), vec4(2)));
}

fn iq2_pack4(l: vec4<u32>) -> u32 {
  return l.x | (l.y << 2u) | (l.z << 4u) | (l.w << 6u);
}

// The code (2 bits per level) of group g's levels at inverse scale id.
fn iq2_levels(g: Group, id: f32) -> u32 {
  return iq2_pack4(iq2_levels4(g.x0, id)) | (iq2_pack4(iq2_levels4(g.x1, id)) << 8u);
}

// The grid positions 2l + 1 of levels 4h..4h+3 of code c.
fn iq2_q4(c: u32, h: u32) -> vec4<f32> {
  let l = (vec4(c >> (8u * h)) >> vec4(0u, 2u, 4u, 6u)) & vec4(3u);
  return vec4<f32>(2u * l + vec4(1u));
}

// iq2_find_best_neighbour over the list at vec4 v for group g at `scale`, weighted
// by its square-root weights: the code of the first of the least distances. No
// distance below FLT_MAX (overflow, where ggml aborts): the first neighbour.
// One vec4 load per eight list entries.
fn iq2_best_neighbour(v: u32, g: Group, scale: f32) -> u32 {
  // Each coordinate's term a (scale q - x)^2 for the three levels (q = 1, 3, 5),
  // computed once as ggml computes it for every neighbour: a neighbour's
  // distance is then eight picks added in ggml's order.
  let t00 = iq2_term4(g.x0, g.a0, scale);
  let t01 = iq2_term4(g.x1, g.a1, scale);
  let sq3 = scale * 3.0;
  let t10 = iq2_term4(g.x0, g.a0, sq3);
  let t11 = iq2_term4(g.x1, g.a1, sq3);
  let sq5 = scale * 5.0;
  let t20 = iq2_term4(g.x0, g.a0, sq5);
  let t21 = iq2_term4(g.x1, g.a1, sq5);
  var q = iq2_tables[IQ2_LISTS_AT + v];
  let n = q.x & 0xffffu;
  var best = IQ2_FLT_MAX;
  var code = q.x >> 16u;
  // entry e = 8 c + k of the list (entry 0 is the count, neighbours 1 .. n)
  let chunks = (n + 8u) / 8u;
  for (var c = 0u; c < chunks; c = c + 1u) {
    if (c > 0u) { q = iq2_tables[IQ2_LISTS_AT + v + c]; }
    for (var k = 0u; k < 8u; k = k + 1u) {
      let e = 8u * c + k;
      let cd = (q[k >> 1u] >> (16u * (k & 1u))) & 0xffffu;
      let l0 = (vec4(cd) >> vec4(0u, 2u, 4u, 6u)) & vec4(3u);
      let l1 = (vec4(cd) >> vec4(8u, 10u, 12u, 14u)) & vec4(3u);
      let e0 = select(select(t20, t10, l0 == vec4(1u)), t00, l0 == vec4(0u));
      let e1 = select(select(t21, t11, l1 == vec4(1u)), t01, l1 == vec4(0u));
      var d2 = e0.x;
      d2 = d2 + e0.y;
      d2 = d2 + e0.z;
      d2 = d2 + e0.w;
      d2 = d2 + e1.x;
      d2 = d2 + e1.y;
      d2 = d2 + e1.z;
      d2 = d2 + e1.w;
      let better = e >= 1u && e <= n && d2 < best;
      best = select(best, d2, better);
      code = select(code, cd, better);
    }
  }
  return code;
}

// a (sq - x)^2 per component, as ggml: diff = scale * q - x; d2 += w * diff * diff.
fn iq2_term4(x: vec4<f32>, a: vec4<f32>, sq: f32) -> vec4<f32> {
  let d = vec4(sq) - x;
  let e = a * d;
  return e * d;
}

// Group g snapped to the grid at inverse scale id (scale for the neighbour
// search): x its code, y 1 where the levels' own code was on the grid.
fn iq2_snap(g: Group, id: f32, scale: f32) -> vec2<u32> {
  let u = iq2_levels(g, id);
  let m = iq2_map(u);
  if (m < 0) { return vec2(iq2_best_neighbour(u32(-m - 1), g, scale), 0u); }
  return vec2(u, 1u);
}

// Groups 0 .. ng - 1 of iq2_groups snapped at inverse scale id (scale for the
// neighbour search), as iq2_snap gives them: code | 0x10000 where the levels'
// own code was on the grid. One rolled loop, so that the search (unrolled eight
// entries per vector) is inlined once per call site, not once per group.
var<private> iq2_groups: array<Group, 4>;

fn iq2_group(g: u32) -> Group {
  var r = iq2_groups[0];
  if (g == 1u) { r = iq2_groups[1]; }
  if (g == 2u) { r = iq2_groups[2]; }
  if (g == 3u) { r = iq2_groups[3]; }
  return r;
}

fn iq2_snap_groups(ng: u32, id: f32, scale: f32) -> vec4<u32> {
  var r = vec4(0u);
  for (var g = 0u; g < iq2_opaque(ng); g = g + 1u) {
    let a = iq2_snap(iq2_group(g), id, scale);
    let c = a.x | (a.y << 16u);
    r = select(r, vec4(c), vec4(g) == vec4(0u, 1u, 2u, 3u));
  }
  return r;
}

// sumqx, sumq2 (acc) continued over group g's levels `code` (q = 2l + 1), in element order.
fn iq2_accumulate(acc: vec2<f32>, g: Group, code: u32) -> vec2<f32> {
  let q0 = iq2_q4(code, 0u);
  let q1 = iq2_q4(code, 1u);
  let wx0 = g.w0 * g.x0;
  let wx1 = g.w1 * g.x1;
  let a0 = wx0 * q0;
  let a1 = wx1 * q1;
  let wq0 = g.w0 * q0;
  let wq1 = g.w1 * q1;
  let b0 = wq0 * q0;
  let b1 = wq1 * q1;
  var sx = acc.x;
  var s2 = acc.y;
  sx = sx + a0.x; s2 = s2 + b0.x;
  sx = sx + a0.y; s2 = s2 + b0.y;
  sx = sx + a0.z; s2 = s2 + b0.z;
  sx = sx + a0.w; s2 = s2 + b0.w;
  sx = sx + a1.x; s2 = s2 + b1.x;
  sx = sx + a1.y; s2 = s2 + b1.y;
  sx = sx + a1.z; s2 = s2 + b1.z;
  sx = sx + a1.w; s2 = s2 + b1.w;
  return vec2(sx, s2);
}

// Group xo..xo+8 of the sub-block in iq2_xs / iq2_w (weights): the sign split
// into magnitudes (also written to iq2_xval) and the sign byte (bit i: x < 0;
// -0 counts as non-negative). With even_parity an odd count of negatives flips
// the value of least w x^2 (the first on ties) and its bit. waux = sqrt(w).
struct Split {
  g: Group,
  signs: u32,
}

fn iq2_split(xo: u32, even_parity: bool) -> Split {
  let v0 = vec4(iq2_xs[xo], iq2_xs[xo + 1u], iq2_xs[xo + 2u], iq2_xs[xo + 3u]);
  let v1 = vec4(iq2_xs[xo + 4u], iq2_xs[xo + 5u], iq2_xs[xo + 6u], iq2_xs[xo + 7u]);
  let w0 = vec4(iq2_w[xo], iq2_w[xo + 1u], iq2_w[xo + 2u], iq2_w[xo + 3u]);
  let w1 = vec4(iq2_w[xo + 4u], iq2_w[xo + 5u], iq2_w[xo + 6u], iq2_w[xo + 7u]);
  let n0 = !(v0 >= vec4(0.0));
  let n1 = !(v1 >= vec4(0.0));
  var x0 = select(v0, -v0, n0);
  var x1 = select(v1, -v1, n1);
  let b0 = select(vec4(0u), vec4(1u, 2u, 4u, 8u), n0);
  let b1 = select(vec4(0u), vec4(16u, 32u, 64u, 128u), n1);
  var s = b0.x | b0.y | b0.z | b0.w | b1.x | b1.y | b1.z | b1.w;
  if (even_parity && (countOneBits(s) & 1u) == 1u) {
    // w * x * x with the signed x: the same as with |x| (rounding is symmetric)
    let p0 = w0 * x0;
    let p1 = w1 * x1;
    let ax0 = p0 * x0;
    let ax1 = p1 * x1;
    var imin = 0u;
    var min = ax0.x;
    if (ax0.y < min) { min = ax0.y; imin = 1u; }
    if (ax0.z < min) { min = ax0.z; imin = 2u; }
    if (ax0.w < min) { min = ax0.w; imin = 3u; }
    if (ax1.x < min) { min = ax1.x; imin = 4u; }
    if (ax1.y < min) { min = ax1.y; imin = 5u; }
    if (ax1.z < min) { min = ax1.z; imin = 6u; }
    if (ax1.w < min) { min = ax1.w; imin = 7u; }
    x0 = select(x0, -x0, vec4(imin) == vec4(0u, 1u, 2u, 3u));
    x1 = select(x1, -x1, vec4(imin) == vec4(4u, 5u, 6u, 7u));
    s = s ^ (1u << imin);
  }
  iq2_xval[xo] = x0.x; iq2_xval[xo + 1u] = x0.y; iq2_xval[xo + 2u] = x0.z; iq2_xval[xo + 3u] = x0.w;
  iq2_xval[xo + 4u] = x1.x; iq2_xval[xo + 5u] = x1.y; iq2_xval[xo + 6u] = x1.z; iq2_xval[xo + 7u] = x1.w;
  return Split(Group(x0, x1, w0, w1, sqrt(w0), sqrt(w1)), s);
}

// MAX(max, xval[i]) over the n magnitudes.
fn iq2_max(n: u32) -> f32 {
  var m = iq2_xval[0];
  for (var i = 1u; i < n; i = i + 1u) { m = select(iq2_xval[i], m, m > iq2_xval[i]); }
  return m;
}

// The grid index of a code on the grid.
fn iq2_index(code: u32) -> u32 {
  return u32(iq2_map(code));
}

// The 16-value sub-block search of IQ2_XS / IQ2_S (src/quant/formats/iq2_common.ts
// searchSubBlock16) over groups g0, g1: x the scale, y and z the groups' codes.
struct Search16 {
  scale: f32,
  code0: u32,
  code1: u32,
}

fn iq2_search16(g0: Group, g1: Group, max: f32) -> Search16 {
  iq2_groups[0] = g0;
  iq2_groups[1] = g1;
  var best = 0.0;
  var scale = max / 5.0;
  var lv0 = 0u;
  var lv1 = 0u;
  var on0 = true;
  var on1 = true;
  let last = i32(iq2_opaque(9u));
  for (var is = -9; is <= last; is = is + 1) {
    let t = f32(is) * 0.1;
    let num = 5.0 + t;
    let id = num / max;
    let this_scale = 1.0 / id;
    let a = iq2_snap_groups(2u, id, this_scale);
    let c0 = a.x & 0xffffu;
    let c1 = a.y & 0xffffu;
    let s = iq2_accumulate(iq2_accumulate(vec2(0.0), g0, c0), g1, c1);
    let lhs = s.x * s.x;
    let rhs = best * s.y;
    if (s.y > 0.0 && lhs > rhs) {
      scale = s.x / s.y;
      best = scale * s.x;
      lv0 = c0;
      lv1 = c1;
      on0 = a.x > 0xffffu;
      on1 = a.y > 0xffffu;
    }
  }
  if ((!on0 || !on1) && scale > 0.0) {
    let id = 1.0 / scale;
    let a = iq2_snap_groups(2u, id, scale);
    if (!on0) { lv0 = a.x & 0xffffu; }
    if (!on1) { lv1 = a.y & 0xffffu; }
    let s = iq2_accumulate(iq2_accumulate(vec2(0.0), g0, lv0), g1, lv1);
    if (s.y > 0.0) { scale = s.x / s.y; }
  }
  return Search16(scale, lv0, lv1);
}

// A sub-block scale's 4-bit code: nearest_int(0.5 * (id * scale - 1)) in [0, 15].
fn iq2_scale_code(id: f32, scale: f32) -> u32 {
  let t = id * scale;
  let h = t - 1.0;
  let v = 0.5 * h;
  return u32(clamp(iq2_nearest_int(v), 0, 15));
}

// Sub-block values x[first + o ..] into iq2_xs, their weights into iq2_w:
// qw * sqrt(sigma2 + x^2) from iq2_bw where WEIGHTED, else quarter * sigma2 + x^2 (IQ2_S).
fn iq2_load_sub(first: u32, o: u32, n: u32, sigma2: f32) {
  let quarter = 0.25 * sigma2;
  for (var i = 0u; i < n; i = i + 1u) {
    let x = load_x(first + o + i);
    iq2_xs[i] = x;
    let x2 = x * x;
    var w: f32;
    if (WEIGHTED) {
      let r = sqrt(sigma2 + x2);
      w = iq2_bw[o + i] * r;
    } else {
      w = quarter + x2;
    }
    iq2_w[i] = w;
  }
}

// Whether the block's 256 values are finite, and their float32 sum of squares.
fn iq2_sum_squares(first: u32) -> vec2<f32> {
  var s = 0.0;
  var bad = 0u;
  for (var i = 0u; i < iq2_opaque(256u); i = i + 1u) {
    let x = load_x(first + i);
    bad = bad | select(0u, 1u, (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u);
    let t = x * x;
    s = s + t;
  }
  return vec2(s, select(1.0, 0.0, bad != 0u));
}

// The pair of blocks, OR-ed together byte by byte, then stored in order.
var<private> iq2_img: array<u32, PAIR_WORDS + 1u>;

fn iq2_img_clear() {
  for (var w = 0u; w < PAIR_WORDS + 1u; w = w + 1u) { iq2_img[w] = 0u; }
}

fn iq2_img_byte(p: u32, v: u32) {
  iq2_img[p >> 2u] = iq2_img[p >> 2u] | ((v & 0xffu) << (8u * (p & 3u)));
}

fn iq2_img_u16(p: u32, v: u32) {
  iq2_img_byte(p, v);
  iq2_img_byte(p + 1u, v >> 8u);
}

fn iq2_img_u32(p: u32, v: u32) {
  iq2_img_u16(p, v);
  iq2_img_u16(p + 2u, v >> 16u);
}

// Clears bytes p0 .. p1 - 1.
fn iq2_img_zero(p0: u32, p1: u32) {
  for (var p = p0; p < p1; p = p + 1u) { iq2_img[p >> 2u] = iq2_img[p >> 2u] & ~(0xffu << (8u * (p & 3u))); }
}

// Stores the pair's words: all, or the first block's alone (the odd last block).
fn iq2_img_store(pair: u32, n_blocks: u32) {
  let n_words = (n_blocks * BLOCK_BYTES + 3u) / 4u;
  for (var w = 0u; w < n_words; w = w + 1u) { dst[pair * PAIR_WORDS + w] = iq2_img[w]; }
}

// The quantize entry points' walk over the pair: invocation `pair` writes blocks
// 2 pair and 2 pair + 1 (those below n_blocks) through iq2_block(blk, b).
//#include lib/imatrix_own_entry.wgsl

// Block b's importance weights (its row's, its expert's) into iq2_bw.
fn iq2_load_weights(b: u32) {
  let base = imatrix_block_base(b);
  for (var i = 0u; i < iq2_opaque(256u); i = i + 1u) { iq2_bw[i] = imatrix_w[base + i]; }
}

@compute @workgroup_size(QUANTIZE_WORKGROUP_SIZE)
fn quantize_weighted(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let pair = workgroup_index(wid, nwg) * QUANTIZE_WORKGROUP_SIZE + lid;
  let first = 2u * pair;
  if (first >= qparams.n_blocks) { return; }
  let n = min(2u, qparams.n_blocks - first);
  iq2_img_clear();
  for (var blk = 0u; blk < n; blk = blk + 1u) {
    iq2_load_weights(first + blk);
    iq2_block(blk, first + blk);
  }
  iq2_img_store(pair, n);
}

fn quantize_blocks(pair: u32, first: u32) {
  if (first >= qparams.n_blocks) { return; }
  let n = min(2u, qparams.n_blocks - first);
  iq2_img_clear();
  for (var blk = 0u; blk < n; blk = blk + 1u) { iq2_block(blk, first + blk); }
  iq2_img_store(pair, n);
}

// The grid's byte value of code l: 8, 25, 43 (ggml-common.h's IQ2 grids).
fn iq2_grid_value(c: u32, j: u32) -> f32 {
  let l = (c >> (2u * j)) & 3u;
  return select(select(43.0, 25.0, l == 1u), 8.0, l == 0u);
}

// Block byte p as an unaligned little-endian u32.
fn iq2_block_u32(p: u32) -> u32 {
  return block_u16(p) | (block_u16(p + 2u) << 16u);
}

// ggml's d * (0.5 + s) * 0.25.
fn iq2_sub_scale(d: f32, s: u32) -> f32 {
  let t = d * (0.5 + f32(s));
  return t * 0.25;
}

// Eight outputs of group `grid index idx`, sign byte `signs`, scale db, at out[o..o+8).
fn iq2_decode_group(o: u32, db: f32, idx: u32, signs: u32) {
  let c = iq2_code(idx);
  for (var j = 0u; j < 8u; j = j + 1u) {
    let v = db * iq2_grid_value(c, j);
    out[o + j] = select(v, -v, ((signs >> j) & 1u) == 1u);
  }
}
