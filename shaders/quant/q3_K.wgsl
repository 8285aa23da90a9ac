// Q3_K: super-blocks of 256 weights in 16 groups of 16 (110 bytes):
// hmask[32] high bits, qs[64] low 2 bits, scales[12] 6-bit scales, d float16;
// x = d * (scale[g] - 32) * (L - 4). ggml: quantize_row_q3_K_ref / dequantize_row_q3_K.
//
// quantize: one invocation per pair of blocks (220 bytes, 55 whole words),
// with no workgroup memory or barriers. A block is worked in quads of four
// groups, one per vec4 component: quad Q holds groups 8h + k + 2c (h = Q >> 1,
// k = Q & 1, c = 0..3; lib/kquant_pair.wgsl), which are exactly the groups whose quants share the qs
// bytes the quad writes (the hmask bytes take bits from two quads).

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/kquant_qx.wgsl
//#include lib/kquant_pair.wgsl
//#include lib/quantize_error_sums.wgsl

const PAIR_WORDS: u32 = 2u * BLOCK_BYTES / 4u;

// make_q3_quants' L (0..7) of each quad, 4 bits per element: elements 0..7, 8..15.
var<private> quad_kept: array<vec4<u32>, 8>;
// Each group's 6-bit scale (scale + 32), by quad.
var<private> quad_l6: array<vec4<u32>, 4>;

fn quantize_block(blk: u32, first: u32) {
  // Search each quad's four groups (make_q3_quants); loop bounds as load_quad's.
  let four = select(4u, 0u, qparams.n_blocks == 0u);
  let sixteen = 4u * four;
  for (var q = 0u; q < four; q = q + 1u) {
    load_quad(first, q, sixteen);
    quad_scale[q] = make_q3_quants4(4.0);
    for (var half = 0u; half < 2u; half = half + 1u) {
      var kept = vec4(0u);
      for (var t = 0u; t < 8u; t = t + 1u) {
        kept = kept | (vec4<u32>(vec4<i32>(qx_q[8u * half + t]) + vec4(4)) << vec3(4u * t).xxxx);
      }
      quad_kept[2u * q + half] = kept;
    }
  }

  let max_scale = block_max_scale();
  // All scales 0: d = 0 and every 6-bit scale 0.
  let zero_block = (bitcast<u32>(max_scale) & 0x7fffffffu) == 0u;
  let iscale = -32.0 / select(max_scale, 1.0, zero_block);
  let d_bits = select(f32_to_f16_bits(1.0 / iscale), 0u, zero_block);
  for (var q = 0u; q < four; q = q + 1u) {
    // int8_t l = nearest_int(...), then clamped
    quad_l6[q] = select(vec4<u32>(clamp(wrap_i8_4(nearest_int_bits4(iscale * quad_scale[q])), vec4(-32), vec4(31)) + vec4(32)),
                        vec4(0u), vec4(zero_block));
  }
  pack_block(blk, d_bits, four);
}

