// Bindings shared by every format's `dequantize` entry point
// (shaders/quant/*.wgsl), dispatched by src/kernels/quantize.ts.
// The same binding slots as lib/quantize_io.wgsl: WGSL allows it because no
// entry point uses both sets.

//#include lib/half.wgsl

struct DequantParams {
  // blocks in this chunk
  n_blocks: u32,
  unused: u32,
}

@group(0) @binding(0) var<storage, read> blocks: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> dparams: DequantParams;

// Byte `b` of the chunk's block data.
fn block_byte(b: u32) -> u32 {
  return (blocks[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu;
}

// Little-endian 16-bit value at byte `b` (any alignment).
fn block_u16(b: u32) -> u32 {
  return block_byte(b) | (block_byte(b + 1u) << 8u);
}
