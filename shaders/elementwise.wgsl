// Elementwise ops with broadcasting: unary, binary, comparisons and where.
// Run by src/kernels/elementwise.ts.
//
// Up to three operands (in0, in1, in2), each an array read through strides
// (zero along broadcast dims) or a scalar held in params. Operands of any
// computed dtype (and bool) are converted to the compute type CK (0 float32,
// 1 int32, 2 uint32); float16/bfloat16 compute in float32 and the result is
// rounded once to the output dtype. One invocation computes four consecutive
// output elements and writes their whole words.
//
// Kinds: 0 float32, 1 float16, 2 bfloat16, 3 signed int, 4 unsigned int, 5 bool.
// Special float values are recognised from their bits: WGSL lets compilers
// assume floats are finite, so NaN tests by comparison are not reliable.

//#include lib/half.wgsl
//#include lib/grid.wgsl

override OP: u32 = 0u;
override K0: u32 = 0u;
override B0: u32 = 4u;
override S0: u32 = 0u;
override K1: u32 = 0u;
override B1: u32 = 4u;
override S1: u32 = 0u;
override K2: u32 = 0u;
override B2: u32 = 4u;
override S2: u32 = 0u;
override CK: u32 = 0u;
override OUT_KIND: u32 = 0u;
override OUT_BYTES: u32 = 4u;
// 1 when every array operand is row-major over the output (position = origin + element index)
override LINEAR: u32 = 0u;

// Op codes (src/kernels/elementwise.ts mirrors them).
// Op codes, generated from the op table (src/kernels/elementwise-ops.ts):
// OP_ADD, OP_SUBTRACT, ..., OP_WHERE.
//#include gen/elementwise_ops.wgsl
// Codes below OP_EQUAL are binary arithmetic, below OP_NEGATIVE comparisons,
// below OP_WHERE unary.

struct Params {
  // elements in this chunk, and the chunk's first element in the whole output
  n: u32,
  first: u32,
  ndim: u32,
  // always 0 (see opaque())
  zero: u32,
  // per operand: its position of output element 0, relative to its bound window
  origin: vec4<u32>,
  // per operand: a scalar operand's bits (in its own dtype)
  scalar: vec4<u32>,
  // clip's bounds, in the compute type
  lo: u32,
  hi: u32,
  // the bits of NaN and +Inf: WGSL rejects them as constants
  nan_bits: u32,
  inf_bits: u32,
  shape: array<vec4<u32>, 4>,
  st0: array<vec4<u32>, 4>,
  st1: array<vec4<u32>, 4>,
  st2: array<vec4<u32>, 4>,
}

@group(0) @binding(0) var<storage, read> in0: array<u32>;
@group(0) @binding(1) var<storage, read> in1: array<u32>;
@group(0) @binding(2) var<storage, read> in2: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<u32>;
@group(0) @binding(4) var<uniform> params: Params;

fn width_mask(bytes: u32) -> u32 {
  return select(0xffffffffu, (1u << ((bytes * 8u) & 31u)) - 1u, bytes < 4u);
}

fn unpack(word: u32, p: u32, bytes: u32) -> u32 {
  return (word >> (((p * bytes) & 3u) * 8u)) & width_mask(bytes);
}

fn raw0(p: u32) -> u32 {
  if (S0 == 1u) { return params.scalar.x; }
  if (B0 == 4u) { return in0[p]; }
  return unpack(in0[(p * B0) >> 2u], p, B0);
}
fn raw1(p: u32) -> u32 {
  if (S1 == 1u) { return params.scalar.y; }
  if (B1 == 4u) { return in1[p]; }
  return unpack(in1[(p * B1) >> 2u], p, B1);
}
fn raw2(p: u32) -> u32 {
  if (S2 == 1u) { return params.scalar.z; }
  if (B2 == 4u) { return in2[p]; }
  return unpack(in2[(p * B2) >> 2u], p, B2);
}

// Signed integer of `bytes` bytes, sign-extended to 32 bits.
fn sext(raw: u32, bytes: u32) -> u32 {
  let s = (32u - bytes * 8u) & 31u;
  return bitcast<u32>(bitcast<i32>(raw << s) >> s);
}

