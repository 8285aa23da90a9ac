// y = x @ wᵀ for K-quant weights on Q8_K-rounded rows of x, integer products
// (lib/linear_q8k_body.wgsl): the variant for adapters without subgroup
// operations, each invocation loading x's chunks itself.

//#include lib/linear_q8k_body.wgsl

// x's two chunks at vec4 index `at`: per chunk its 32 signed bytes (2 vec4) and sums / d.
fn load_x_pair(wide: bool, at: u32) -> array<vec4<u32>, 6> {
  return array<vec4<u32>, 6>(xq[at], xq[at + 1u], xq[at + 2u], xq[at + 3u], xq[at + 4u], xq[at + 5u]);
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  run_tile(wid, lid, false);
}
