// Q6_K: super-blocks of 256 weights in 16 groups of 16 (210 bytes):
// ql[128] low 4 bits, qh[64] high 2 bits, scales[16] int8, d float16;
// x = d * scale[g] * (L - 32). ggml: quantize_row_q6_K_ref / dequantize_row_q6_K.
//
// quantize: one invocation per group of 16 runs make_qx_quants; a workgroup
// holds 4 super-blocks, shares their group scales and quants in workgroup
// memory, and writes their 840 bytes as 210 whole words.

//#include lib/quantize_io.wgsl
//#include lib/dequantize_io.wgsl
//#include lib/kquant_qx.wgsl

const QK: u32 = 256u;
const BLOCK_BYTES: u32 = 210u;
const BLOCKS_PER_GROUP: u32 = 4u;

var<workgroup> wg_scale: array<f32, 64>;
// L = q + 32 (0..63) of every element of the workgroup's blocks.
var<workgroup> wg_L: array<u32, 1024>;
// Each group's int8 scale, as a byte.
var<workgroup> wg_sc: array<u32, 64>;
// Each block's d, float16 bits.
var<workgroup> wg_d: array<u32, 4>;

// Bytes off, off + 1 (off even) of block b of the workgroup, little-endian.
fn q6_half(b: u32, off: u32) -> u32 {
  let e0 = b * QK;
  if (off < 128u) {
    // ql: elements e (low nibble) and e + 64 (high nibble), 2 per 128-half
    let e = e0 + (off >> 6u) * 128u + (off & 63u);
    let lo = (wg_L[e] & 15u) | ((wg_L[e + 64u] & 15u) << 4u);
    let hi = (wg_L[e + 1u] & 15u) | ((wg_L[e + 65u] & 15u) << 4u);
    return lo | (hi << 8u);
  }
  if (off < 192u) {
    // qh: the high 2 bits of elements e, e + 32, e + 64, e + 96
    let o = off - 128u;
    let e = e0 + (o >> 5u) * 128u + (o & 31u);
    let lo = (wg_L[e] >> 4u) | ((wg_L[e + 32u] >> 4u) << 2u) | ((wg_L[e + 64u] >> 4u) << 4u) | ((wg_L[e + 96u] >> 4u) << 6u);
    let hi = (wg_L[e + 1u] >> 4u) | ((wg_L[e + 33u] >> 4u) << 2u) | ((wg_L[e + 65u] >> 4u) << 4u) | ((wg_L[e + 97u] >> 4u) << 6u);
    return lo | (hi << 8u);
  }
  if (off < 208u) {
    let k = b * 16u + off - 192u;
    return wg_sc[k] | (wg_sc[k + 1u] << 8u);
  }
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
  let scale = make_qx_quants(32.0);
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
  // A block whose scales are all below GROUP_MAX_EPS is all zero bytes.
  let zero_block = max_abs < GROUP_MAX_EPS;
  let iscale = -128.0 / select(max_scale, 1.0, zero_block);
  let d_bits = select(f32_to_f16_bits(1.0 / iscale), 0u, zero_block);
  let sc = min(127, nearest_int_bits(iscale * scale));
  let d = f16_bits_to_f32(d_bits) * f32(sc);
  // Where d is 0, ggml keeps the quants make_qx_quants chose.
  let requant = (bitcast<u32>(d) & 0x7fffffffu) != 0u;
  for (var i = 0u; i < 16u; i = i + 1u) {
    let q = select(qx_q[i], clamp(f32(nearest_int_bits(qx_x[i] / d)), -32.0, 31.0), requant);
    wg_L[lid * 16u + i] = select(u32(i32(q) + 32), 0u, zero_block);
  }
  wg_sc[lid] = select(bitcast<u32>(sc) & 0xffu, 0u, zero_block);
  if ((lid & 15u) == 0u) { wg_d[b] = d_bits; }
  workgroupBarrier();

  let n_valid = min(BLOCKS_PER_GROUP, qparams.n_blocks - first_block);
  let n_words = (n_valid * BLOCK_BYTES + 3u) / 4u;
  for (var w = lid; w < n_words; w = w + 64u) {
    var word = 0u;
    for (var h = 0u; h < 2u; h = h + 1u) {
      let p = w * 4u + h * 2u;
      let pb = p / BLOCK_BYTES;
      if (pb < n_valid) { word = word | (q6_half(pb, p - pb * BLOCK_BYTES) << (h * 16u)); }
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
  let d = f16_bits_to_f32(block_u16(base + 208u));
  let sc = f32(bitcast<i32>(block_byte(base + 192u + g) << 24u) >> 24u);
  let ds = d * sc;
  for (var i = 0u; i < 16u; i = i + 1u) {
    let e = g * 16u + i;
    let half = e >> 7u;
    let r = e & 127u;
    let low = (block_byte(base + half * 64u + (r & 63u)) >> ((r >> 6u) * 4u)) & 15u;
    let high = (block_byte(base + 128u + half * 32u + (r & 31u)) >> ((r >> 5u) * 2u)) & 3u;
    out[b * QK + e] = ds * f32(i32(low | (high << 4u)) - 32);
  }
}