// Both paths' tail: with quad_l6 (the 6-bit scales) and quad_kept (the
// search's quants) set, the quants against the rounded scales, hmask, qs,
// scales and d into the pair image.
fn pack_block(blk: u32, d_bits: u32, four: u32) {
  let d_all = f16_bits_to_f32(d_bits);
  pair_or(blk, 108u, d_bits);

  for (var q = 0u; q < four; q = q + 1u) {
    let l6 = quad_l6[q];
    let d = d_all * vec4<f32>(vec4<i32>(l6) - vec4(32));
    // Where d is 0, ggml keeps the quants make_q3_quants chose.
    let requant = (bitcast<vec4<u32>>(d) & vec4(0x7fffffffu)) != vec4(0u);
    let h = q >> 1u;
    let k = q & 1u;
    for (var m = 0u; m < four; m = m + 1u) {
      var hmask = 0u; // hmask bytes 16k + 4m.., bits 4h + c
      var qs = 0u;    // qs bytes 32h + 16k + 4m.., bits 2c
      for (var t = 0u; t < 4u; t = t + 1u) {
        let j = 4u * m + t;
        let x = block_x[16u * q + j];
        let requantized = clamp(nearest_int_bits4(x / d), vec4(-4), vec4(3)) + vec4(4);
        let kept = (quad_kept[2u * q + (j >> 3u)] >> vec3(4u * (j & 7u)).xxxx) & vec4(15u);
        let L = select(kept, vec4<u32>(requantized), requant);
        // the error of the decoded value d * (scale - 32) * (L - 4), as dequantize_part computes it
        accumulate_error4(x, d * vec4<f32>(vec4<i32>(L) - vec4(4)));
        let shift = 8u * t;
        hmask = hmask | (((L.x >> 2u) | ((L.y >> 2u) << 1u) | ((L.z >> 2u) << 2u) | ((L.w >> 2u) << 3u)) << (shift + 4u * h));
        qs = qs | (((L.x & 3u) | ((L.y & 3u) << 2u) | ((L.z & 3u) << 4u) | ((L.w & 3u) << 6u)) << shift);
      }
      pair_or(blk, 16u * k + 4u * m, hmask);
      pair_or(blk, 32u + 32u * h + 16u * k + 4u * m, qs);
    }
  }

  // scales: bytes 0..7 hold the low 4 bits of groups k and k + 8; bytes 8..11
  // the high 2 bits of groups t, t + 4, t + 8, t + 12.
  for (var w = 0u; w < 3u; w = w + 1u) {
    var word = 0u;
    for (var t = 0u; t < 4u; t = t + 1u) {
      let byte_index = 4u * w + t;
      var v = 0u;
      if (byte_index < 8u) {
        v = (group_l6(byte_index) & 15u) | ((group_l6(byte_index + 8u) & 15u) << 4u);
      } else {
        let s = byte_index - 8u;
        v = (group_l6(s) >> 4u) | ((group_l6(s + 4u) >> 4u) << 2u) | ((group_l6(s + 8u) >> 4u) << 4u) |
            ((group_l6(s + 12u) >> 4u) << 6u);
      }
      word = word | (v << (8u * t));
    }
    pair_or(blk, 96u + 4u * w, word);
  }
}

fn group_l6(g: u32) -> u32 {
  return quad_l6[2u * (g >> 3u) + (g & 1u)][(g & 7u) >> 1u];
}

fn quantize_blocks(pair: u32, first_block: u32) {
  if (first_block < qparams.n_blocks) {
    let n_blocks = min(2u, qparams.n_blocks - first_block);
    pair_clear();
    for (var blk = 0u; blk < n_blocks; blk = blk + 1u) {
      quantize_block(blk, (first_block + blk) * QK);
    }
    pair_store(pair, n_blocks);
  }
  // the workgroup's error sums (lib/quantize_error_sums.wgsl)
  write_error_sums(pair, error_sums);
}

// quantize_row_q3_K_impl: per super-block sigma2 = 2 sum x^2 / 256; per group
// weights qw * sqrt(sigma2 + x^2) and make_qx_quants(16, 4) with them; the
// 6-bit scales by make_qx_quants(16, 32) over the group scales, weighted by
// each group's weight sum. Pipelines built with WEIGHTED = true.
//#include lib/imatrix_own_entry.wgsl

