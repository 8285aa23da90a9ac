// Seeded random numbers from Philox4x32-10 (Salmon et al., "Parallel random
// numbers: as easy as 1, 2, 3", SC 2011). Run by src/kernels/random.ts.
//
// Counter-based: element i of the output is word (i % 4) of
// philox(counter = [g_lo, g_hi, 0, 0], key = seed) with g = i / 4, so the
// values depend only on the seed and the element index, never on how the work
// is chunked or dispatched. One invocation computes one counter block (four
// elements) and writes whole 32-bit words.
//
// DIST: 0 raw bits (uint32), 1 uniform in [lo, hi), 2 normal (Box-Muller on
// word pairs (0, 1) and (2, 3)), 3 integers in [lo, lo + range) (multiply-high).
// OUT_KIND: 0 float32, 1 float16, 2 bfloat16, 3 integer of OUT_BYTES bytes.

//#include lib/half.wgsl
//#include lib/grid.wgsl

override DIST: u32 = 1u;
override OUT_KIND: u32 = 0u;
override OUT_BYTES: u32 = 4u;

struct Params {
  // first counter block of this chunk (64-bit)
  block_lo: u32,
  block_hi: u32,
  // counter blocks in this chunk, and elements left from the chunk's first one
  blocks: u32,
  elements: u32,
  key: vec2<u32>,
  // words between the output window's start and the chunk's first word
  skip: u32,
  _pad: u32,
  // uniform: lo, hi - lo, largest output value below hi; normal: mean, std;
  // integers: lo (bits), range (bits)
  a: u32,
  b: u32,
  c: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> dst: array<u32>;
@group(0) @binding(1) var<uniform> params: Params;

// High and low words of the 64-bit product a * b.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
  return vec2<u32>(hi, a * b);
}

fn philox(counter: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key_in;
  for (var round = 0u; round < 10u; round = round + 1u) {
    if (round > 0u) {
      k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    let p0 = mulhilo(0xD2511F53u, c.x);
    let p1 = mulhilo(0xCD9E8D57u, c.z);
    c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
  }
  return c;
}

// 24 random bits as a float in [0, 1).
fn unit(x: u32) -> f32 {
  return f32(x >> 8u) * 5.9604644775390625e-8;
}

fn to_float_bits(v: f32) -> u32 {
  if (OUT_KIND == 1u) { return f32_to_f16_bits(v); }
  if (OUT_KIND == 2u) { return f32_to_bf16_bits(v); }
  return bitcast<u32>(v);
}

// The four output elements' bits (zero-extended) of one counter block.
fn values(x: vec4<u32>) -> vec4<u32> {
  if (DIST == 0u) { return x; }
  if (DIST == 3u) {
    let lo = params.a;
    let range = params.b;
    return vec4<u32>(lo + mulhilo(x.x, range).x, lo + mulhilo(x.y, range).x,
                     lo + mulhilo(x.z, range).x, lo + mulhilo(x.w, range).x);
  }
  var v: vec4<f32>;
  if (DIST == 1u) {
    let lo = bitcast<f32>(params.a);
    let span = bitcast<f32>(params.b);
    let below = bitcast<f32>(params.c);
    v = min(vec4<f32>(lo) + vec4<f32>(unit(x.x), unit(x.y), unit(x.z), unit(x.w)) * span, vec4<f32>(below));
  } else {
    // Box-Muller: u1 in (0, 1] keeps log() finite.
    let r01 = sqrt(-2.0 * log(unit(x.x) + 5.9604644775390625e-8));
    let t01 = 6.283185307179586 * unit(x.y);
    let r23 = sqrt(-2.0 * log(unit(x.z) + 5.9604644775390625e-8));
    let t23 = 6.283185307179586 * unit(x.w);
    let z = vec4<f32>(r01 * cos(t01), r01 * sin(t01), r23 * cos(t23), r23 * sin(t23));
    v = vec4<f32>(bitcast<f32>(params.a)) + z * bitcast<f32>(params.b);
  }
  return vec4<u32>(to_float_bits(v.x), to_float_bits(v.y), to_float_bits(v.z), to_float_bits(v.w));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = linear_index(wid, nwg, lid);
  if (g >= params.blocks) { return; }
  let lo = params.block_lo + g;
  let hi = params.block_hi + select(0u, 1u, lo < g);
  let v = values(philox(vec4<u32>(lo, hi, 0u, 0u), params.key));
  let first = g * 4u;
  if (OUT_BYTES == 4u) {
    let base = params.skip + first;
    for (var j = 0u; j < 4u; j = j + 1u) {
      if (first + j < params.elements) { dst[base + j] = v[j]; }
    }
  } else if (OUT_BYTES == 2u) {
    let base = params.skip + g * 2u;
    dst[base] = (v.x & 0xffffu) | (v.y << 16u);
    if (first + 2u < params.elements) { dst[base + 1u] = (v.z & 0xffffu) | (v.w << 16u); }
  } else {
    dst[params.skip + g] = (v.x & 0xffu) | ((v.y & 0xffu) << 8u) | ((v.z & 0xffu) << 16u) | (v.w << 24u);
  }
}
