// What the IQ3_XXS and IQ3_S kernels share (shaders/quant/iq3_xxs.wgsl, iq3_s.wgsl),
// mirroring src/quant/formats/iq3_search.ts: ggml's quantize_row_iq3_xxs_impl /
// quantize_row_iq3_s_impl search per sub-block of 32, every float32 operation
// in C's order (each product its own value: no contraction), nearest_int by its
// bits. One invocation per pair of blocks (the smallest run that fills whole
// words), the pair assembled in a private image and stored in order.
//
// The including format defines IQ3_GRID_SIZE, IQ3_NTRY, IQ3_EVEN_SIGNS,
// IQ3_MAX_EPS (0: skip only max == 0), IQ3_REFIT_ALL, IQ3_D_FUDGE and
//   fn iq3_store_sub_block(blk, ib, slot)  (slot: sub-blocks encoded before it)
//   fn iq3_store_scales(blk, id)           (from iq3_scales)
// Needs lib/quantize_io.wgsl (load_x, dst, qparams) before it.

// The grid tables of src/quant/grids/iq3xs.ts as iq3KernelWords lays them out,
// uploaded once per device: dequantization grid | kmap (i32) | neighbour lists
// (uint16: count, then level keys; each list padded to whole vectors of 8).
@group(1) @binding(0) var<storage, read> iq3_tables: array<vec4<u32>>;

const IQ3_KMAP: u32 = IQ3_GRID_SIZE;
const IQ3_LISTS: u32 = (IQ3_GRID_SIZE + 4096u) / 4u;
const PAIR_WORDS: u32 = 2u * BLOCK_BYTES / 4u;
const FLT_MAX: f32 = 3.40282346638528859812e38;
const F16_NAN: u32 = 0x7e00u;
// iq3_snap's answer where ggml asserts (no neighbour below FLT_MAX), and its off-grid flag.
const IQ3_NONE: u32 = 0xffffffffu;
const IQ3_OFF_GRID: u32 = 0x80000000u;

fn iq3_word(i: u32) -> u32 {
  return iq3_tables[i >> 2u][i & 3u];
}

// The importance-matrix pipelines (entry point quantize_weighted) set it.
override WEIGHTED: bool = false;

// `n`, in a form the compiler cannot fold: loops bounded by it stay rolled
// (unrolled, the search takes lavapipe minutes to compile).
fn iq3_opaque(n: u32) -> u32 {
  return select(n, 0u, qparams.n_blocks == 0xffffffffu);
}

fn iq3_kmap(u: u32) -> i32 {
  return bitcast<i32>(iq3_word(IQ3_KMAP + u));
}

// Grid point of level key u (on the grid) as index | key << 16.
fn iq3_point_word(u: u32) -> u32 {
  return u32(iq3_kmap(u)) | (u << 16u);
}

// The values 2l + 1 of level key u (3 bits per value).
fn iq3_key_values(u: u32) -> vec4<f32> {
  let l = (vec4(u) >> vec4(0u, 3u, 6u, 9u)) & vec4(7u);
  return vec4<f32>(2u * l + vec4(1u));
}

// ggml's nearest_int by its bits (a NaN gives 0, as x86-64's default NaN does).
fn iq3_nearest_int4(x: vec4<f32>) -> vec4<i32> {
  let b = bitcast<vec4<i32>>(x + vec4(12582912.0));
  return select((b & vec4(0x7fffff)) - vec4(0x400000), vec4(0), (b & vec4(0x7fffffff)) > vec4(0x7f800000));
}

fn iq3_nearest_int(x: f32) -> i32 {
  let b = bitcast<i32>(x + 12582912.0);
  return select((b & 0x7fffff) - 0x400000, 0, (b & 0x7fffffff) > 0x7f800000);
}

