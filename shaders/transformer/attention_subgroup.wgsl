// Causal grouped-query attention for adapters with subgroup operations: one
// invocation per (query token, head), a workgroup of WG consecutive queries
// of one head, so every subgroup reads the same key and value rows. Each key
// row is loaded once per subgroup, a vec4 per lane (lanes 0-7), and handed to
// all lanes by subgroupBroadcast (on lavapipe every storage load is a
// per-lane bounds-checked scalar load; a broadcast is cheap). The query, its
// output accumulator and the row chunks live in registers: the head dimension
// is an override (HD4 = head_dim / 4), so the loops over it unroll and the
// private arrays are indexed by constants only. Keys go in blocks of KB with an
// online softmax (running maximum m and sum l), the accumulator rescaled once
// per block: no workgroup memory, no barrier, no score matrix, any context
// length. Same semantics and uniforms as attention.wgsl (the fallback for
// adapters without subgroups): a window w > 0 lets a query at t see keys s
// with t - s < w; a soft cap c > 0 maps each score to c * tanh(score / c).
// Run by src/kernels/transformer.ts.
enable subgroups;
// the key range comes from subgroupMax/Min: uniform in the subgroup, which the analysis cannot see
diagnostic(off, subgroup_uniformity);

struct Params {
  tokens: u32,
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  scale: f32,
  window: u32,
  softcap: f32,
  // keys per softmax block, KB (8): a uniform, so that the block loops stay
  // loops (unrolled, with the head-dim loops inside, lavapipe compiled for 10 s)
  key_block: u32,
}

@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> o: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> params: Params;

override WINDOWED: bool = false;
override SOFTCAPPED: bool = false;
override HD4: u32 = 32u;  // head_dim / 4, at most MAX_HD4
// chunks of 8 vec4s per row; loops over them count by 1 (so that Mesa unrolls them: counting c by 8, it did not)
override CHUNKS: u32 = (HD4 + 7u) / 8u;
const MAX_HD4 = 64u;
const WG = 64u;
const NEG = -3.0e38;

var<private> lane8: u32;

// The 8 vec4s of a k row at vec4 index `at` (clamped to `last`, the row's last
// vec4), the same in every invocation of the subgroup: lane l of each 8 loads
// vec4 l and broadcasts it (the host runs this kernel where subgroups have 8
// lanes or more: a second, direct-load path doubled the compile time).
fn k_chunk(at: u32, last: u32) -> array<vec4<f32>, 8> {
  let mine = k[min(at + lane8, last)];
  return array<vec4<f32>, 8>(
    subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u), subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u),
    subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u), subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u));
}

// The same for a v row.
fn v_chunk(at: u32, last: u32) -> array<vec4<f32>, 8> {
  let mine = v[min(at + lane8, last)];
  return array<vec4<f32>, 8>(
    subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u), subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u),
    subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u), subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u));
}

// Whether the query whose keys are [first, n_keys) sees key s.
fn sees(s: u32, first: u32, n_keys: u32) -> bool {
  return s < n_keys && s >= first;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sg_lane: u32) {
  lane8 = sg_lane & 7u;
  let h = wid.y;
  let t = wid.x * WG + lid;
  let valid = t < params.tokens;
  let kvh = h / (params.heads / params.kv_heads);
  let qb = (min(t, params.tokens - 1u) * params.heads + h) * HD4;
  var qr: array<vec4<f32>, MAX_HD4>;
  var acc: array<vec4<f32>, MAX_HD4>;
  for (var i = 0u; i < HD4; i++) {
    qr[i] = q[qb + i];
    acc[i] = vec4<f32>(0.0);
  }
  var n_keys = 0u;
  if (valid) { n_keys = t + 1u; }
  var first = 0u;
  if (WINDOWED && n_keys > params.window) { first = n_keys - params.window; }
  // the subgroup's key range (uniform, so broadcasts stay in uniform control flow)
  let end = subgroupMax(n_keys);
  let begin = subgroupMin(select(0xffffffffu, first, valid));
  let kstride = params.kv_heads * HD4;
  var m = NEG;
  var l = 0.0;
  for (var s0 = begin; s0 < end; s0 += params.key_block) {
    // scores of the block's keys (past `end`: the last key again, masked)
    var sc_lo = vec4<f32>(NEG);
    var sc_hi = vec4<f32>(NEG);
    var block_max = NEG;
    for (var j = 0u; j < params.key_block; j++) {
      let kb = min(s0 + j, end - 1u) * kstride + kvh * HD4;
      var d4 = vec4<f32>(0.0);
      for (var ci = 0u; ci < CHUNKS; ci++) {
        let c = ci * 8u;
        let kc = k_chunk(kb + c, kb + HD4 - 1u);
        for (var i = 0u; i < 8u; i++) {
          if (c + i < HD4) { d4 = fma(qr[c + i], kc[i], d4); }
        }
      }
      var score = ((d4.x + d4.y) + (d4.z + d4.w)) * params.scale;
      if (SOFTCAPPED) { score = params.softcap * tanh(clamp(score / params.softcap, -15.0, 15.0)); }
      score = select(NEG, score, sees(s0 + j, first, n_keys));
      block_max = max(block_max, score);
      sc_lo = select(sc_lo, vec4<f32>(score), vec4<u32>(j) == vec4<u32>(0u, 1u, 2u, 3u));
      sc_hi = select(sc_hi, vec4<f32>(score), vec4<u32>(j) == vec4<u32>(4u, 5u, 6u, 7u));
    }
    let m_new = max(m, block_max);
    let correction = exp(m - m_new);
    l *= correction;
    for (var i = 0u; i < HD4; i++) { acc[i] *= correction; }
    m = m_new;
    for (var j = 0u; j < params.key_block; j++) {
      let score = select(sc_hi[j & 3u], sc_lo[j & 3u], j < 4u);
      let p = select(0.0, exp(score - m_new), sees(s0 + j, first, n_keys));
      l += p;
      let vb = min(s0 + j, end - 1u) * kstride + kvh * HD4;
      for (var ci = 0u; ci < CHUNKS; ci++) {
        let c = ci * 8u;
        let vc = v_chunk(vb + c, vb + HD4 - 1u);
        for (var i = 0u; i < 8u; i++) {
          if (c + i < HD4) { acc[c + i] = fma(vec4<f32>(p), vc[i], acc[c + i]); }
        }
      }
    }
  }
  if (valid) {
    for (var i = 0u; i < HD4; i++) { o[qb + i] = acc[i] / l; }
  }
}
