// IQ1_M: blocks of 256 weights as { qs: u8[32], qh: u8[16], scales: u8[8] } (56 bytes),
// sixteen sub-blocks of 16, each two grid points of eight levels in {-1, 0, 1}
// (see src/quant/formats/iq1_m.ts). ggml: quantize_row_iq1_m_impl (weights x^2
// without quant_weights) / dequantize_row_iq1_m.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/iq1_quant.wgsl

// One block's bytes (56: 14 words), assembled here, then stored.
var<private> out_words: array<u32, 14>;

fn put_byte(at: u32, v: u32) {
  out_words[at >> 2u] = out_words[at >> 2u] | ((v & 0xffu) << ((at & 3u) * 8u));
}

fn get_byte(at: u32) -> u32 {
  return (out_words[at >> 2u] >> ((at & 3u) * 8u)) & 0xffu;
}

// Per sorted position j and split segment s, the terms ggml adds to its four
// sums (component k: shift variant k; 0: +,+  1: +,-  2: -,+  3: -,-):
// weight*x*xb (tx) and weight*x*x (tq), x the variant's level for segment s.
var<private> tx0: array<vec4<f32>, 16>;
var<private> tx1: array<vec4<f32>, 16>;
var<private> tq0: array<vec4<f32>, 16>;
var<private> tq1: array<vec4<f32>, 16>;

// The two terms of value i (its weight w, value v) for segment level `level`, per variant.
fn terms(i: u32, level: u32) -> array<vec4<f32>, 2> {
  let w = iq1_w[i];
  let v = iq1_x[i];
  let xp = iq1_shifted(level, false);
  let xm = iq1_shifted(level, true);
  let wp = iq1_keep(w * xp);
  let wm = iq1_keep(w * xm);
  let px = wp * v;
  let mx = wm * v;
  let pq = wp * xp;
  let mq = wm * xm;
  // the first half of the sub-block: variants 2, 3 use x_m; the second: 1, 3
  if (i < 8u) { return array<vec4<f32>, 2>(vec4(px, px, mx, mx), vec4(pq, pq, mq, mq)); }
  return array<vec4<f32>, 2>(vec4(px, mx, px, mx), vec4(pq, mq, pq, mq));
}

struct SubBlock {
  scale: f32,
  shift: u32,  // best_k
}

fn load_weights(b: u32, ib: u32, sigma2: f32) {
  for (var i = 0u; i < iq1_n(16u); i = i + 1u) {
    let v = load_x(b * QK + 16u * ib + i);
    iq1_x[i] = v;
    let v2 = v * v;
    if (WEIGHTED) {
      let s = sigma2 + v2;
      iq1_w[i] = iq1_qw[16u * ib + i] * sqrt(s);
    } else {
      iq1_w[i] = v2;
    }
  }
}

