// ggml's scale searches for groups of 16 values of the symmetric k-quants
// (Q3_K, Q6_K): make_qx_quants (rmse_type 1, no importance weights) and
// make_q3_quants (do_rmse), in ggml's float32 order of operations, with
// ggml's bit-level nearest_int. CPU twin: src/quant/formats/kquant-qx.ts.
//
// Four groups are searched at once, one per vec4 component: independent
// dependency chains for the CPU that runs a software WebGPU, and four times
// fewer loop iterations. Decisions are selects, so control flow stays uniform
// and an implementation that runs invocations as SIMD lanes keeps them in step.
// The 16 values live in private arrays indexed only by loops of constant trip
// count, which compilers unroll into registers.
//
// Exact on every input, NaN, ±Inf and overflowing sums included: float
// operations are ggml's, one rounding each (every product that feeds a sum is
// a `let` of its own, so compilers that contract only within an expression
// keep it rounded), Inf and NaN flow through them as IEEE says, and what must
// not depend on a compiler's view of non-finite floats (C's truthiness of a
// NaN, which NaN an operation returns) is read from the bits.

// ggml's GROUP_MAX_EPS (1e-15f).
const GROUP_MAX_EPS: f32 = 1e-15;

// The importance-matrix pipelines (entry points quantize_weighted) set it:
// make_qx_quants then weighs with qx_w (ggml's qw) instead of x*x. An
// override, so the reference pipelines compile without the weighted code.
override WEIGHTED: bool = false;

// ggml's nearest_int exactly as its bits compute it: add 1.5 * 2^23 in
// float32, keep the low 23 bits. Round half to even for |x| <= 4194303;
// beyond that (or for Inf) the same wrapped integer ggml gets. A NaN gives 0,
// what ggml gets from the default NaN of x86-64 and ARM (mantissa 0x400000):
// GPUs differ in the NaN their arithmetic produces (some give 0x7fffffff), so
// NaN is told from the bits, and every NaN reads as that one.
fn nearest_int_bits(x: f32) -> i32 {
  let b = bitcast<i32>(x + 12582912.0);
  return select((b & 0x7fffff) - 0x400000, 0, (b & 0x7fffffff) > 0x7f800000);
}

fn nearest_int_bits4(x: vec4<f32>) -> vec4<i32> {
  let b = bitcast<vec4<i32>>(x + vec4(12582912.0));
  return select((b & vec4(0x7fffff)) - vec4(0x400000), vec4(0), (b & vec4(0x7fffffff)) > vec4(0x7f800000));
}

// C's int8_t conversion of an int: the low 8 bits, sign-extended.
fn wrap_i8_4(v: vec4<i32>) -> vec4<i32> {
  return (v << vec4(24u)) >> vec4(24u);
}

// The 16 values of four groups (component c: group c) and, after
// make_q3_quants4, their quants.
var<private> qx_x: array<vec4<f32>, 16>;
var<private> qx_q: array<vec4<f32>, 16>;
// Their importance weights, where WEIGHTED.
var<private> qx_w: array<vec4<f32>, 16>;

// Each group's value of largest magnitude (the first, on ties), as ggml's loop finds it.
fn qx_signed_max4() -> vec4<f32> {
  var amax = vec4(0.0);
  var max = vec4(0.0);
  for (var i = 0u; i < 16u; i = i + 1u) {
    let ax = abs(qx_x[i]);
    let more = ax > amax;
    amax = select(amax, ax, more);
    max = select(max, qx_x[i], more);
  }
  return max;
}

// Whether all 16 values of all four groups are finite, from the bits (WGSL
// lets compilers assume floats are finite).
fn qx_all_finite() -> bool {
  var exp_max = vec4(0u);
  for (var i = 0u; i < 16u; i = i + 1u) {
    exp_max = max(exp_max, bitcast<vec4<u32>>(qx_x[i]) & vec4(0x7f800000u));
  }
  return all(exp_max != vec4(0x7f800000u));
}

struct QxSearch {
  // the scale ggml returns (0 for an all-zero group; NaN where a NaN or an
  // overflow reached the sums)
  scale: vec4<f32>,
  // the inverse scale whose quants ggml keeps: L = nmax + clamp(nearest_int(iscale * x))
  iscale: vec4<f32>,
  // all |x| < GROUP_MAX_EPS: ggml sets L = 0
  zero: vec4<bool>,
}

// Quants clamp(nearest_int(t), -nmax, nmax - 1) as floats. `exact`: ggml's
// bit-level nearest_int, for any t; otherwise round-half-even, which is the
// same while |t| < 2^22 and t is not NaN.
fn qx_levels4(t: vec4<f32>, nmax: f32, exact: bool) -> vec4<f32> {
  if (exact) { return vec4<f32>(clamp(nearest_int_bits4(t), vec4(-i32(nmax)), vec4(i32(nmax) - 1))); }
  return clamp(round(t), vec4(-nmax), vec4(nmax - 1.0));
}

