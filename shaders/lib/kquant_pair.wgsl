// The output side of the k-quant kernels that give each invocation a pair of
// blocks (shaders/quant/q3_K.wgsl, q6_K.wgsl): their block sizes are 2 mod 4
// bytes, so a pair is the smallest run of blocks that fills whole words.
// Words are assembled in a private image of the pair, then stored in order.

// The pair's bytes, OR-ed together as they are computed.
var<private> pair_img: array<u32, PAIR_WORDS + 1u>;

fn pair_clear() {
  for (var w = 0u; w < PAIR_WORDS + 1u; w = w + 1u) { pair_img[w] = 0u; }
}

// ORs `v` into the image at byte `off` (even) of block `blk` (0 or 1) of the pair.
fn pair_or(blk: u32, off: u32, v: u32) {
  let p = blk * BLOCK_BYTES + off;
  let w = p >> 2u;
  if ((p & 3u) == 0u) {
    pair_img[w] = pair_img[w] | v;
  } else {
    pair_img[w] = pair_img[w] | (v << 16u);
    pair_img[w + 1u] = pair_img[w + 1u] | (v >> 16u);
  }
}

// Stores the pair's words: all of them, or those of its first block alone
// when `n_blocks` is 1 (the odd last block of the tensor).
fn pair_store(pair: u32, n_blocks: u32) {
  let n_words = (n_blocks * BLOCK_BYTES + 3u) / 4u;
  for (var w = 0u; w < n_words; w = w + 1u) { dst[pair * PAIR_WORDS + w] = pair_img[w]; }
}
