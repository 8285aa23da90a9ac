// Bindings and helpers shared by every format's `quantize` entry point
// (shaders/quant/*.wgsl), dispatched by src/kernels/quantize.ts.

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

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> qparams: QuantParams;

fn src_kind() -> u32 {
  return qparams.src_kind;
}

// Element i of the chunk's input, as float32.
fn load_x(i: u32) -> f32 {
  let e = qparams.src_skip + i;
  if (src_kind() == 0u) { return bitcast<f32>(src[e]); }
  let half = (src[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu;
  if (src_kind() == 1u) { return f16_bits_to_f32(half); }
  return bf16_bits_to_f32(half);
}

// Index of this workgroup among all workgroups of the dispatch (2-D grids).
fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.y * nwg.x + wid.x;
}