// The sub-block's values (signs removed), weights and their square roots, group k in vector k.
var<private> xv: array<vec4<f32>, 8>;
var<private> wt: array<vec4<f32>, 8>;
var<private> wa: array<vec4<f32>, 8>;
// Per group, the chosen grid point as index | level key << 16.
var<private> gi: array<u32, 8>;
// Per candidate scale, (sumqx, sumq2) over the groups so far.
var<private> acc: array<vec2<f32>, 31>;
// The sub-block's four sign bytes (IQ3_XXS: 7 bits each).
var<private> sign_bytes: u32;
// Each sub-block's scale, for the 4-bit sub-scales.
var<private> iq3_scales: array<f32, 8>;
// The block's importance weights (WEIGHTED pipelines; filled by their entry
// point, so that the reference pipelines bind no weights) and sigma2.
var<private> block_qw: array<vec4<f32>, 64>;
var<private> sigma2: f32;

// The pair's bytes, OR-ed together as they are computed.
var<private> pair_img: array<u32, PAIR_WORDS + 1u>;

fn img_or_byte(blk: u32, off: u32, v: u32) {
  let p = blk * BLOCK_BYTES + off;
  pair_img[p >> 2u] = pair_img[p >> 2u] | (v << (8u * (p & 3u)));
}

fn img_set_d(blk: u32, bits: u32) {
  img_or_byte(blk, 0u, bits & 255u);
  img_or_byte(blk, 1u, bits >> 8u);
}

fn img_clear_block(blk: u32) {
  for (var o = 0u; o < iq3_opaque(BLOCK_BYTES); o = o + 1u) {
    let p = blk * BLOCK_BYTES + o;
    pair_img[p >> 2u] = pair_img[p >> 2u] & ~(255u << (8u * (p & 3u)));
  }
}

struct Iq3Best {
  d2: f32,
  key: u32,
}

// Candidate j (entry j of its list; 0 is the count) of key `key`: better than b if its
// weighted distance is below b's (the first of equals wins, as in ggml).
fn iq3_try(b: Iq3Best, key: u32, j: u32, n: u32, x: vec4<f32>, w: vec4<f32>, scale: f32) -> Iq3Best {
  let q = iq3_key_values(key);
  let sq = scale * q;
  let diff = sq - x;
  let wd = w * diff;
  let t = wd * diff;
  var d2 = t.x;
  d2 = d2 + t.y;
  d2 = d2 + t.z;
  d2 = d2 + t.w;
  if (j >= 1u && j <= n && d2 < b.d2) { return Iq3Best(d2, key); }
  return b;
}

// iq3_find_best_neighbour: the first of the neighbours in the list of kmap entry m
// with the least distance sum(w (scale q - x)^2) below FLT_MAX, as its level key;
// IQ3_NONE if none. Eight candidates per vector read.
fn iq3_best_neighbour(m: i32, x: vec4<f32>, w: vec4<f32>, scale: f32) -> u32 {
  let at = IQ3_LISTS + u32(-m - 1);
  let n = iq3_tables[at].x & 0xffffu;
  var b = Iq3Best(FLT_MAX, IQ3_NONE);
  for (var c = 0u; c < (n + 8u) / 8u; c = c + 1u) {
    let v = iq3_tables[at + c];
    let j = 8u * c;
    b = iq3_try(b, v.x & 0xffffu, j, n, x, w, scale);
    b = iq3_try(b, v.x >> 16u, j + 1u, n, x, w, scale);
    b = iq3_try(b, v.y & 0xffffu, j + 2u, n, x, w, scale);
    b = iq3_try(b, v.y >> 16u, j + 3u, n, x, w, scale);
    b = iq3_try(b, v.z & 0xffffu, j + 4u, n, x, w, scale);
    b = iq3_try(b, v.z >> 16u, j + 5u, n, x, w, scale);
    b = iq3_try(b, v.w & 0xffffu, j + 6u, n, x, w, scale);
    b = iq3_try(b, v.w >> 16u, j + 7u, n, x, w, scale);
  }
  return b.key;
}

