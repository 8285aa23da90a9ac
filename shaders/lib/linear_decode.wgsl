// One chunk of 32 consecutive weights of one row, decoded to float32: the
// weight side of shaders/matmul/linear.wgsl, per W_KIND (an override, so each
// pipeline keeps one branch). Blocks follow ggml's layouts (ggml-common.h);
// src/kernels/matmul-linear.ts pads blocks whose size is not a multiple of 4
// bytes (Q8_0 34, Q4_0 18) to the next multiple so every field is read as
// whole u32 words, and Q6_K (210) to 224, a multiple of 16, for vec4 reads.
// These decoders are separate from the formats' dequantize shaders
// (shaders/quant/*) because those write whole blocks to an output binding;
// here 32 values go to registers.
//
// Bindings: w (u32 words) and w4 (the same buffer as vec4 words, for the
// 16-byte aligned layouts: float rows with K % 8 == 0, Q4_K, Q5_K, Q6_K).

@group(0) @binding(4) var<storage, read> w4: array<vec4<u32>>;

// Byte offset of weight row r's first block (or element).
fn row_byte(r: u32) -> u32 {
  return p.w_base + r * p.w_row_bytes;
}

fn bytes4(word: u32) -> vec4<u32> {
  return (vec4<u32>(word) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu);
}

fn nibbles_lo(word: u32) -> vec4<f32> {
  return vec4<f32>((vec4<u32>(word) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xfu));
}

fn nibbles_hi(word: u32) -> vec4<f32> {
  return vec4<f32>((vec4<u32>(word) >> vec4<u32>(4u, 12u, 20u, 28u)) & vec4<u32>(0xfu));
}

// Signed bytes of a word as floats.
fn sbytes4(word: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(word) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}

fn half_lo(word: u32) -> f32 {
  return unpack2x16float(word).x;
}