fn quantize_block_weighted(blk: u32, b: u32) {
  let first = b * QK;
  let four = select(4u, 0u, qparams.n_blocks == 0u);
  let sixteen = 4u * four;
  // sum x^2 in element order, as ggml's loop
  var sumx2 = 0.0;
  for (var i = 0u; i < 16u * sixteen; i = i + 1u) {
    let x = load_x(first + i);
    let x2 = x * x;
    sumx2 = sumx2 + x2;
  }
  let twice = 2.0 * sumx2;
  let sigma2 = twice / 256.0;
  let base = imatrix_block_base(b);
  var sw: array<vec4<f32>, 4>;
  for (var q = 0u; q < four; q = q + 1u) {
    load_quad(first, q, sixteen);
    var sum = vec4(0.0);
    for (var j = 0u; j < sixteen; j = j + 1u) {
      let qw = vec4(imatrix_w[base + 16u * quad_group(q, 0u) + j], imatrix_w[base + 16u * quad_group(q, 1u) + j],
                    imatrix_w[base + 16u * quad_group(q, 2u) + j], imatrix_w[base + 16u * quad_group(q, 3u) + j]);
      let x2 = qx_x[j] * qx_x[j];
      let s = sqrt(vec4(sigma2) + x2);
      qx_w[j] = qw * s;
      sum = sum + qx_w[j];
    }
    sw[q] = sum;
    let r = make_qx_quants4(4.0);
    quad_scale[q] = r.scale;
    // the quants make_qx_quants keeps (0 for an all-zero group)
    for (var half = 0u; half < 2u; half = half + 1u) {
      var kept = vec4(0u);
      for (var t = 0u; t < 8u; t = t + 1u) {
        let l = select(clamp(nearest_int_bits4(r.iscale * qx_x[8u * half + t]), vec4(-4), vec4(3)), vec4(-4), r.zero);
        kept = kept | (vec4<u32>(l + vec4(4)) << vec3(4u * t).xxxx);
      }
      quad_kept[2u * q + half] = kept;
    }
  }
  // make_qx_quants(16, 32, scales, Ls, 1, sw): one group of the 16 scales, in every component
  for (var i = 0u; i < 16u; i = i + 1u) {
    let qi = 2u * (i >> 3u) + (i & 1u);
    let c = (i & 7u) >> 1u;
    qx_x[i] = vec4(quad_scale[qi][c]);
    qx_w[i] = vec4(sw[qi][c]);
  }
  let r = make_qx_quants4(32.0);
  for (var q = 0u; q < four; q = q + 1u) {
    let l = select(clamp(nearest_int_bits4(vec4(r.iscale.x) * quad_scale[q]), vec4(-32), vec4(31)), vec4(-32), vec4(r.zero.x));
    quad_l6[q] = vec4<u32>(l + vec4(32));
  }
  pack_block(blk, f32_to_f16_bits(r.scale.x), four);
}

@compute @workgroup_size(QUANTIZE_WORKGROUP_SIZE)
fn quantize_weighted(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let pair = workgroup_index(wid, nwg) * QUANTIZE_WORKGROUP_SIZE + lid;
  let first_block = 2u * pair;
  if (first_block < qparams.n_blocks) {
    let n_blocks = min(2u, qparams.n_blocks - first_block);
    pair_clear();
    for (var blk = 0u; blk < n_blocks; blk = blk + 1u) {
      quantize_block_weighted(blk, first_block + blk);
    }
    pair_store(pair, n_blocks);
  }
  // the workgroup's error sums
  write_error_sums(pair, error_sums);
}

// One invocation per group of 16 outputs; a workgroup decodes 16 blocks.
fn dequantize_part(b: u32, g: u32) {
  let base = b * BLOCK_BYTES;
  let d_all = f16_bits_to_f32(block_u16(base + 108u));
  let low = select(block_byte(base + 88u + g) >> 4u, block_byte(base + 96u + g) & 15u, g < 8u);
  let high = (block_byte(base + 104u + (g & 3u)) >> (2u * (g >> 2u))) & 3u;
  let dl = d_all * f32(i32(low | (high << 4u)) - 32);
  for (var i = 0u; i < 16u; i = i + 1u) {
    let e = g * 16u + i;
    let q = (block_byte(base + 32u + (e >> 7u) * 32u + (e & 31u)) >> (2u * ((e >> 5u) & 3u))) & 3u;
    let h = (block_byte(base + (e & 31u)) >> (e >> 5u)) & 1u;
    out[b * QK + e] = dl * f32(i32(q) - select(4, 0, h == 1u));
  }
}