fn as_f32(raw: u32, kind: u32, bytes: u32) -> f32 {
  switch (kind) {
    case 0u: { return bitcast<f32>(raw); }
    case 1u: { return f16_bits_to_f32(raw); }
    case 2u: { return bf16_bits_to_f32(raw); }
    case 3u: { return f32(bitcast<i32>(sext(raw, bytes))); }
    default: { return f32(raw); }
  }
}

// Integer operand as 32-bit two's complement bits.
fn as_int(raw: u32, kind: u32, bytes: u32) -> u32 {
  if (kind == 3u) { return sext(raw, bytes); }
  return raw;
}

fn truthy(raw: u32, kind: u32) -> bool {
  if (kind == 0u) { return (raw & 0x7fffffffu) != 0u; }
  if (kind == 1u || kind == 2u) { return (raw & 0x7fffu) != 0u; }
  return raw != 0u;
}

// x, hidden from the shader compiler, so that (1 + x) - 1 is not rewritten to x
// (drivers may apply algebraic float rewrites); XOR with a uniform 0 keeps the value.
fn opaque(x: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(x) ^ params.zero);
}

fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn nan() -> f32 {
  return bitcast<f32>(params.nan_bits);
}

fn inf() -> f32 {
  return bitcast<f32>(params.inf_bits);
}

fn is_odd_integer(y: f32) -> bool {
  return abs(y) < 16777216.0 && y == trunc(y) && (i32(y) & 1) == 1;
}

// x^y as C's pow: negative bases need integer exponents.
fn pow_f(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (is_nan(x) || is_nan(y)) { return nan(); }
  if (x == 0.0) {
    if (y < 0.0) { return select(inf(), -inf(), is_odd_integer(y) && bitcast<u32>(x) == 0x80000000u); }
    return select(0.0, x, is_odd_integer(y));
  }
  let m = exp2(y * log2(abs(x)));
  if (x > 0.0) { return m; }
  if (y != trunc(y)) { return nan(); }
  return select(m, -m, is_odd_integer(y));
}

fn binary_f(x: f32, y: f32) -> f32 {
  switch (OP) {
    case OP_ADD: { return x + y; }
    case OP_SUBTRACT: { return x - y; }
    case OP_MULTIPLY: { return x * y; }
    case OP_DIVIDE: { return x / y; }
    case OP_MAXIMUM: {
      if (is_nan(x)) { return x; }
      if (is_nan(y)) { return y; }
      return max(x, y);
    }
    case OP_MINIMUM: {
      if (is_nan(x)) { return x; }
      if (is_nan(y)) { return y; }
      return min(x, y);
    }
    case OP_POWER: { return pow_f(x, y); }
    case OP_FLOOR_DIVIDE: { return floor(x / y); }
    case OP_REMAINDER: {
      // Python's modulo: the sign of the divisor.
      let r = x - y * trunc(x / y);
      if (r != 0.0 && ((r < 0.0) != (y < 0.0))) { return r + y; }
      return r;
    }
    default: { return nan(); }
  }
}

fn ipow(base: u32, e: u32) -> u32 {
  var result = 1u;
  var b = base;
  var k = e;
  loop {
    if (k == 0u) { break; }
    if ((k & 1u) == 1u) { result = result * b; }
    b = b * b;
    k = k >> 1u;
  }
  return result;
}

fn binary_i(xb: u32, yb: u32) -> u32 {
  let x = bitcast<i32>(xb);
  let y = bitcast<i32>(yb);
  switch (OP) {
    case OP_ADD: { return xb + yb; }
    case OP_SUBTRACT: { return xb - yb; }
    case OP_MULTIPLY: { return xb * yb; }
    case OP_MAXIMUM: { return bitcast<u32>(max(x, y)); }
    case OP_MINIMUM: { return bitcast<u32>(min(x, y)); }
    case OP_POWER: {
      // Negative exponents: 1 and -1 keep their powers, every other base truncates to 0.
      if (y < 0) {
        if (x == 1) { return 1u; }
        if (x == -1) { return select(1u, 0xffffffffu, (y & 1) == 1); }
        return 0u;
      }
      return ipow(xb, yb);
    }
    case OP_FLOOR_DIVIDE: {
      if (y == 0) { return 0u; }
      var q = x / y;
      if (q * y != x && ((x < 0) != (y < 0))) { q = q - 1; }
      return bitcast<u32>(q);
    }
    case OP_REMAINDER: {
      if (y == 0) { return 0u; }
      var r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) { r = r + y; }
      return bitcast<u32>(r);
    }
    default: { return 0u; }
  }
}

