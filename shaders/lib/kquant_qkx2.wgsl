// ggml's make_qkx2_quants for one sub-block, per invocation: the shared core of
// Q2_K, Q4_K and Q5_K (shaders/quant/q{2,4,5}_K.wgsl). CPU twin and the
// algorithm in words: src/quant/formats/kquant-qkx2.ts.
//
// The including shader defines (WGSL declarations are order-free):
//   const QKX2_V: u32          sub-block size / 4: 4 or 8 vec4s of values
//   const QKX2_NMAX: f32       highest level (3, 15, 31)
//   fn qkx2_rmin() -> f32      first candidate's offset from NMAX (-0.5, -1.0; -0.9 weighted)
//   fn qkx2_rdelta() -> f32    candidates' spacing (0.1; 0.05 weighted)
//   fn qkx2_nstep() -> u32     candidates after the first: NSTEP + 1 of them (36 weighted)
//   fn qkx2_mad() -> bool      weigh |error| (true) or error^2 (false)
// (functions, so that one pipeline runs both ggml's reference make_qkx2_quants
// and the importance-matrix path's make_qkx3_quants, the same search with other
// parameters: see lib/imatrix_weights.wgsl), and load_x4(i) (lib/kquant_io.wgsl);
// it fills qx_x and qx_w (qkx2_load, qkx2_set_weights or
// qkx2_set_imatrix_weights) before calling make_qkx2().
//
// Exactness: every float operation is ggml's, in its order, one rounding each
// (lavapipe does not fuse a*b+c: gallivm lowers ffma; a compiler that fuses
// would change the chosen scale on ties). Every product that feeds a sum is a
// `let` of its own, so that compilers which contract only within one
// expression (Metal's default, C's FP_CONTRACT ON) leave it rounded. Sums run in element order. Levels
// use round-half-even, which equals ggml's nearest_int while |t| < 2^22; a
// candidate whose products could leave that range (the offset found so far
// can sit at the sub-block's max, making the next iscale huge or infinite)
// takes the bit-exact nearest_int instead. Zero, Inf and NaN are told apart
// by their bits where it matters, since WGSL lets compilers assume finite
// floats.

// The sub-block's values and weights, QKX2_V vec4s of the 8. Only ever indexed
// with literals (loops written out): lavapipe then keeps them in registers,
// where any computed index would send the whole array to memory.
var<private> qx_x: array<vec4<f32>, 8>;
var<private> qx_w: array<vec4<f32>, 8>;

struct Qkx2 {
  // ggml's return value and *the_min
  scale: f32,
  the_min: f32,
  // the chosen levels are clamp(nearest_int(lscale * (x - lmin)), 0, NMAX)
  lscale: f32,
  lmin: f32,
}

// v, through an XOR with qparams.pad (always 0 in a quantize dispatch:
// src/kernels/quantize.ts), so that the compiler cannot fold or reassociate
// across it.
fn qkx2_opaque(v: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(v) ^ qparams.pad);
}

// ggml's nearest_int for any float: add 1.5 * 2^23, keep the low mantissa bits.
// Any NaN gives 0, ggml's result for the default NaN (GPUs differ in the NaN they produce).
fn ggml_nearest_int(x: f32) -> i32 {
  let b = bitcast<i32>(x + 12582912.0);
  return select((b & 0x007fffff) - 0x00400000, 0, (b & 0x7fffffff) > 0x7f800000);
}

fn ggml_nearest_int4(x: vec4<f32>) -> vec4<i32> {
  let b = bitcast<vec4<i32>>(x + vec4<f32>(12582912.0));
  return select((b & vec4<i32>(0x007fffff)) - vec4<i32>(0x00400000), vec4<i32>(0), (b & vec4<i32>(0x7fffffff)) > vec4<i32>(0x7f800000));
}

// Levels of t = iscale * (x - min), bit-exact for any t.
fn qkx2_lev_exact(iscale: f32, mn: f32, x: vec4<f32>) -> vec4<f32> {
  let t = iscale * (x - vec4<f32>(mn));
  return vec4<f32>(clamp(ggml_nearest_int4(t), vec4<i32>(0), vec4<i32>(i32(QKX2_NMAX))));
}

// The same where |t| < 2^22 is known: round-half-even is then nearest_int.
fn qkx2_lev_fast(iscale: f32, mn: f32, x: vec4<f32>) -> vec4<f32> {
  let t = iscale * (x - vec4<f32>(mn));
  return clamp(round(t), vec4<f32>(0.0), vec4<f32>(QKX2_NMAX));
}

