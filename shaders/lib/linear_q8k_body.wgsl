// y = x @ wᵀ for K-quant weights (Q4_K, Q5_K, Q6_K) with x's rows rounded to
// Q8_K first (shaders/matmul/q8k_rows.wgsl), the products taken in integers:
// what llama.cpp's CPU backend computes (ggml_vec_dot_q{4,5,6}_K_q8_K). Per
// 32-value chunk and weight row, 8 dot4I8Packed of the weight's quants (as
// unsigned bytes, 0..63) with x's signed bytes, summed per 16 values in i32;
// then in float32 the chunk's scales, the weight's mins (or Q6_K's offset of
// 32) against x's byte sums, and x's block scale d. Run by
// src/kernels/matmul-linear.ts through shaders/matmul/linear_q8k.wgsl (any
// adapter) or linear_q8k_subgroup.wgsl (x's loads shared by broadcast).
//
// Tiling as lib/linear_body.wgsl: each invocation owns 4 consecutive weight
// rows and the workgroup's bm token rows; a chunk of its rows is unpacked once
// into registers and serves every token row. No workgroup memory, no
// barriers; rows past M or N are clamped and not stored.

override W_KIND: u32 = 5u; // 5 q4_K, 6 q5_K, 7 q6_K (as in lib/linear_body.wgsl)
//#include lib/linear_common.wgsl

@group(0) @binding(0) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> w4: array<vec4<u32>>;

// One weight row's chunk: 32 quants as bytes (value 4i + b in byte b of word
// i); per 16 values a float scale, and the float subtracted per unit of x's
// byte sum (Q4_K/Q5_K: dmin * m; Q6_K: 32 * d * scale).
struct Chunk {
  q: array<u32, 8>,
  scale: vec2<f32>,
  offset: vec2<f32>,
}

fn unpack_chunk(r: u32, c: u32) -> Chunk {
  var o: Chunk;
  let rb = (p.w_base + r * p.w_row_bytes) >> 4u;
  let j = c & 7u;
  if (W_KIND == 5u || W_KIND == 6u) {
    // q4_K (144 bytes): d, dmin, 12 scale bytes, 128 bytes of nibbles;
    // q5_K (176): the same with 32 bytes of high bits before the nibbles
    let blk = rb + (c >> 3u) * select(9u, 11u, W_KIND == 6u);
    let h = w4[blk];
    let dm = unpack2x16float(h.x);
    let sm = scale_min_k4(j, h);
    o.scale = vec2<f32>(dm.x * sm.x);
    o.offset = vec2<f32>(dm.y * sm.y);
    let qs = blk + select(1u, 3u, W_KIND == 6u) + (j >> 1u) * 2u;
    // sub-blocks 2g and 2g + 1 share 32 bytes: low and high nibbles
    let sh = (j & 1u) * 4u;
    let q0 = (w4[qs] >> vec4<u32>(sh)) & vec4<u32>(0x0f0f0f0fu);
    let q1 = (w4[qs + 1u] >> vec4<u32>(sh)) & vec4<u32>(0x0f0f0f0fu);
    if (W_KIND == 5u) {
      o.q = array<u32, 8>(q0.x, q0.y, q0.z, q0.w, q1.x, q1.y, q1.z, q1.w);
    } else {
      // bit j of each high-bit byte, moved to bit 4
      let h0 = ((w4[blk + 1u] >> vec4<u32>(j)) & vec4<u32>(0x01010101u)) << vec4<u32>(4u);
      let h1 = ((w4[blk + 2u] >> vec4<u32>(j)) & vec4<u32>(0x01010101u)) << vec4<u32>(4u);
      let a = q0 | h0;
      let b = q1 | h1;
      o.q = array<u32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
    }
  } else {
    // q6_K padded to 224 bytes: ql[128] (vec4 0-7), qh[64] (vec4 8-11), 16 signed scales (vec4 12), d (vec4 13's x, low half)
    let blk = rb + (c >> 3u) * 14u;
    let half = j >> 2u;
    let g = j & 3u;
    let ql = blk + half * 4u + (g & 1u) * 2u;
    let sh = (g >> 1u) * 4u;
    let hsh = 2u * g;
    let a = ((w4[ql] >> vec4<u32>(sh)) & vec4<u32>(0x0f0f0f0fu)) | (((w4[blk + 8u + half * 2u] >> vec4<u32>(hsh)) & vec4<u32>(0x03030303u)) << vec4<u32>(4u));
    let b = ((w4[ql + 1u] >> vec4<u32>(sh)) & vec4<u32>(0x0f0f0f0fu)) | (((w4[blk + 9u + half * 2u] >> vec4<u32>(hsh)) & vec4<u32>(0x03030303u)) << vec4<u32>(4u));
    o.q = array<u32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
    let word = w4[blk + 12u][half * 2u + (g >> 1u)] >> ((g & 1u) * 16u);
    let d = unpack2x16float(w4[blk + 13u].x).x;
    let sc = vec2<f32>(f32((bitcast<i32>(word) << 24u) >> 24u), f32((bitcast<i32>(word) << 16u) >> 24u));
    o.scale = d * sc;
    o.offset = 32.0 * o.scale;
  }
  return o;
}

