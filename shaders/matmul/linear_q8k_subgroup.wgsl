// y = x @ wᵀ for K-quant weights on Q8_K-rounded rows of x, integer products
// (lib/linear_q8k_body.wgsl): the variant for adapters with subgroup
// operations: lanes 0-5 of each 8 load one vec4 of x's two chunks each and
// subgroupBroadcast hands them to all (subgroups under 8 lanes load as
// linear_q8k.wgsl does).
enable subgroups;

//#include lib/linear_q8k_body.wgsl

var<private> lane8: u32;

fn load_x_pair(wide: bool, at: u32) -> array<vec4<u32>, 6> {
  if (!wide) {
    return array<vec4<u32>, 6>(xq[at], xq[at + 1u], xq[at + 2u], xq[at + 3u], xq[at + 4u], xq[at + 5u]);
  }
  let mine = xq[at + min(lane8, 5u)];
  return array<vec4<u32>, 6>(subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u), subgroupBroadcast(mine, 2u),
    subgroupBroadcast(mine, 3u), subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u));
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_size) sg_size: u32) {
  lane8 = sg_lane & 7u;
  run_tile(wid, lid, sg_size >= 8u);
}
