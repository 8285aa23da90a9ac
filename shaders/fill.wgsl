// full() / ones(): writes a repeating two-word pattern (one element of any
// dtype replicated to fill 64 bits) into every word. Run by src/kernels/fill.ts.

//#include lib/grid.wgsl

struct Params {
  words: u32,
  // word index parity of the window's first word in the whole buffer
  phase: u32,
  pattern: vec2<u32>,
}

@group(0) @binding(0) var<storage, read_write> dst: array<u32>;
@group(0) @binding(1) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = linear_index(wid, nwg, lid);
  if (w >= params.words) { return; }
  dst[w] = params.pattern[(w + params.phase) & 1u];
}
