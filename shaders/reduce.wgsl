// Reductions over the last (inner) dim of a strided [outer..., inner] view:
// sum, prod, max, min, argmax, argmin and the sum of squared deviations from
// a per-row center (for var/std). Run by src/kernels/reduce.ts.
//
// The work is split into tasks: task t reduces segment t % K of row t / K
// (SEG elements of the inner dim) to one partial. K = 1 gives the final
// values; otherwise the host runs another pass over the [rows, K] partials.
// MODE 0: one invocation per task walks its segment in order (rows of few
// elements, strided inner dims). MODE 1: one workgroup per task, 256
// invocations stride through the segment and combine in workgroup memory,
// 16 partials at a time.
//
// Float sums are compensated (Kahan): each partial carries its rounding
// error, so long rows keep float32 accuracy instead of losing log2(n) bits.
// max/min propagate NaN; arg ops return the first index of the extreme value
// (NaN counting as extreme, as NumPy).

//#include lib/half.wgsl
//#include lib/grid.wgsl

override OP: u32 = 0u;
override IN_KIND: u32 = 0u;
override IN_BYTES: u32 = 4u;
// accumulator: 0 float32, 1 int32, 2 uint32
override ACC: u32 = 0u;
override MODE: u32 = 0u;
// 1: the input carries indices (a later pass of argmax/argmin)
override HAS_INDEX: u32 = 0u;
// on the final pass: 1 multiply by scale, 2 sqrt(value * scale)
override FINAL: u32 = 0u;

const SUM = 0u;
const MAX = 1u;
const MIN = 2u;
const ARGMAX = 3u;
const ARGMIN = 4u;
const SQDEV = 5u;
const PROD = 6u;

struct Params {
  tasks: u32,
  task0: u32,
  k: u32,
  seg: u32,
  inner: u32,
  // input position of element (row 0, index 0), relative to the bound window
  origin: u32,
  inner_stride: u32,
  outer_dims: u32,
  index_origin: u32,
  out_origin: u32,
  center_origin: u32,
  scale: f32,
  nan_bits: u32,
  inf_bits: u32,
  // always 0 (see opaque())
  zero: u32,
  _pad: u32,
  outer_shape: array<vec4<u32>, 4>,
  outer_stride: array<vec4<u32>, 4>,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read> src_index: array<u32>;
@group(0) @binding(2) var<storage, read> center: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<u32>;
@group(0) @binding(4) var<storage, read_write> dst_index: array<u32>;
@group(0) @binding(5) var<uniform> params: Params;

struct Acc {
  // float32 bits or 32-bit integer bits
  v: u32,
  // Kahan compensation of a float sum (true sum = v - c)
  c: f32,
  idx: u32,
}

fn is_nan_bits(b: u32) -> bool {
  return (b & 0x7fffffffu) > 0x7f800000u;
}

fn width_mask() -> u32 {
  return select(0xffffffffu, (1u << ((IN_BYTES * 8u) & 31u)) - 1u, IN_BYTES < 4u);
}

fn load_raw(p: u32) -> u32 {
  if (IN_BYTES == 4u) { return src[p]; }
  let byte = p * IN_BYTES;
  return (src[byte >> 2u] >> ((byte & 3u) * 8u)) & width_mask();
}

fn to_f32(raw: u32) -> f32 {
  switch (IN_KIND) {
    case 0u: { return bitcast<f32>(raw); }
    case 1u: { return f16_bits_to_f32(raw); }
    case 2u: { return bf16_bits_to_f32(raw); }
    case 3u: {
      let s = (32u - IN_BYTES * 8u) & 31u;
      return f32(bitcast<i32>(raw << s) >> s);
    }
    default: { return f32(raw); }
  }
}

fn to_int(raw: u32) -> u32 {
  if (IN_KIND == 3u) {
    let s = (32u - IN_BYTES * 8u) & 31u;
    return bitcast<u32>(bitcast<i32>(raw << s) >> s);
  }
  return raw;
}

fn init() -> Acc {
  var a = Acc(0u, 0.0, 0xffffffffu);
  let neg_inf = params.inf_bits | 0x80000000u;
  if (OP == PROD) { a.v = select(1u, 0x3f800000u, ACC == 0u); }
  if (OP == MAX || OP == ARGMAX) { a.v = select(select(0u, 0x80000000u, ACC == 1u), neg_inf, ACC == 0u); }
  if (OP == MIN || OP == ARGMIN) { a.v = select(select(0xffffffffu, 0x7fffffffu, ACC == 1u), params.inf_bits, ACC == 0u); }
  return a;
}

// x, hidden from the shader compiler: drivers may rewrite float arithmetic
// algebraically ((s + y) - s -> y), which would cancel Kahan's compensation.
// XOR with a uniform that holds 0 keeps the value and stops the rewrite.
fn opaque(x: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(x) ^ params.zero);
}

fn kahan(a: Acc, x: f32) -> Acc {
  let s = bitcast<f32>(a.v);
  let y = x - a.c;
  let t = opaque(s + y);
  return Acc(bitcast<u32>(t), (t - s) - y, a.idx);
}