// Sub-block ib: ggml's split search over the sorted values, grid points and scale;
// writes qs and the qh grid bits.
fn quantize_sub_block(ib: u32) -> SubBlock {
  iq1_sort(16u);
  var order: array<u32, 16>;
  for (var i = 0u; i < iq1_n(16u); i = i + 1u) { order[iq1_rank[i]] = i; }
  // The last segment's terms in arrays indexed by literals only (loops of constant
  // trip count, unrolled): registers instead of a per-lane memory access each.
  var t2x: array<vec4<f32>, 16>;
  var t2q: array<vec4<f32>, 16>;
  for (var j = 0u; j < 16u; j = j + 1u) {
    let i = order[j];
    let t0 = terms(i, 0u);
    let t1 = terms(i, 1u);
    let t2 = terms(i, 2u);
    tx0[j] = t0[0];
    tq0[j] = t0[1];
    tx1[j] = t1[0];
    tq1[j] = t1[1];
    t2x[j] = t2[0];
    t2q[j] = t2[1];
  }
  var best = -IQ1_FLT_MAX;
  var scale = 0.0;
  var besti1 = -1;
  var besti2 = -1;
  var best_k = -1;
  // ggml sums every split from zero in sorted order; the sums up to i1 and i2
  // are shared between splits and carried here: the same additions, same order.
  var p0x = vec4(0.0);
  var p0q = vec4(0.0);
  for (var i1 = 0u; i1 <= iq1_n(16u); i1 = i1 + 1u) {
    var mx = p0x;
    var mq = p0q;
    for (var i2 = i1; i2 <= iq1_n(16u); i2 = i2 + 1u) {
      if (i2 > i1) {
        mx = mx + tx1[i2 - 1u];
        mq = mq + tq1[i2 - 1u];
      }
      var sx = mx;
      var sq = mq;
      for (var j = 0u; j < 16u; j = j + 1u) {
        if (j >= i2) {
          sx = iq1_keep4(sx + t2x[j]);
          sq = iq1_keep4(sq + t2q[j]);
        }
      }
      let sxx = sx * sx;
      for (var k = 0u; k < 4u; k = k + 1u) {
        let bq = best * sq[k];
        if (sq[k] > 0.0 && sxx[k] > bq) {
          scale = sx[k] / sq[k];
          best = scale * sx[k];
          besti1 = i32(i1);
          besti2 = i32(i2);
          best_k = i32(k);
        }
      }
    }
    if (i1 < 16u) {
      p0x = p0x + tx0[i1];
      p0q = p0q + tq0[i1];
    }
  }
  if (besti1 < 0 || besti2 < 0 || best_k < 0) { return SubBlock(0.0, 0u); }
  let flip = scale < 0.0;
  for (var i = 0u; i < iq1_n(16u); i = i + 1u) {
    let r = i32(iq1_rank[i]);
    let l = select(select(2u, 1u, r < besti2), 0u, r < besti1);
    iq1_l[i] = select(l, 2u - l, flip);
  }
  var k_best = u32(best_k);
  if (flip) {
    scale = -scale;
    k_best = 3u - k_best;
  }
  // group 0's shift is bit 1 of k_best, group 1's bit 0
  scale = iq1_snap_groups(2u, scale, ((k_best >> 1u) & 1u) | ((k_best & 1u) << 1u));
  put_byte(2u * ib, iq1_index[0]);
  put_byte(2u * ib + 1u, iq1_index[1]);
  put_byte(32u + ib, (iq1_index[0] >> 8u) | ((iq1_index[1] >> 8u) << 4u));
  return SubBlock(scale, k_best);
}

// quantize_row_iq1_m_impl for block b into out_words (zeroed).
fn quantize_block(b: u32) {
  var finite = true;
  for (var i = 0u; i < iq1_n(256u); i = i + 1u) {
    finite = finite && (bitcast<u32>(load_x(b * QK + i)) & 0x7fffffffu) < 0x7f800000u;
  }
  if (!finite) {
    // the invalid-block marker: d (the scale words' top nibbles) float16 NaN 0x7e00, all else 0
    out_words[13] = 0x7000e000u;
    return;
  }
  let sigma2 = iq1_sigma2(b);
  var scales: array<f32, 16>;
  var shifts: array<u32, 16>;
  var max_scale = 0.0;
  for (var ib = 0u; ib < iq1_n(16u); ib = ib + 1u) {
    load_weights(b, ib, sigma2);
    var xmax = 0.0;
    for (var i = 0u; i < iq1_n(16u); i = i + 1u) {
      let a = abs(iq1_x[i]);
      xmax = select(a, xmax, i > 0u && xmax > a);
    }
    var sb = SubBlock(0.0, 0u);
    if (!(xmax < 1e-7)) { sb = quantize_sub_block(ib); }
    scales[ib] = sb.scale;
    shifts[ib] = sb.shift;
    max_scale = select(sb.scale, max_scale, max_scale > sb.scale);
  }
  if (max_scale == 0.0) { return; }
  var d = max_scale / iq1_hide(15.0);
  let id = 1.0 / d;
  var sumqx = 0.0;
  var sumq2 = 0.0;
  var sc: array<u32, 4>;
  for (var ib = 0u; ib < iq1_n(16u); ib = ib + 1u) {
    let s = id * scales[ib];
    let h = 0.5 * (s - 1.0);
    let l = u32(clamp(iq1_nearest_int(h), 0, 7));
    sc[ib / 4u] = sc[ib / 4u] | (l << (3u * (ib % 4u)));
    let mask = select(0u, 0x80u, (shifts[ib] & 1u) != 0u) | select(0u, 0x08u, (shifts[ib] & 2u) != 0u);
    let qh = get_byte(32u + ib) | mask;
    put_byte(32u + ib, mask);
    load_weights(b, ib, sigma2);
    let mult = f32(2u * l + 1u);
    for (var k = 0u; k < iq1_n(2u); k = k + 1u) {
      let minus = select((shifts[ib] & 1u) != 0u, (shifts[ib] >> 1u) != 0u, k == 0u);
      let g = get_byte(2u * ib + k) + ((qh << (8u - 4u * k)) & 0x700u);
      let code = iq1_code(g);
      for (var j = 0u; j < iq1_n(8u); j = j + 1u) {
        let q = iq1_keep(iq1_shifted((code >> (2u * j)) & 3u, minus) * mult);
        let wq = iq1_keep(iq1_w[8u * k + j] * q);
        let wqx = wq * iq1_x[8u * k + j];
        let wqq = wq * q;
        sumqx = sumqx + wqx;
        sumq2 = sumq2 + wqq;
      }
    }
  }
  if (sumq2 > 0.0) { d = sumqx / sumq2; }
  let s16 = f32_to_f16_bits(d * 1.1125);
  let w0 = sc[0] | ((s16 & 0x000fu) << 12u) | ((sc[1] | ((s16 & 0x00f0u) << 8u)) << 16u);
  let w1 = sc[2] | ((s16 & 0x0f00u) << 4u) | ((sc[3] | (s16 & 0xf000u)) << 16u);
  out_words[12] = w0;
  out_words[13] = w1;
}

