// Batched, strided matrix product with float32 accumulation. Run by src/kernels/matmul.ts.
//
//   mode 0: out = alpha * (A @ B)
//   mode 1: out = alpha * (A @ B) + beta * C
//   mode 2: out = out + alpha * (A @ B)        (later K-chunks of a product too big for one binding)
//
// A is [M, K], B is [K, N], C is [M, N] (any strides, 0 for broadcast), out is
// row-major [M, N], one such product per batch index (workgroup z). Operands
// are float32 / float16 / bfloat16 (kind 0 / 1 / 2) read from u32 words.
// A's and B's kinds are override constants (their decoding sits in the hot
// tile loads); C's, out's and the mode are uniforms, used once per output, so
// that one pipeline serves them all: on lavapipe each pipeline costs about a
// second of JIT compilation.
//
// Tiling: a workgroup of WG_X x WG_Y invocations computes a BM x BN tile of
// out (BM = 8 * WG_Y, BN = 8 * WG_X), stepping through K in slabs of BK. Each
// slab of A and B is staged once in workgroup memory, converted to f32 and
// packed in vec4s (A along k, B along n), and every invocation accumulates an
// 8 x 8 block in registers: rows lid.y + i * WG_Y, columns in the two column
// quads lid.x and lid.x + WG_X, so neighbouring invocations read neighbouring
// vec4s. Measured on lavapipe, the vec4 staging and the 8 x 8 block (16 vec4
// loads per 64 vec4 FMAs) roughly tripled throughput over a 4 x 4 scalar block.
//
// Index arithmetic is u32 and wraps: the host folds window starts, chunk
// origins and negative strides into two's-complement bases, and every final
// index lands inside its binding window.
//
// out is bound as atomic words. A 16-bit output packs two elements per word:
// with an even row length (the usual case) an invocation owns both elements of
// each word it writes and stores it whole; with an odd one a word may straddle
// two rows of different invocations, and halves are merged with compare-exchange.

//#include lib/half.wgsl

override A_KIND: u32 = 0u;
override B_KIND: u32 = 0u;
override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
override BK: u32 = 16u;

// Rows and columns of out per invocation (the column count is fixed by the two vec4 accumulators).
const TM: u32 = 8u;

override BM: u32 = WG_Y * TM;
override BN: u32 = WG_X * 8u;
override THREADS: u32 = WG_X * WG_Y;
// vec4s per A-slab row and per B-slab row
override KQ: u32 = BK / 4u;
override NQ: u32 = BN / 4u;

