// Causal grouped-query attention, one workgroup per (query token, head):
// softmax(q . k_s * scale, s <= pos(t)) . v, in tiles of 128 keys with a
// running maximum and sum (online softmax), so any context length fits in
// 1 KiB of workgroup memory. q: [tokens, heads, dim]; k, v: [tokens, kv_heads,
// dim]; head h reads kv head h / (heads / kv_heads). With a window w > 0 a
// query at t sees the keys s with t - s < w (sliding-window layers); with a
// soft cap c > 0 each score becomes c * tanh(score / c) before the softmax
// (Gemma 2). Both are pipeline constants (WINDOWED, SOFTCAPPED) so that the
// plain kernel carries none of their per-key work. Run by src/kernels/transformer.ts.

struct Params {
  tokens: u32,
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  scale: f32,
  window: u32,
  softcap: f32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

override WINDOWED: bool = false;
override SOFTCAPPED: bool = false;

const TILE = 128u;
const MAX_DIM = 256u;
var<workgroup> scores: array<f32, 128>;
var<workgroup> red: array<f32, 128>;
var<workgroup> qv: array<f32, 256>;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let item = wid.y * nwg.x + wid.x;
  let t = item / params.heads;
  let h = item % params.heads;
  let valid = t < params.tokens;   // uniform per workgroup: every invocation reaches the barriers
  let dim = params.head_dim;
  let kvh = h / (params.heads / params.kv_heads);
  let qbase = (t * params.heads + h) * dim;
  if (valid) {
    for (var d = lid; d < dim; d += TILE) { qv[d] = q[qbase + d]; }
  }
  workgroupBarrier();
  var m = -3.0e38;
  var l = 0.0;
  var acc0 = 0.0;
  var acc1 = 0.0;
  let kstride = params.kv_heads * dim;
  var n_keys = 0u;
  if (valid) { n_keys = t + 1u; }
  // first key the query sees (all of them without a window)
  var first_key = 0u;
  if (WINDOWED && n_keys > params.window) { first_key = n_keys - params.window; }
  let n_tiles = (params.tokens + TILE - 1u) / TILE;
  for (var tile = 0u; tile < n_tiles; tile++) {
    let s0 = tile * TILE;
    let s = s0 + lid;
    var score = -3.0e38;
    let seen = s < n_keys && s >= first_key;
    if (seen) {
      let kb = s * kstride + kvh * dim;
      var dot = 0.0;
      for (var d = 0u; d < dim; d++) { dot += qv[d] * k[kb + d]; }
      score = dot * params.scale;
      if (SOFTCAPPED) { score = params.softcap * tanh(clamp(score / params.softcap, -15.0, 15.0)); }
    }
    red[lid] = score;
    workgroupBarrier();
    for (var step = 64u; step > 0u; step >>= 1u) {
      if (lid < step) { red[lid] = max(red[lid], red[lid + step]); }
      workgroupBarrier();
    }
    let tile_max = red[0];
    workgroupBarrier();
    let m_new = max(m, tile_max);
    var p = 0.0;
    if (seen) { p = exp(score - m_new); }
    scores[lid] = p;
    red[lid] = p;
    workgroupBarrier();
    for (var step = 64u; step > 0u; step >>= 1u) {
      if (lid < step) { red[lid] += red[lid + step]; }
      workgroupBarrier();
    }
    if (s0 < n_keys && s0 + TILE > first_key) {
      let correction = exp(m - m_new);
      l = l * correction + red[0];
      acc0 *= correction;
      acc1 *= correction;
      m = m_new;
      let last = min(TILE, n_keys - s0);
      for (var j = 0u; j < last; j++) {
        let vb = (s0 + j) * kstride + kvh * dim;
        if (lid < dim) { acc0 += scores[j] * v[vb + lid]; }
        if (lid + TILE < dim) { acc1 += scores[j] * v[vb + lid + TILE]; }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    if (lid < dim) { o[qbase + lid] = acc0 / l; }
    if (lid + TILE < dim) { o[qbase + lid + TILE] = acc1 / l; }
  }
}
