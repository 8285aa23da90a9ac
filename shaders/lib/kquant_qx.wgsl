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

// ggml's GROUP_MAX_EPS (1e-15f).
const GROUP_MAX_EPS: f32 = 1e-15;

// ggml's nearest_int exactly as its bits compute it: add 1.5 * 2^23 in
// float32, keep the low 23 bits. Round half to even for |x| <= 4194303;
// beyond that (or for Inf) the same wrapped integer ggml gets.
fn nearest_int_bits(x: f32) -> i32 {
  return (bitcast<i32>(x + 12582912.0) & 0x7fffff) - 0x400000;
}

fn nearest_int_bits4(x: vec4<f32>) -> vec4<i32> {
  return (bitcast<vec4<i32>>(x + vec4(12582912.0)) & vec4(0x7fffff)) - vec4(0x400000);
}

// The 16 values of four groups (component c: group c) and, after
// make_q3_quants4, their quants.
var<private> qx_x: array<vec4<f32>, 16>;
var<private> qx_q: array<vec4<f32>, 16>;

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

struct QxSearch {
  // the scale ggml returns (0 for an all-zero group)
  scale: vec4<f32>,
  // the inverse scale whose quants ggml keeps: L = nmax + clamp(nearest_int(iscale * x));
  // 0 marks an all-zero group, whose L ggml sets to 0
  iscale: vec4<f32>,
}

// make_qx_quants(16, nmax, x, L, 1, NULL) for the four groups in qx_x.
fn make_qx_quants4(nmax: f32) -> QxSearch {
  let max = qx_signed_max4();
  let zero = abs(max) < vec4(GROUP_MAX_EPS);
  let safe_max = select(max, vec4(1.0), zero);
  // Per-element constants of the weighted sums: w = x*x and w*x.
  var w: array<vec4<f32>, 16>;
  var wx: array<vec4<f32>, 16>;
  for (var i = 0u; i < 16u; i = i + 1u) {
    w[i] = qx_x[i] * qx_x[i];
    wx[i] = w[i] * qx_x[i];
  }
  var scale = vec4(0.0);
  var best = vec4(0.0);
  var best_iscale = vec4(0.0);
  // Candidate 0 is ggml's first pass; 1..18 are is = -9..-1, 1..9.
  for (var c = 0; c < 19; c = c + 1) {
    let is = select(c - 10, c - 9, c >= 10);
    var iscale = -(nmax + 0.1 * f32(is)) / safe_max;
    if (c == 0) { iscale = -nmax / safe_max; }
    var sumlx = vec4(0.0);
    var suml2 = vec4(0.0);
    for (var i = 0u; i < 16u; i = i + 1u) {
      // |iscale * x| <= nmax + 1: round() is nearest_int's round half to even here.
      let l = clamp(round(iscale * qx_x[i]), vec4(-nmax), vec4(nmax - 1.0));
      sumlx = sumlx + wx[i] * l;
      suml2 = suml2 + (w[i] * l) * l;
    }
    // Division by zero only on paths the selects discard.
    let s = sumlx / suml2;
    if (c == 0) {
      scale = select(vec4(0.0), s, suml2 != vec4(0.0));
      best = scale * sumlx;
      best_iscale = iscale;
    } else {
      let better = (suml2 > vec4(0.0)) & (sumlx * sumlx > best * suml2);
      scale = select(scale, s, better);
      best = select(best, s * sumlx, better);
      best_iscale = select(best_iscale, iscale, better);
    }
  }
  return QxSearch(select(scale, vec4(0.0), zero), select(best_iscale, vec4(0.0), zero));
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
    sumlx = sumlx + wx[i] * l;
    suml2 = suml2 + (w[i] * l) * l;
  }
  // ggml's coordinate descent: up to five passes, stopping after a pass that
  // changes nothing (a further pass would change nothing either).
  for (var itry = 0; itry < 5; itry = itry + 1) {
    var changed = vec4(false);
    for (var i = 0u; i < 16u; i = i + 1u) {
      let l = qx_q[i];
      let slx_without = sumlx - wx[i] * l;
      let sl2_without = suml2 - (w[i] * l) * l;
      // Garbage where slx_without <= 0; `take` discards it.
      let nl = clamp(vec4<f32>(nearest_int_bits4(qx_x[i] * sl2_without / slx_without)), lo, hi);
      let slx = slx_without + wx[i] * nl;
      let sl2 = sl2_without + (w[i] * nl) * nl;
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
