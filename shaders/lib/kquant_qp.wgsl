// ggml's make_qp_quants(n, nmax, x, L, quant_weights): the importance-matrix
// paths' search for the super-block scale of the sub-block scales or mins
// (Q2_K: 16 of them, nmax 15; Q4_K, Q5_K: 8, nmax 63). CPU twin:
// makeQpQuants in src/quant/formats/kquant-weighted.ts; the same float32
// operations in the same order, one rounding each (every product that feeds a
// sum or a compare is a `let` of its own). Levels are C's uint8_t: a negative
// nearest_int wraps to 8 bits where ggml stores it and stays signed where ggml
// computes with it. Loops stay rolled over private arrays (qp_*), called from
// one site: lavapipe compiles every inlined copy. Needs ggml_nearest_int
// (lib/kquant_qkx2.wgsl) and opaque bounds from qparams.

var<private> qp_x: array<f32, 16>;
var<private> qp_w: array<f32, 16>;
// The chosen levels, as the uint8_t ggml stores.
var<private> qp_l: array<u32, 16>;

// C's MIN(nmax, l), l an int.
fn qp_min(nmax: f32, l: i32) -> i32 {
  return min(i32(nmax), l);
}

// qp_x[0..n), weights qp_w: returns the scale, levels in qp_l.
fn make_qp(n: u32, nmax: f32) -> f32 {
  var mx = 0.0;
  for (var i = 0u; i < n; i = i + 1u) { mx = select(qp_x[i], mx, mx > qp_x[i]); } // MAX(max, x[i])
  if (mx < 1e-15) { // GROUP_MAX_EPS
    for (var i = 0u; i < n; i = i + 1u) { qp_l[i] = 0u; }
    return 0.0;
  }
  var iscale = nmax / mx;
  for (var i = 0u; i < n; i = i + 1u) {
    let t = iscale * qp_x[i];
    qp_l[i] = u32(ggml_nearest_int(t)) & 0xffu;
  }
  let scale = 1.0 / iscale;
  var best_mse = 0.0;
  for (var i = 0u; i < n; i = i + 1u) {
    let sl = scale * f32(qp_l[i]);
    let diff = qp_x[i] - sl;
    let wd = qp_w[i] * diff;
    let e = wd * diff;
    best_mse = best_mse + e;
  }
  for (var k = 0u; k < 8u; k = k + 1u) {
    let is = select(i32(k) - 4, i32(k) - 3, k >= 4u); // -4..-1, 1..4
    let tenth = 0.1 * f32(is);
    let iscale_is = (tenth + nmax) / mx;
    let scale_is = 1.0 / iscale_is;
    var mse = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
      let t = iscale_is * qp_x[i];
      let l = qp_min(nmax, ggml_nearest_int(t));
      let sl = scale_is * f32(l);
      let diff = qp_x[i] - sl;
      let wd = qp_w[i] * diff;
      let e = wd * diff;
      mse = mse + e;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  var sumlx = 0.0;
  var suml2 = 0.0;
  for (var i = 0u; i < n; i = i + 1u) {
    let t = iscale * qp_x[i];
    let l = qp_min(nmax, ggml_nearest_int(t));
    qp_l[i] = u32(l) & 0xffu;
    let w = qp_w[i];
    let wx = w * qp_x[i];
    let wxl = wx * f32(l);
    sumlx = sumlx + wxl;
    let wl = w * f32(l);
    let wll = wl * f32(l);
    suml2 = suml2 + wll;
  }
  for (var itry = 0u; itry < 5u; itry = itry + 1u) {
    var changed = false;
    for (var i = 0u; i < n; i = i + 1u) {
      let w = qp_w[i];
      let x = qp_x[i];
      let li = f32(qp_l[i]);
      let wx = w * x;
      let wxl = wx * li;
      var slx = sumlx - wxl;
      let wl = w * li;
      let wll = wl * li;
      var sl2 = suml2 - wll;
      if (slx > 0.0 && sl2 > 0.0) {
        let xs = x * sl2;
        let new_l = qp_min(nmax, ggml_nearest_int(xs / slx));
        if (new_l != i32(qp_l[i])) {
          let wxn = wx * f32(new_l);
          slx = slx + wxn;
          let wn = w * f32(new_l);
          let wnn = wn * f32(new_l);
          sl2 = sl2 + wnn;
          let a = slx * slx;
          let lhs = a * suml2;
          let c = sumlx * sumlx;
          let rhs = c * sl2;
          if (lhs > rhs) {
            qp_l[i] = u32(new_l) & 0xffu;
            sumlx = slx;
            suml2 = sl2;
            changed = true;
          }
        }
      }
    }
    if (!changed) { break; }
  }
  return select(0.0, sumlx / suml2, suml2 > 0.0);
}
