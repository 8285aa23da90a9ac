// ggml's scale searches for one group of 16 values of the symmetric k-quants
// (Q3_K, Q6_K): make_qx_quants (rmse_type 1, no importance weights) and
// make_q3_quants (do_rmse), in ggml's float32 order of operations, with
// ggml's bit-level nearest_int. CPU twin: src/quant/formats/kquant-qx.ts.
//
// Control flow is uniform across invocations (decisions are selects), so a
// SIMD implementation runs the invocations of a workgroup as vector lanes.
// Group values live in private arrays indexed only by loop counters with
// constant bounds.

// ggml's GROUP_MAX_EPS (1e-15f).
const GROUP_MAX_EPS: f32 = 1e-15;

// ggml's nearest_int exactly as its bits compute it: add 1.5 * 2^23 in
// float32, keep the low 23 bits. Round half to even for |x| <= 4194303;
// beyond that (or for Inf) the same wrapped integer ggml gets.
fn nearest_int_bits(x: f32) -> i32 {
  return (bitcast<i32>(x + 12582912.0) & 0x7fffff) - 0x400000;
}

// The group being quantized and its quants (as exact small integers in f32).
var<private> qx_x: array<f32, 16>;
var<private> qx_q: array<f32, 16>;

// Largest-magnitude value of qx_x (the first, on ties), as ggml's loop finds it.
fn qx_signed_max() -> f32 {
  var amax = 0.0;
  var max = 0.0;
  for (var i = 0u; i < 16u; i = i + 1u) {
    let ax = abs(qx_x[i]);
    let more = ax > amax;
    amax = select(amax, ax, more);
    max = select(max, qx_x[i], more);
  }
  return max;
}

// True when a group's largest |x| is below GROUP_MAX_EPS (all zero to ggml).
fn qx_is_zero(max: f32) -> bool {
  return abs(max) < GROUP_MAX_EPS;
}

// make_qx_quants(16, nmax, x, L, 1, NULL). Returns the scale and leaves in
// qx_q the quants l in [-nmax, nmax) of the chosen candidate (ggml stores
// l + nmax); an all-zero group returns 0 with qx_q = -nmax (ggml's L = 0).
fn make_qx_quants(nmax: f32) -> f32 {
  let max = qx_signed_max();
  let zero = qx_is_zero(max);
  let safe_max = select(max, 1.0, zero);
  // Per-element constants of the weighted sums: w = x*x and w*x.
  var w: array<f32, 16>;
  var wx: array<f32, 16>;
  for (var i = 0u; i < 16u; i = i + 1u) {
    w[i] = qx_x[i] * qx_x[i];
    wx[i] = w[i] * qx_x[i];
  }
  var scale = 0.0;
  var best = 0.0;
  var best_iscale = 0.0;
  // Candidate 0 is ggml's first pass (is = 0); 1..18 are is = -9..-1, 1..9.
  for (var c = 0; c < 19; c = c + 1) {
    let is = select(c - 10, c - 9, c >= 10);
    let iscale = select(-(nmax + 0.1 * f32(is)) / safe_max, -nmax / safe_max, c == 0);
    var sumlx = 0.0;
    var suml2 = 0.0;
    for (var i = 0u; i < 16u; i = i + 1u) {
      // |iscale * x| <= nmax + 1: round() is nearest_int's round half to even here.
      let l = clamp(round(iscale * qx_x[i]), -nmax, nmax - 1.0);
      sumlx = sumlx + wx[i] * l;
      suml2 = suml2 + (w[i] * l) * l;
    }
    // Division by zero only on paths the selects discard.
    let s = sumlx / suml2;
    if (c == 0) {
      scale = select(0.0, s, suml2 != 0.0);
      best = scale * sumlx;
      best_iscale = iscale;
    } else {
      let better = suml2 > 0.0 && sumlx * sumlx > best * suml2;
      scale = select(scale, s, better);
      best = select(best, s * sumlx, better);
      best_iscale = select(best_iscale, iscale, better);
    }
  }
  for (var i = 0u; i < 16u; i = i + 1u) {
    qx_q[i] = select(clamp(round(best_iscale * qx_x[i]), -nmax, nmax - 1.0), -nmax, zero);
  }
  return select(scale, 0.0, zero);
}

// make_q3_quants(16, nmax, x, L, true). Returns the scale and leaves in qx_q
// the quants l in [-nmax, nmax) (ggml stores l + nmax); an all-zero group
// returns 0 with qx_q = -nmax (ggml's L = 0).
fn make_q3_quants(nmax: i32) -> f32 {
  let max = qx_signed_max();
  let zero = qx_is_zero(max);
  let safe_max = select(max, 1.0, zero);
  let lo = f32(-nmax);
  let hi = f32(nmax - 1);
  let iscale = -f32(nmax) / safe_max;
  var w: array<f32, 16>;
  var wx: array<f32, 16>;
  var sumlx = 0.0;
  var suml2 = 0.0;
  for (var i = 0u; i < 16u; i = i + 1u) {
    w[i] = qx_x[i] * qx_x[i];
    wx[i] = w[i] * qx_x[i];
    let l = clamp(f32(nearest_int_bits(iscale * qx_x[i])), lo, hi);
    qx_q[i] = l;
    sumlx = sumlx + wx[i] * l;
    suml2 = suml2 + (w[i] * l) * l;
  }
  // ggml stops after a pass that changes nothing; a further pass would change
  // nothing either, so all five passes run and control flow stays uniform.
  for (var itry = 0; itry < 5; itry = itry + 1) {
    for (var i = 0u; i < 16u; i = i + 1u) {
      let l = qx_q[i];
      let slx_without = sumlx - wx[i] * l;
      let sl2_without = suml2 - (w[i] * l) * l;
      // Garbage where slx_without <= 0; `take` discards it.
      let nl = clamp(f32(nearest_int_bits(qx_x[i] * sl2_without / slx_without)), lo, hi);
      let slx = slx_without + wx[i] * nl;
      let sl2 = sl2_without + (w[i] * nl) * nl;
      let take = slx_without > 0.0 && nl != l && sl2 > 0.0 &&
                 (slx * slx) * suml2 > (sumlx * sumlx) * sl2;
      qx_q[i] = select(l, nl, take);
      sumlx = select(sumlx, slx, take);
      suml2 = select(suml2, sl2, take);
    }
  }
  for (var i = 0u; i < 16u; i = i + 1u) {
    qx_q[i] = select(qx_q[i], lo, zero);
  }
  return select(select(0.0, sumlx / suml2, suml2 > 0.0), 0.0, zero);
}
