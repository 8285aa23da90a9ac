// The scale search of ggml's quantize_row_iq4_nl_impl (ntry 7), shared by
// shaders/quant/iq4_nl.wgsl and iq4_xs.wgsl, in ggml's float32 order of
// operations: weights x^2, or with an importance matrix qw * sqrt(sigma2 + x^2)
// (iq4_block_w, filled by the caller). Needs lib/legacy_quant.wgsl and
// lib/imatrix_weights.wgsl.
//
// best_index_int8 over kvalues_iq4nl picks level k + 1 over level k exactly when
// x >= (kvalues[k] + kvalues[k + 1]) / 2: its float comparison
// `x - val[mu-1] < val[mu] - x` never rounds across a midpoint (checked
// exhaustively around every midpoint). So the level follows from four comparisons
// with midpoints, a binary search done with selects, which vectorises where
// ggml's branches would not.

// GROUP_MAX_EPS, 1e-15f, as bits
const IQ4_EPS_BITS: u32 = 0x26901d7du;

fn pick(a: f32, b: f32, c: vec4<bool>) -> vec4<f32> {
  return select(vec4<f32>(a), vec4<f32>(b), c);
}

// The search's four decisions for four values: c1 (x >= midpoint 7), c2, c3, c4;
// the level index is 8 c1 + 4 c2 + 2 c3 + c4.
struct Iq4Path {
  c1: vec4<bool>,
  c2: vec4<bool>,
  c3: vec4<bool>,
  c4: vec4<bool>,
}

fn iq4_path4(x: vec4<f32>) -> Iq4Path {
  let c1 = x >= vec4<f32>(-4.5);
  let c2 = x >= pick(-57.0, 45.5, c1);
  let c3 = x >= select(pick(-93.5, -28.5, c2), pick(19.0, 79.0, c2), c1);
  let c4 = x >= select(select(pick(-115.5, -74.0, c3), pick(-42.0, -16.0, c3), c2),
                       select(pick(7.0, 31.5, c3), pick(61.0, 101.0, c3), c2), c1);
  return Iq4Path(c1, c2, c3, c4);
}

// kvalues_iq4nl[best_index_int8(x)] of four values (finite).
fn iq4_level4(x: vec4<f32>) -> vec4<f32> {
  return iq4_path_value4(iq4_path4(x));
}

// kvalues_iq4nl[n] of four 4-bit indices.
fn iq4_value4(n: vec4<u32>) -> vec4<f32> {
  let z = vec4<u32>(0u);
  return iq4_path_value4(Iq4Path((n & vec4<u32>(8u)) != z, (n & vec4<u32>(4u)) != z, (n & vec4<u32>(2u)) != z, (n & vec4<u32>(1u)) != z));
}

// The level at the end of a search path.
fn iq4_path_value4(p: Iq4Path) -> vec4<f32> {
  let lo = select(select(pick(-127.0, -104.0, p.c4), pick(-83.0, -65.0, p.c4), p.c3),
                  select(pick(-49.0, -35.0, p.c4), pick(-22.0, -10.0, p.c4), p.c3), p.c2);
  let hi = select(select(pick(1.0, 13.0, p.c4), pick(25.0, 38.0, p.c4), p.c3),
                  select(pick(53.0, 69.0, p.c4), pick(89.0, 113.0, p.c4), p.c3), p.c2);
  return select(lo, hi, p.c1);
}

// best_index_int8(16, kvalues_iq4nl, x) of four values; NaN gives 15, as ggml's search
// (a NaN 1/scale comes from a NaN scale, when the sums overflowed: |x| > 1.8e19).
fn iq4_index4(x: vec4<f32>) -> vec4<u32> {
  let p = iq4_path4(x);
  let one = vec4<u32>(1u);
  let zero = vec4<u32>(0u);
  let i = (select(zero, one, p.c1) << vec4<u32>(3u)) | (select(zero, one, p.c2) << vec4<u32>(2u)) |
          (select(zero, one, p.c3) << one) | select(zero, one, p.c4);
  return select(i, vec4<u32>(15u), abs_bits4(x) > vec4<u32>(0x7f800000u));
}

// float16 bits of a scale the search returned; a NaN one (from inf / inf) as x86-64's
// default NaN gives it, which is what ggml's x86-64 build stores.
fn iq4_scale_bits(d: f32) -> u32 {
  return select(f32_to_f16_bits(d), 0xfe00u, (bitcast<u32>(d) & 0x7fffffffu) > 0x7f800000u);
}

// ggml's nearest_int, the bit trick itself (NaN gives 0 as there).
fn nearest_int_c(x: f32) -> i32 {
  return (bitcast<i32>(x + 12582912.0) & 0x7fffff) - 0x400000;
}

// Running sums of four candidate grids (one per component).
struct Fit4 {
  sumqx: vec4<f32>,
  sumq2: vec4<f32>,
}

// One element x of the block, in order: al = id * x, q = level, w its weight
// (x * x without an importance matrix), sumqx += w * q * x, sumq2 += w * q * q.
fn iq4_fit1(f: Fit4, x: f32, w: f32, ids: vec4<f32>) -> Fit4 {
  let q = iq4_level4(ids * x);
  let wq = w * q;
  return Fit4(f.sumqx + wq * x, f.sumq2 + wq * q);
}

struct Best {
  d: f32,
  best: f32,
}

