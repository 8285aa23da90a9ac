// Q3_K: super-blocks of 256 weights in 16 groups of 16 (110 bytes):
// hmask[32] high bits, qs[64] low 2 bits, scales[12] 6-bit scales, d float16;
// x = d * (scale[g] - 32) * (L - 4). ggml: quantize_row_q3_K_ref / dequantize_row_q3_K.
//
// quantize: one invocation per group of 16 runs make_q3_quants; a workgroup
// holds 4 super-blocks, shares their group scales and quants in workgroup
// memory, and writes their 440 bytes as 110 whole words.

//#include lib/quantize_io.wgsl
//#include lib/dequantize_io.wgsl
//#include lib/kquant_qx.wgsl

const QK: u32 = 256u;
const BLOCK_BYTES: u32 = 110u;
const BLOCKS_PER_GROUP: u32 = 4u;

var<workgroup> wg_scale: array<f32, 64>;
// L = q + 4 (0..7) of every element of the workgroup's blocks.
var<workgroup> wg_L: array<u32, 1024>;
// Each group's 6-bit scale (scale + 32).
var<workgroup> wg_l6: array<u32, 64>;
// Each block's d, float16 bits.
var<workgroup> wg_d: array<u32, 4>;

fn q3_hmask_byte(e0: u32, m: u32) -> u32 {
  var v = 0u;
  for (var j = 0u; j < 8u; j = j + 1u) { v = v | (((wg_L[e0 + j * 32u + m] >> 2u) & 1u) << j); }
  return v;
}

fn q3_qs_byte(e: u32) -> u32 {
  return (wg_L[e] & 3u) | ((wg_L[e + 32u] & 3u) << 2u) | ((wg_L[e + 64u] & 3u) << 4u) | ((wg_L[e + 96u] & 3u) << 6u);
}

fn q3_scale_byte(s0: u32, k: u32) -> u32 {
  if (k < 8u) { return (wg_l6[s0 + k] & 15u) | ((wg_l6[s0 + k + 8u] & 15u) << 4u); }
  let t = s0 + k - 8u;
  return (wg_l6[t] >> 4u) | ((wg_l6[t + 4u] >> 4u) << 2u) | ((wg_l6[t + 8u] >> 4u) << 4u) | ((wg_l6[t + 12u] >> 4u) << 6u);
}

// Bytes off, off + 1 (off even) of block b of the workgroup, little-endian.
fn q3_half(b: u32, off: u32) -> u32 {
  let e0 = b * QK;
  if (off < 32u) { return q3_hmask_byte(e0, off) | (q3_hmask_byte(e0, off + 1u) << 8u); }
  if (off < 96u) {
    let o = off - 32u;
    let e = e0 + (o >> 5u) * 128u + (o & 31u);
    return q3_qs_byte(e) | (q3_qs_byte(e + 1u) << 8u);
  }
  if (off < 108u) { return q3_scale_byte(b * 16u, off - 96u) | (q3_scale_byte(b * 16u, off - 95u) << 8u); }
  return wg_d[b];
}

@compute @workgroup_size(64)
fn quantize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let first_block = workgroup_index(wid, nwg) * BLOCKS_PER_GROUP;
  let b = lid >> 4u;
  let valid = first_block + b < qparams.n_blocks;
  let base = (first_block + b) * QK + (lid & 15u) * 16u;
  for (var i = 0u; i < 16u; i = i + 1u) {
    var x = 0.0;
    if (valid) { x = load_x(base + i); }
    qx_x[i] = x;
  }
  let scale = make_q3_quants(4);
  wg_scale[lid] = scale;
  workgroupBarrier();

  // The block's scale of largest magnitude (the first, on ties).
  var max_scale = 0.0;
  var max_abs = 0.0;
  for (var k = 0u; k < 16u; k = k + 1u) {
    let s = wg_scale[b * 16u + k];
    let more = abs(s) > max_abs;
    max_abs = select(max_abs, abs(s), more);
    max_scale = select(max_scale, s, more);
  }
  // All scales 0: d = 0 and every 6-bit scale 0.
  let zero_block = (bitcast<u32>(max_scale) & 0x7fffffffu) == 0u;
  let iscale = -32.0 / select(max_scale, 1.0, zero_block);
  let l6 = select(u32(clamp(nearest_int_bits(iscale * scale), -32, 31) + 32), 0u, zero_block);
  let d_bits = select(f32_to_f16_bits(1.0 / iscale), 0u, zero_block);
  let d = f16_bits_to_f32(d_bits) * f32(i32(l6) - 32);
  // Where d is 0, ggml keeps the quants make_q3_quants chose.
  let requant = (bitcast<u32>(d) & 0x7fffffffu) != 0u;
  for (var i = 0u; i < 16u; i = i + 1u) {
    let q = select(qx_q[i], clamp(f32(nearest_int_bits(qx_x[i] / d)), -4.0, 3.0), requant);
    wg_L[lid * 16u + i] = u32(i32(q) + 4);
  }
  wg_l6[lid] = l6;
  if ((lid & 15u) == 0u) { wg_d[b] = d_bits; }
  workgroupBarrier();

  let n_valid = min(BLOCKS_PER_GROUP, qparams.n_blocks - first_block);
  let n_words = (n_valid * BLOCK_BYTES + 3u) / 4u;
  for (var w = lid; w < n_words; w = w + 64u) {
    var word = 0u;
    for (var h = 0u; h < 2u; h = h + 1u) {
      let p = w * 4u + h * 2u;
      let pb = p / BLOCK_BYTES;
      if (pb < n_valid) { word = word | (q3_half(pb, p - pb * BLOCK_BYTES) << (h * 16u)); }
    }
    dst[(first_block / BLOCKS_PER_GROUP) * (BLOCK_BYTES * BLOCKS_PER_GROUP / 4u) + w] = word;
  }
}

// One invocation per group of 16 outputs; a workgroup decodes 16 blocks.
@compute @workgroup_size(256)
fn dequantize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let b = workgroup_index(wid, nwg) * 16u + (lid >> 4u);
  if (b >= dparams.n_blocks) { return; }
  let g = lid & 15u;
  let base = b * BLOCK_BYTES;
  let d_all = f16_bits_to_f32(block_u16(base + 108u));
  let low = select(block_byte(base + 96u + g - 8u) >> 4u, block_byte(base + 96u + g) & 15u, g < 8u);
  let high = (block_byte(base + 104u + (g & 3u)) >> (2u * (g >> 2u))) & 3u;
  let dl = d_all * f32(i32(low | (high << 4u)) - 32);
  for (var i = 0u; i < 16u; i = i + 1u) {
    let e = g * 16u + i;
    let q = (block_byte(base + 32u + (e >> 7u) * 32u + (e & 31u)) >> (2u * ((e >> 5u) & 3u))) & 3u;
    let h = (block_byte(base + (e & 31u)) >> (e >> 5u)) & 1u;
    out[b * QK + e] = dl * f32(i32(q) - select(4, 0, h == 1u));
  }
}
