// The `quantize` and `dequantize` entry points every format shares
// (shaders/quant/<type>.wgsl includes this file and supplies only its block
// functions), dispatched by src/kernels/quantize.ts. The dispatch geometry
// comes from the format's descriptor (src/quant/formats/<type>.ts) as override
// constants; QK, BLOCK_BYTES and BLOCK_WORDS (when whole) from the ggml type
// table, generated (src/kernels/wgsl-gen.ts). A format includes, beside this
// file, the binding of its input: lib/quantize_io.wgsl (u32 words) or
// lib/kquant_io.wgsl (vec4 loads); both define qparams and workgroup_index.

//#include gen/block_geometry.wgsl
//#include lib/dequantize_io.wgsl

override QUANTIZE_WORKGROUP_SIZE: u32;
override QUANTIZE_BLOCKS_PER_INVOCATION: u32;
override DEQUANTIZE_WORKGROUP_SIZE: u32;
override DEQUANTIZE_INVOCATIONS_PER_BLOCK: u32;

// Invocation `inv` writes blocks first .. first + QUANTIZE_BLOCKS_PER_INVOCATION - 1.
// The format's quantize_blocks checks them against qparams.n_blocks itself: some
// keep control flow uniform past the end (see q6_K.wgsl).
@compute @workgroup_size(QUANTIZE_WORKGROUP_SIZE)
fn quantize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let inv = workgroup_index(wid, nwg) * QUANTIZE_WORKGROUP_SIZE + lid;
  quantize_blocks(inv, inv * QUANTIZE_BLOCKS_PER_INVOCATION);
}

// DEQUANTIZE_INVOCATIONS_PER_BLOCK invocations decode one block, each its part.
@compute @workgroup_size(DEQUANTIZE_WORKGROUP_SIZE)
fn dequantize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let inv = workgroup_index(wid, nwg) * DEQUANTIZE_WORKGROUP_SIZE + lid;
  let b = inv / DEQUANTIZE_INVOCATIONS_PER_BLOCK;
  if (b >= dparams.n_blocks) { return; }
  dequantize_part(b, inv % DEQUANTIZE_INVOCATIONS_PER_BLOCK);
}
