// What the k-quant kernels with 16 groups of 16 per block share
// (shaders/quant/q3_K.wgsl, q6_K.wgsl): each invocation takes a pair of
// blocks, since their block sizes are 2 mod 4 bytes and a pair is the smallest
// run of blocks that fills whole words. A block is worked in quads of four
// groups, one per vec4 component: quad Q holds groups 8h + k + 2c (h = Q >> 1,
// k = Q & 1, c = 0..3), the groups whose quants share the bytes the quad writes.
// Words are assembled in a private image of the pair, then stored in order.
// Needs lib/kquant_qx.wgsl (qx_x) and lib/quantize_io.wgsl (load_x).

fn quad_group(q: u32, c: u32) -> u32 {
  return 8u * (q >> 1u) + (q & 1u) + 2u * c;
}

// The block's values, quad by quad (index 16 * quad + j: element j of the quad's groups).
var<private> block_x: array<vec4<f32>, 64>;
// Each quad's four group scales.
var<private> quad_scale: array<vec4<f32>, 4>;
// The block's importance weights in block_x's order (WEIGHTED pipelines only; filled by their entry point).
var<private> block_w: array<vec4<f32>, 64>;

// Loads quad q of the block at element `first` into block_x and qx_x.
// `sixteen` is 16, passed as a uniform value: a loop bound the compiler cannot
// fold keeps the loop rolled (unrolled, code size and compile time explode).
fn load_quad(first: u32, q: u32, sixteen: u32) {
  for (var j = 0u; j < sixteen; j = j + 1u) {
    block_x[16u * q + j] = vec4(load_x(first + 16u * quad_group(q, 0u) + j), load_x(first + 16u * quad_group(q, 1u) + j),
                                load_x(first + 16u * quad_group(q, 2u) + j), load_x(first + 16u * quad_group(q, 3u) + j));
  }
  for (var j = 0u; j < 16u; j = j + 1u) { qx_x[j] = block_x[16u * q + j]; }
  if (WEIGHTED) {
    for (var j = 0u; j < sixteen; j = j + 1u) { qx_w[j] = block_w[16u * q + j]; }
  }
}

// Scale of group g (0..15), from quad_scale.
fn group_scale(g: u32) -> f32 {
  return quad_scale[2u * (g >> 3u) + (g & 1u)][(g & 7u) >> 1u];
}

// The block's scale of largest magnitude (the first group's, on ties; 0 when all are 0).
fn block_max_scale() -> f32 {
  var max_scale = 0.0;
  var max_abs = 0.0;
  for (var g = 0u; g < 16u; g = g + 1u) {
    let s = group_scale(g);
    let more = abs(s) > max_abs;
    max_abs = select(max_abs, abs(s), more);
    max_scale = select(max_scale, s, more);
  }
  return max_scale;
}

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
