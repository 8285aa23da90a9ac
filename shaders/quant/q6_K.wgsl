// Q6_K: super-blocks of 256 weights in 16 groups of 16 (210 bytes):
// ql[128] low 4 bits, qh[64] high 2 bits, scales[16] int8, d float16;
// x = d * scale[g] * (L - 32). ggml: quantize_row_q6_K_ref / dequantize_row_q6_K.
//
// quantize: one invocation per pair of blocks (420 bytes, 105 whole words),
// with no workgroup memory or barriers. A block is worked in quads of four
// groups, one per vec4 component: quad Q holds groups 8h + k + 2c (h = Q >> 1,
// k = Q & 1, c = 0..3; lib/kquant_pair.wgsl), which are exactly the groups whose quants share the
// ql and qh bytes the quad writes.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/kquant_qx.wgsl
//#include lib/kquant_pair.wgsl
//#include lib/quantize_error_sums.wgsl

const PAIR_WORDS: u32 = 2u * BLOCK_BYTES / 4u;

var<private> quad_iscale: array<vec4<f32>, 4>;
var<private> quad_zero: array<vec4<bool>, 4>;
var<private> quad_sc: array<vec4<i32>, 4>;

// `live`: the block is in the chunk (its error counts; lib/quantize_error_sums.wgsl).
fn quantize_block(blk: u32, first: u32, live: bool) {
  // Search each quad's four groups (make_qx_quants); loop bounds as load_quad's.
  let four = select(4u, 0u, qparams.n_blocks == 0u);
  let sixteen = 4u * four;
  for (var q = 0u; q < four; q = q + 1u) {
    load_quad(first, q, sixteen);
    let r = make_qx_quants4(32.0);
    quad_scale[q] = r.scale;
    quad_iscale[q] = r.iscale;
    quad_zero[q] = r.zero;
  }

  let max_scale = block_max_scale();
  // A block whose scales are all below GROUP_MAX_EPS is all zero bytes.
  let zero_block = abs(max_scale) < GROUP_MAX_EPS;
  let iscale = -128.0 / select(max_scale, 1.0, zero_block);
  let d_bits = select(f32_to_f16_bits(1.0 / iscale), 0u, zero_block);
  let d_all = f16_bits_to_f32(d_bits);
  pair_or(blk, 208u, d_bits);

  for (var q = 0u; q < four; q = q + 1u) {
    // int8_t scales[g] = MIN(127, nearest_int(...)), read back as int8_t
    let sc = select(wrap_i8_4(min(vec4(127), nearest_int_bits4(iscale * quad_scale[q]))), vec4(0), zero_block);
    quad_sc[q] = sc;
    let d = d_all * vec4<f32>(sc);
    // Where d is 0, ggml keeps the quants make_qx_quants chose.
    let requant = ((bitcast<vec4<u32>>(d) & vec4(0x7fffffffu)) != vec4(0u)) & !vec4(zero_block);
    let fallback_iscale = quad_iscale[q];
    let kept_zero = quad_zero[q] | vec4(zero_block);
    let h = q >> 1u;
    let k = q & 1u;
    for (var m = 0u; m < four; m = m + 1u) {
      var ql_low = 0u;  // ql bytes 64h + 16k + 4m.., groups c = 0 (low nibble) and 2 (high)
      var ql_high = 0u; // ql bytes 64h + 32 + 16k + 4m.., groups c = 1 and 3
      var qh = 0u;      // qh bytes 32h + 16k + 4m.., 2 bits of each group
      for (var t = 0u; t < 4u; t = t + 1u) {
        let x = block_x[16u * q + 4u * m + t];
        let requantized = clamp(nearest_int_bits4(x / d), vec4(-32), vec4(31));
        let kept = select(clamp(nearest_int_bits4(fallback_iscale * x), vec4(-32), vec4(31)), vec4(-32), kept_zero);
        let L = vec4<u32>(select(kept, requantized, requant) + vec4(32));
        // the error of the decoded value d * sc * (L - 32), as dequantize_part computes it
        if (live) { accumulate_error4(x, d * vec4<f32>(vec4<i32>(L) - vec4(32))); }
        let shift = 8u * t;
        ql_low = ql_low | (((L.x & 15u) | ((L.z & 15u) << 4u)) << shift);
        ql_high = ql_high | (((L.y & 15u) | ((L.w & 15u) << 4u)) << shift);
        qh = qh | (((L.x >> 4u) | ((L.y >> 4u) << 2u) | ((L.z >> 4u) << 4u) | ((L.w >> 4u) << 6u)) << shift);
      }
      let ql_at = 64u * h + 16u * k + 4u * m;
      pair_or(blk, ql_at, ql_low);
      pair_or(blk, ql_at + 32u, ql_high);
      pair_or(blk, 128u + 32u * h + 16u * k + 4u * m, qh);
    }
  }
  for (var w = 0u; w < 4u; w = w + 1u) {
    var word = 0u;
    for (var t = 0u; t < 4u; t = t + 1u) {
      let g = 4u * w + t;
      let sc = quad_sc[2u * (g >> 3u) + (g & 1u)][(g & 7u) >> 1u];
      word = word | ((bitcast<u32>(sc) & 0xffu) << (8u * t));
    }
    pair_or(blk, 192u + 4u * w, word);
  }
}

