// MXFP4 (OCP microscaling FP4): blocks of 32 weights as { e: E8M0 u8, qs: u8[16] } (17 bytes),
// x = 2^(e - 128) * kvalues_mxfp4[q] (E2M1 values doubled, the scale halved);
// byte j holds element j in its low nibble and element j + 16 in its high one.
// ggml: quantize_row_mxfp4_ref / dequantize_row_mxfp4.

//#include lib/quant_entry.wgsl
//#include lib/quantize_io.wgsl
//#include lib/legacy_quant.wgsl


// floor(log2f(a)) for a finite a > 0 given as bits, log2f correctly rounded as glibc's:
// just below a power of two it rounds up to the next integer when that integer's
// float spacing is coarse enough (j <= floor(ln 2 * 2^s), see below).
fn floor_log2f(a: u32) -> i32 {
  var n: i32;
  var sig: u32; // 24-bit significand, leading bit at bit 23
  if (a < 0x800000u) {
    let k = 31u - countLeadingZeros(a);
    n = i32(k) - 149;
    sig = a << (23u - k);
  } else {
    n = i32(a >> 23u) - 127;
    sig = (a & 0x7fffffu) | 0x800000u;
  }
  let v = n + 1;
  if (v == 0) { return n; }
  // log2(a) = v - d with d ~ j * 2^-24 / ln 2 (j = 2^24 - sig); it rounds to v when d is
  // below half the float spacing next to v, 2^(s - 24): s = floor(log2 |v|), one less
  // when v is a positive power of two (the spacing below it is halved).
  let u = u32(abs(v));
  let p = i32(31u - countLeadingZeros(u));
  let s = select(p, p - 1, v > 0 && (u & (u - 1u)) == 0u);
  let limit = select(0u, u32(floor(0.6931472 * f32(1u << u32(max(s, 0))))), s >= 1);
  return select(n, v, 0x1000000u - sig <= limit);
}

// ggml's block exponent: (uint8_t)(floorf(log2f(amax)) - 2 + 127), 0 for amax = 0.
fn mxfp4_exponent(amax: u32) -> u32 {
  if (amax == 0u) { return 0u; }
  return u32(floor_log2f(amax) + 125) & 0xffu;
}

// ggml_e8m0_to_fp32_half: 2^(e - 128).
fn e8m0_half(e: u32) -> f32 {
  return bitcast<f32>(select((e - 1u) << 23u, 0x00200000u << e, e < 2u));
}

// ggml's best_index_mxfp4: the first of the 16 levels with the smallest |level * d - x|.
// Levels of the other sign are never strictly nearer, nor is -0 (index 8) than 0, so
// the search runs over the magnitudes and takes the sign of x.
fn mxfp4_index4(x: vec4<f32>, d: f32) -> vec4<u32> {
  let a = abs(x);
  var best = vec4<u32>(0u);
  var err = a;
  let levels = array<f32, 8>(0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0);
  for (var m = 1u; m < 8u; m = m + 1u) {
    let e = abs(vec4<f32>(levels[m] * d) - a);
    let nearer = e < err;
    best = select(best, vec4<u32>(m), nearer);
    err = select(err, e, nearer);
  }
  let negative = bitcast<vec4<u32>>(x) >= vec4<u32>(0x80000000u);
  return select(best, best + vec4<u32>(8u), negative & (best != vec4<u32>(0u)));
}

struct MxBlock {
  e: u32,
  qs: vec4<u32>,
}

fn mxfp4_word(lo: vec4<f32>, hi: vec4<f32>, d: f32) -> u32 {
  return pack_bytes(mxfp4_index4(lo, d) | (mxfp4_index4(hi, d) << vec4<u32>(4u)));
}

fn mxfp4_block(b: u32) -> MxBlock {
  let x = load_block32(b * QK);
  let amax = abs_max_bits32(x);
  // Non-finite input: E8M0 0xff (the OCP NaN code) and zero quants.
  if (!is_finite_bits(amax)) { return MxBlock(0xffu, vec4<u32>(0u)); }
  let e = mxfp4_exponent(amax);
  let d = e8m0_half(e);
  return MxBlock(e, vec4<u32>(mxfp4_word(x.x0, x.x4, d), mxfp4_word(x.x1, x.x5, d),
                              mxfp4_word(x.x2, x.x6, d), mxfp4_word(x.x3, x.x7, d)));
}

// A block's 17 bytes as words: bytes 0-15 in `lo`, byte 16 in `hi`.
struct MxBytes {
  lo: vec4<u32>,
  hi: u32,
}

fn mxfp4_bytes(b: MxBlock) -> MxBytes {
  let q = b.qs;
  return MxBytes(vec4<u32>(b.e | (q.x << 8u), (q.x >> 24u) | (q.y << 8u), (q.y >> 24u) | (q.z << 8u), (q.z >> 24u) | (q.w << 8u)),
                 q.w >> 24u);
}