// True when value x (index i) should replace the extreme a for max (want_max) or min.
fn better(a: Acc, x: u32, i: u32, want_max: bool) -> bool {
  if (ACC == 0u) {
    let an = is_nan_bits(a.v);
    let xn = is_nan_bits(x);
    if (an || xn) { return xn && (!an || i < a.idx); }
    let fa = bitcast<f32>(a.v);
    let fx = bitcast<f32>(x);
    if (fx == fa) { return i < a.idx; }
    return select((fx < fa), (fx > fa), want_max);
  }
  if (x == a.v) { return i < a.idx; }
  if (ACC == 1u) {
    let xi = bitcast<i32>(x);
    let ai = bitcast<i32>(a.v);
    return select((xi < ai), (xi > ai), want_max); }
  return select((x < a.v), (x > a.v), want_max);
}

// Adds value x (accumulator bits; for SQDEV already squared) with index i.
fn add(a: Acc, x: u32, i: u32) -> Acc {
  switch (OP) {
    case 0u, 5u: {
      if (ACC == 0u) { return kahan(a, bitcast<f32>(x)); }
      return Acc(a.v + x, 0.0, a.idx);
    }
    case 6u: {
      if (ACC == 0u) { return Acc(bitcast<u32>(bitcast<f32>(a.v) * bitcast<f32>(x)), 0.0, a.idx); }
      return Acc(a.v * x, 0.0, a.idx);
    }
    default: {
      if (better(a, x, i, OP == MAX || OP == ARGMAX)) { return Acc(x, 0.0, i); }
      return a;
    }
  }
}

fn merge(a: Acc, b: Acc) -> Acc {
  if ((OP == SUM || OP == SQDEV) && ACC == 0u) {
    return kahan(kahan(a, bitcast<f32>(b.v)), -b.c);
  }
  return add(a, b.v, b.idx);
}

fn outer_position(row: u32) -> u32 {
  var rem = row;
  var p = 0u;
  for (var k = params.outer_dims; k > 0u; k = k - 1u) {
    let d = k - 1u;
    let n = params.outer_shape[d >> 2u][d & 3u];
    p = p + (rem % n) * params.outer_stride[d >> 2u][d & 3u];
    rem = rem / n;
  }
  return p;
}

// Element i of the row at input position `base`, as accumulator bits.
fn element(base: u32, row: u32, i: u32) -> u32 {
  let raw = load_raw(base + i * params.inner_stride);
  if (OP == SQDEV) {
    let d = to_f32(raw) - center[params.center_origin + row];
    return bitcast<u32>(d * d);
  }
  if (ACC == 0u) { return bitcast<u32>(to_f32(raw)); }
  return to_int(raw);
}

fn element_index(base: u32, i: u32) -> u32 {
  if (HAS_INDEX == 1u) { return src_index[params.index_origin + (base - params.origin) + i * params.inner_stride]; }
  return i;
}

fn write(local_task: u32, a: Acc) {
  var v = a.v;
  if (ACC == 0u && (OP == SUM || OP == SQDEV)) {
    var f = bitcast<f32>(a.v) - a.c;
    if (params.k == 1u && FINAL >= 1u) { f = f * params.scale; }
    if (params.k == 1u && FINAL == 2u) { f = sqrt(f); }
    v = bitcast<u32>(f);
  }
  dst[params.out_origin + local_task] = v;
  if (OP == ARGMAX || OP == ARGMIN) { dst_index[params.out_origin + local_task] = a.idx; }
}

// MODE 0: one invocation per task.
@compute @workgroup_size(256)
fn per_thread(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let local_task = linear_index(wid, nwg, lid);
  if (local_task >= params.tasks) { return; }
  let task = params.task0 + local_task;
  let row = task / params.k;
  let start = (task % params.k) * params.seg;
  let end = min(params.inner, start + params.seg);
  let base = params.origin + outer_position(row);
  var a = init();
  for (var i = start; i < end; i = i + 1u) {
    a = add(a, element(base, row, i), element_index(base, i));
  }
  write(local_task, a);
}

var<workgroup> shared_v: array<u32, 256>;
var<workgroup> shared_c: array<f32, 256>;
var<workgroup> shared_i: array<u32, 256>;

// MODE 1: one workgroup per task.
@compute @workgroup_size(256)
fn per_workgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let local_task = wid.y * nwg.x + wid.x;
  if (local_task >= params.tasks) { return; }
  let task = params.task0 + local_task;
  let row = task / params.k;
  let start = (task % params.k) * params.seg;
  let end = min(params.inner, start + params.seg);
  let base = params.origin + outer_position(row);
  var a = init();
  for (var i = start + lid; i < end; i = i + 256u) {
    a = add(a, element(base, row, i), element_index(base, i));
  }
  shared_v[lid] = a.v;
  shared_c[lid] = a.c;
  shared_i[lid] = a.idx;
  workgroupBarrier();
  // Two levels of 16-way merges: few barriers (each is costly on CPU
  // implementations), and partials combined in index order.
  if (lid < 16u) {
    var m = Acc(shared_v[lid * 16u], shared_c[lid * 16u], shared_i[lid * 16u]);
    for (var j = 1u; j < 16u; j = j + 1u) {
      let k = lid * 16u + j;
      m = merge(m, Acc(shared_v[k], shared_c[k], shared_i[k]));
    }
    shared_v[lid * 16u] = m.v;
    shared_c[lid * 16u] = m.c;
    shared_i[lid * 16u] = m.idx;
  }
  workgroupBarrier();
  if (lid == 0u) {
    var m = Acc(shared_v[0], shared_c[0], shared_i[0]);
    for (var j = 1u; j < 16u; j = j + 1u) {
      m = merge(m, Acc(shared_v[j * 16u], shared_c[j * 16u], shared_i[j * 16u]));
    }
    write(local_task, m);
  }
}
