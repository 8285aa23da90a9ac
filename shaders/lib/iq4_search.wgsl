// The scale search of ggml's quantize_row_iq4_nl_impl (no importance matrix,
// ntry 7), shared by shaders/quant/iq4_nl.wgsl and iq4_xs.wgsl, in ggml's float32
// order of operations. Needs lib/legacy_quant.wgsl.
//
// best_index_int8 over kvalues_iq4nl picks level k + 1 over level k exactly when
// x >= (kvalues[k] + kvalues[k + 1]) / 2: its float comparison
// `x - val[mu-1] < val[mu] - x` never rounds across a midpoint (checked
// exhaustively around every midpoint). So the level is a count of midpoints,
// which vectorises, where ggml's binary search would branch.

const IQ4_MIDS = array<f32, 15>(-115.5, -93.5, -74.0, -57.0, -42.0, -28.5, -16.0, -4.5,
                                7.0, 19.0, 31.5, 45.5, 61.0, 79.0, 101.0);
// kvalues_iq4nl[k + 1] - kvalues_iq4nl[k]
const IQ4_STEPS = array<f32, 15>(23.0, 21.0, 18.0, 16.0, 14.0, 13.0, 12.0, 11.0,
                                 12.0, 12.0, 13.0, 15.0, 16.0, 20.0, 24.0);
const IQ4_VALUES = array<f32, 16>(-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
                                  1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
// GROUP_MAX_EPS, 1e-15f, as bits
const IQ4_EPS_BITS: u32 = 0x26901d7du;

// kvalues_iq4nl[best_index_int8(x)] of four values (finite).
fn iq4_level4(x: vec4<f32>) -> vec4<f32> {
  var q = vec4<f32>(-127.0);
  for (var k = 0u; k < 15u; k = k + 1u) {
    q = q + select(vec4<f32>(0.0), vec4<f32>(IQ4_STEPS[k]), x >= vec4<f32>(IQ4_MIDS[k]));
  }
  return q;
}

// best_index_int8(16, kvalues_iq4nl, x) of four values (finite).
fn iq4_index4(x: vec4<f32>) -> vec4<u32> {
  var n = vec4<u32>(0u);
  for (var k = 0u; k < 15u; k = k + 1u) {
    n = n + select(vec4<u32>(0u), vec4<u32>(1u), x >= vec4<f32>(IQ4_MIDS[k]));
  }
  return n;
}

// Running sums of four candidate grids (one per component).
struct Fit4 {
  sumqx: vec4<f32>,
  sumq2: vec4<f32>,
}

// One element x of the block, in order: al = id * x, q = level, w = x * x,
// sumqx += w * q * x, sumq2 += w * q * q.
fn iq4_fit1(f: Fit4, x: f32, ids: vec4<f32>) -> Fit4 {
  let q = iq4_level4(ids * x);
  let wq = (x * x) * q;
  return Fit4(f.sumqx + wq * x, f.sumq2 + wq * q);
}

fn iq4_fit_vec(f: Fit4, x: vec4<f32>, ids: vec4<f32>) -> Fit4 {
  return iq4_fit1(iq4_fit1(iq4_fit1(iq4_fit1(f, x.x, ids), x.y, ids), x.z, ids), x.w, ids);
}

// The least-squares sums of four candidate grids 1 / ids over the block.
fn iq4_fit4(b: Block32, ids: vec4<f32>) -> Fit4 {
  var f = Fit4(vec4<f32>(0.0), vec4<f32>(0.0));
  f = iq4_fit_vec(f, b.x0, ids);
  f = iq4_fit_vec(f, b.x1, ids);
  f = iq4_fit_vec(f, b.x2, ids);
  f = iq4_fit_vec(f, b.x3, ids);
  f = iq4_fit_vec(f, b.x4, ids);
  f = iq4_fit_vec(f, b.x5, ids);
  f = iq4_fit_vec(f, b.x6, ids);
  f = iq4_fit_vec(f, b.x7, ids);
  return f;
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

// quantize_row_iq4_nl_impl's scale for one finite block of 32 whose largest |x| bits are
// `amax`: the least-squares scale of the best of 16 candidate grids; 0 below GROUP_MAX_EPS.
fn iq4_scale32(b: Block32, amax: u32) -> f32 {
  if (amax < IQ4_EPS_BITS) { return 0.0; }
  let mx = signed_abs_max32(b, amax);
  var r = Best(0.0, 0.0);
  // Four grids a pass, in ggml's order: first 1 / (max / 127) (ggml: d = -max / values[0],
  // id = 1 / d), the starting point; then (itry + values[0]) / max for itry = -7..7.
  // One call site in a rolled loop keeps the shader small enough to compile quickly.
  for (var g = 0u; g < opaque(4u); g = g + 1u) {
    var ids = (vec4<f32>(f32(4u * g)) + vec4<f32>(-135.0, -134.0, -133.0, -132.0)) / mx;
    if (g == 0u) { ids.x = 1.0 / (-mx / -127.0); }
    var f = iq4_fit4(b, ids);
    if (g == 0u) {
      r.d = select(0.0, f.sumqx.x / f.sumq2.x, f.sumq2.x > 0.0);
      r.best = r.d * f.sumqx.x;
      f.sumq2.x = 0.0; // the starting point is not a candidate
    }
    r = iq4_better4(r, f);
  }
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