fn decode_chunk(r: u32, c: u32) -> array<vec4<f32>, 8> {
  var o: array<vec4<f32>, 8>;
  let rb = row_byte(r);
  if (W_KIND == 0u) {
    // float32: 128 bytes
    let at = (rb >> 4u) + c * 8u;
    for (var i = 0u; i < 8u; i = i + 1u) { o[i] = bitcast<vec4<f32>>(w4[at + i]); }
  } else if (W_KIND == 1u || W_KIND == 2u) {
    // float16 / bfloat16: 64 bytes
    let at = (rb >> 4u) + c * 4u;
    for (var i = 0u; i < 4u; i = i + 1u) {
      let v = w4[at + i];
      if (W_KIND == 1u) {
        o[2u * i] = vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y));
        o[2u * i + 1u] = vec4<f32>(unpack2x16float(v.z), unpack2x16float(v.w));
      } else {
        o[2u * i] = bitcast<vec4<f32>>(vec4<u32>(v.x << 16u, v.x & 0xffff0000u, v.y << 16u, v.y & 0xffff0000u));
        o[2u * i + 1u] = bitcast<vec4<f32>>(vec4<u32>(v.z << 16u, v.z & 0xffff0000u, v.w << 16u, v.w & 0xffff0000u));
      }
    }
  } else if (W_KIND == 3u) {
    // q8_0, padded to 36 bytes: d (f16), 32 signed bytes
    let at = (rb >> 2u) + c * 9u;
    let d = half_lo(w[at]);
    // the quants start at byte 2: word i of them straddles words at + i and at + i + 1
    var prev = w[at];
    for (var i = 0u; i < 8u; i = i + 1u) {
      let next = w[at + 1u + i];
      o[i] = d * sbytes4((prev >> 16u) | (next << 16u));
      prev = next;
    }
  } else if (W_KIND == 4u) {
    // q4_0, padded to 20 bytes: d (f16), 16 bytes of nibbles (low: values 0-15, high: 16-31), offset 8
    let at = (rb >> 2u) + c * 5u;
    let d = half_lo(w[at]);
    var prev = w[at];
    for (var i = 0u; i < 4u; i = i + 1u) {
      let next = w[at + 1u + i];
      let word = (prev >> 16u) | (next << 16u);
      o[i] = d * (nibbles_lo(word) - 8.0);
      o[i + 4u] = d * (nibbles_hi(word) - 8.0);
      prev = next;
    }
  } else if (W_KIND == 5u) {
    // q4_K, 144 bytes: d, dmin (f16), 12 scale bytes, 128 bytes of nibbles
    let blk = (rb >> 4u) + (c >> 3u) * 9u;
    let j = c & 7u;
    let h = w4[blk];
    let dm = unpack2x16float(h.x);
    let sm = scale_min_k4(j, h);
    let scale = dm.x * sm.x;
    let mn = dm.y * sm.y;
    // sub-blocks 2g and 2g + 1 share 32 bytes: low and high nibbles
    let q0 = w4[blk + 1u + (j >> 1u) * 2u];
    let q1 = w4[blk + 2u + (j >> 1u) * 2u];
    let hi = (j & 1u) == 1u;
    for (var i = 0u; i < 4u; i = i + 1u) {
      let a = select(nibbles_lo(q0[i]), nibbles_hi(q0[i]), hi);
      let b = select(nibbles_lo(q1[i]), nibbles_hi(q1[i]), hi);
      o[i] = scale * a - mn;
      o[i + 4u] = scale * b - mn;
    }
  } else if (W_KIND == 6u) {
    // q5_K, 176 bytes: d, dmin, 12 scale bytes, 32 bytes of high bits, 128 bytes of nibbles
    let blk = (rb >> 4u) + (c >> 3u) * 11u;
    let j = c & 7u;
    let h = w4[blk];
    let dm = unpack2x16float(h.x);
    let sm = scale_min_k4(j, h);
    let scale = dm.x * sm.x;
    let mn = dm.y * sm.y;
    let qh0 = w4[blk + 1u];
    let qh1 = w4[blk + 2u];
    let q0 = w4[blk + 3u + (j >> 1u) * 2u];
    let q1 = w4[blk + 4u + (j >> 1u) * 2u];
    let hi = (j & 1u) == 1u;
    // bit j of each high-bit byte, moved to 16
    let hshift = vec4<u32>(j, j + 8u, j + 16u, j + 24u);
    for (var i = 0u; i < 4u; i = i + 1u) {
      let a = select(nibbles_lo(q0[i]), nibbles_hi(q0[i]), hi) + 16.0 * vec4<f32>((vec4<u32>(qh0[i]) >> hshift) & vec4<u32>(1u));
      let b = select(nibbles_lo(q1[i]), nibbles_hi(q1[i]), hi) + 16.0 * vec4<f32>((vec4<u32>(qh1[i]) >> hshift) & vec4<u32>(1u));
      o[i] = scale * a - mn;
      o[i + 4u] = scale * b - mn;
    }
  } else {
    // q6_K, padded to 224 bytes (14 vec4 words, so that every field is read as whole vectors):
    // ql[128] (vec4 0-7), qh[64] (vec4 8-11), 16 signed scales (vec4 12), d (f16, low half of vec4 13's x)
    let blk = (rb >> 4u) + (c >> 3u) * 14u;
    let j = c & 7u;
    let half = j >> 2u;
    let g = j & 3u;
    let ql = half * 4u + (g & 1u) * 2u;
    let l0 = w4[blk + ql];
    let l1 = w4[blk + ql + 1u];
    let h0 = w4[blk + 8u + half * 2u];
    let h1 = w4[blk + 9u + half * 2u];
    let sc = sbytes4(w4[blk + 12u][half * 2u + (g >> 1u)]);
    let d = half_lo(w4[blk + 13u].x);
    let s0 = d * select(sc.x, sc.z, (g & 1u) == 1u);
    let s1 = d * select(sc.y, sc.w, (g & 1u) == 1u);
    let hsh = vec4<u32>(2u * g, 2u * g + 8u, 2u * g + 16u, 2u * g + 24u);
    for (var i = 0u; i < 4u; i = i + 1u) {
      let a = select(nibbles_lo(l0[i]), nibbles_hi(l0[i]), g >= 2u) + 16.0 * vec4<f32>((vec4<u32>(h0[i]) >> hsh) & vec4<u32>(3u)) - 32.0;
      let b = select(nibbles_lo(l1[i]), nibbles_hi(l1[i]), g >= 2u) + 16.0 * vec4<f32>((vec4<u32>(h1[i]) >> hsh) & vec4<u32>(3u)) - 32.0;
      o[i] = s0 * a;
      o[i + 4u] = s1 * b;
    }
  }
  return o;
}
