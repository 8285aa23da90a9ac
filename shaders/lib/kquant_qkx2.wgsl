// ggml's make_qkx2_quants for one sub-block, per invocation: the shared core of
// Q2_K, Q4_K and Q5_K (shaders/quant/q{2,4,5}_K.wgsl). CPU twin and the
// algorithm in words: src/quant/formats/kquant-qkx2.ts.
//
// The including shader defines (WGSL declarations are order-free):
//   const QKX2_V: u32      sub-block size / 4 (its values sit in vec4s)
//   const QKX2_NMAX: f32   highest level (3, 15, 31)
//   const QKX2_RMIN: f32   first candidate's offset from NMAX (-0.5, -1.0)
//   const QKX2_NSTEP: u32  candidates after the first: NSTEP + 1 of them
//   const QKX2_MAD: bool   weigh |error| (true) or error^2 (false)
// and fills qx_x (values) and qx_w (weights) before calling make_qkx2().
//
// Exactness: every float operation is ggml's, in its order, one rounding each
// (lavapipe does not fuse a*b+c: gallivm lowers ffma). Sums run in element
// order. Levels use round-half-even, which equals ggml's nearest_int while
// |t| < 2^22; a candidate whose products could leave that range takes the
// bit-exact nearest_int instead.

var<private> qx_x: array<vec4<f32>, QKX2_V>;
var<private> qx_w: array<vec4<f32>, QKX2_V>;

const QKX2_RDELTA: f32 = 0.1;

struct Qkx2 {
  // ggml's return value and *the_min
  scale: f32,
  the_min: f32,
  // the chosen levels are clamp(nearest_int(lscale * (x - lmin)), 0, NMAX)
  lscale: f32,
  lmin: f32,
}

// ggml's nearest_int for any float: add 1.5 * 2^23, keep the low mantissa bits.
fn ggml_nearest_int(x: f32) -> i32 {
  return (bitcast<i32>(x + 12582912.0) & 0x007fffff) - 0x00400000;
}

fn ggml_nearest_int4(x: vec4<f32>) -> vec4<i32> {
  return (bitcast<vec4<i32>>(x + vec4<f32>(12582912.0)) & vec4<i32>(0x007fffff)) - vec4<i32>(0x00400000);
}

// Levels of t = iscale * (x - min), bit-exact for any t.
fn qkx2_levels_exact(t: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(clamp(ggml_nearest_int4(t), vec4<i32>(0), vec4<i32>(i32(QKX2_NMAX))));
}

// The same where |t| < 2^22 is known.
fn qkx2_levels_fast(t: vec4<f32>) -> vec4<f32> {
  return clamp(round(t), vec4<f32>(0.0), vec4<f32>(QKX2_NMAX));
}

fn qkx2_err(diff: vec4<f32>) -> vec4<f32> {
  if (QKX2_MAD) { return abs(diff); }
  return diff * diff;
}

// Weighted error of levels l against x with this scale and offset, summed in order.
fn qkx2_add_error(acc: f32, scale: f32, min: f32, l: vec4<f32>, x: vec4<f32>, w: vec4<f32>) -> f32 {
  let e = w * qkx2_err(scale * l + min - x);
  return (((acc + e.x) + e.y) + e.z) + e.w;
}

