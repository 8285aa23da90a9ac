// The output side of the formats laid out as { d: f16, then whole words }
// (shaders/quant/q4_0.wgsl, q5_0, q8_0, iq4_nl): their blocks are 2 mod 4 bytes,
// so each invocation writes a pair of blocks, the smallest run of whole words.
// The including shader defines BODY_WORDS (at most 8). Needs lib/legacy_quant.wgsl.

// A block (2 + 4 * BODY_WORDS bytes): d's bits and the words after it.
struct D16Block {
  d: u32,
  words: array<u32, 8>,
}

// The block that marks non-finite input: a NaN scale and zero quants.
fn invalid_d16_block() -> D16Block {
  return D16Block(F16_NAN, array<u32, 8>());
}

// Stores block a of pair `pair`, and block c when `two` (2 * BODY_WORDS + 1
// words): a's words sit half a word late, after its d; c's start word-aligned
// after c's d. A lone last block is padded with a zero half word.
fn store_d16_pair(pair: u32, a: D16Block, two: bool, c: D16Block) {
  let w = pair * (2u * BODY_WORDS + 1u);
  var carry = a.d;
  for (var k = 0u; k < BODY_WORDS; k = k + 1u) { carry = write_shifted(w + k, a.words[k], carry); }
  if (two) {
    dst[w + BODY_WORDS] = carry | (c.d << 16u);
    for (var k = 0u; k < BODY_WORDS; k = k + 1u) { dst[w + BODY_WORDS + 1u + k] = c.words[k]; }
  } else {
    dst[w + BODY_WORDS] = carry;
  }
}
