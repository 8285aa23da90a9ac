// What the IQ1_S and IQ1_M kernels (shaders/quant/iq1_{s,m}.wgsl) share, mirroring
// src/quant/formats/iq1_common.ts: the lattice tables (the 2048 grid points'
// 2-bit codes, ggml's kmap and neighbour lists) in one storage buffer bound at
// group 1 (descriptor `tables`), the importance-weight binding of the
// quantize_weighted entry point, the stable sort ggml gets from glibc's qsort,
// and iq1_find_best_neighbour2. Float32 operations in ggml's order, every
// product that feeds a sum a `let` of its own (no contraction).

// [0, 2048): grid point g's eight levels (2 bits each, level i at bits 2i);
// [2048, 2048 + 43692): kmap (i32); then the neighbour lists, two u16 per word.
@group(1) @binding(0) var<storage, read> iq1_tables: array<u32>;
const IQ1_MAP_AT: u32 = 2048u;
const IQ1_NEIGHBOURS_AT: u32 = 45740u;
const IQ1_FLT_MAX: f32 = 3.40282346638528859812e+38;

// `n`, in a form the compiler cannot fold: loops bounded by it stay rolled
// (unrolled, with their private-array accesses, lavapipe takes minutes to compile these kernels).
fn iq1_n(n: u32) -> u32 {
  return select(n, 0u, iq1_opaque != 0u);
}

// Always 0, but read from a uniform (once per invocation: iq1_start), so the
// compiler cannot fold what depends on it.
var<private> iq1_opaque: u32;

fn iq1_start() {
  iq1_opaque = select(0u, 1u, qparams.n_blocks == 0xffffffffu);
}

// `v`, hidden from the compiler: Mesa's NIR reassociates (a * c1) * c2 into
// a * (c1 * c2) when c1 and c2 are constants, which rounds differently than
// ggml's (w * x_p[i]) * x_p[i]; it cannot when the levels are not constants.
fn iq1_hide(v: f32) -> f32 {
  return select(v, 0.0, iq1_opaque != 0u);
}

// `v` unchanged, but opaque to the compiler (an XOR with a uniform that is
// always 0): Mesa reassociates float chains, (a + b) + c into (a + c) + b and
// (a * b) * c into a * (b * c), rounding differently than ggml. Every partial
// result of such a chain goes through here (unrolled loops' running sums too).
fn iq1_keep(v: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(v) ^ iq1_opaque);
}

fn iq1_keep4(v: vec4<f32>) -> vec4<f32> {
  return bitcast<vec4<f32>>(bitcast<vec4<u32>>(v) ^ vec4(iq1_opaque));
}

fn iq1_code(g: u32) -> u32 {
  return iq1_tables[g];
}

fn iq1_map(u: u32) -> i32 {
  return bitcast<i32>(iq1_tables[IQ1_MAP_AT + u]);
}

fn iq1_neighbour(o: u32) -> u32 {
  return (iq1_tables[IQ1_NEIGHBOURS_AT + (o >> 1u)] >> ((o & 1u) * 16u)) & 0xffffu;
}

// ggml's x_p (minus false) or x_m (minus true) at level 0..2: -1, 0, 1 shifted by ∓IQ1_DELTA.
// (Not a compile-time constant even for constant arguments: see iq1_hide.)
fn iq1_shifted(level: u32, minus: bool) -> f32 {
  return f32(i32(level) - 1) + iq1_hide(select(0.125, -0.125, minus));
}

// ggml's nearest_int, by its bits (|x| < 2^22 here).
fn iq1_nearest_int(x: f32) -> i32 {
  let b = bitcast<i32>(x + 12582912.0);
  return select((b & 0x7fffff) - 0x400000, 0, (b & 0x7fffffff) > 0x7f800000);
}

// The quantize_weighted pipelines set it: weights from iq1_qw (IQ1_M: instead of x^2).
override WEIGHTED: bool = false;

// The importance weights of quantize_weighted (ggml's quant_weights; one row's
// worth per expert) and where block `b` of the chunk finds its 256.
//#include lib/imatrix_own_entry.wgsl

// The current block's quant_weights, loaded by the quantize_weighted entry point only
// (the reference entry point must not use bindings 3 and 4).
var<private> iq1_qw: array<f32, 256>;

fn iq1_load_weights(b: u32) {
  let base = imatrix_block_base(b);
  for (var i = 0u; i < iq1_n(256u); i = i + 1u) { iq1_qw[i] = imatrix_w[base + i]; }
}

// sigma2 = 2 * sum x^2 / QK_K over block b's 256 values.
fn iq1_sigma2(b: u32) -> f32 {
  var s = 0.0;
  for (var i = 0u; i < iq1_n(256u); i = i + 1u) {
    let v = load_x(b * QK + i);
    let v2 = v * v;
    s = s + v2;
  }
  let s2 = 2.0 * s;
  return s2 / iq1_hide(256.0);
}

// Per sub-block (at most 32 values): values, weights, sorted ranks, levels.
var<private> iq1_x: array<f32, 32>;
var<private> iq1_w: array<f32, 32>;
var<private> iq1_rank: array<u32, 32>;
var<private> iq1_l: array<u32, 32>;

