// What the kernels of IQ2_XXS, IQ2_XS and IQ2_S share (shaders/quant/iq2_*.wgsl),
// mirroring src/quant/formats/iq2_common.ts: the lattice tables (one storage
// buffer per device, src/quant/grids/iq2xs.ts), ggml's snap of a group of 8
// magnitudes to the grid (kmap, and iq2_find_best_neighbour for codes off it),
// the weighted least-squares sums, the 16-value sub-block search of IQ2_XS /
// IQ2_S, and the pair image the blocks are assembled in. Float32 in ggml's
// order, one product per `let` (no contraction). The including shader defines
// IQ2_GRID (its grid's size) and PAIR_WORDS, and includes lib/quantize_io.wgsl
// and lib/dequantize_io.wgsl. A workgroup of 8 invocations (IQ2_LANES)
// quantizes its 8 pairs of blocks together, one block after the other: the
// block's scalar work runs in every invocation alike, its candidate scales are
// shared out among them (one per invocation and round), and each neighbour
// search is split across all 8 (invocation l scans neighbours l, l + 8, ...)
// then reduced in list order, so each search costs its list's length / 8
// instead of the longest list among 8 unrelated blocks. Invocation l keeps the
// image of pair l (blocks of 66 / 74 / 82 bytes fill whole words in pairs).

// The format's tables (src/quant/grids/iq2xs.ts iq2xsGpuTables): the grid's 2-bit
// codes (one word each), then kmap (43692 words, i32), then the neighbour lists
// (u16, two per word: a count, then the neighbours' codes).
@group(1) @binding(0) var<storage, read> iq2_tables: array<u32>;
const IQ2_KMAP_SIZE: u32 = 43692u;
const IQ2_NEIGHBOURS_AT: u32 = IQ2_GRID + IQ2_KMAP_SIZE;

// With WEIGHTED (the quantize_weighted pipelines) the block's importance weights
// are read from binding 3 at iq2_wbase (set per block from binding 4).
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
  return iq2_tables[idx];
}

