// TQ1_0 (ternary, 1.6875 bits a weight): blocks of 256 weights as
// { qs: u8[48], qh: u8[4], d: f16 } (54 bytes), x = d * (t - 1) with trits t in 0..2.
// Five trits t0..t4 share a byte as ceil((t0*81 + t1*27 + t2*9 + t3*3 + t4) * 256 / 243),
// so trit n is recovered as ((byte * 3^n) mod 256) * 3 >> 8. qs[0..32) hold weights
// m + 32n of the first 160, qs[32..48) weights 160 + m + 16n, qh (four trits, shifted
// up one) weights 240 + j + 4n.
// ggml: quantize_row_tq1_0_ref / dequantize_row_tq1_0.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/legacy_quant.wgsl
//#include lib/ternary_quant.wgsl

const QS_WORDS: u32 = 13u;

// Trits lroundf(x * id) + 1 of xs[i].
fn trits(i: u32, id: f32) -> vec4<u32> {
  return bitcast<vec4<u32>>(c_lround4(xs[i] * id) + vec4<i32>(1));
}

// Five base-3 digits packed into a byte, rounding up: (q * 256 + 242) / 243.
fn pack_trits(q: vec4<u32>) -> vec4<u32> {
  return ((q & vec4<u32>(0xffu)) * 256u + 242u) / 243u;
}

// Word k of the block's first 52 bytes (qs, then qh).
fn tq_word(k: u32, id: f32) -> u32 {
  if (k < 8u) {
    // bytes m = 4k..4k+3: weights m + 32n
    var q = vec4<u32>(0u);
    for (var n = 0u; n < 5u; n = n + 1u) { q = q * 3u + trits(k + 8u * n, id); }
    return pack_bytes(pack_trits(q));
  }
  if (k < 12u) {
    // bytes 32 + m, m = 4(k - 8)..: weights 160 + m + 16n
    var q = vec4<u32>(0u);
    for (var n = 0u; n < 5u; n = n + 1u) { q = q * 3u + trits(32u + k + 4u * n, id); }
    return pack_bytes(pack_trits(q));
  }
  // qh bytes j = 0..3: weights 240 + j + 4n, the four trits shifted up one
  var q = vec4<u32>(0u);
  for (var n = 0u; n < 4u; n = n + 1u) { q = q * 3u + trits(60u + n, id); }
  return pack_bytes(pack_trits(q * 3u));
}

// One invocation per pair of blocks (lib/ternary_quant.wgsl).
fn quantize_blocks(pair: u32, first: u32) {
  tq_quantize_pair(pair);
}

// Trit n (0..4) of four packed bytes, as the weights' signs -1, 0 or 1.
fn trits_of4(bytes: vec4<u32>, n: u32) -> vec4<f32> {
  let pow3 = array<u32, 5>(1u, 3u, 9u, 27u, 81u);
  return vec4<f32>(vec4<i32>((((bytes * pow3[n]) & vec4<u32>(0xffu)) * 3u) >> vec4<u32>(8u)) - vec4<i32>(1));
}

fn dequantize_part(b: u32, part: u32) {
  let p = b * BLOCK_BYTES;
  let o = b * 64u;
  let d = f16_bits_to_f32(block_u32_at(p + 52u) & 0xffffu);
  // qs bytes 0..31: weights 32n + m; bytes 32..47: 160 + 16n + m; qh: 240 + 4n + j.
  for (var k = 0u; k < 8u; k = k + 1u) {
    let q = bytes4(block_u32_at(p + 4u * k));
    for (var n = 0u; n < 5u; n = n + 1u) { out4[o + 8u * n + k] = trits_of4(q, n) * d; }
  }
  for (var k = 0u; k < 4u; k = k + 1u) {
    let q = bytes4(block_u32_at(p + 32u + 4u * k));
    for (var n = 0u; n < 5u; n = n + 1u) { out4[o + 40u + 4u * n + k] = trits_of4(q, n) * d; }
  }
  let qh = bytes4(block_u32_at(p + 48u));
  for (var n = 0u; n < 4u; n = n + 1u) { out4[o + 60u + n] = trits_of4(qh, n) * d; }
}
