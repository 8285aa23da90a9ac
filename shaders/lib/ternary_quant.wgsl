// What the ternary formats TQ1_0 and TQ2_0 share (shaders/quant/tq{1,2}_0.wgsl):
// blocks of 256 weights stored as QS_WORDS words of packed codes followed by
// d = max |x| as float16 (4 * QS_WORDS + 2 bytes), so one invocation writes a
// pair of blocks, 2 * QS_WORDS + 1 whole words. The including shader defines
// QK (256), QS_WORDS and tq_word(k, id): word k of the codes of the block in
// xs for the inverse scale id. Needs lib/legacy_quant.wgsl.

// The block's 256 inputs, loaded once: element 4i + c in component c of xs[i].
var<private> xs: array<vec4<f32>, 64>;

// Loads block b into xs; returns d = max |x| as float32 bits (>= 0x7f800000 if non-finite).
fn tq_load(b: u32) -> u32 {
  var m = 0u;
  for (var k = 0u; k < 8u; k = k + 1u) {
    let x = load_block32(b * QK + k * 32u);
    xs[8u * k] = x.x0; xs[8u * k + 1u] = x.x1; xs[8u * k + 2u] = x.x2; xs[8u * k + 3u] = x.x3;
    xs[8u * k + 4u] = x.x4; xs[8u * k + 5u] = x.x5; xs[8u * k + 6u] = x.x6; xs[8u * k + 7u] = x.x7;
    m = max(m, abs_max_bits32(x));
  }
  return m;
}

// Quantizes block b into dst from word w; with `shifted`, the block starts at the
// high half of dst[w], whose low half is `lead`. Returns the block's d (float16 bits).
fn tq_block(b: u32, w: u32, shifted: bool, lead: u32) -> u32 {
  let amax = tq_load(b);
  let finite = is_finite_bits(amax);
  let id = select(0.0, inverse_or_zero(bitcast<f32>(amax)), finite);
  let dh = select(F16_NAN, f32_to_f16_bits(bitcast<f32>(amax)), finite);
  var carry = lead;
  for (var k = 0u; k < QS_WORDS; k = k + 1u) {
    let word = select(0u, tq_word(k, id), finite);
    if (shifted) { carry = write_shifted(w + k, word, carry); } else { dst[w + k] = word; }
  }
  if (shifted) { dst[w + QS_WORDS] = carry | (dh << 16u); }
  return dh;
}

// Quantizes blocks 2 * pair and 2 * pair + 1 (the last block alone when the count is odd).
fn tq_quantize_pair(pair: u32) {
  let b0 = pair * 2u;
  if (b0 >= qparams.n_blocks) { return; }
  let w = pair * (2u * QS_WORDS + 1u);
  let da = tq_block(b0, w, false, 0u);
  if (b0 + 1u < qparams.n_blocks) {
    tq_block(b0 + 1u, w + QS_WORDS, true, da);
  } else {
    dst[w + QS_WORDS] = da;
  }
}