fn binary_u(x: u32, y: u32) -> u32 {
  switch (OP) {
    case OP_ADD: { return x + y; }
    case OP_SUBTRACT: { return x - y; }
    case OP_MULTIPLY: { return x * y; }
    case OP_MAXIMUM: { return max(x, y); }
    case OP_MINIMUM: { return min(x, y); }
    case OP_POWER: { return ipow(x, y); }
    case OP_FLOOR_DIVIDE: { return select(x / y, 0u, y == 0u); }
    case OP_REMAINDER: { return select(x % y, 0u, y == 0u); }
    default: { return 0u; }
  }
}

fn compare_f(x: f32, y: f32) -> bool {
  // Every comparison with NaN is false, except !=.
  if (is_nan(x) || is_nan(y)) { return OP == OP_NOT_EQUAL; }
  switch (OP) {
    case OP_EQUAL: { return x == y; }
    case OP_NOT_EQUAL: { return x != y; }
    case OP_LESS: { return x < y; }
    case OP_LESS_EQUAL: { return x <= y; }
    case OP_GREATER: { return x > y; }
    default: { return x >= y; }
  }
}

fn compare_i(x: i32, y: i32) -> bool {
  switch (OP) {
    case OP_EQUAL: { return x == y; }
    case OP_NOT_EQUAL: { return x != y; }
    case OP_LESS: { return x < y; }
    case OP_LESS_EQUAL: { return x <= y; }
    case OP_GREATER: { return x > y; }
    default: { return x >= y; }
  }
}

fn compare_u(x: u32, y: u32) -> bool {
  switch (OP) {
    case OP_EQUAL: { return x == y; }
    case OP_NOT_EQUAL: { return x != y; }
    case OP_LESS: { return x < y; }
    case OP_LESS_EQUAL: { return x <= y; }
    case OP_GREATER: { return x > y; }
    default: { return x >= y; }
  }
}

fn unary_f(x: f32) -> f32 {
  switch (OP) {
    case OP_NEGATIVE: { return -x; }
    case OP_ABS: { return abs(x); }
    case OP_SIGN: {
      if (is_nan(x)) { return x; }
      return select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0);
    }
    case OP_SQUARE: { return x * x; }
    case OP_SQRT: { return sqrt(x); }
    case OP_RSQRT: { return 1.0 / sqrt(x); }
    case OP_RECIPROCAL: { return 1.0 / x; }
    case OP_EXP: { return exp(x); }
    case OP_EXPM1: {
      // Kahan's expm1: exact near 0, where exp(x) - 1 cancels.
      let u = opaque(exp(x));
      if (u == 1.0) { return x; }
      let um1 = u - 1.0;
      if (um1 == -1.0) { return -1.0; }
      if (abs(x) > 1.0) { return um1; }
      return um1 * x / log(u);
    }
    case OP_LOG: { return log(x); }
    case OP_LOG1P: {
      let u = opaque(1.0 + x);
      if (u == 1.0) { return x; }
      if (abs(x) > 0.5) { return log(u); }
      return log(u) * x / (u - 1.0);
    }
    case OP_LOG2: { return log2(x); }
    case OP_LOG10: { return log2(x) * 0.30102999566398120; }
    case OP_SIN: { return sin(x); }
    case OP_COS: { return cos(x); }
    case OP_TANH: {
      // From exp(-2|x|), which cannot overflow.
      if (is_nan(x)) { return x; }
      let t = exp(-2.0 * abs(x));
      let r = (1.0 - t) / (1.0 + t);
      if (abs(x) < 0.0004) { return x; }
      return select(r, -r, x < 0.0);
    }
    case OP_SIGMOID: {
      if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
      let e = exp(x);
      return e / (1.0 + e);
    }
    case OP_FLOOR: { return floor(x); }
    case OP_CEIL: { return ceil(x); }
    case OP_ROUND: { return round(x); }
    case OP_CLIP: {
      if (is_nan(x)) { return x; }
      return min(max(x, bitcast<f32>(params.lo)), bitcast<f32>(params.hi));
    }
    default: { return nan(); }
  }
}

