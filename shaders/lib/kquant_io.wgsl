// The K-quant `quantize` entry points' bindings (shaders/quant/q{2,4,5}_K.wgsl):
// lib/quantize_io.wgsl's contract (0 source words, 1 blocks, 2 QuantParams),
// with the source bound as array<vec4<u32>> so that four values come in one
// load (src/kernels/dispatch.ts pads windows to whole 16-byte vectors). On
// lavapipe every lane's load of a storage buffer is a separate bounds-checked
// access, so fewer, wider loads pay.

//#include lib/half.wgsl

struct QuantParams {
  // blocks in this chunk
  n_blocks: u32,
  // elements between the source window's start and the chunk's first element
  src_skip: u32,
  // input dtype: 0 float32, 1 float16, 2 bfloat16 (two per word). A uniform, not
  // an override: one pipeline per format serves all three (pipelines take
  // lavapipe seconds to compile).
  src_kind: u32,
  pad: u32,
}

@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> qparams: QuantParams;

fn src_kind() -> u32 {
  return qparams.src_kind;
}

// Index of this workgroup among all workgroups of the dispatch (2-D grids).
fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.y * nwg.x + wid.x;
}

fn half_to_f32(h: u32) -> f32 {
  if (src_kind() == 1u) { return f16_bits_to_f32(h); }
  return bf16_bits_to_f32(h);
}

// Element e of the window (the chunk's element e - src_skip), as float32.
fn load_window_x(e: u32) -> f32 {
  if (src_kind() == 0u) { return bitcast<f32>(src[e >> 2u][e & 3u]); }
  let w = src[e >> 3u][(e >> 1u) & 3u];
  return half_to_f32((w >> ((e & 1u) * 16u)) & 0xffffu);
}

// Elements i .. i + 3 of the chunk (i a multiple of 4), as float32.
fn load_x4(i: u32) -> vec4<f32> {
  let e = qparams.src_skip + i;
  // a window whose data starts mid-vector (a view at an odd offset): one by one
  if ((qparams.src_skip & 3u) != 0u) {
    return vec4<f32>(load_window_x(e), load_window_x(e + 1u), load_window_x(e + 2u), load_window_x(e + 3u));
  }
  if (src_kind() == 0u) { return bitcast<vec4<f32>>(src[e >> 2u]); }
  let v = src[e >> 3u];
  let h = select(v.xy, v.zw, (e & 4u) != 0u);
  return vec4<f32>(half_to_f32(h.x & 0xffffu), half_to_f32(h.x >> 16u), half_to_f32(h.y & 0xffffu), half_to_f32(h.y >> 16u));
}
