// SwiGLU's gate: y = silu(g) * u = g / (1 + exp(-g)) * u, element-wise.
// Run by src/kernels/transformer.ts.

//#include lib/grid.wgsl

struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= params.n) { return; }
  let a = g[i];
  y[i] = a / (1.0 + exp(-a)) * u[i];
}
