// Gated MLP activations, element-wise over [rows, cols]: y = act(g) * u with
// act = silu (SwiGLU) or GELU's tanh approximation (GeGLU, Gemma:
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))). Gate and up come from two
// arrays, or (split) from one [rows, 2 * cols] array holding the gate in its
// first half of each row and up in its second (Phi-3's fused ffn_up, as
// ggml_swiglu splits it). Run by src/kernels/transformer.ts.

//#include lib/grid.wgsl

struct Params {
  n: u32,
  cols: u32,
  split: u32,
  gelu: u32,
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
  var gi = i;
  var ui = i;
  if (params.split != 0u) {
    let row = i / params.cols;
    gi = i + row * params.cols;
    ui = gi + params.cols;
  }
  let a = g[gi];
  var act: f32;
  if (params.gelu != 0u) {
    // tanh saturates in float32 well before |z| = 15; the clamp keeps exp-based tanh finite
    let z = clamp(0.7978845608 * a * (1.0 + 0.044715 * a * a), -15.0, 15.0);
    act = 0.5 * a * (1.0 + tanh(z));
  } else {
    act = a / (1.0 + exp(-a));
  }
  y[i] = act * u[ui];
}
