// Batched, strided matrix product with float32 accumulation. Run by src/kernels/matmul.ts.
//
//   MODE 0: out = alpha * (A @ B)
//   MODE 1: out = alpha * (A @ B) + beta * C
//   MODE 2: out = out + alpha * (A @ B)        (later K-chunks of a product too big for one binding)
//
// A is [M, K], B is [K, N], C is [M, N] (any strides, 0 for broadcast), out is
// row-major [M, N], one such product per batch index (workgroup z). Operands
// are float32 / float16 / bfloat16 (KIND 0 / 1 / 2) read from u32 words.
//
// Tiling: a workgroup of WG_X x WG_Y invocations computes a BM x BN tile of
// out (BM = WG_Y * TM, BN = WG_X * TN), stepping through K in slabs of BK:
// each slab of A and B is staged once in workgroup memory, converted to f32,
// and every invocation accumulates a TM x TN block in registers. Rows and
// columns of an invocation's block are interleaved (lid + i * WG), so adjacent
// invocations read adjacent words of the staged tiles.
//
// Index arithmetic is u32 and wraps: the host folds window starts, chunk
// origins and negative strides into two's-complement bases, and every final
// index lands inside its binding window.
//
// out is bound as atomic words: a 16-bit output shares each word between two
// elements that may belong to different invocations (row ends), so halves are
// merged with compare-exchange.

//#include lib/half.wgsl

override A_KIND: u32 = 0u;
override B_KIND: u32 = 0u;
override C_KIND: u32 = 0u;
override OUT_KIND: u32 = 0u;
override MODE: u32 = 0u;
override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
override BK: u32 = 16u;

const TM: u32 = 4u;
const TN: u32 = 4u;

override BM: u32 = WG_Y * TM;
override BN: u32 = WG_X * TN;
override THREADS: u32 = WG_X * WG_Y;

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
}

@group(0) @binding(0) var<storage, read> a_buf: array<u32>;
@group(0) @binding(1) var<storage, read> b_buf: array<u32>;
@group(0) @binding(2) var<storage, read> c_buf: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<atomic<u32>>;
@group(0) @binding(4) var<uniform> p: Params;

var<workgroup> a_tile: array<f32, BM * BK>;
var<workgroup> b_tile: array<f32, BK * BN>;

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
fn load_c(i: u32) -> f32 { return decode(c_buf[word_index(i, C_KIND)], i, C_KIND); }

fn encode16(x: f32) -> u32 {
  if (OUT_KIND == 1u) { return f32_to_f16_bits(x); }
  return f32_to_bf16_bits(x);
}

fn store_out(i: u32, value: f32) {
  if (OUT_KIND == 0u) {
    var v = value;
    if (MODE == 2u) { v = v + bitcast<f32>(atomicLoad(&out[i])); }
    atomicStore(&out[i], bitcast<u32>(v));
    return;
  }
  let w = i >> 1u;
  let shift = (i & 1u) * 16u;
  let keep = ~(0xffffu << shift);
  var old = atomicLoad(&out[w]);
  loop {
    var v = value;
    if (MODE == 2u) { v = v + decode(old, i, OUT_KIND); }
    let merged = (old & keep) | (encode16(v) << shift);
    let r = atomicCompareExchangeWeak(&out[w], old, merged);
    if (r.exchanged) { break; }
    old = r.old_value;
  }
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

  var acc: array<f32, 16>;
  for (var i = 0u; i < TM * TN; i = i + 1u) { acc[i] = 0.0; }

  for (var k0 = 0u; k0 < k_count; k0 = k0 + BK) {
    for (var e = li; e < BM * BK; e = e + THREADS) {
      let r = row0 + e / BK;
      let k = k0 + e % BK;
      var v = 0.0;
      if (r < m_count && k < k_count) { v = load_a(a_origin + r * p.a.y + k * p.a.z); }
      a_tile[e] = v;
    }
    for (var e = li; e < BK * BN; e = e + THREADS) {
      let k = k0 + e / BN;
      let n = col0 + e % BN;
      var v = 0.0;
      if (k < k_count && n < n_count) { v = load_b(b_origin + k * p.b.y + n * p.b.z); }
      b_tile[e] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk = kk + 1u) {
      var av: array<f32, 4>;
      var bv: array<f32, 4>;
      for (var i = 0u; i < TM; i = i + 1u) { av[i] = a_tile[(lid.y + i * WG_Y) * BK + kk]; }
      for (var j = 0u; j < TN; j = j + 1u) { bv[j] = b_tile[kk * BN + lid.x + j * WG_X]; }
      for (var i = 0u; i < TM; i = i + 1u) {
        for (var j = 0u; j < TN; j = j + 1u) {
          acc[i * TN + j] = fma(av[i], bv[j], acc[i * TN + j]);
        }
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
    for (var j = 0u; j < TN; j = j + 1u) {
      let n = col0 + lid.x + j * WG_X;
      if (n >= n_count) { continue; }
      var v = alpha * acc[i * TN + j];
      if (MODE == 1u) { v = v + beta * load_c(c_origin + r * p.c.y + n * p.c.z); }
      store_out(o_origin + r * p.o.y + n, v);
    }
  }
}
