// What the projection bodies share (lib/linear_body.wgsl: float products;
// lib/linear_q8k_body.wgsl: Q8_K activations, integer products): the tile
// limits, the uniform parameters src/kernels/matmul-linear.ts writes, the
// output y (binding 2) and its row stores, and the K-quants' 6-bit scale and
// min unpacking. The other bindings (x, w) are each body's own.

const BM_MAX: u32 = 32u;
override WG: u32 = 64u;    // invocations per workgroup

struct Params {
  m: u32,
  n: u32,
  k: u32,
  // vec4 index of x's row 0 (linear_q8k_body: of xq's, 12 words per 32 values, see matmul/q8k_rows.wgsl)
  x_base: u32,
  // byte offset of w's row 0 (a multiple of 16), and bytes per weight row (padded blocks)
  w_base: u32,
  w_row_bytes: u32,
  // element index of y[0, 0]; row stride of y
  y_base: u32,
  y_stride: u32,
  // token rows per workgroup, 1..BM_MAX
  bm: u32,
  unused0: u32,
  unused1: u32,
  unused2: u32,
}

@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

// y[m, n0 .. n0 + 3] (those below N; token rows past M are not stored).
fn store_row(m: u32, n0: u32, v: vec4<f32>) {
  if (m >= p.m) { return; }
  let at = p.y_base + m * p.y_stride + n0;
  if (n0 + 3u < p.n) {
    y[at] = v.x;
    y[at + 1u] = v.y;
    y[at + 2u] = v.z;
    y[at + 3u] = v.w;
    return;
  }
  if (n0 < p.n) { y[at] = v.x; }
  if (n0 + 1u < p.n) { y[at + 1u] = v.y; }
  if (n0 + 2u < p.n) { y[at + 2u] = v.z; }
}

// 6-bit scale and min of K-quant sub-block j (ggml's get_scale_min_k4); s.y, s.z, s.w: scale bytes 0-3, 4-7, 8-11.
fn scale_min_k4(j: u32, s: vec4<u32>) -> vec2<f32> {
  let sh = (j & 3u) * 8u;
  if (j < 4u) {
    return vec2<f32>(f32((s.y >> sh) & 63u), f32((s.z >> sh) & 63u));
  }
  let lo = (s.w >> sh) & 0xffu;
  return vec2<f32>(f32((lo & 0xfu) | (((s.y >> (sh + 6u)) & 3u) << 4u)), f32((lo >> 4u) | (((s.z >> (sh + 6u)) & 3u) << 4u)));
}
