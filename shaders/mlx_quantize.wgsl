// MLX's quantization (src/kernels/mlx-quantize.ts dispatches it; src/mlx/quantize-host.ts is
// the readable reference): affine quantize / dequantize for 2..8 bits, mxfp4 quantize /
// dequantize, and the exact repacks of MLX groups into ggml blocks (Q4_1, Q5_1, MXFP4).
// One invocation per group (quantize, dequantize, Q4_1/Q5_1 repacks) or per four groups
// (the MXFP4 repack: 4 x 17 bytes end on a word). Element i of a row sits at bit i * bits
// of the row's little-endian bit stream of uint32 words (MLX's packing for every width).
// Every binding is a window that starts at the chunk's first group.

//#include lib/half.wgsl

struct Params {
  // groups in this chunk
  n_groups: u32,
  // elements between the source window's start and the chunk's first element (quantize)
  src_skip: u32,
  // quantize input: 0 float32, 1 float16, 2 bfloat16 (two per word)
  src_kind: u32,
  group_size: u32,
  bits: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
}

@group(0) @binding(0) var<storage, read> in0: array<u32>;
@group(0) @binding(1) var<storage, read> in1: array<u32>;
@group(0) @binding(2) var<storage, read> in2: array<u32>;
@group(0) @binding(3) var<storage, read_write> out0: array<u32>;
@group(0) @binding(4) var<storage, read_write> out1: array<u32>;
@group(0) @binding(5) var<storage, read_write> out2: array<u32>;
@group(0) @binding(6) var<uniform> params: Params;

fn index_of(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * 64u + lid;
}

// Element i of the quantize input (in0), as float32.
fn load_x(i: u32) -> f32 {
  let e = params.src_skip + i;
  if (params.src_kind == 0u) { return bitcast<f32>(in0[e]); }
  let h = (in0[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu;
  if (params.src_kind == 1u) { return f16_bits_to_f32(h); }
  return bf16_bits_to_f32(h);
}

// `bits` bits at bit position p of a packed window.
fn read_bits_in0(p: u32, bits: u32) -> u32 {
  let w = p >> 5u;
  let off = p & 31u;
  var v = in0[w] >> off;
  if (off + bits > 32u) { v = v | (in0[w + 1u] << (32u - off)); }
  return v & ((1u << bits) - 1u);
}

// Affine quantize: in0 = input, out0 = packed words, out1 / out2 = scale / bias as float32
// bits (rounded to the input's dtype by a cast afterwards, as MLX's static_cast<T>).
@compute @workgroup_size(64)
fn affine_quantize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
  let g = index_of(wid, nwg, lid);
  if (g >= params.n_groups) { return; }
  let gs = params.group_size;
  let bits = params.bits;
  let n_bins = f32((1u << bits) - 1u);
  let o = g * gs;
  var mn = load_x(o);
  var mx = mn;
  for (var j = 1u; j < gs; j = j + 1u) {
    let v = load_x(o + j);
    mn = min(mn, v);
    mx = max(mx, v);
  }
  let positive = abs(mn) > abs(mx);
  var scale = max((mx - mn) / n_bins, 1e-7);
  scale = select(-scale, scale, positive);
  let edge = select(mx, mn, positive);
  let q0 = round(edge / scale);
  var bias = 0.0;
  if (q0 != 0.0) {
    scale = edge / q0;
    bias = edge;
  }
  var acc = 0u;
  var nb = 0u;
  var w = g * (gs * bits / 32u);
  for (var j = 0u; j < gs; j = j + 1u) {
    let q = u32(clamp(round((load_x(o + j) - bias) / scale), 0.0, n_bins));
    acc = acc | (q << nb);
    nb = nb + bits;
    if (nb >= 32u) {
      out0[w] = acc;
      w = w + 1u;
      nb = nb - 32u;
      acc = select(0u, q >> (bits - nb), nb > 0u);
    }
  }
  out1[g] = bitcast<u32>(scale);
  out2[g] = bitcast<u32>(bias);
}

// Affine dequantize: in0 = packed words, in1 / in2 = scales / biases as float32, out0 = float32.
@compute @workgroup_size(64)
fn affine_dequantize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let g = index_of(wid, nwg, lid);
  if (g >= params.n_groups) { return; }
  let gs = params.group_size;
  let bits = params.bits;
  let s = bitcast<f32>(in1[g]);
  let b = bitcast<f32>(in2[g]);
  for (var j = 0u; j < gs; j = j + 1u) {
    let q = f32(read_bits_in0((g * gs + j) * bits, bits));
    out0[g * gs + j] = bitcast<u32>(s * q + b);
  }
}