// The grid point for values x at 1/scale id: the levels nearest_int(0.5 (id x - 1))
// clamped to 0..7, if on the grid, else (flagged IQ3_OFF_GRID) their best neighbour
// at `scale`; as its level key, or IQ3_NONE.
fn iq3_snap(id: f32, scale: f32, x: vec4<f32>, w: vec4<f32>) -> u32 {
  let t = id * x;
  let h = 0.5 * (t - vec4(1.0));
  let l = vec4<u32>(clamp(iq3_nearest_int4(h), vec4(0), vec4(7)));
  let u = l.x | (l.y << 3u) | (l.z << 6u) | (l.w << 9u);
  let m = iq3_kmap(u);
  if (m >= 0) { return u; }
  let key = iq3_best_neighbour(m, x, w, scale);
  return select(key | IQ3_OFF_GRID, IQ3_NONE, key == IQ3_NONE);
}

// sumqx and sumq2 of values x, weights w at the grid point of key u, added to s in ggml's element order.
fn iq3_add_sums(s: vec2<f32>, x: vec4<f32>, w: vec4<f32>, u: u32) -> vec2<f32> {
  let q = iq3_key_values(u & 0xfffu);
  let wx = w * x;
  let a = wx * q;
  let wq = w * q;
  let b = wq * q;
  var r = s;
  r = r + vec2(a.x, b.x);
  r = r + vec2(a.y, b.y);
  r = r + vec2(a.z, b.z);
  r = r + vec2(a.w, b.w);
  return r;
}

// Loads sub-block ib of the block at element `first` (signs split off, weights set).
fn iq3_load_sub_block(first: u32, ib: u32) {
  var signs = 0u;
  for (var k = 0u; k < iq3_opaque(8u); k = k + 1u) {
    let o = first + 32u * ib + 4u * k;
    let x = vec4(load_x(o), load_x(o + 1u), load_x(o + 2u), load_x(o + 3u));
    var w = x * x;
    if (WEIGHTED) {
      w = block_qw[8u * ib + k] * sqrt(vec4(sigma2) + w);
    }
    wt[k] = w;
    wa[k] = sqrt(w);
    // x >= 0 keeps x (and -0); else -x and a sign bit, from the bits
    let neg = (bitcast<vec4<u32>>(x) > vec4(0x80000000u));
    xv[k] = abs(x);
    let bits = select(vec4(0u), vec4(1u, 2u, 4u, 8u), neg);
    signs = signs | ((bits.x | bits.y | bits.z | bits.w) << (4u * k));
  }
  if (IQ3_EVEN_SIGNS) {
    // An odd count of flips in an 8: the value of least w x^2 (the first such) keeps its sign and goes negative in xv.
    var even_signs = 0u;
    for (var h = 0u; h < iq3_opaque(4u); h = h + 1u) {
      var s = (signs >> (8u * h)) & 255u;
      if ((countOneBits(s) & 1u) == 1u) {
        var imin = 0u;
        var min = FLT_MAX;
        for (var i = 0u; i < 8u; i = i + 1u) {
          let k = 2u * h + (i >> 2u);
          let ax = (wt[k][i & 3u] * xv[k][i & 3u]) * xv[k][i & 3u];
          if (i == 0u || ax < min) {
            min = ax;
            imin = i;
          }
        }
        let k = 2u * h + (imin >> 2u);
        xv[k][imin & 3u] = -xv[k][imin & 3u];
        s = s ^ (1u << imin);
      }
      even_signs = even_signs | ((s & 127u) << (7u * h));
    }
    sign_bytes = even_signs;
  } else {
    sign_bytes = signs;
  }
}

// Search outcomes.
const IQ3_SKIPPED: u32 = 0u;
const IQ3_ENCODED: u32 = 1u;
const IQ3_ABORT: u32 = 2u;