fn quantize_blocks(pair: u32, first_block: u32) {
  // Control flow stays uniform up to the store (a block past the end is
  // computed from whatever the robust loads return, and not stored): a SIMD
  // implementation then needs no per-lane masks in the loops.
  let pair_blocks = min(2u, qparams.n_blocks);
  pair_clear();
  for (var blk = 0u; blk < pair_blocks; blk = blk + 1u) {
    quantize_block(blk, (first_block + blk) * QK, first_block + blk < qparams.n_blocks);
  }
  if (first_block < qparams.n_blocks) {
    pair_store(pair, min(2u, qparams.n_blocks - first_block));
  }
  // the workgroup's error sums (lib/quantize_error_sums.wgsl)
  write_error_sums(pair, error_sums);
}

// quantize_row_q6_K_impl: the same, make_qx_quants weighing with the raw
// per-column importance weights (ggml's quant_weights, one row's worth per
// expert). Pipelines built with WEIGHTED = true; bindings 3 and 4 as below.
//#include lib/imatrix_own_entry.wgsl

// Loads the weights of block `b` of the chunk into block_w, in block_x's quad order.
fn load_block_weights(b: u32) {
  let base = imatrix_block_base(b);
  // loop bounds from a uniform, as load_quad's: unrolled, compile time explodes
  let four = select(4u, 0u, qparams.n_blocks == 0u);
  let sixteen = 4u * four;
  for (var q = 0u; q < four; q = q + 1u) {
    for (var j = 0u; j < sixteen; j = j + 1u) {
      block_w[16u * q + j] = vec4(imatrix_w[base + 16u * quad_group(q, 0u) + j], imatrix_w[base + 16u * quad_group(q, 1u) + j],
                                  imatrix_w[base + 16u * quad_group(q, 2u) + j], imatrix_w[base + 16u * quad_group(q, 3u) + j]);
    }
  }
}

@compute @workgroup_size(QUANTIZE_WORKGROUP_SIZE)
fn quantize_weighted(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let pair = workgroup_index(wid, nwg) * QUANTIZE_WORKGROUP_SIZE + lid;
  let first_block = 2u * pair;
  let pair_blocks = min(2u, qparams.n_blocks);
  pair_clear();
  for (var blk = 0u; blk < pair_blocks; blk = blk + 1u) {
    load_block_weights(min(first_block + blk, qparams.n_blocks - 1u));
    quantize_block(blk, (first_block + blk) * QK, first_block + blk < qparams.n_blocks);
  }
  if (first_block < qparams.n_blocks) {
    pair_store(pair, min(2u, qparams.n_blocks - first_block));
  }
  // the workgroup's error sums
  write_error_sums(pair, error_sums);
}

// One invocation per group of 16 outputs; a workgroup decodes 16 blocks.
fn dequantize_part(b: u32, g: u32) {
  let base = b * BLOCK_BYTES;
  let d = f16_bits_to_f32(block_u16(base + 208u));
  let sc = f32(bitcast<i32>(block_byte(base + 192u + g) << 24u) >> 24u);
  let ds = d * sc;
  for (var i = 0u; i < 16u; i = i + 1u) {
    let e = g * 16u + i;
    let half = e >> 7u;
    let r = e & 127u;
    let low = (block_byte(base + half * 64u + (r & 63u)) >> ((r >> 6u) * 4u)) & 15u;
    let high = (block_byte(base + 128u + half * 32u + (r & 31u)) >> ((r >> 5u) * 2u)) & 3u;
    out[b * QK + e] = ds * f32(i32(low | (high << 4u)) - 32);
  }
}
