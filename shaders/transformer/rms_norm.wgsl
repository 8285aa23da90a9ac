// RMSNorm fused with its weight, one workgroup per row (ggml_rms_norm then
// ggml_mul): y = x / sqrt(mean(x^2) + eps) * w. Run by src/kernels/transformer.ts.

struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= params.rows) { return; }
  let base = row * params.cols;
  var s = 0.0;
  for (var i = lid; i < params.cols; i += 256u) {
    let v = x[base + i];
    s += v * v;
  }
  partial[lid] = s;
  workgroupBarrier();
  for (var step = 128u; step > 0u; step >>= 1u) {
    if (lid < step) { partial[lid] += partial[lid + step]; }
    workgroupBarrier();
  }
  let scale = 1.0 / sqrt(partial[0] / f32(params.cols) + params.eps);
  for (var i = lid; i < params.cols; i += 256u) {
    y[base + i] = x[base + i] * scale * w[i];
  }
}