// The search of quantize_row_iq3_*_impl for the loaded sub-block; the scale in iq3_scales[ib], points in gi.
// ggml tries each candidate scale on all 8 groups in turn; here each group is tried
// at every scale in turn (its values stay in registers), the sums kept per scale in
// acc: each sum still adds the groups in ggml's order. The winner's points are then
// found again (the same computation).
fn iq3_search(ib: u32) -> u32 {
  var max = xv[0].x;
  for (var k = 0u; k < iq3_opaque(8u); k = k + 1u) {
    let v = xv[k];
    max = select(v.x, max, max > v.x);
    max = select(v.y, max, max > v.y);
    max = select(v.z, max, max > v.z);
    max = select(v.w, max, max > v.w);
  }
  iq3_scales[ib] = 0.0;
  // ggml's L starts all 0: level key 0, grid point 0 in both grids
  for (var k = 0u; k < 8u; k = k + 1u) { gi[k] = 0u; }
  let max_bits = bitcast<u32>(max) & 0x7fffffffu;
  if ((IQ3_MAX_EPS > 0.0 && max < IQ3_MAX_EPS) || (IQ3_MAX_EPS == 0.0 && max_bits == 0u)) {
    return IQ3_SKIPPED;
  }
  let ntry = i32(iq3_opaque(IQ3_NTRY));
  let trials = u32(2 * ntry + 1);
  for (var t = 0u; t < trials; t = t + 1u) { acc[t] = vec2(0.0); }
  for (var k = 0u; k < iq3_opaque(8u); k = k + 1u) {
    let x = xv[k];
    let w = wt[k];
    let ws = wa[k];
    for (var t = 0u; t < trials; t = t + 1u) {
      let id = (15.0 + f32(i32(t) - ntry) * 0.2) / max;
      let e = iq3_snap(id, 1.0 / id, x, ws);
      if (e == IQ3_NONE) { return IQ3_ABORT; }
      acc[t] = iq3_add_sums(acc[t], x, w, e);
    }
  }
  var best = 0.0;
  var scale = max / 15.0;
  var winner = IQ3_NONE;
  for (var t = 0u; t < trials; t = t + 1u) {
    let s = acc[t];
    let sqx = s.x * s.x;
    let bq2 = best * s.y;
    if (s.y > 0.0 && sqx > bq2) {
      scale = s.x / s.y;
      best = scale * s.x;
      winner = t;
    }
  }
  var on_grid = select(0xffu, 0u, IQ3_REFIT_ALL);
  if (winner != IQ3_NONE) {
    let id = (15.0 + f32(i32(winner) - ntry) * 0.2) / max;
    on_grid = 0xffu;
    for (var k = 0u; k < iq3_opaque(8u); k = k + 1u) {
      let e = iq3_snap(id, 1.0 / id, xv[k], wa[k]);
      gi[k] = iq3_point_word(e & ~IQ3_OFF_GRID);
      if ((e & IQ3_OFF_GRID) != 0u) { on_grid = on_grid & ~(1u << k); }
    }
  }
  if (on_grid != 0xffu && scale > 0.0) {
    let id = 1.0 / scale;
    var s = vec2(0.0);
    for (var k = 0u; k < iq3_opaque(8u); k = k + 1u) {
      if (IQ3_REFIT_ALL || ((on_grid >> k) & 1u) == 0u) {
        let e = iq3_snap(id, scale, xv[k], wa[k]);
        if (e == IQ3_NONE) { return IQ3_ABORT; }
        gi[k] = iq3_point_word(e & ~IQ3_OFF_GRID);
      }
      s = iq3_add_sums(s, xv[k], wt[k], gi[k] >> 16u);
    }
    if (s.y > 0.0) { scale = s.x / s.y; }
  }
  // negative importance weights only (ggml: "should never happen"): flip scale and signs
  if (scale < 0.0) {
    scale = -scale;
    sign_bytes = ~sign_bytes & select(0xffffffffu, 0x0fffffffu, IQ3_EVEN_SIGNS);
  }
  // ggml asserts scale >= 0: a NaN scale aborts it
  if ((bitcast<u32>(scale) & 0x7fffffffu) > 0x7f800000u) { return IQ3_ABORT; }
  iq3_scales[ib] = scale;
  return IQ3_ENCODED;
}