fn unary_i(xb: u32) -> u32 {
  let x = bitcast<i32>(xb);
  switch (OP) {
    case OP_NEGATIVE: { return 0u - xb; }
    case OP_ABS: { return select(xb, 0u - xb, x < 0); }
    case OP_SIGN: { return bitcast<u32>(select(select(0, -1, x < 0), 1, x > 0)); }
    case OP_SQUARE: { return xb * xb; }
    case OP_CLIP: { return bitcast<u32>(min(max(x, bitcast<i32>(params.lo)), bitcast<i32>(params.hi))); }
    default: { return xb; }
  }
}

fn unary_u(x: u32) -> u32 {
  switch (OP) {
    case OP_NEGATIVE: { return 0u - x; }
    case OP_SIGN: { return select(0u, 1u, x > 0u); }
    case OP_SQUARE: { return x * x; }
    case OP_CLIP: { return min(max(x, params.lo), params.hi); }
    default: { return x; }
  }
}

// A float result as the output's bits.
fn out_float(v: f32) -> u32 {
  if (OUT_KIND == 1u) { return f32_to_f16_bits(v); }
  if (OUT_KIND == 2u) { return f32_to_bf16_bits(v); }
  if (OUT_KIND == 5u) { return select(0u, 1u, (bitcast<u32>(v) & 0x7fffffffu) != 0u); }
  return bitcast<u32>(v);
}

fn out_int(v: u32) -> u32 {
  if (OUT_KIND == 5u) { return select(0u, 1u, v != 0u); }
  return v;
}

// Which operands the op reads (override-constant conditions: the rest fold away).
override READS1: bool = OP < OP_NEGATIVE || OP == OP_WHERE;
override READS2: bool = OP == OP_WHERE;

// The output bits (zero-extended) of the element whose operands sit at positions p.
fn element(p: vec3<u32>) -> u32 {
  var r = vec3<u32>(raw0(p.x), 0u, 0u);
  if (READS1) { r.y = raw1(p.y); }
  if (READS2) { r.z = raw2(p.z); }
  return element_of(r);
}

// The output bits of the element whose operands' raw bits are r.
fn element_of(r: vec3<u32>) -> u32 {
  if (OP == OP_WHERE) {
    let c = truthy(r.x, K0);
    if (CK == 0u) {
      let v = select(as_f32(r.z, K2, B2), as_f32(r.y, K1, B1), c);
      return out_float(v);
    }
    return out_int(select(as_int(r.z, K2, B2), as_int(r.y, K1, B1), c));
  }
  if (OP >= OP_NEGATIVE) {
    if (CK == 0u) { return out_float(unary_f(as_f32(r.x, K0, B0))); }
    if (CK == 1u) { return out_int(unary_i(as_int(r.x, K0, B0))); }
    return out_int(unary_u(as_int(r.x, K0, B0)));
  }
  if (OP >= OP_EQUAL) {
    var t: bool;
    if (CK == 0u) { t = compare_f(as_f32(r.x, K0, B0), as_f32(r.y, K1, B1)); }
    else if (CK == 1u) { t = compare_i(bitcast<i32>(as_int(r.x, K0, B0)), bitcast<i32>(as_int(r.y, K1, B1))); }
    else { t = compare_u(as_int(r.x, K0, B0), as_int(r.y, K1, B1)); }
    return select(0u, 1u, t);
  }
  if (CK == 0u) { return out_float(binary_f(as_f32(r.x, K0, B0), as_f32(r.y, K1, B1))); }
  if (CK == 1u) { return out_int(binary_i(as_int(r.x, K0, B0), as_int(r.y, K1, B1))); }
  return out_int(binary_u(as_int(r.x, K0, B0), as_int(r.y, K1, B1)));
}

fn strides_at(d: u32) -> vec3<u32> {
  return vec3<u32>(params.st0[d >> 2u][d & 3u], params.st1[d >> 2u][d & 3u], params.st2[d >> 2u][d & 3u]);
}

