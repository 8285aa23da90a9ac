// y = x @ wᵀ, the variant for adapters with subgroup operations: x's chunks
// are loaded one vec4 per lane and broadcast, in subgroups of 8 or more
// invocations (smaller ones load as linear.wgsl does). See lib/linear_body.wgsl.
enable subgroups;

//#include lib/linear_body.wgsl

var<private> lane8: u32;

// The 32 values of x at vec4 index `at` (the same in every invocation): lane l
// of each group of 8 loads vec4 l, subgroupBroadcast hands each to all lanes.
fn load_x_chunk(wide: bool, at: u32) -> array<vec4<f32>, 8> {
  if (!wide) {
    return array<vec4<f32>, 8>(x[at], x[at + 1u], x[at + 2u], x[at + 3u], x[at + 4u], x[at + 5u], x[at + 6u], x[at + 7u]);
  }
  let mine = x[at + lane8];
  return array<vec4<f32>, 8>(
    subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u), subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u),
    subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u), subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u));
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_size) sg_size: u32) {
  lane8 = sg_lane & 7u;
  run_tile(wid, lid, sg_size >= 8u);
}
