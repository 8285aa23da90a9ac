// Importance weights (ggml's quant_weights, from llama-imatrix) for the kernels
// with their own `quantize_weighted` entry point (descriptor weightedKernel
// 'own-entry'): only that entry point reads bindings 3 and 4, so the reference
// pipelines bind no weights. The per-column weights are one row's worth per
// expert (row length x experts); block g of the tensor reads those of its column
// range in its expert's row. (The 'shared-entry' kernels: lib/imatrix_weights.wgsl.)

@group(0) @binding(3) var<storage, read> imatrix_w: array<f32>;
struct WeightParams {
  // blocks per row, the chunk's first block in the tensor, blocks per expert
  blocks_per_row: u32,
  first_block: u32,
  blocks_per_expert: u32,
  pad: u32,
}
@group(0) @binding(4) var<uniform> wparams: WeightParams;

// Index in imatrix_w of the first of the QK weights of block b of the chunk.
fn imatrix_block_base(b: u32) -> u32 {
  let g = wparams.first_block + b;
  return (g / wparams.blocks_per_expert) * wparams.blocks_per_row * QK + (g % wparams.blocks_per_row) * QK;
}
