// Activation rows rounded to Q8_K as ggml's quantize_row_q8_K does (its
// reference, which the x86 CPU backend also runs), for the integer products of
// shaders/matmul/linear_q8k.wgsl: per 256 values, the first value of largest
// magnitude `max`, iscale = -127 / max, q = min(127, round-half-even(iscale *
// x)), d = 1 / iscale (all zero when the 256 values are). Run by
// src/kernels/matmul-linear.ts; one invocation per 256 values of one row.
//
// Output layout (not ggml's block_q8_K: the matmul's own, 48 bytes per 32
// values so that a chunk is three vec4 loads): per 32 values, 8 words of
// signed bytes (value 4i + b in byte b of word i), the sums of the first and
// of the second 16 bytes (i32; ggml's bsums), d (f32 bits), 0.

struct Params {
  m: u32,
  k: u32,
  // vec4 index of x[0, 0]
  x_base: u32,
  // vec4 index of the output's row 0
  q_base: u32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> q: array<vec4<u32>>;
@group(0) @binding(2) var<uniform> p: Params;

override WG: u32 = 64u;

fn pack_bytes(v: vec4<i32>) -> u32 {
  let b = bitcast<vec4<u32>>(v) & vec4<u32>(0xffu);
  return b.x | (b.y << 8u) | (b.z << 16u) | (b.w << 24u);
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let blocks = p.k >> 8u;
  let idx = (wid.y * groups.x + wid.x) * WG + lid;
  if (idx >= p.m * blocks) { return; }
  let row = idx / blocks;
  let at = p.x_base + row * (p.k >> 2u) + (idx % blocks) * 64u;
  // the first value of largest magnitude, in order (ggml: `if (ax > amax)`)
  var amax = 0.0;
  var mx = 0.0;
  for (var i = 0u; i < 64u; i = i + 1u) {
    let v = x[at + i];
    for (var c = 0u; c < 4u; c = c + 1u) {
      if (abs(v[c]) > amax) {
        amax = abs(v[c]);
        mx = v[c];
      }
    }
  }
  let iscale = select(0.0, -127.0 / mx, amax != 0.0);
  let d = select(0.0, 1.0 / iscale, amax != 0.0);
  // 8 chunks of 32 values, each 3 vec4 words
  let out = p.q_base + (row * (p.k >> 5u) + (idx % blocks) * 8u) * 3u;
  for (var c = 0u; c < 8u; c = c + 1u) {
    var words: array<u32, 8>;
    var sum0 = 0;
    var sum1 = 0;
    for (var i = 0u; i < 8u; i = i + 1u) {
      let v = min(vec4<i32>(round(iscale * x[at + c * 8u + i])), vec4<i32>(127));
      words[i] = pack_bytes(v);
      let s = (v.x + v.y) + (v.z + v.w);
      if (i < 4u) { sum0 += s; } else { sum1 += s; }
    }
    q[out + c * 3u] = vec4<u32>(words[0], words[1], words[2], words[3]);
    q[out + c * 3u + 1u] = vec4<u32>(words[4], words[5], words[6], words[7]);
    q[out + c * 3u + 2u] = vec4<u32>(bitcast<u32>(sum0), bitcast<u32>(sum1), bitcast<u32>(d), 0u);
  }
}