// E2M1 values by code.
const FP4: array<f32, 16> = array<f32, 16>(0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
                                           -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0);

fn fp4_code(x: f32) -> u32 {
  let sign = select(0u, 8u, (bitcast<u32>(x) & 0x80000000u) != 0u);
  let a = abs(x);
  var c = 0u;
  if (a > 5.0) { c = 7u; }
  else if (a >= 3.5) { c = 6u; }
  else if (a > 2.5) { c = 5u; }
  else if (a >= 1.75) { c = 4u; }
  else if (a > 1.25) { c = 3u; }
  else if (a >= 0.75) { c = 2u; }
  else if (a > 0.25) { c = 1u; }
  return c | sign;
}

// The E8M0 byte of x = max|w| / 6 >= 0: clamp(round(log2 x), -127, 127) + 127, from the bits
// (log2 m >= 0.5 exactly when the mantissa m exceeds sqrt(2), float32 0x3504f3 being below it).
fn e8m0_of(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  if (bits >= 0x7f800000u) { return 0xffu; }
  var e = i32(bits >> 23u) - 127;
  var m = bits & 0x7fffffu;
  if ((bits >> 23u) == 0u) {
    if (m == 0u) { return 0u; }
    // subnormal: normalise the mantissa
    let lead = 31u - firstLeadingBit(m);
    let shift = lead - 8u;
    m = (m << shift) & 0x7fffffu;
    e = -126 - i32(shift);
  }
  let n = clamp(e + select(0, 1, m >= 0x3504f4u), -127, 127);
  return u32(n + 127);
}

// mxfp4 quantize (groups of 32): in0 = input, out0 = packed codes, out1 = scale byte per group (u32).
@compute @workgroup_size(64)
fn mxfp4_quantize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let g = index_of(wid, nwg, lid);
  if (g >= params.n_groups) { return; }
  let o = g * 32u;
  var amax = 0.0;
  for (var j = 0u; j < 32u; j = j + 1u) { amax = max(amax, abs(load_x(o + j))); }
  let s = e8m0_of(amax / 6.0);
  out1[g] = s;
  for (var k = 0u; k < 4u; k = k + 1u) {
    var word = 0u;
    for (var j = 0u; j < 8u; j = j + 1u) {
      // x / 2^(s - 127), exactly (s = 0 means 2^-127 too)
      let v = ldexp(load_x(o + k * 8u + j), 127 - i32(s));
      word = word | (fp4_code(v) << (4u * j));
    }
    out0[g * 4u + k] = word;
  }
}

// mxfp4 dequantize: in0 = packed codes, in1 = scale byte per group (u32), out0 = float32.
@compute @workgroup_size(64)
fn mxfp4_dequantize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
  let g = index_of(wid, nwg, lid);
  if (g >= params.n_groups) { return; }
  let e = i32(in1[g] & 0xffu) - 127;
  for (var j = 0u; j < 32u; j = j + 1u) {
    let code = (in0[g * 4u + (j >> 3u)] >> (4u * (j & 7u))) & 15u;
    out0[g * 32u + j] = bitcast<u32>(ldexp(FP4[code], max(e, -127)));
  }
}