fn quantize_one(b: u32) {
  if (b >= qparams.n_blocks) { return; }
  iq1_start();
  for (var i = 0u; i < iq1_n(14u); i = i + 1u) { out_words[i] = 0u; }
  quantize_block(b);
  for (var i = 0u; i < iq1_n(14u); i = i + 1u) { dst[b * 14u + i] = out_words[i]; }
}

fn quantize_blocks(inv: u32, first: u32) {
  quantize_one(first);
}

@compute @workgroup_size(QUANTIZE_WORKGROUP_SIZE)
fn quantize_weighted(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let b = workgroup_index(wid, nwg) * QUANTIZE_WORKGROUP_SIZE + lid;
  if (b >= qparams.n_blocks) { return; }
  iq1_start();
  iq1_load_weights(b);
  quantize_one(b);
}

// One invocation per 32 values (two sub-blocks): 8 per block.
fn dequantize_part(b: u32, ib: u32) {
  let base = b * BLOCK_BYTES;
  let sc0 = block_u16(base + 48u);
  let sc1 = block_u16(base + 50u);
  let sc2 = block_u16(base + 52u);
  let sc3 = block_u16(base + 54u);
  let d = f16_bits_to_f32((sc0 >> 12u) | ((sc1 >> 8u) & 0x00f0u) | ((sc2 >> 4u) & 0x0f00u) | (sc3 & 0xf000u));
  let s = block_u16(base + 48u + 2u * (ib / 2u)) >> (6u * (ib % 2u));
  let dl1 = d * f32(2u * (s & 7u) + 1u);
  let dl2 = d * f32(2u * ((s >> 3u) & 7u) + 1u);
  for (var l = 0u; l < 4u; l = l + 1u) {
    let nib = (block_byte(base + 32u + 2u * ib + l / 2u) >> (4u * (l % 2u))) & 15u;
    let g = block_byte(base + 4u * ib + l) | ((nib & 7u) << 8u);
    let delta = select(0.125, -0.125, (nib & 8u) != 0u);
    let dl = select(dl2, dl1, l < 2u);
    let code = iq1_code(g);
    for (var j = 0u; j < 8u; j = j + 1u) {
      let v = f32(i32((code >> (2u * j)) & 3u) - 1) + delta;
      out[b * QK + 32u * ib + 8u * l + j] = dl * v;
    }
  }
}
