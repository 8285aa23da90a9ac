// The body shared by shaders/matmul/linear.wgsl and linear_subgroup.wgsl
// (which differ only in how x's chunks reach the invocations: load_x_chunk).
//
// x is float32 [M, K] (rows of K contiguous), y float32 [M, N]. Each invocation
// owns 4 consecutive weight rows and the workgroup's bm token rows; it walks K
// in chunks of 32 (one ggml block, or one K-quant sub-block), decoding its
// rows' chunk once into registers and using it for every token row, so a
// weight is decoded M / bm times in all. There is no workgroup memory and no
// barrier. On lavapipe every storage load is a bounds-checked scalar load per
// lane, so loads, not multiply-adds, bound the speed: a weight word serves bm
// token rows, and with subgroups each lane loads one vec4 of a token's chunk
// and the others receive it by broadcast (8x fewer x loads).
//
// Token rows past M and weight rows past N are clamped to the last one (their
// loads stay in bounds and in uniform control flow, as subgroup operations
// need) and not stored. Private arrays are indexed by constants only: indexed
// by a loop counter they become per-lane memory traffic on lavapipe.

// The weight's type is an override (one pipeline per type: with every decoder
// in one pipeline lavapipe compiled for minutes); the token rows per workgroup
// are a uniform, so one pipeline serves every tile height.
override W_KIND: u32 = 1u; // 0 f32, 1 f16, 2 bf16, 3 q8_0, 4 q4_0, 5 q4_K, 6 q5_K, 7 q6_K
//#include lib/linear_common.wgsl

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<u32>;

//#include lib/linear_decode.wgsl

// Σ_k x[r, 32c + k] * w[row, 32c + k] over one chunk, for the 4 rows' decoded chunks.
fn dot4(xc: array<vec4<f32>, 8>, w0: array<vec4<f32>, 8>, w1: array<vec4<f32>, 8>, w2: array<vec4<f32>, 8>, w3: array<vec4<f32>, 8>) -> vec4<f32> {
  return vec4<f32>(dot8(xc, w0), dot8(xc, w1), dot8(xc, w2), dot8(xc, w3));
}

fn dot8(a: array<vec4<f32>, 8>, b: array<vec4<f32>, 8>) -> f32 {
  var s = a[0] * b[0];
  s = fma(a[1], b[1], s);
  s = fma(a[2], b[2], s);
  s = fma(a[3], b[3], s);
  s = fma(a[4], b[4], s);
  s = fma(a[5], b[5], s);
  s = fma(a[6], b[6], s);
  s = fma(a[7], b[7], s);
  return (s.x + s.y) + (s.z + s.w);
}

// vec4 index of x[min(m0 + i, M - 1), 32c].
fn x_at(m0: u32, i: u32, c: u32) -> u32 {
  return p.x_base + min(m0 + i, p.m - 1u) * (p.k >> 2u) + c * 8u;
}

// wide: subgroups of 8 or more share x's loads (linear_subgroup.wgsl; false in linear.wgsl).
fn run_tile(wid: vec3<u32>, lid: u32, wide: bool) {
  if (p.m == 0u) {
    // never taken: keeps both views of w in the pipeline's layout whatever W_KIND reads
    y[0] = f32(w[0] + w4[0].x);
  }
  let n0 = (wid.x * WG + lid) * 4u;
  let m0 = wid.y * p.bm;
  let last_n = p.n - 1u;
  let r0 = min(n0, last_n);
  let r1 = min(n0 + 1u, last_n);
  let r2 = min(n0 + 2u, last_n);
  let r3 = min(n0 + 3u, last_n);
  // indexed by the token loop's counter: one vec4 of per-lane memory traffic
  // per token and chunk, against 128 multiply-adds; unrolled instead, the
  // body took minutes to compile on lavapipe
  var acc: array<vec4<f32>, BM_MAX>;
  let chunks = p.k >> 5u;
  for (var c = 0u; c < chunks; c = c + 1u) {
    let w0 = decode_chunk(r0, c);
    let w1 = decode_chunk(r1, c);
    let w2 = decode_chunk(r2, c);
    let w3 = decode_chunk(r3, c);
    for (var i = 0u; i < p.bm; i = i + 1u) {
      acc[i] += dot4(load_x_chunk(wide, x_at(m0, i, c)), w0, w1, w2, w3);
    }
  }
  for (var i = 0u; i < p.bm; i = i + 1u) {
    store_row(m0 + i, n0, acc[i]);
  }
}
