// Q8_0: blocks of 32 weights as { d: f16, qs: i8[32] } (34 bytes), x = d * q.
// ggml: quantize_row_q8_0_ref / dequantize_row_q8_0.

//#include lib/quantize_io.wgsl
//#include lib/dequantize_io.wgsl
//#include lib/quant_math.wgsl

const QK: u32 = 32u;
const BLOCK_BYTES: u32 = 34u;

// One invocation writes two blocks: 68 bytes, 17 whole words.
var<private> words: array<u32, 17>;

fn put_byte(pos: u32, v: u32) {
  words[pos >> 2u] = words[pos >> 2u] | ((v & 0xffu) << ((pos & 3u) * 8u));
}

fn quantize_block(b: u32, base: u32) {
  var amax = 0.0;
  for (var j = 0u; j < QK; j = j + 1u) {
    amax = max(amax, abs(load_x(b * QK + j)));
  }
  let d = amax / 127.0;
  let id = select(0.0, 1.0 / d, d != 0.0);
  let dh = f32_to_f16_bits(d);
  put_byte(base, dh);
  put_byte(base + 1u, dh >> 8u);
  for (var j = 0u; j < QK; j = j + 1u) {
    put_byte(base + 2u + j, bitcast<u32>(i32(roundf(load_x(b * QK + j) * id))));
  }
}

@compute @workgroup_size(64)
fn quantize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let pair = workgroup_index(wid, nwg) * 64u + lid;
  let b0 = pair * 2u;
  if (b0 >= qparams.n_blocks) { return; }
  for (var w = 0u; w < 17u; w = w + 1u) { words[w] = 0u; }
  quantize_block(b0, 0u);
  var n_words = 9u; // a lone last block: 34 bytes, padded to 36
  if (b0 + 1u < qparams.n_blocks) {
    quantize_block(b0 + 1u, BLOCK_BYTES);
    n_words = 17u;
  }
  for (var w = 0u; w < n_words; w = w + 1u) { dst[pair * 17u + w] = words[w]; }
}

@compute @workgroup_size(64)
fn dequantize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let b = workgroup_index(wid, nwg) * 64u + lid;
  if (b >= dparams.n_blocks) { return; }
  let base = b * BLOCK_BYTES;
  let d = f16_bits_to_f32(block_u16(base));
  for (var j = 0u; j < QK; j = j + 1u) {
    let q = bitcast<i32>(block_byte(base + 2u + j) << 24u) >> 24u;
    out[b * QK + j] = f32(q) * d;
  }
}