fn qkx2_levels(iscale: f32, mn: f32, fast: bool) -> array<vec4<f32>, 8> {
  var l: array<vec4<f32>, 8>;
  if (fast) {
    l[0] = qkx2_lev_fast(iscale, mn, qx_x[0]);
    l[1] = qkx2_lev_fast(iscale, mn, qx_x[1]);
    l[2] = qkx2_lev_fast(iscale, mn, qx_x[2]);
    l[3] = qkx2_lev_fast(iscale, mn, qx_x[3]);
    if (QKX2_V == 8u) {
      l[4] = qkx2_lev_fast(iscale, mn, qx_x[4]);
      l[5] = qkx2_lev_fast(iscale, mn, qx_x[5]);
      l[6] = qkx2_lev_fast(iscale, mn, qx_x[6]);
      l[7] = qkx2_lev_fast(iscale, mn, qx_x[7]);
    }
  } else {
    l[0] = qkx2_lev_exact(iscale, mn, qx_x[0]);
    l[1] = qkx2_lev_exact(iscale, mn, qx_x[1]);
    l[2] = qkx2_lev_exact(iscale, mn, qx_x[2]);
    l[3] = qkx2_lev_exact(iscale, mn, qx_x[3]);
    if (QKX2_V == 8u) {
      l[4] = qkx2_lev_exact(iscale, mn, qx_x[4]);
      l[5] = qkx2_lev_exact(iscale, mn, qx_x[5]);
      l[6] = qkx2_lev_exact(iscale, mn, qx_x[6]);
      l[7] = qkx2_lev_exact(iscale, mn, qx_x[7]);
    }
  }
  return l;
}

// sum_l, sum_l2, sum_xl over four more elements, in element order.
fn qkx2_sums4(s: vec3<f32>, l: vec4<f32>, x: vec4<f32>, w: vec4<f32>) -> vec3<f32> {
  let wl = w * l;
  let wl2 = wl * l;
  let wlx = wl * x;
  return vec3<f32>((((s.x + wl.x) + wl.y) + wl.z) + wl.w,
                   (((s.y + wl2.x) + wl2.y) + wl2.z) + wl2.w,
                   (((s.z + wlx.x) + wlx.y) + wlx.z) + wlx.w);
}

fn qkx2_sums(l: array<vec4<f32>, 8>) -> vec3<f32> {
  var s = vec3<f32>(0.0);
  s = qkx2_sums4(s, l[0], qx_x[0], qx_w[0]);
  s = qkx2_sums4(s, l[1], qx_x[1], qx_w[1]);
  s = qkx2_sums4(s, l[2], qx_x[2], qx_w[2]);
  s = qkx2_sums4(s, l[3], qx_x[3], qx_w[3]);
  if (QKX2_V == 8u) {
    s = qkx2_sums4(s, l[4], qx_x[4], qx_w[4]);
    s = qkx2_sums4(s, l[5], qx_x[5], qx_w[5]);
    s = qkx2_sums4(s, l[6], qx_x[6], qx_w[6]);
    s = qkx2_sums4(s, l[7], qx_x[7], qx_w[7]);
  }
  return s;
}

// Weighted error (|e| or e^2) of four more elements, added in order.
fn qkx2_error4(acc: f32, scale: f32, mn: f32, l: vec4<f32>, x: vec4<f32>, w: vec4<f32>) -> f32 {
  let sl = scale * l;
  let diff = (sl + vec4<f32>(mn)) - x;
  var e: vec4<f32>;
  if (qkx2_mad()) { e = w * abs(diff); } else { e = w * (diff * diff); }
  return (((acc + e.x) + e.y) + e.z) + e.w;
}

fn qkx2_error(l: array<vec4<f32>, 8>, scale: f32, mn: f32) -> f32 {
  var e = 0.0;
  e = qkx2_error4(e, scale, mn, l[0], qx_x[0], qx_w[0]);
  e = qkx2_error4(e, scale, mn, l[1], qx_x[1], qx_w[1]);
  e = qkx2_error4(e, scale, mn, l[2], qx_x[2], qx_w[2]);
  e = qkx2_error4(e, scale, mn, l[3], qx_x[3], qx_w[3]);
  if (QKX2_V == 8u) {
    e = qkx2_error4(e, scale, mn, l[4], qx_x[4], qx_w[4]);
    e = qkx2_error4(e, scale, mn, l[5], qx_x[5], qx_w[5]);
    e = qkx2_error4(e, scale, mn, l[6], qx_x[6], qx_w[6]);
    e = qkx2_error4(e, scale, mn, l[7], qx_x[7], qx_w[7]);
  }
  return e;
}

// min, max, sum_w, sum_x over four more elements (ggml's first loop), and
// whether every value so far is finite (from the bits: WGSL may assume floats
// are finite).
struct Qkx2Stats { mn: f32, mx: f32, sum_w: f32, sum_x: f32, finite: bool }