// The 4-bit values of elements b*32 .. b*32+31 of a packed window (4 words), as Q4_1's
// 16 bytes: byte j = element j | element j + 16 << 4, in 4 little-endian words.
fn q4_pairs(w0: u32, w1: u32, w2: u32, w3: u32, k: u32) -> u32 {
  // elements 4k .. 4k+3 sit in word k/2 (low words) and 4k+16 .. in word 2 + k/2
  let lo = select(w0, w1, k >= 2u) >> (16u * (k & 1u));
  let hi = select(w2, w3, k >= 2u) >> (16u * (k & 1u));
  var out = 0u;
  for (var i = 0u; i < 4u; i = i + 1u) {
    out = out | ((((lo >> (4u * i)) & 15u) | (((hi >> (4u * i)) & 15u) << 4u)) << (8u * i));
  }
  return out;
}

// Q4_1 repack: in0 = 4-bit packed words, in1 = f16 scale | f16 bias << 16 per group, out0 = Q4_1 blocks.
@compute @workgroup_size(64)
fn repack_q4_1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let g = index_of(wid, nwg, lid);
  if (g >= params.n_groups) { return; }
  let per = params.group_size / 32u;
  for (var k = 0u; k < per; k = k + 1u) {
    let b = g * per + k;
    let w = b * 4u;
    let o = b * 5u;
    out0[o] = in1[g];
    for (var i = 0u; i < 4u; i = i + 1u) {
      out0[o + 1u + i] = q4_pairs(in0[w], in0[w + 1u], in0[w + 2u], in0[w + 3u], i);
    }
  }
}

// Q5_1 repack: in0 = 5-bit packed words, in1 = f16 scale | f16 bias << 16 per group, out0 = Q5_1
// blocks { d, m, qh: bit j = element j's 5th bit, qs[j] = low nibbles of elements j, j + 16 }.
@compute @workgroup_size(64)
fn repack_q5_1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let g = index_of(wid, nwg, lid);
  if (g >= params.n_groups) { return; }
  let per = params.group_size / 32u;
  for (var k = 0u; k < per; k = k + 1u) {
    let b = g * per + k;
    let o = b * 6u;
    var qh = 0u;
    var qs = array<u32, 4>(0u, 0u, 0u, 0u);
    for (var j = 0u; j < 32u; j = j + 1u) {
      let q = read_bits_in0((b * 32u + j) * 5u, 5u);
      qh = qh | ((q >> 4u) << j);
      let byte = j & 15u;
      qs[byte >> 2u] = qs[byte >> 2u] | ((q & 15u) << (8u * (byte & 3u) + 4u * (j >> 4u)));
    }
    out0[o] = in1[g];
    out0[o + 1u] = qh;
    for (var i = 0u; i < 4u; i = i + 1u) { out0[o + 2u + i] = qs[i]; }
  }
}

// MXFP4 repack, four groups per invocation: in0 = packed codes, in1 = scale byte per group (u32),
// out0 = ggml blocks { e: u8, qs[16]: code j | code j + 16 << 4 }, 17 bytes each.
@compute @workgroup_size(64)
fn repack_mxfp4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let t = index_of(wid, nwg, lid);
  let g0 = t * 4u;
  if (g0 >= params.n_groups) { return; }
  var words = array<u32, 17>(0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u);
  let n = min(4u, params.n_groups - g0);
  for (var k = 0u; k < n; k = k + 1u) {
    let g = g0 + k;
    let base = k * 17u;
    words[base >> 2u] = words[base >> 2u] | ((in1[g] & 0xffu) << (8u * (base & 3u)));
    for (var j = 0u; j < 16u; j = j + 1u) {
      let lo = (in0[g * 4u + (j >> 3u)] >> (4u * (j & 7u))) & 15u;
      let hi = (in0[g * 4u + 2u + (j >> 3u)] >> (4u * (j & 7u))) & 15u;
      let p = base + 1u + j;
      words[p >> 2u] = words[p >> 2u] | ((lo | (hi << 4u)) << (8u * (p & 3u)));
    }
  }
  let nw = (n * 17u + 3u) / 4u;
  for (var i = 0u; i < nw; i = i + 1u) { out0[t * 17u + i] = words[i]; }
}
