// Importance weights (ggml's quant_weights, from llama-imatrix) for the quantize
// entry points that read them in the same pipeline as the reference path
// (descriptor weightedKernel 'shared-entry'): src/kernels/quantize.ts binds them
// on every dispatch, a 16-byte placeholder with `weighted` 0 when there are
// none, so one pipeline serves both and lavapipe compiles it once.
// The per-column weights are one row's worth per expert (row length x experts,
// padded to whole vectors); block g of the tensor reads those of its column
// range in its expert's row.

@group(0) @binding(3) var<storage, read> imatrix_w4: array<vec4<f32>>;
struct WeightParams {
  // blocks per row, the chunk's first block in the tensor, blocks per expert
  blocks_per_row: u32,
  first_block: u32,
  blocks_per_expert: u32,
  // 1: weigh with imatrix_w4 (ggml's _impl paths); 0: the reference path
  weighted: u32,
}
@group(0) @binding(4) var<uniform> wparams: WeightParams;

fn weighted() -> bool {
  return wparams.weighted != 0u;
}

// Index of the first weight of block b of the chunk, in vec4s (QK values per block).
fn weight_vec_index(b: u32) -> u32 {
  let g = wparams.first_block + b;
  return ((g / wparams.blocks_per_expert) * wparams.blocks_per_row + (g % wparams.blocks_per_row)) * (QK / 4u);
}

// ggml's weight[l] = qw[l] * sqrtf(sigma2 + x[l]*x[l]) for four values.
fn imatrix_weights4(qw: vec4<f32>, sigma2: f32, x: vec4<f32>) -> vec4<f32> {
  let x2 = x * x;
  let s = sqrt(vec4<f32>(sigma2) + x2);
  return qw * s;
}

// sum x^2 over four more values, in element order (ggml's `sumx2 += x[j]*x[j]`).
fn add_squares4(acc: f32, x: vec4<f32>) -> f32 {
  let q = x * x;
  return (((acc + q.x) + q.y) + q.z) + q.w;
}