struct Params {
  // rows, columns and depth of this chunk; global index of its first batch
  dims: vec4<u32>,
  // batch shape (outermost first), padded with 1s in front
  batch_shape: vec4<u32>,
  // base, row stride, column stride of A / B / C within their windows
  a: vec4<u32>,
  b: vec4<u32>,
  c: vec4<u32>,
  // out: base, row stride, batch stride
  o: vec4<u32>,
  // batch strides of A / B / C, one per batch dimension
  a_batch: vec4<u32>,
  b_batch: vec4<u32>,
  c_batch: vec4<u32>,
  // alpha, beta as f32 bits
  scale: vec4<u32>,
  // kinds of (unused), (unused), C, out
  kinds: vec4<u32>,
  // x: mode; y: 1 when a 16-bit out's column pairs (even n) start words (even row length and base)
  mode: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> a_buf: array<u32>;
@group(0) @binding(1) var<storage, read> b_buf: array<u32>;
@group(0) @binding(2) var<storage, read> c_buf: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<atomic<u32>>;
@group(0) @binding(4) var<uniform> p: Params;

var<workgroup> a_tile: array<vec4<f32>, BM * BK / 4u>;
var<workgroup> b_tile: array<vec4<f32>, BK * BN / 4u>;

fn decode(word: u32, i: u32, kind: u32) -> f32 {
  if (kind == 0u) { return bitcast<f32>(word); }
  let h = (word >> ((i & 1u) * 16u)) & 0xffffu;
  if (kind == 1u) { return f16_bits_to_f32(h); }
  return bf16_bits_to_f32(h);
}

fn word_index(i: u32, kind: u32) -> u32 {
  return select(i >> 1u, i, kind == 0u);
}

fn load_a(i: u32) -> f32 { return decode(a_buf[word_index(i, A_KIND)], i, A_KIND); }
fn load_b(i: u32) -> f32 { return decode(b_buf[word_index(i, B_KIND)], i, B_KIND); }
fn load_c(i: u32) -> f32 { return decode(c_buf[word_index(i, p.kinds.z)], i, p.kinds.z); }

fn encode16(x: f32) -> u32 {
  if (p.kinds.w == 1u) { return f32_to_f16_bits(x); }
  return f32_to_bf16_bits(x);
}

fn store_out(i: u32, value: f32) {
  if (p.kinds.w == 0u) {
    var v = value;
    if (p.mode.x == 2u) { v = v + bitcast<f32>(atomicLoad(&out[i])); }
    atomicStore(&out[i], bitcast<u32>(v));
    return;
  }
  let w = i >> 1u;
  let shift = (i & 1u) * 16u;
  let keep = ~(0xffffu << shift);
  var old = atomicLoad(&out[w]);
  loop {
    var v = value;
    if (p.mode.x == 2u) { v = v + decode(old, i, p.kinds.w); }
    let merged = (old & keep) | (encode16(v) << shift);
    let r = atomicCompareExchangeWeak(&out[w], old, merged);
    if (r.exchanged) { break; }
    old = r.old_value;
  }
}

// Stores the 16-bit elements i (even) and i + 1, which share one word no other invocation writes.
fn store_pair(i: u32, value0: f32, value1: f32) {
  let w = i >> 1u;
  var v0 = value0;
  var v1 = value1;
  if (p.mode.x == 2u) {
    let old = atomicLoad(&out[w]);
    v0 = v0 + decode(old, 0u, p.kinds.w);
    v1 = v1 + decode(old, 1u, p.kinds.w);
  }
  atomicStore(&out[w], encode16(v0) | (encode16(v1) << 16u));
}

// Offset of batch `g` (a global batch index) under per-dimension strides `s`.
fn batch_offset(g: u32, s: vec4<u32>) -> u32 {
  let shape = p.batch_shape;
  var rest = g;
  let i3 = rest % shape.w;
  rest = rest / shape.w;
  let i2 = rest % shape.z;
  rest = rest / shape.z;
  let i1 = rest % shape.y;
  let i0 = rest / shape.y;
  return i0 * s.x + i1 * s.y + i2 * s.z + i3 * s.w;
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let m_count = p.dims.x;
  let n_count = p.dims.y;
  let k_count = p.dims.z;
  let batch = p.dims.w + wid.z;
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;

  let a_origin = p.a.x + batch_offset(batch, p.a_batch);
  let b_origin = p.b.x + batch_offset(batch, p.b_batch);

  var acc0: array<vec4<f32>, TM>;
  var acc1: array<vec4<f32>, TM>;
  for (var i = 0u; i < TM; i = i + 1u) { acc0[i] = vec4<f32>(0.0); acc1[i] = vec4<f32>(0.0); }

  for (var k0 = 0u; k0 < k_count; k0 = k0 + BK) {
    // A slab: BM rows x BK/4 quads along k
    for (var e = li; e < BM * KQ; e = e + THREADS) {
      let r = row0 + e / KQ;
      let k = k0 + (e % KQ) * 4u;
      var v = vec4<f32>(0.0);
      if (r < m_count) {
        let at = a_origin + r * p.a.y + k * p.a.z;
        if (k < k_count) { v.x = load_a(at); }
        if (k + 1u < k_count) { v.y = load_a(at + p.a.z); }
        if (k + 2u < k_count) { v.z = load_a(at + 2u * p.a.z); }
        if (k + 3u < k_count) { v.w = load_a(at + 3u * p.a.z); }
      }
      a_tile[e] = v;
    }
    // B slab: BK rows x BN/4 quads along n
    for (var e = li; e < BK * NQ; e = e + THREADS) {
      let k = k0 + e / NQ;
      let n = col0 + (e % NQ) * 4u;
      var v = vec4<f32>(0.0);
      if (k < k_count) {
        let at = b_origin + k * p.b.y + n * p.b.z;
        if (n < n_count) { v.x = load_b(at); }
        if (n + 1u < n_count) { v.y = load_b(at + p.b.z); }
        if (n + 2u < n_count) { v.z = load_b(at + 2u * p.b.z); }
        if (n + 3u < n_count) { v.w = load_b(at + 3u * p.b.z); }
      }
      b_tile[e] = v;
    }
    workgroupBarrier();
    for (var q = 0u; q < KQ; q = q + 1u) {
      let b0 = q * 4u * NQ + lid.x;
      let b00 = b_tile[b0];
      let b01 = b_tile[b0 + WG_X];
      let b10 = b_tile[b0 + NQ];
      let b11 = b_tile[b0 + NQ + WG_X];
      let b20 = b_tile[b0 + 2u * NQ];
      let b21 = b_tile[b0 + 2u * NQ + WG_X];
      let b30 = b_tile[b0 + 3u * NQ];
      let b31 = b_tile[b0 + 3u * NQ + WG_X];
      for (var i = 0u; i < TM; i = i + 1u) {
        let av = a_tile[(lid.y + i * WG_Y) * KQ + q];
        var s0 = acc0[i];
        var s1 = acc1[i];
        s0 = fma(vec4<f32>(av.x), b00, s0);
        s1 = fma(vec4<f32>(av.x), b01, s1);
        s0 = fma(vec4<f32>(av.y), b10, s0);
        s1 = fma(vec4<f32>(av.y), b11, s1);
        s0 = fma(vec4<f32>(av.z), b20, s0);
        s1 = fma(vec4<f32>(av.z), b21, s1);
        s0 = fma(vec4<f32>(av.w), b30, s0);
        s1 = fma(vec4<f32>(av.w), b31, s1);
        acc0[i] = s0;
        acc1[i] = s1;
      }
    }
    workgroupBarrier();
  }

  let alpha = bitcast<f32>(p.scale.x);
  let beta = bitcast<f32>(p.scale.y);
  let c_origin = p.c.x + batch_offset(batch, p.c_batch);
  let o_origin = p.o.x + wid.z * p.o.z;
  for (var i = 0u; i < TM; i = i + 1u) {
    let r = row0 + lid.y + i * WG_Y;
    if (r >= m_count) { continue; }
    for (var j = 0u; j < 8u; j = j + 2u) {
      // Columns j, j + 1 are neighbours in one of the invocation's column quads.
      let n = col0 + select(lid.x * 4u + j, (lid.x + WG_X) * 4u + j - 4u, j >= 4u);
      if (n >= n_count) { continue; }
      var v0 = alpha * select(acc0[i][j & 3u], acc1[i][j & 3u], j >= 4u);
      var v1 = alpha * select(acc0[i][(j + 1u) & 3u], acc1[i][(j + 1u) & 3u], j >= 4u);
      let has1 = n + 1u < n_count;
      if (p.mode.x == 1u) {
        let ci = c_origin + r * p.c.y + n * p.c.z;
        v0 = v0 + beta * load_c(ci);
        if (has1) { v1 = v1 + beta * load_c(ci + p.c.z); }
      }
      let oi = o_origin + r * p.o.y + n;
      if (p.kinds.w != 0u && p.mode.y == 1u) {
        // 16-bit output whose element pairs align with words: one plain word store.
        store_pair(oi, v0, v1);
      } else {
        store_out(oi, v0);
        if (has1) { store_out(oi + 1u, v1); }
      }
    }
  }
}
