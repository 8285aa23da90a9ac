// arange(): element i = start + i * step, as float32 (FLOAT = 1) or as 32-bit
// two's complement integers (FLOAT = 0). Other dtypes cast from these.
// Run by src/kernels/fill.ts.

//#include lib/grid.wgsl

override FLOAT: u32 = 1u;

struct Params {
  n: u32,
  first: u32,
  start: u32,
  step: u32,
}

@group(0) @binding(0) var<storage, read_write> dst: array<u32>;
@group(0) @binding(1) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = linear_index(wid, nwg, lid);
  if (w >= params.n) { return; }
  let i = params.first + w;
  if (FLOAT == 1u) {
    dst[w] = bitcast<u32>(bitcast<f32>(params.start) + f32(i) * bitcast<f32>(params.step));
  } else {
    dst[w] = params.start + i * params.step;
  }
}