// ggml's `if (sumq2 > 0 && sumqx*sumqx > best*sumq2) { d = sumqx/sumq2; best = d*sumqx; }` for four candidates in order.
fn iq4_better4(r: Best, f: Fit4) -> Best {
  var s = r;
  for (var t = 0u; t < 4u; t = t + 1u) {
    let sqx = f.sumqx[t];
    let sq2 = f.sumq2[t];
    if (sq2 > 0.0 && sqx * sqx > s.best * sq2) {
      s.d = sqx / sq2;
      s.best = s.d * sqx;
    }
  }
  return s;
}

// The block being searched, read by index in a rolled loop: unrolled and inlined,
// the search makes a shader lavapipe takes seconds to compile.
var<private> iq4_block: array<vec4<f32>, 8>;
// Its importance weights, where weighted() (iq4_set_weights).
var<private> iq4_block_w: array<vec4<f32>, 8>;

// Fills iq4_block_w for block b (32 values) whose weights start at vec4 `wi` of imatrix_w4.
fn iq4_set_weights(b: Block32, wi: u32, sigma2: f32) {
  iq4_block_w[0] = imatrix_weights4(imatrix_w4[wi], sigma2, b.x0);
  iq4_block_w[1] = imatrix_weights4(imatrix_w4[wi + 1u], sigma2, b.x1);
  iq4_block_w[2] = imatrix_weights4(imatrix_w4[wi + 2u], sigma2, b.x2);
  iq4_block_w[3] = imatrix_weights4(imatrix_w4[wi + 3u], sigma2, b.x3);
  iq4_block_w[4] = imatrix_weights4(imatrix_w4[wi + 4u], sigma2, b.x4);
  iq4_block_w[5] = imatrix_weights4(imatrix_w4[wi + 5u], sigma2, b.x5);
  iq4_block_w[6] = imatrix_weights4(imatrix_w4[wi + 6u], sigma2, b.x6);
  iq4_block_w[7] = imatrix_weights4(imatrix_w4[wi + 7u], sigma2, b.x7);
}

// acc + sum x^2 over a block of 32, in element order.
fn iq4_sum_squares32(acc: f32, b: Block32) -> f32 {
  var s = add_squares4(acc, b.x0);
  s = add_squares4(s, b.x1);
  s = add_squares4(s, b.x2);
  s = add_squares4(s, b.x3);
  s = add_squares4(s, b.x4);
  s = add_squares4(s, b.x5);
  s = add_squares4(s, b.x6);
  return add_squares4(s, b.x7);
}

// quantize_row_iq4_nl_impl's scale for one finite block of 32 (`m` its abs_max32):
// the least-squares scale of the best of 16 candidate grids; 0 below GROUP_MAX_EPS.
// Weighs with iq4_block_w where weighted(), else with x^2.
fn iq4_scale32(b: Block32, m: AbsMax) -> f32 {
  if (m.amax < IQ4_EPS_BITS) { return 0.0; }
  let mx = m.max;
  // The grids in ggml's order, four per vector: first 1 / (max / 127) (ggml:
  // d = -max / values[0], id = 1 / d), the starting point; then the candidates
  // (itry + values[0]) / max for itry = -7..7.
  var ids0 = vec4<f32>(-135.0, -134.0, -133.0, -132.0) / mx;
  ids0.x = 1.0 / (-mx / -127.0);
  let ids1 = vec4<f32>(-131.0, -130.0, -129.0, -128.0) / mx;
  let ids2 = vec4<f32>(-127.0, -126.0, -125.0, -124.0) / mx;
  let ids3 = vec4<f32>(-123.0, -122.0, -121.0, -120.0) / mx;
  // All 16 sums in one pass over the elements (each sum still in element order):
  // four independent chains hide the additions' latency.
  iq4_block = array<vec4<f32>, 8>(b.x0, b.x1, b.x2, b.x3, b.x4, b.x5, b.x6, b.x7);
  var f0 = Fit4(vec4<f32>(0.0), vec4<f32>(0.0));
  var f1 = f0;
  var f2 = f0;
  var f3 = f0;
  for (var i = 0u; i < opaque(8u); i = i + 1u) {
    let v = iq4_block[i];
    var w = v * v;
    if (weighted()) { w = iq4_block_w[i]; }
    for (var c = 0u; c < 4u; c = c + 1u) {
      f0 = iq4_fit1(f0, v[c], w[c], ids0);
      f1 = iq4_fit1(f1, v[c], w[c], ids1);
      f2 = iq4_fit1(f2, v[c], w[c], ids2);
      f3 = iq4_fit1(f3, v[c], w[c], ids3);
    }
  }
  var r = Best(select(0.0, f0.sumqx.x / f0.sumq2.x, f0.sumq2.x > 0.0), 0.0);
  r.best = r.d * f0.sumqx.x;
  f0.sumq2.x = 0.0; // the starting point is not a candidate
  r = iq4_better4(r, f0);
  r = iq4_better4(r, f1);
  r = iq4_better4(r, f2);
  r = iq4_better4(r, f3);
  return r.d;
}

// The 16 bytes of a block's level indices at 1/scale `id`: element j low, j + 16 high.
fn iq4_qs(b: Block32, id: f32) -> vec4<u32> {
  let sh = vec4<u32>(4u);
  return vec4<u32>(pack_bytes(iq4_index4(b.x0 * id) | (iq4_index4(b.x4 * id) << sh)),
                   pack_bytes(iq4_index4(b.x1 * id) | (iq4_index4(b.x5 * id) << sh)),
                   pack_bytes(iq4_index4(b.x2 * id) | (iq4_index4(b.x6 * id) << sh)),
                   pack_bytes(iq4_index4(b.x3 * id) | (iq4_index4(b.x7 * id) << sh)));
}
