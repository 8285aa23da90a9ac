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

// The format's tables: the grid's 2-bit codes (one word each), then kmap
// (43692 words, i32), then the neighbour lists (u16, two per word).
@group(1) @binding(0) var<storage, read> iq2_tables: array<u32>;
const IQ2_KMAP_SIZE: u32 = 43692u;
const IQ2_NEIGHBOURS_AT: u32 = IQ2_GRID + IQ2_KMAP_SIZE;

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
  return iq2_tables[idx];
}

fn iq2_map(u: u32) -> i32 {
  return bitcast<i32>(iq2_tables[IQ2_GRID + u]);
}

fn iq2_neighbour(n: u32) -> u32 {
  return (iq2_tables[IQ2_NEIGHBOURS_AT + (n >> 1u)] >> ((n & 1u) * 16u)) & 0xffffu;
}

// One sub-block (32 values for IQ2_XXS, 16 otherwise): its values, their
// magnitudes, weights and their square roots, the best levels so far (lv) and
// the candidate's (la).
var<private> iq2_xs: array<f32, 32>;
var<private> iq2_xval: array<f32, 32>;
var<private> iq2_w: array<f32, 32>;
var<private> iq2_waux: array<f32, 32>;
var<private> iq2_lv: array<u32, 32>;
var<private> iq2_la: array<u32, 32>;
// The block's importance weights (WEIGHTED) and sub-block scales.
var<private> iq2_bw: array<f32, 256>;
var<private> iq2_scales: array<f32, 16>;

// The levels of group xo..xo+8 at inverse scale id: nearest_int(0.5 * (id * x - 1))
// clamped to [0, 2], into la; returns their code.
fn iq2_levels(xo: u32, id: f32) -> u32 {
  var u = 0u;
  for (var i = 0u; i < 8u; i = i + 1u) {
    let t = id * iq2_xval[xo + i];
    let h = t - 1.0;
    let v = 0.5 * h;
    let l = u32(clamp(iq2_nearest_int(v), 0, 2));
    iq2_la[xo + i] = l;
    u = u | (l << (2u * i));
  }
  return u;
}

// iq2_find_best_neighbour over the list at `at` for group xo..xo+8 at `scale`,
// weighted by waux: the first of the least distances; its levels into la.
// No distance below FLT_MAX (overflow, where ggml aborts): the first neighbour.
fn iq2_best_neighbour(at: u32, xo: u32, scale: f32) -> u32 {
  let n = iq2_neighbour(at);
  var best = IQ2_FLT_MAX;
  var index = iq2_neighbour(at + 1u);
  for (var j = 1u; j <= n; j = j + 1u) {
    let idx = iq2_neighbour(at + j);
    let c = iq2_code(idx);
    var d2 = 0.0;
    for (var i = 0u; i < 8u; i = i + 1u) {
      let q = f32(2u * ((c >> (2u * i)) & 3u) + 1u);
      let sq = scale * q;
      let diff = sq - iq2_xval[xo + i];
      let wd = iq2_waux[xo + i] * diff;
      let t = wd * diff;
      d2 = d2 + t;
    }
    if (d2 < best) {
      best = d2;
      index = idx;
    }
  }
  let c = iq2_code(index);
  for (var i = 0u; i < 8u; i = i + 1u) { iq2_la[xo + i] = (c >> (2u * i)) & 3u; }
  return index;
}

// Snaps group xo..xo+8 at inverse scale id (scale for the neighbour search) into
// la; whether its code was on the grid.
fn iq2_snap(xo: u32, id: f32, scale: f32) -> bool {
  let u = iq2_levels(xo, id);
  let m = iq2_map(u);
  if (m < 0) {
    iq2_best_neighbour(u32(-m - 1), xo, scale);
    return false;
  }
  return true;
}

// sumqx, sumq2 of levels q = 2l + 1 against xval with weights w, over n values
// of la (best = false) or lv (best = true).
fn iq2_sums(n: u32, best: bool) -> vec2<f32> {
  var sumqx = 0.0;
  var sumq2 = 0.0;
  for (var i = 0u; i < n; i = i + 1u) {
    let l = select(iq2_la[i], iq2_lv[i], best);
    let q = f32(2u * l + 1u);
    let w = iq2_w[i];
    let wx = w * iq2_xval[i];
    let a = wx * q;
    sumqx = sumqx + a;
    let wq = w * q;
    let b = wq * q;
    sumq2 = sumq2 + b;
  }
  return vec2(sumqx, sumq2);
}

fn iq2_keep(p0: u32, n: u32) {
  for (var i = p0; i < p0 + n; i = i + 1u) { iq2_lv[i] = iq2_la[i]; }
}

