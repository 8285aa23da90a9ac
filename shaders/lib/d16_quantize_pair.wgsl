// quantize_blocks of the measured { d: f16, words } formats (shaders/quant/q4_0.wgsl,
// q5_0, q8_0): one invocation quantizes a pair of blocks through the including
// shader's `fn d16_block(b: u32, s: ptr<function, vec4<f32>>) -> D16Block` (which
// adds the block's error to s), stores them (lib/d16_pair.wgsl) and writes the
// workgroup's error sums (lib/quantize_error_sums.wgsl). Control flow stays
// uniform up to their reduction.

fn quantize_blocks(pair: u32, b0: u32) {
  var s = vec4<f32>(0.0);
  if (b0 < qparams.n_blocks) {
    let n = min(2u, qparams.n_blocks - b0);
    // one call site in a rolled loop: inlined twice, the block code took twice the
    // compile time (and ran no faster)
    var a: D16Block;
    var c: D16Block;
    for (var k = 0u; k < n; k = k + 1u) {
      let r = d16_block(b0 + k, &s);
      if (k == 0u) { a = r; } else { c = r; }
    }
    store_d16_pair(pair, a, n == 2u, c);
  }
  write_error_sums(pair, s);
}
