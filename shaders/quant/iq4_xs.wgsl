// IQ4_XS: blocks of 256 weights as { d: f16, scales_h: u16, scales_l: u8[4], qs: u8[128] }
// (136 bytes): eight sub-blocks of 32 with 6-bit scales ls (low 4 bits in scales_l,
// high 2 in scales_h), x = d * (ls - 32) * kvalues_iq4nl[q]; each sub-block's 16
// bytes pack element j low and j + 16 high, as IQ4_NL.
// ggml: quantize_iq4_xs (quantize_row_iq4_nl_impl, ntry 7; with an importance
// matrix per super-block sigma2 = sum x^2 * 2/256 and weights qw * sqrt(sigma2 + x^2)) /
// dequantize_row_iq4_xs.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/legacy_quant.wgsl
//#include lib/imatrix_weights.wgsl
//#include lib/iq4_search.wgsl


// The super-block's values, loaded once (one inlined copy of load_block32, the
// largest piece of code here: each copy costs lavapipe seconds to compile).
var<private> xs_x: array<vec4<f32>, 64>;

fn xs_sub_block(ib: u32) -> Block32 {
  let k = 8u * ib;
  return Block32(xs_x[k], xs_x[k + 1u], xs_x[k + 2u], xs_x[k + 3u], xs_x[k + 4u], xs_x[k + 5u], xs_x[k + 6u], xs_x[k + 7u]);
}

// One invocation writes one block: 34 words.
fn quantize_blocks(inv: u32, b: u32) {
  if (b >= qparams.n_blocks) { return; }
  let w = b * BLOCK_WORDS;
  // Loops over the sub-blocks stay rolled (opaque bounds): NIR unrolls loops that index
  // a local array, and eight copies of the search take lavapipe minutes to compile.
  var scales: array<f32, 8>;
  var finite = true;
  var max_scale = 0.0;
  var amax_scale = 0.0;
  // sum x^2 over the super-block in element order (the weighted path's sigma2)
  var sumx2 = 0.0;
  for (var ib = 0u; ib < opaque(8u); ib = ib + 1u) {
    let x = load_block32(b * QK + ib * 32u);
    let k = 8u * ib;
    xs_x[k] = x.x0; xs_x[k + 1u] = x.x1; xs_x[k + 2u] = x.x2; xs_x[k + 3u] = x.x3;
    xs_x[k + 4u] = x.x4; xs_x[k + 5u] = x.x5; xs_x[k + 6u] = x.x6; xs_x[k + 7u] = x.x7;
    if (weighted()) { sumx2 = iq4_sum_squares32(sumx2, x); }
  }
  let sigma2 = sumx2 * 0.0078125; // sum * (2.f/256)
  for (var ib = 0u; ib < opaque(8u); ib = ib + 1u) {
    let x = xs_sub_block(ib);
    let m = abs_max32(x);
    finite = finite && is_finite_bits(m.amax);
    var s = 0.0;
    if (weighted()) { iq4_set_weights(x, weight_vec_index(b) + 8u * ib, sigma2); }
    if (finite) { s = iq4_scale32(x, m); }
    scales[ib] = s;
    if (abs(s) > amax_scale) {
      amax_scale = abs(s);
      max_scale = s;
    }
  }
  if (!finite) {
    dst[w] = F16_NAN;
    for (var i = 1u; i < BLOCK_WORDS; i = i + 1u) { dst[w + i] = 0u; }
    return;
  }
  // The super-block scale; each sub-block's is a 6-bit signed multiple of it.
  let d = -max_scale / 32.0;
  let id = inverse_or_zero(d);
  var scales_h = 0u;
  var scales_l = 0u;
  for (var ib = 0u; ib < opaque(8u); ib = ib + 1u) {
    let l = clamp(nearest_int_c(id * scales[ib]), -32, 31);
    let qs = iq4_qs(xs_sub_block(ib), inverse_or_zero(d * f32(l)));
    let o = w + 2u + ib * 4u;
    dst[o] = qs.x;
    dst[o + 1u] = qs.y;
    dst[o + 2u] = qs.z;
    dst[o + 3u] = qs.w;
    let ls = u32(l + 32);
    scales_l = scales_l | ((ls & 15u) << (4u * ib));
    scales_h = scales_h | ((ls >> 4u) << (2u * ib));
  }
  dst[w] = f32_to_f16_bits(d) | (scales_h << 16u);
  dst[w + 1u] = scales_l;
}

fn dequantize_part(b: u32, part: u32) {
  let w = b * BLOCK_WORDS;
  let d = f16_bits_to_f32(blocks[w] & 0xffffu);
  let scales_h = blocks[w] >> 16u;
  let scales_l = blocks[w + 1u];
  for (var ib = 0u; ib < 8u; ib = ib + 1u) {
    let ls = ((scales_l >> (4u * ib)) & 15u) | (((scales_h >> (2u * ib)) & 3u) << 4u);
    let dl = d * f32(i32(ls) - 32);
    for (var i = 0u; i < 4u; i = i + 1u) {
      let q = blocks[w + 2u + ib * 4u + i];
      out4[b * 64u + ib * 8u + i] = dl * iq4_value4(nibbles4(q, false));
      out4[b * 64u + ib * 8u + 4u + i] = dl * iq4_value4(nibbles4(q, true));
    }
  }
}