fn iq2_map(u: u32) -> i32 {
  return bitcast<i32>(iq2_tables[IQ2_GRID + u]);
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
var<private> iq2_wbase: u32;
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

const IQ2_LANES: u32 = 8u;
const IQ2_NONE: u32 = 0xffffffffu;

// This invocation's index in its workgroup (0 .. IQ2_LANES - 1).
var<private> iq2_lane: u32;
// The groups of 8 of the sub-block being searched (2 or 4), the same in every invocation.
var<private> iq2_groups: array<Group, 4>;
// Search item g * IQ2_LANES + l (group g at invocation l's scale): the offset of
// its neighbour list, or IQ2_NONE (on the grid, or no candidate); l's scale.
var<workgroup> iq2_item_at: array<u32, 4u * IQ2_LANES>;
var<workgroup> iq2_item_scale: array<f32, IQ2_LANES>;
// Item i's least distance found by invocation j (f32 bits) and its list position, at i * IQ2_LANES + j.
var<workgroup> iq2_part: array<vec2<u32>, 4u * IQ2_LANES * IQ2_LANES>;

// Publishes this invocation's item for group g: the list of its code u (kmap m) if off the grid.
fn iq2_publish(g: u32, m: i32, live: bool) {
  iq2_item_at[g * IQ2_LANES + iq2_lane] = select(IQ2_NONE, u32(-m - 1), live && m < 0);
}

// iq2_find_best_neighbour for every published item of groups 0 .. ng - 1 and
// invocations 0 .. nl - 1, this invocation taking list positions lane, lane + 8,
// ... of each: its first least distance (strict <, in list order) into iq2_part.
// Each coordinate's term a (scale q - x)^2 for the three levels (q = 1, 3, 5) is
// computed once as ggml computes it for every neighbour: a neighbour's distance
// is then eight picks added in ggml's order. The list holds the neighbours'
// codes, two per word.
fn iq2_search_items(ng: u32, nl: u32) {
  for (var g = 0u; g < ng; g = g + 1u) {
    let grp = iq2_groups[g];
    for (var l = 0u; l < nl; l = l + 1u) {
      let item = g * IQ2_LANES + l;
      let at = iq2_item_at[item];
      if (at == IQ2_NONE) { continue; }
      let scale = iq2_item_scale[l];
      let t00 = iq2_term4(grp.x0, grp.a0, scale);
      let t01 = iq2_term4(grp.x1, grp.a1, scale);
      let sq3 = scale * 3.0;
      let t10 = iq2_term4(grp.x0, grp.a0, sq3);
      let t11 = iq2_term4(grp.x1, grp.a1, sq3);
      let sq5 = scale * 5.0;
      let t20 = iq2_term4(grp.x0, grp.a0, sq5);
      let t21 = iq2_term4(grp.x1, grp.a1, sq5);
      let n = (iq2_tables[IQ2_NEIGHBOURS_AT + (at >> 1u)] >> ((at & 1u) * 16u)) & 0xffffu;
      let end = at + 1u + n;
      var best = IQ2_FLT_MAX;
      // no distance below FLT_MAX (overflow, where ggml aborts): the first neighbour
      var best_p = at + 1u;
      for (var p = at + 1u + iq2_lane; p < end; p = p + IQ2_LANES) {
        let c = (iq2_tables[IQ2_NEIGHBOURS_AT + (p >> 1u)] >> ((p & 1u) * 16u)) & 0xffffu;
        let l0 = (vec4(c) >> vec4(0u, 2u, 4u, 6u)) & vec4(3u);
        let l1 = (vec4(c) >> vec4(8u, 10u, 12u, 14u)) & vec4(3u);
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
        if (d2 < best) {
          best = d2;
          best_p = p;
        }
      }
      iq2_part[item * IQ2_LANES + iq2_lane] = vec2(bitcast<u32>(best), best_p);
    }
  }
}

// Item `item`'s neighbour (its code): the least distance over the invocations'
// partial results, the earliest list position on ties, as ggml's strict < scan
// in list order finds it.
fn iq2_pick(item: u32) -> u32 {
  var best = iq2_part[item * IQ2_LANES];
  for (var j = 1u; j < IQ2_LANES; j = j + 1u) {
    let q = iq2_part[item * IQ2_LANES + j];
    let d = bitcast<f32>(q.x);
    let b = bitcast<f32>(best.x);
    if (d < b || (d == b && q.y < best.y)) { best = q; }
  }
  return (iq2_tables[IQ2_NEIGHBOURS_AT + (best.y >> 1u)] >> ((best.y & 1u) * 16u)) & 0xffffu;
}

// The codes of groups 0 .. ng - 1 snapped at this invocation's inverse scale id
// (scale for the neighbour search), all invocations together (call in uniform
// control flow): bit 16 of each set where its levels' own code was on the grid.
// Inactive invocations publish nothing (their result is meaningless).
fn iq2_snap_all(ng: u32, id: f32, scale: f32, live: bool) -> vec4<u32> {
  var u = vec4(0u);
  var m = vec4(0);
  for (var g = 0u; g < 4u; g = g + 1u) {
    if (g < ng) {
      u[g] = iq2_levels(iq2_groups[g], id);
      m[g] = iq2_map(u[g]);
      iq2_publish(g, m[g], live);
    }
  }
  iq2_item_scale[iq2_lane] = scale;
  workgroupBarrier();
  iq2_search_items(ng, IQ2_LANES);
  workgroupBarrier();
  var c = vec4(0u);
  for (var g = 0u; g < 4u; g = g + 1u) {
    if (g < ng) {
      c[g] = select(u[g] | 0x10000u, iq2_pick(g * IQ2_LANES + iq2_lane), m[g] < 0);
    }
  }
  return c;
}

// a (sq - x)^2 per component, as ggml: diff = scale * q - x; d2 += w * diff * diff.
fn iq2_term4(x: vec4<f32>, a: vec4<f32>, sq: f32) -> vec4<f32> {
  let d = vec4(sq) - x;
  let e = a * d;
  return e * d;
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
// searchSubBlock16) over groups iq2_groups[0..1], all invocations together (call
// in uniform control flow; max >= GROUP_MAX_EPS for a meaningful result): the
// scale and the groups' codes. Candidate scale k (is = k - 9) is invocation
// k % 8's in round k / 8; its sums go through iq2_cand, and every invocation
// then keeps the first best one in ggml's order, as ggml's loop does.
struct Search16 {
  scale: f32,
  code0: u32,
  code1: u32,
}

// Candidate k's sumqx, sumq2 (f32 bits) and codes (bit 16: on the grid).
var<workgroup> iq2_cand: array<vec4<u32>, 24>;

// Runs the candidates' rounds (count candidates, the first at is = first_is, over
// ng groups) into iq2_cand: codes of groups 0 and 1 in .z, of groups 2 and 3 in .w
// (16 bits each; the on-grid flags in iq2_cand_on).
var<workgroup> iq2_cand_on: array<u32, 24>;

fn iq2_candidates(ng: u32, count: u32, first_is: i32, max: f32) {
  let rounds = (count + IQ2_LANES - 1u) / IQ2_LANES;
  for (var r = 0u; r < rounds; r = r + 1u) {
    let k = r * IQ2_LANES + iq2_lane;
    let live = k < count;
    let t = f32(first_is + i32(k)) * 0.1;
    let num = 5.0 + t;
    let id = num / max;
    let this_scale = 1.0 / id;
    let c = iq2_snap_all(ng, id, this_scale, live);
    var acc = vec2(0.0);
    for (var g = 0u; g < ng; g = g + 1u) { acc = iq2_accumulate(acc, iq2_groups[g], c[g] & 0xffffu); }
    if (live) {
      iq2_cand[k] = vec4(bitcast<u32>(acc.x), bitcast<u32>(acc.y),
                         (c.x & 0xffffu) | (c.y << 16u), (c.z & 0xffffu) | (c.w << 16u));
      iq2_cand_on[k] = ((c.x >> 16u) & 1u) | ((c.y >> 15u) & 2u) | ((c.z >> 14u) & 4u) | ((c.w >> 13u) & 8u);
    }
  }
  workgroupBarrier();
}

fn iq2_search16(max: f32) -> Search16 {
  iq2_candidates(2u, 19u, -9, max);
  var best = 0.0;
  var scale = max / 5.0;
  var lv = 0u;
  var on = 3u;
  for (var k = 0u; k < iq2_opaque(19u); k = k + 1u) {
    let cand = iq2_cand[k];
    let s = vec2(bitcast<f32>(cand.x), bitcast<f32>(cand.y));
    let lhs = s.x * s.x;
    let rhs = best * s.y;
    if (s.y > 0.0 && lhs > rhs) {
      scale = s.x / s.y;
      best = scale * s.x;
      lv = cand.z;
      on = iq2_cand_on[k];
    }
  }
  // groups off the grid: snapped again at the chosen scale (published by invocation 0)
  let again = on != 3u && scale > 0.0;
  let id = 1.0 / scale;
  let c = iq2_snap_again(2u, id, scale, again, ~on & 3u);
  var lv0 = lv & 0xffffu;
  var lv1 = lv >> 16u;
  if (again) {
    if ((on & 1u) == 0u) { lv0 = c.x; }
    if ((on & 2u) == 0u) { lv1 = c.y; }
    let s = iq2_accumulate(iq2_accumulate(vec2(0.0), iq2_groups[0], lv0), iq2_groups[1], lv1);
    if (s.y > 0.0) { scale = s.x / s.y; }
  }
  return Search16(scale, lv0, lv1);
}

// Groups 0 .. ng - 1 whose bit is set in `which` snapped at inverse scale id, all
// invocations together (call in uniform control flow; the same arguments in
// every invocation): their codes (without the on-grid flag), meaningful where `live`.
fn iq2_snap_again(ng: u32, id: f32, scale: f32, live: bool, which: u32) -> vec4<u32> {
  var u = vec4(0u);
  var m = vec4(0);
  for (var g = 0u; g < 4u; g = g + 1u) {
    if (g < ng) {
      u[g] = iq2_levels(iq2_groups[g], id);
      m[g] = iq2_map(u[g]);
      if (iq2_lane == 0u) { iq2_publish(g, m[g], live && ((which >> g) & 1u) == 1u); }
    }
  }
  if (iq2_lane == 0u) { iq2_item_scale[0] = scale; }
  workgroupBarrier();
  iq2_search_items(ng, 1u);
  workgroupBarrier();
  var c = vec4(0u);
  for (var g = 0u; g < 4u; g = g + 1u) {
    if (g < ng) { c[g] = select(u[g], iq2_pick(g * IQ2_LANES), m[g] < 0); }
  }
  return c;
}

// A sub-block scale's 4-bit code: nearest_int(0.5 * (id * scale - 1)) in [0, 15].
fn iq2_scale_code(id: f32, scale: f32) -> u32 {
  let t = id * scale;
  let h = t - 1.0;
  let v = 0.5 * h;
  return u32(clamp(iq2_nearest_int(v), 0, 15));
}

// Sub-block values x[first + o ..] into iq2_xs, their weights into iq2_w:
// qw * sqrt(sigma2 + x^2), qw the block's importance weights from iq2_wbase
// where WEIGHTED, else quarter * sigma2 + x^2 (IQ2_S).
fn iq2_load_sub(first: u32, o: u32, n: u32, sigma2: f32) {
  let quarter = 0.25 * sigma2;
  for (var i = 0u; i < n; i = i + 1u) {
    let x = load_x(first + o + i);
    iq2_xs[i] = x;
    let x2 = x * x;
    var w: f32;
    if (WEIGHTED) {
      let r = sqrt(sigma2 + x2);
      w = imatrix_w[iq2_wbase + o + i] * r;
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

// The image of this invocation's pair of blocks, OR-ed together byte by byte,
// then stored in order. Every invocation runs every block of the workgroup;
// only the pair's own invocation (iq2_own) writes its bytes.
var<private> iq2_img: array<u32, PAIR_WORDS + 1u>;
var<private> iq2_own: bool;

fn iq2_img_clear() {
  for (var w = 0u; w < PAIR_WORDS + 1u; w = w + 1u) { iq2_img[w] = 0u; }
}

fn iq2_img_byte(p: u32, v: u32) {
  if (iq2_own) { iq2_img[p >> 2u] = iq2_img[p >> 2u] | ((v & 0xffu) << (8u * (p & 3u))); }
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
  if (!iq2_own) { return; }
  for (var p = p0; p < p1; p = p + 1u) { iq2_img[p >> 2u] = iq2_img[p >> 2u] & ~(0xffu << (8u * (p & 3u))); }
}

@group(0) @binding(3) var<storage, read> imatrix_w: array<f32>;
struct WeightParams {
  // blocks per row, the chunk's first block in the tensor, blocks per expert
  blocks_per_row: u32,
  first_block: u32,
  blocks_per_expert: u32,
  pad: u32,
}
@group(0) @binding(4) var<uniform> wparams: WeightParams;

// Where block b's importance weights (its row's, its expert's) start in imatrix_w.
fn iq2_weights_at(b: u32) -> u32 {
  let g = wparams.first_block + b;
  return (g / wparams.blocks_per_expert) * wparams.blocks_per_row * QK + (g % wparams.blocks_per_row) * QK;
}

// The workgroup's walk: its 8 pairs' blocks from first_pair * 2 on, one after
// the other, each by all invocations (first_pair the same in every invocation);
// then invocation l stores pair first_pair + l's words (all, or the first
// block's alone for the odd last block).
fn iq2_run(first_pair: u32, lane: u32) {
  iq2_lane = lane;
  iq2_img_clear();
  let first = 2u * first_pair;
  if (first >= qparams.n_blocks) { return; }
  let n = min(2u * IQ2_LANES, qparams.n_blocks - first);
  for (var j = 0u; j < n; j = j + 1u) {
    iq2_own = (j >> 1u) == lane;
    if (WEIGHTED) { iq2_wbase = iq2_weights_at(first + j); }
    iq2_block(j & 1u, first + j);
  }
  let mine = first + 2u * lane;
  if (mine >= qparams.n_blocks) { return; }
  let n_words = (min(2u, qparams.n_blocks - mine) * BLOCK_BYTES + 3u) / 4u;
  for (var w = 0u; w < n_words; w = w + 1u) { dst[(first_pair + lane) * PAIR_WORDS + w] = iq2_img[w]; }
}

@compute @workgroup_size(IQ2_LANES)
fn quantize_weighted(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  iq2_run(workgroup_index(wid, nwg) * IQ2_LANES, lid);
}

// The shared `quantize` entry passes only the invocation's index: invocation 0's
// pair, shared through workgroup memory, is the workgroup's first, uniformly.
var<workgroup> iq2_first_pair: u32;

fn quantize_blocks(pair: u32, first: u32) {
  if (pair % IQ2_LANES == 0u) { iq2_first_pair = pair; }
  iq2_run(workgroupUniformLoad(&iq2_first_pair), pair % IQ2_LANES);
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