// The 4-bit sub-scale of scale s at super-block 1/d id.
fn iq3_scale_nibble(id: f32, s: f32) -> u32 {
  let t = id * s;
  return u32(clamp(iq3_nearest_int(0.5 * (t - 1.0)), 0, 15));
}

// Block blk of the pair (element `first` of the chunk).
fn iq3_quantize_block(blk: u32, first: u32) {
  var sumx2 = 0.0;
  var finite = true;
  for (var i = 0u; i < iq3_opaque(QK); i = i + 1u) {
    let x = load_x(first + i);
    finite = finite && (bitcast<u32>(x) & 0x7fffffffu) < 0x7f800000u;
    let x2 = x * x;
    sumx2 = sumx2 + x2;
  }
  if (!finite) {
    img_set_d(blk, F16_NAN);
    return;
  }
  sigma2 = (2.0 * sumx2) / 256.0;
  var max_scale = 0.0;
  var slot = 0u;
  for (var ib = 0u; ib < iq3_opaque(8u); ib = ib + 1u) {
    iq3_load_sub_block(first, ib);
    let r = iq3_search(ib);
    if (r == IQ3_ABORT) {
      img_clear_block(blk);
      img_set_d(blk, F16_NAN);
      return;
    }
    if (r == IQ3_ENCODED) {
      iq3_store_sub_block(blk, ib, slot);
      slot = slot + 1u;
      max_scale = select(iq3_scales[ib], max_scale, max_scale > iq3_scales[ib]);
    }
  }
  if ((bitcast<u32>(max_scale) & 0x7fffffffu) == 0u) {
    iq3_zero_scale_block(blk);
    return;
  }
  let d = max_scale / 31.0;
  img_set_d(blk, f32_to_f16_bits(d * IQ3_D_FUDGE));
  iq3_store_scales(blk, 1.0 / d);
}

fn quantize_blocks(pair: u32, first_block: u32) {
  if (first_block >= qparams.n_blocks) { return; }
  let n = min(2u, qparams.n_blocks - first_block);
  for (var w = 0u; w < PAIR_WORDS + 1u; w = w + 1u) { pair_img[w] = 0u; }
  for (var blk = 0u; blk < n; blk = blk + 1u) {
    iq3_quantize_block(blk, (first_block + blk) * QK);
  }
  iq3_pair_store(pair, n);
}

fn iq3_pair_store(pair: u32, n: u32) {
  let n_words = (n * BLOCK_BYTES + 3u) / 4u;
  for (var w = 0u; w < n_words; w = w + 1u) { dst[pair * PAIR_WORDS + w] = pair_img[w]; }
}

// quantize_row_iq3_*_impl with quant_weights (pipelines built with WEIGHTED = true).
//#include lib/imatrix_own_entry.wgsl

@compute @workgroup_size(QUANTIZE_WORKGROUP_SIZE)
fn quantize_weighted(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let pair = workgroup_index(wid, nwg) * QUANTIZE_WORKGROUP_SIZE + lid;
  let first_block = 2u * pair;
  if (first_block >= qparams.n_blocks) { return; }
  let n = min(2u, qparams.n_blocks - first_block);
  for (var w = 0u; w < PAIR_WORDS + 1u; w = w + 1u) { pair_img[w] = 0u; }
  for (var blk = 0u; blk < n; blk = blk + 1u) {
    // the block's weights: its expert's vector, at its column
    let base = imatrix_block_base(first_block + blk);
    for (var v = 0u; v < iq3_opaque(64u); v = v + 1u) {
      let o = base + 4u * v;
      block_qw[v] = vec4(imatrix_w[o], imatrix_w[o + 1u], imatrix_w[o + 2u], imatrix_w[o + 3u]);
    }
    iq3_quantize_block(blk, (first_block + blk) * QK);
  }
  iq3_pair_store(pair, n);
}
