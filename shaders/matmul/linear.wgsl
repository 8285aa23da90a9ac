// y = x @ wᵀ for a weight w [N, K] read in its stored form (float32, float16,
// bfloat16 or ggml blocks), dequantized in registers: the forward pass's
// projections. Run by src/kernels/matmul-linear.ts; this is the variant for
// adapters without subgroup operations (linear_subgroup.wgsl has the other).

//#include lib/linear_body.wgsl

// The 32 values of x at vec4 index `at`, each invocation loading them all.
fn load_x_chunk(wide: bool, at: u32) -> array<vec4<f32>, 8> {
  return array<vec4<f32>, 8>(x[at], x[at + 1u], x[at + 2u], x[at + 3u], x[at + 4u], x[at + 5u], x[at + 6u], x[at + 7u]);
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  run_tile(wid, lid, false);
}