// Operand positions of output element g; w holds g's index along the last dim.
fn decode(g: u32, w: ptr<function, u32>) -> vec3<u32> {
  var p = params.origin.xyz;
  var rem = g;
  for (var k = params.ndim; k > 0u; k = k - 1u) {
    let d = k - 1u;
    let n = params.shape[d >> 2u][d & 3u];
    let i = rem % n;
    if (k == params.ndim) { *w = i; }
    rem = rem / n;
    p = p + i * strides_at(d);
  }
  return p;
}

// Each invocation computes four consecutive output elements: positions step
// along the last dim and are decoded afresh (divisions) only where a row ends.
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let inv = linear_index(wid, nwg, lid);
  if (LINEAR == 1u && OUT_BYTES == 4u) {
    // Row-major operands, whole-word output: neighbouring invocations take
    // neighbouring elements (coalesced on GPUs, vector loads on CPUs).
    let base = (inv - lid) * 4u + lid;
    for (var j = 0u; j < 4u; j = j + 1u) {
      let e = base + j * 256u;
      if (e < params.n) { dst[e] = element(params.origin.xyz + vec3<u32>(params.first + e)); }
    }
    return;
  }
  let e0 = inv * 4u;
  if (e0 >= params.n) { return; }
  let g0 = params.first + e0;
  let last = params.ndim - 1u;
  let row = params.shape[last >> 2u][last & 3u];
  let step = strides_at(last);
  var w = 0u;
  var p: vec3<u32>;
  if (LINEAR == 1u) {
    p = params.origin.xyz + vec3<u32>(g0);
  } else {
    p = decode(g0, &w);
  }
  var v = vec4<u32>(0u);
  for (var j = 0u; j < 4u; j = j + 1u) {
    if (e0 + j >= params.n) { break; }
    v[j] = element(p);
    if (LINEAR == 1u) {
      p = p + vec3<u32>(1u);
    } else {
      w = w + 1u;
      if (w < row) { p = p + step; } else { p = decode(g0 + j + 1u, &w); }
    }
  }
  let count = min(4u, params.n - e0);
  if (OUT_BYTES == 4u) {
    for (var j = 0u; j < count; j = j + 1u) { dst[e0 + j] = v[j]; }
  } else if (OUT_BYTES == 2u) {
    dst[e0 >> 1u] = (v.x & 0xffffu) | (v.y << 16u);
    if (count > 2u) { dst[(e0 >> 1u) + 1u] = (v.z & 0xffffu) | (v.w << 16u); }
  } else {
    dst[e0 >> 2u] = (v.x & 0xffu) | ((v.y & 0xffu) << 8u) | ((v.z & 0xffu) << 16u) | (v.w << 24u);
  }
}

// The same bindings as vectors, for main_vec4 (which uses no other).
@group(0) @binding(0) var<storage, read> in0v: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> in1v: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> in2v: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> dstv: array<vec4<u32>>;

// Row-major 32-bit operands (or scalars) and output, every operand's first element
// on a 16-byte vector, a multiple of 4 elements (src/kernels/elementwise.ts checks):
// one vector load per operand and one vector store per four elements. On CPU
// drivers every lane's load is a separate bounds-checked access, so four elements
// per access run several times faster; GPUs coalesce either way.
@compute @workgroup_size(256)
fn main_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let e = linear_index(wid, nwg, lid) * 4u;
  if (e >= params.n) { return; }
  let q = (params.origin.xyz + vec3<u32>(params.first + e)) >> vec3<u32>(2u);
  var x0 = vec4<u32>(params.scalar.x);
  var x1 = vec4<u32>(params.scalar.y);
  var x2 = vec4<u32>(params.scalar.z);
  if (S0 == 0u) { x0 = in0v[q.x]; }
  if (READS1 && S1 == 0u) { x1 = in1v[q.y]; }
  if (READS2 && S2 == 0u) { x2 = in2v[q.z]; }
  dstv[e >> 2u] = vec4<u32>(element_of(vec3<u32>(x0.x, x1.x, x2.x)), element_of(vec3<u32>(x0.y, x1.y, x2.y)),
                            element_of(vec3<u32>(x0.z, x1.z, x2.z)), element_of(vec3<u32>(x0.w, x1.w, x2.w)));
}