// make_qx_quants' candidate search: the first pass (c = 0) and is = -9..-1,
// 1..9, keeping the candidate ggml keeps.
fn qx_search4(safe_max: vec4<f32>, nmax: f32, exact: bool) -> QxSearch {
  // Per-element constants of the weighted sums: w = x*x (or qw) and w*x.
  var w: array<vec4<f32>, 16>;
  var wx: array<vec4<f32>, 16>;
  for (var i = 0u; i < 16u; i = i + 1u) {
    if (WEIGHTED) {
      w[i] = qx_w[i];
    } else {
      w[i] = qx_x[i] * qx_x[i];
    }
    wx[i] = w[i] * qx_x[i];
  }
  var scale = vec4(0.0);
  var best = vec4(0.0);
  var best_iscale = vec4(0.0);
  // Candidate 0 is ggml's first pass; 1..18 are is = -9..-1, 1..9.
  for (var c = 0; c < 19; c = c + 1) {
    let is = select(c - 10, c - 9, c >= 10);
    let step = 0.1 * f32(is);
    var iscale = -(nmax + step) / safe_max;
    if (c == 0) { iscale = -nmax / safe_max; }
    var sumlx = vec4(0.0);
    var suml2 = vec4(0.0);
    for (var i = 0u; i < 16u; i = i + 1u) {
      let l = qx_levels4(iscale * qx_x[i], nmax, exact);
      let wxl = wx[i] * l;
      let wl = w[i] * l;
      let wll = wl * l;
      sumlx = sumlx + wxl;
      suml2 = suml2 + wll;
    }
    // Division by zero only on paths the selects discard.
    let s = sumlx / suml2;
    let s_lx = s * sumlx;
    if (c == 0) {
      // C's `suml2 ? sumlx / suml2 : 0`: a NaN suml2 divides (told from the bits)
      scale = select(vec4(0.0), s, (bitcast<vec4<u32>>(suml2) & vec4(0x7fffffffu)) != vec4(0u));
      best = scale * sumlx;
      best_iscale = iscale;
    } else {
      let lx_lx = sumlx * sumlx;
      let best_l2 = best * suml2;
      let better = (suml2 > vec4(0.0)) & (lx_lx > best_l2);
      scale = select(scale, s, better);
      best = select(best, s_lx, better);
      best_iscale = select(best_iscale, iscale, better);
    }
  }
  return QxSearch(scale, best_iscale, vec4(false));
}

// make_qx_quants(16, nmax, x, L, 1, NULL) for the four groups in qx_x.
fn make_qx_quants4(nmax: f32) -> QxSearch {
  let max = qx_signed_max4();
  let zero = abs(max) < vec4(GROUP_MAX_EPS);
  let safe_max = select(max, vec4(1.0), zero);
  // Two copies of the search, each with its level rule fixed: a finite value
  // gives |iscale * x| <= nmax + 1 (max is the largest |x|, and at least
  // GROUP_MAX_EPS), where round() is nearest_int; an Inf or NaN needs the bit
  // rule. Lavapipe runs a branch only when a lane takes it.
  var r: QxSearch;
  if (qx_all_finite()) {
    r = qx_search4(safe_max, nmax, false);
  } else {
    r = qx_search4(safe_max, nmax, true);
  }
  return QxSearch(select(r.scale, vec4(0.0), zero), r.iscale, zero);
}

// make_q3_quants(16, nmax, x, L, true) for the four groups in qx_x. Returns
// the scales and leaves in qx_q the quants l in [-nmax, nmax) (ggml stores
// l + nmax); an all-zero group gets scale 0 and l = -nmax (ggml's L = 0).
fn make_q3_quants4(nmax: f32) -> vec4<f32> {
  let max = qx_signed_max4();
  let zero = abs(max) < vec4(GROUP_MAX_EPS);
  let safe_max = select(max, vec4(1.0), zero);
  let lo = vec4(-nmax);
  let hi = vec4(nmax - 1.0);
  let iscale = -nmax / safe_max;
  var w: array<vec4<f32>, 16>;
  var wx: array<vec4<f32>, 16>;
  var sumlx = vec4(0.0);
  var suml2 = vec4(0.0);
  for (var i = 0u; i < 16u; i = i + 1u) {
    w[i] = qx_x[i] * qx_x[i];
    wx[i] = w[i] * qx_x[i];
    let l = clamp(vec4<f32>(nearest_int_bits4(iscale * qx_x[i])), lo, hi);
    qx_q[i] = l;
    let wxl = wx[i] * l;
    let wl = w[i] * l;
    let wll = wl * l;
    sumlx = sumlx + wxl;
    suml2 = suml2 + wll;
  }
  // ggml's coordinate descent: up to five passes, stopping after a pass that
  // changes nothing (a further pass would change nothing either). A NaN or an
  // overflowed sum fails every compare, as in ggml.
  for (var itry = 0; itry < 5; itry = itry + 1) {
    var changed = vec4(false);
    for (var i = 0u; i < 16u; i = i + 1u) {
      let l = qx_q[i];
      let wxl = wx[i] * l;
      let wl = w[i] * l;
      let wll = wl * l;
      let slx_without = sumlx - wxl;
      let sl2_without = suml2 - wll;
      // Garbage where slx_without <= 0; `take` discards it.
      let x_sl2 = qx_x[i] * sl2_without;
      let nl = clamp(vec4<f32>(nearest_int_bits4(x_sl2 / slx_without)), lo, hi);
      let wxnl = wx[i] * nl;
      let wnl = w[i] * nl;
      let wnll = wnl * nl;
      let slx = slx_without + wxnl;
      let sl2 = sl2_without + wnll;
      let take = (slx_without > vec4(0.0)) & (nl != l) & (sl2 > vec4(0.0)) &
                 ((slx * slx) * suml2 > (sumlx * sumlx) * sl2);
      qx_q[i] = select(l, nl, take);
      sumlx = select(sumlx, slx, take);
      suml2 = select(suml2, sl2, take);
      changed = changed | take;
    }
    if (!any(changed)) { break; }
  }
  for (var i = 0u; i < 16u; i = i + 1u) {
    qx_q[i] = select(qx_q[i], lo, zero);
  }
  return select(select(vec4(0.0), sumlx / suml2, suml2 > vec4(0.0)), vec4(0.0), zero);
}