// Σ of the chunk's byte products, first and second 16 values.
fn idot(wq: array<u32, 8>, a: vec4<u32>, b: vec4<u32>) -> vec2<i32> {
  let lo = (dot4I8Packed(wq[0], a.x) + dot4I8Packed(wq[1], a.y)) + (dot4I8Packed(wq[2], a.z) + dot4I8Packed(wq[3], a.w));
  let hi = (dot4I8Packed(wq[4], b.x) + dot4I8Packed(wq[5], b.y)) + (dot4I8Packed(wq[6], b.z) + dot4I8Packed(wq[7], b.w));
  return vec2<i32>(lo, hi);
}

// Σ over 4 rows of one chunk's products, as float32 before x's block scale:
// the chunk's scale(s) times the integer sums, less the offset times x's byte sums.
fn chunk_sums(w0: Chunk, w1: Chunk, w2: Chunk, w3: Chunk, a: vec4<u32>, b: vec4<u32>, e: vec4<u32>) -> vec4<f32> {
  let d0 = idot(w0.q, a, b);
  let d1 = idot(w1.q, a, b);
  let d2 = idot(w2.q, a, b);
  let d3 = idot(w3.q, a, b);
  let bs = bitcast<vec2<i32>>(e.xy);
  if (W_KIND == 7u) {
    // q6_K: a scale per 16 values, quants offset by 32
    let lo = vec4<f32>(vec4<i32>(d0.x, d1.x, d2.x, d3.x) - 32 * bs.x);
    let hi = vec4<f32>(vec4<i32>(d0.y, d1.y, d2.y, d3.y) - 32 * bs.y);
    return fma(vec4<f32>(w0.scale.y, w1.scale.y, w2.scale.y, w3.scale.y), hi, vec4<f32>(w0.scale.x, w1.scale.x, w2.scale.x, w3.scale.x) * lo);
  }
  // q4_K / q5_K: one scale and one min per 32 values
  let sums = vec4<f32>(vec4<i32>(d0.x + d0.y, d1.x + d1.y, d2.x + d2.y, d3.x + d3.y));
  return fma(vec4<f32>(w0.scale.x, w1.scale.x, w2.scale.x, w3.scale.x), sums, vec4<f32>(w0.offset.x, w1.offset.x, w2.offset.x, w3.offset.x) * -f32(bs.x + bs.y));
}

// wide: subgroups of 8 or more share x's loads (linear_q8k_subgroup.wgsl; false in linear_q8k.wgsl).
fn run_tile(wid: vec3<u32>, lid: u32, wide: bool) {
  let n0 = (wid.x * WG + lid) * 4u;
  let m0 = wid.y * p.bm;
  let last_n = p.n - 1u;
  let r0 = min(n0, last_n);
  let r1 = min(n0 + 1u, last_n);
  let r2 = min(n0 + 2u, last_n);
  let r3 = min(n0 + 3u, last_n);
  // indexed by the token loop's counter (per-lane memory on lavapipe): two
  // chunks per step halve that traffic, and the unpacked bytes of 2 chunks x
  // 4 rows (64 words) still fit in registers where 1 chunk of floats (128) barely did
  var acc: array<vec4<f32>, BM_MAX>;
  let chunks = p.k >> 5u;
  let x_row = chunks * 3u;
  for (var c = 0u; c < chunks; c = c + 2u) {
    let w0 = unpack_chunk(r0, c);
    let w1 = unpack_chunk(r1, c);
    let w2 = unpack_chunk(r2, c);
    let w3 = unpack_chunk(r3, c);
    let v0 = unpack_chunk(r0, c + 1u);
    let v1 = unpack_chunk(r1, c + 1u);
    let v2 = unpack_chunk(r2, c + 1u);
    let v3 = unpack_chunk(r3, c + 1u);
    for (var i = 0u; i < p.bm; i = i + 1u) {
      let x = load_x_pair(wide, p.x_base + min(m0 + i, p.m - 1u) * x_row + c * 3u);
      let f = chunk_sums(w0, w1, w2, w3, x[0], x[1], x[2]) + chunk_sums(v0, v1, v2, v3, x[3], x[4], x[5]);
      // both chunks lie in one 256-value block: one d
      acc[i] = fma(vec4<f32>(bitcast<f32>(x[2].z)), f, acc[i]);
    }
  }
  for (var i = 0u; i < p.bm; i = i + 1u) {
    store_row(m0 + i, n0, acc[i]);
  }
}