fn qkx2_stats1(s: Qkx2Stats, x: f32, w: f32) -> Qkx2Stats {
  let finite = s.finite && (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
  let wx = w * x;
  return Qkx2Stats(select(s.mn, x, x < s.mn), select(s.mx, x, x > s.mx), s.sum_w + w, s.sum_x + wx, finite);
}

fn qkx2_stats4(s: Qkx2Stats, x: vec4<f32>, w: vec4<f32>) -> Qkx2Stats {
  return qkx2_stats1(qkx2_stats1(qkx2_stats1(qkx2_stats1(s, x.x, w.x), x.y, w.y), x.z, w.z), x.w, w.w);
}

// One candidate scale: the least-squares scale and offset for its levels and
// their weighted error; ok is ggml's D > 0.
struct Qkx2Candidate { ok: bool, scale: f32, min: f32, error: f32 }

fn qkx2_candidate(iscale: f32, mn: f32, st: Qkx2Stats, fast: bool) -> Qkx2Candidate {
  let l = qkx2_levels(iscale, mn, fast);
  let s = qkx2_sums(l);
  let sum_l = s.x;
  let sum_l2 = s.y;
  let sum_xl = s.z;
  let w_l2 = st.sum_w * sum_l2;
  let l_l = sum_l * sum_l;
  let D = w_l2 - l_l;
  let w_xl = st.sum_w * sum_xl;
  let x_l = st.sum_x * sum_l;
  let l2_x = sum_l2 * st.sum_x;
  let l_xl = sum_l * sum_xl;
  var this_scale = (w_xl - x_l) / D;
  var this_min = (l2_x - l_xl) / D;
  if (this_min > 0.0) {
    this_min = 0.0;
    this_scale = sum_xl / sum_l2;
  }
  // computed whatever D is; only used when D > 0
  return Qkx2Candidate(D > 0.0, this_scale, this_min, qkx2_error(l, this_scale, this_min));
}

fn make_qkx2() -> Qkx2 {
  // element 0 seeds the sums; ggml's loop starts at 1
  let x0 = qx_x[0];
  let w0 = qx_w[0];
  var st = Qkx2Stats(x0.x, x0.x, w0.x, w0.x * x0.x, (bitcast<u32>(x0.x) & 0x7f800000u) != 0x7f800000u);
  st = qkx2_stats1(qkx2_stats1(qkx2_stats1(st, x0.y, w0.y), x0.z, w0.z), x0.w, w0.w);
  st = qkx2_stats4(st, qx_x[1], qx_w[1]);
  st = qkx2_stats4(st, qx_x[2], qx_w[2]);
  st = qkx2_stats4(st, qx_x[3], qx_w[3]);
  if (QKX2_V == 8u) {
    st = qkx2_stats4(st, qx_x[4], qx_w[4]);
    st = qkx2_stats4(st, qx_x[5], qx_w[5]);
    st = qkx2_stats4(st, qx_x[6], qx_w[6]);
    st = qkx2_stats4(st, qx_x[7], qx_w[7]);
  }
  let mx = st.mx;
  let xmin = st.mn;
  var mn = select(xmin, 0.0, xmin > 0.0);
  if (mx == mn) { return Qkx2(0.0, -mn, 0.0, mn); }

  var iscale = QKX2_NMAX / (mx - mn);
  let scale = 1.0 / iscale;
  var r = Qkx2(scale, 0.0, iscale, mn);
  var best_error = qkx2_error(qkx2_levels(iscale, mn, false), scale, mn);

  let nstep = qkx2_nstep();
  let rmin = qkx2_rmin();
  let rdelta = qkx2_rdelta();
  for (var is = 0u; is <= nstep; is = is + 1u) {
    // mn is the best candidate's offset so far: later candidates scale from it
    let step = rdelta * f32(is);
    // ggml adds rmin + step first, then nmax. Where rmin and nmax are both
    // constants Mesa's NIR reassociates this to step + (rmin + nmax), one
    // rounding less: for make_qkx3's -0.9f and 0.05f that moves some
    // candidates' iscale by an ulp, and now and then the chosen scale
    // (test/quant-imatrix-ggml.test.ts, 'candidate scales an ulp apart').
    // qkx2_opaque hides the first sum from it.
    iscale = (qkx2_opaque(rmin + step) + QKX2_NMAX) / (mx - mn);
    // |x - mn| <= bound for every x of the sub-block, so |t| <= |iscale| * bound
    let bound = abs(iscale) * max(abs(mx - mn), abs(mn - xmin));
    // Two copies of the candidate, each with its level rule fixed: lavapipe
    // runs a branch only when a lane takes it, so the exact copy costs nothing
    // while no lane needs it (a branch around the levels alone would cost
    // masked writes of all of them).
    var c: Qkx2Candidate;
    // (a NaN among the values escapes the bound: such sub-blocks take the exact copy)
    if (st.finite && (bitcast<u32>(bound) & 0x7fffffffu) < 0x4a800000u) { // bound < 2^22, not NaN
      c = qkx2_candidate(iscale, mn, st, true);
    } else {
      c = qkx2_candidate(iscale, mn, st, false);
    }
    if (c.ok && c.error < best_error) {
      best_error = c.error;
      r = Qkx2(c.scale, 0.0, iscale, mn);
      mn = c.min;
    }
  }
  r.the_min = -mn;
  return r;
}

// Loads the sub-block at element i of the chunk into qx_x.
fn qkx2_load(i: u32) {
  qx_x[0] = load_x4(i);
  qx_x[1] = load_x4(i + 4u);
  qx_x[2] = load_x4(i + 8u);
  qx_x[3] = load_x4(i + 12u);
  if (QKX2_V == 8u) {
    qx_x[4] = load_x4(i + 16u);
    qx_x[5] = load_x4(i + 20u);
    qx_x[6] = load_x4(i + 24u);
    qx_x[7] = load_x4(i + 28u);
  }
}

// Weights base + |x| (ggml: av_x + fabsf(x) for Q4_K/Q5_K, fabsf(x) = 0 + |x| for Q2_K).
fn qkx2_set_weights(base: f32) {
  let b = vec4<f32>(base);
  qx_w[0] = b + abs(qx_x[0]);
  qx_w[1] = b + abs(qx_x[1]);
  qx_w[2] = b + abs(qx_x[2]);
  qx_w[3] = b + abs(qx_x[3]);
  if (QKX2_V == 8u) {
    qx_w[4] = b + abs(qx_x[4]);
    qx_w[5] = b + abs(qx_x[5]);
    qx_w[6] = b + abs(qx_x[6]);
    qx_w[7] = b + abs(qx_x[7]);
  }
}

// Levels of values x in the sub-block make_qkx2() returned r for (before requantization).
fn qkx2_levels_of(r: Qkx2, x: vec4<f32>) -> vec4<u32> {
  return vec4<u32>(qkx2_lev_exact(r.lscale, r.lmin, x));
}

// Weights qw * sqrt(sigma2 + x^2) (ggml's _impl paths), qw from vec4 `wi` of
// imatrix_w4 on (lib/imatrix_weights.wgsl); returns their sum, in order (ggml's sw[j]).
fn qkx2_set_imatrix_weights(wi: u32, sigma2: f32) -> f32 {
  qx_w[0] = imatrix_weights4(imatrix_w4[wi], sigma2, qx_x[0]);
  qx_w[1] = imatrix_weights4(imatrix_w4[wi + 1u], sigma2, qx_x[1]);
  qx_w[2] = imatrix_weights4(imatrix_w4[wi + 2u], sigma2, qx_x[2]);
  qx_w[3] = imatrix_weights4(imatrix_w4[wi + 3u], sigma2, qx_x[3]);
  if (QKX2_V == 8u) {
    qx_w[4] = imatrix_weights4(imatrix_w4[wi + 4u], sigma2, qx_x[4]);
    qx_w[5] = imatrix_weights4(imatrix_w4[wi + 5u], sigma2, qx_x[5]);
    qx_w[6] = imatrix_weights4(imatrix_w4[wi + 6u], sigma2, qx_x[6]);
    qx_w[7] = imatrix_weights4(imatrix_w4[wi + 7u], sigma2, qx_x[7]);
  }
  var s = qkx2_add4(0.0, qx_w[0]);
  s = qkx2_add4(s, qx_w[1]);
  s = qkx2_add4(s, qx_w[2]);
  s = qkx2_add4(s, qx_w[3]);
  if (QKX2_V == 8u) {
    s = qkx2_add4(s, qx_w[4]);
    s = qkx2_add4(s, qx_w[5]);
    s = qkx2_add4(s, qx_w[6]);
    s = qkx2_add4(s, qx_w[7]);
  }
  return s;
}

fn qkx2_add4(acc: f32, v: vec4<f32>) -> f32 {
  return (((acc + v.x) + v.y) + v.z) + v.w;
}

// acc + the squares of the sub-block's values (qx_x), in order: ggml's sumx2
// of the _impl paths over a super-block, one sub-block at a time (from 0.0:
// the sub-block's own sum of squares). add_squares4: lib/imatrix_weights.wgsl.
fn qkx2_add_sq_all(acc: f32) -> f32 {
  var s = add_squares4(acc, qx_x[0]);
  s = add_squares4(s, qx_x[1]);
  s = add_squares4(s, qx_x[2]);
  s = add_squares4(s, qx_x[3]);
  if (QKX2_V == 8u) {
    s = add_squares4(s, qx_x[4]);
    s = add_squares4(s, qx_x[5]);
    s = add_squares4(s, qx_x[6]);
    s = add_squares4(s, qx_x[7]);
  }
  return s;
}