// Ranks of iq1_x[0..n) (n 16 or 32) in glibc qsort's order: by value, equal
// values in index order. The values are compared four at a time from a local
// copy indexed by literals only (loops of constant trip count, unrolled): kept
// in registers instead of a per-lane memory access each.
fn iq1_sort(n: u32) {
  var xv: array<vec4<f32>, 8>;
  for (var q = 0u; q < 8u; q = q + 1u) {
    xv[q] = vec4(iq1_x[4u * q], iq1_x[4u * q + 1u], iq1_x[4u * q + 2u], iq1_x[4u * q + 3u]);
  }
  for (var i = 0u; i < n; i = i + 1u) {
    let xi = vec4(iq1_x[i]);
    var r = vec4(0u);
    for (var q = 0u; q < 8u; q = q + 1u) {
      let idx = vec4(4u * q) + vec4(0u, 1u, 2u, 3u);
      let before = (xv[q] < xi) | ((xv[q] == xi) & (idx < vec4(i)));
      r = r + select(vec4(0u), vec4(1u), before & (idx < vec4(n)));
    }
    iq1_rank[i] = r.x + r.y + r.z + r.w;
  }
}

// iq1_find_best_neighbour2 for group k (values 8k .. 8k+7) with pattern u off the grid.
fn iq1_best_neighbour(u: u32, k: u32, scale: f32, minus: bool) -> u32 {
  let at = u32(-iq1_map(u) - 1);
  let count = iq1_neighbour(at);
  var best = IQ1_FLT_MAX;
  var index = -1;
  for (var j = 1u; j <= count; j = j + 1u) {
    let g = iq1_neighbour(at + j);
    let d2 = iq1_group_distance(g, k, scale, minus);
    if (d2 < best) {
      best = d2;
      index = i32(g);
    }
  }
  // ggml's fallback scan of the whole grid (every neighbour's distance NaN or
  // +Inf) reads past its eight values; undefined there, a scan with the group's.
  if (index < 0) {
    for (var g = 0u; g < iq1_n(2048u); g = g + 1u) {
      let d2 = iq1_group_distance(g, k, scale, minus);
      if (d2 < best) {
        best = d2;
        index = i32(g);
      }
    }
  }
  return u32(max(index, 0));
}

fn iq1_group_distance(g: u32, k: u32, scale: f32, minus: bool) -> f32 {
  let code = iq1_code(g);
  var d2 = 0.0;
  for (var i = 0u; i < iq1_n(8u); i = i + 1u) {
    let q = iq1_shifted((code >> (2u * i)) & 3u, minus);
    let sq = scale * q;
    let diff = sq - iq1_x[8u * k + i];
    let wd = iq1_keep(iq1_w[8u * k + i] * diff);
    let wdd = wd * diff;
    d2 = d2 + wdd;
  }
  return d2;
}

// Group k's pattern of levels (level i at bits 2i).
fn iq1_pattern(k: u32) -> u32 {
  var u = 0u;
  for (var j = 0u; j < iq1_n(8u); j = j + 1u) { u = u | (iq1_l[8u * k + j] << (2u * j)); }
  return u;
}

// The sub-block's groups' grid indices (iq1_index), as ggml picks them after the
// split search.
var<private> iq1_index: array<u32, 4>;

// The groups 0 .. n_groups - 1 snapped to the grid at `scale` (group k's levels
// shifted down where bit k of minus_bits is set, else up): its pattern's index
// where on the grid, else its best neighbour's. If any was off the grid, the
// scale refitted over the chosen points (sumqx / sumq2 where both are positive),
// as ggml's IQ1_S and IQ1_M do; returns the scale.
fn iq1_snap_groups(n_groups: u32, scale: f32, minus_bits: u32) -> f32 {
  var all_on_grid = true;
  for (var k = 0u; k < iq1_n(n_groups); k = k + 1u) {
    let minus = ((minus_bits >> k) & 1u) != 0u;
    let u = iq1_pattern(k);
    let m = iq1_map(u);
    if (m >= 0) {
      iq1_index[k] = u32(m);
    } else {
      all_on_grid = false;
      iq1_index[k] = iq1_best_neighbour(u, k, scale, minus);
    }
  }
  if (all_on_grid) { return scale; }
  var sumqx = 0.0;
  var sumq2 = 0.0;
  for (var k = 0u; k < iq1_n(n_groups); k = k + 1u) {
    let minus = ((minus_bits >> k) & 1u) != 0u;
    let code = iq1_code(iq1_index[k]);
    for (var j = 0u; j < iq1_n(8u); j = j + 1u) {
      let q = iq1_shifted((code >> (2u * j)) & 3u, minus);
      let wq = iq1_keep(iq1_w[8u * k + j] * q);
      let wqx = wq * iq1_x[8u * k + j];
      let wqq = wq * q;
      sumqx = sumqx + wqx;
      sumq2 = sumq2 + wqq;
    }
  }
  if (sumqx > 0.0 && sumq2 > 0.0) { return sumqx / sumq2; }
  return scale;
}