// One invocation writes four blocks: 68 bytes, 17 whole words; block k starts at byte 17k
// (word 4k, shifted up 8k bits).
fn quantize_blocks(quad: u32, first: u32) {
  if (first >= qparams.n_blocks) { return; }
  // One call site in a rolled loop: inlined four times, the search makes a shader
  // lavapipe is slow to compile.
  let nb = min(4u, qparams.n_blocks - first);
  var a = MxBytes(vec4<u32>(0u), 0u);
  var b = a;
  var c = a;
  var d = a;
  for (var k = 0u; k < nb; k = k + 1u) {
    let r = mxfp4_bytes(mxfp4_block(first + k));
    if (k == 0u) { a = r; } else if (k == 1u) { b = r; } else if (k == 2u) { c = r; } else { d = r; }
  }
  let words = array<u32, 17>(
    a.lo.x, a.lo.y, a.lo.z, a.lo.w,
    a.hi | (b.lo.x << 8u),
    (b.lo.x >> 24u) | (b.lo.y << 8u), (b.lo.y >> 24u) | (b.lo.z << 8u), (b.lo.z >> 24u) | (b.lo.w << 8u),
    (b.lo.w >> 24u) | (b.hi << 8u) | (c.lo.x << 16u),
    (c.lo.x >> 16u) | (c.lo.y << 16u), (c.lo.y >> 16u) | (c.lo.z << 16u), (c.lo.z >> 16u) | (c.lo.w << 16u),
    (c.lo.w >> 16u) | (c.hi << 16u) | (d.lo.x << 24u),
    (d.lo.x >> 8u) | (d.lo.y << 24u), (d.lo.y >> 8u) | (d.lo.z << 24u), (d.lo.z >> 8u) | (d.lo.w << 24u),
    (d.lo.w >> 8u) | (d.hi << 24u));
  let w = quad * 17u;
  if (nb == 4u) {
    dst[w] = words[0]; dst[w + 1u] = words[1]; dst[w + 2u] = words[2]; dst[w + 3u] = words[3];
    dst[w + 4u] = words[4]; dst[w + 5u] = words[5]; dst[w + 6u] = words[6]; dst[w + 7u] = words[7];
    dst[w + 8u] = words[8]; dst[w + 9u] = words[9]; dst[w + 10u] = words[10]; dst[w + 11u] = words[11];
    dst[w + 12u] = words[12]; dst[w + 13u] = words[13]; dst[w + 14u] = words[14]; dst[w + 15u] = words[15];
    dst[w + 16u] = words[16];
  } else {
    // The last blocks: only the words they cover (the window ends there).
    let n_words = (nb * BLOCK_BYTES + 3u) / 4u;
    for (var i = 0u; i < n_words; i = i + 1u) { dst[w + i] = words[i]; }
  }
}

// kvalues_mxfp4[q] * 2^(e - 128), built from the bits so that subnormal results are exact.
fn mxfp4_value(q: u32, e: u32) -> f32 {
  // |kvalues| 0, 1, 2, 3, 4, 6, 8, 12 as mant * 2^sh with mant 1 or 3
  let m = q & 7u;
  if (m == 0u) { return 0.0; }
  let sh = array<u32, 8>(0u, 0u, 1u, 0u, 2u, 1u, 3u, 2u)[m];
  let three = m == 3u || m == 5u || m == 7u;
  let ex = i32(sh + e) - 128; // value = mant * 2^ex
  var bits: u32;
  if (three && ex + 1 >= -126) {
    bits = (u32(ex + 128) << 23u) | 0x400000u; // 1.5 * 2^(ex + 1)
  } else if (!three && ex >= -126) {
    bits = u32(ex + 127) << 23u;
  } else {
    bits = select(1u, 3u, three) << u32(ex + 149); // subnormal: units of 2^-149
  }
  return bitcast<f32>(bits | select(0u, 0x80000000u, q >= 8u));
}

fn dequantize_part(b: u32, part: u32) {
  let p = b * BLOCK_BYTES;
  let e = block_u32_at(p) & 0xffu;
  let qs = block_bytes16(p + 1u);
  for (var i = 0u; i < 4u; i = i + 1u) {
    let lo = nibbles4(qs[i], false);
    let hi = nibbles4(qs[i], true);
    out4[b * 8u + i] = vec4<f32>(mxfp4_value(lo.x, e), mxfp4_value(lo.y, e), mxfp4_value(lo.z, e), mxfp4_value(lo.w, e));
    out4[b * 8u + 4u + i] = vec4<f32>(mxfp4_value(hi.x, e), mxfp4_value(hi.y, e), mxfp4_value(hi.z, e), mxfp4_value(hi.w, e));
  }
}