// The grid index of lv's group xo..xo+8 (on the grid).
fn iq2_index(xo: u32) -> u32 {
  var u = 0u;
  for (var i = 0u; i < 8u; i = i + 1u) { u = u | (iq2_lv[xo + i] << (2u * i)); }
  return u32(iq2_map(u));
}

// Group xo..xo+8 of the sub-block: magnitudes into xval, the sign byte returned
// (bit i: x < 0; -0 counts as non-negative). With even_parity an odd count of
// negatives flips the value of least w x^2 (the first on ties) and its bit.
fn iq2_signs(xo: u32, even_parity: bool) -> u32 {
  var s = 0u;
  var nflip = 0u;
  for (var i = 0u; i < 8u; i = i + 1u) {
    let v = iq2_xs[xo + i];
    let neg = !(v >= 0.0);
    iq2_xval[xo + i] = select(v, -v, neg);
    nflip = nflip + select(0u, 1u, neg);
    s = s | select(0u, 1u << i, neg);
  }
  if (even_parity && (nflip & 1u) == 1u) {
    var imin = 0u;
    let w0 = iq2_w[xo] * iq2_xs[xo];
    var min = w0 * iq2_xs[xo];
    for (var i = 1u; i < 8u; i = i + 1u) {
      let wx = iq2_w[xo + i] * iq2_xs[xo + i];
      let ax = wx * iq2_xs[xo + i];
      if (ax < min) {
        min = ax;
        imin = i;
      }
    }
    iq2_xval[xo + imin] = -iq2_xval[xo + imin];
    s = s ^ (1u << imin);
  }
  return s;
}

// MAX(max, xval[i]) over the n magnitudes.
fn iq2_max(n: u32) -> f32 {
  var m = iq2_xval[0];
  for (var i = 1u; i < n; i = i + 1u) { m = select(iq2_xval[i], m, m > iq2_xval[i]); }
  return m;
}

// The 16-value sub-block search of IQ2_XS / IQ2_S (src/quant/formats/iq2_common.ts
// searchSubBlock16): the best levels into lv, the scale returned.
fn iq2_search16(max: f32) -> f32 {
  for (var i = 0u; i < 16u; i = i + 1u) { iq2_lv[i] = 0u; }
  var best = 0.0;
  var scale = max / 5.0;
  var on0 = true;
  var on1 = true;
  let last = i32(iq2_opaque(9u));
  for (var is = -9; is <= last; is = is + 1) {
    let t = f32(is) * 0.1;
    let num = 5.0 + t;
    let id = num / max;
    let this_scale = 1.0 / id;
    let a0 = iq2_snap(0u, id, this_scale);
    let a1 = iq2_snap(8u, id, this_scale);
    let s = iq2_sums(16u, false);
    let lhs = s.x * s.x;
    let rhs = best * s.y;
    if (s.y > 0.0 && lhs > rhs) {
      scale = s.x / s.y;
      best = scale * s.x;
      iq2_keep(0u, 16u);
      on0 = a0;
      on1 = a1;
    }
  }
  if ((!on0 || !on1) && scale > 0.0) {
    let id = 1.0 / scale;
    if (!on0) {
      iq2_snap(0u, id, scale);
      iq2_keep(0u, 8u);
    }
    if (!on1) {
      iq2_snap(8u, id, scale);
      iq2_keep(8u, 8u);
    }
    let s = iq2_sums(16u, true);
    if (s.y > 0.0) { scale = s.x / s.y; }
  }
  return scale;
}

// A sub-block scale's 4-bit code: nearest_int(0.5 * (id * scale - 1)) in [0, 15].
fn iq2_scale_code(id: f32, scale: f32) -> u32 {
  let t = id * scale;
  let h = t - 1.0;
  let v = 0.5 * h;
  return u32(clamp(iq2_nearest_int(v), 0, 15));
}

// Sub-block values x[first + o ..] into xs, their weights into w: qw * sqrt(sigma2 + x^2)
// from iq2_bw where WEIGHTED, else quarter * sigma2 + x^2 (IQ2_S); waux = sqrt(w).
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
    iq2_waux[i] = sqrt(w);
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
@group(0) @binding(3) var<storage, read> imatrix_w: array<f32>;
struct WeightParams {
  // blocks per row, the chunk's first block in the tensor, blocks per expert
  blocks_per_row: u32,
  first_block: u32,
  blocks_per_expert: u32,
  pad: u32,
}
@group(0) @binding(4) var<uniform> wparams: WeightParams;

// Block b's importance weights (its row's, its expert's) into iq2_bw.
fn iq2_load_weights(b: u32) {
  let g = wparams.first_block + b;
  let base = (g / wparams.blocks_per_expert) * wparams.blocks_per_row * QK + (g % wparams.blocks_per_row) * QK;
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