fn make_qkx2() -> Qkx2 {
  var mn = qx_x[0].x;
  var mx = mn;
  let w0 = qx_w[0].x;
  var sum_w = w0;
  var sum_x = w0 * mn;
  for (var k = 0u; k < QKX2_V; k = k + 1u) {
    let x = qx_x[k];
    let w = qx_w[k];
    let wx = w * x;
    // element 0 seeded the sums; ggml's loop starts at 1
    if (k != 0u) {
      mn = select(mn, x.x, x.x < mn);
      mx = select(mx, x.x, x.x > mx);
      sum_w = sum_w + w.x;
      sum_x = sum_x + wx.x;
    }
    mn = select(mn, x.y, x.y < mn);
    mx = select(mx, x.y, x.y > mx);
    mn = select(mn, x.z, x.z < mn);
    mx = select(mx, x.z, x.z > mx);
    mn = select(mn, x.w, x.w < mn);
    mx = select(mx, x.w, x.w > mx);
    sum_w = ((sum_w + w.y) + w.z) + w.w;
    sum_x = ((sum_x + wx.y) + wx.z) + wx.w;
  }
  let xmin = mn;
  if (mn > 0.0) { mn = 0.0; }
  if (mx == mn) { return Qkx2(0.0, -mn, 0.0, mn); }

  var iscale = QKX2_NMAX / (mx - mn);
  var scale = 1.0 / iscale;
  var r = Qkx2(scale, 0.0, iscale, mn);
  var best_error = 0.0;
  for (var k = 0u; k < QKX2_V; k = k + 1u) {
    let x = qx_x[k];
    let l = qkx2_levels_exact(iscale * (x - mn));
    best_error = qkx2_add_error(best_error, scale, mn, l, x, qx_w[k]);
  }

  for (var is = 0u; is <= QKX2_NSTEP; is = is + 1u) {
    // mn is the best candidate's offset so far: later candidates scale from it
    iscale = (QKX2_RMIN + QKX2_RDELTA * f32(is) + QKX2_NMAX) / (mx - mn);
    // |x - mn| <= bound for every x of the sub-block, so |t| <= |iscale| * bound
    let bound = abs(iscale) * max(abs(mx - mn), abs(mn - xmin));
    let fast = (bitcast<u32>(bound) & 0x7fffffffu) < 0x4a800000u; // < 2^22, not NaN

    var sum_l = 0.0;
    var sum_l2 = 0.0;
    var sum_xl = 0.0;
    if (fast) {
      for (var k = 0u; k < QKX2_V; k = k + 1u) {
        let x = qx_x[k];
        let l = qkx2_levels_fast(iscale * (x - mn));
        let wl = qx_w[k] * l;
        let wl2 = wl * l;
        let wlx = wl * x;
        sum_l = (((sum_l + wl.x) + wl.y) + wl.z) + wl.w;
        sum_l2 = (((sum_l2 + wl2.x) + wl2.y) + wl2.z) + wl2.w;
        sum_xl = (((sum_xl + wlx.x) + wlx.y) + wlx.z) + wlx.w;
      }
    } else {
      for (var k = 0u; k < QKX2_V; k = k + 1u) {
        let x = qx_x[k];
        let l = qkx2_levels_exact(iscale * (x - mn));
        let wl = qx_w[k] * l;
        let wl2 = wl * l;
        let wlx = wl * x;
        sum_l = (((sum_l + wl.x) + wl.y) + wl.z) + wl.w;
        sum_l2 = (((sum_l2 + wl2.x) + wl2.y) + wl2.z) + wl2.w;
        sum_xl = (((sum_xl + wlx.x) + wlx.y) + wlx.z) + wlx.w;
      }
    }
    let D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0.0) {
      var this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      var this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0.0) {
        this_min = 0.0;
        this_scale = sum_xl / sum_l2;
      }
      var cur_error = 0.0;
      if (fast) {
        for (var k = 0u; k < QKX2_V; k = k + 1u) {
          let x = qx_x[k];
          let l = qkx2_levels_fast(iscale * (x - mn));
          cur_error = qkx2_add_error(cur_error, this_scale, this_min, l, x, qx_w[k]);
        }
      } else {
        for (var k = 0u; k < QKX2_V; k = k + 1u) {
          let x = qx_x[k];
          let l = qkx2_levels_exact(iscale * (x - mn));
          cur_error = qkx2_add_error(cur_error, this_scale, this_min, l, x, qx_w[k]);
        }
      }
      if (cur_error < best_error) {
        best_error = cur_error;
        r = Qkx2(this_scale, 0.0, iscale, mn);
        mn = this_min;
      }
    }
  }
  r.the_min = -mn;
  return r;
}

// Level of value x in the sub-block make_qkx2() returned r for (before requantization).
fn qkx2_level(r: Qkx2, x: f32) -> u32 {
  return u32(clamp(ggml_nearest_int(r.lscale * (x - r.lmin)), 0, i32(QKX2_NMAX)));
}
