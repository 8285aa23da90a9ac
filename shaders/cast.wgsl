// astype(): converts elements between the computed dtypes. Run by src/kernels/cast.ts.
//
// Both buffers are arrays of 32-bit words holding little-endian elements of
// SRC_BYTES / DST_BYTES bytes (8- and 16-bit dtypes packed 4 or 2 per word).
// One invocation writes one whole destination word, so no two invocations
// share a word. Kinds: 0 float32, 1 float16, 2 bfloat16, 3 signed int, 4 unsigned int.
//
// Rules (documented in README.md, mirrored by src/runtime/cast-reference.ts):
//   float -> float: round to nearest even; float16 overflow -> +-Inf; NaN stays NaN.
//   float -> int:   truncate toward zero, saturate at the target's range, NaN -> 0.
//   int -> float:   round to nearest even, once, from the exact integer.
//   int -> int:     keep the low bits of the two's complement value (C's wrap).

//#include lib/half.wgsl
//#include lib/grid.wgsl

override SRC_BYTES: u32 = 4u;
override SRC_KIND: u32 = 0u;
override DST_BYTES: u32 = 4u;
override DST_KIND: u32 = 0u;

struct Params {
  // elements in this chunk
  n: u32,
  // elements between the source window's start and the chunk's first element
  src_skip: u32,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

fn width_mask(bytes: u32) -> u32 {
  return 0xffffffffu >> (32u - bytes * 8u);
}

// Element i of src, zero-extended to 32 bits.
fn load_raw(i: u32) -> u32 {
  if (SRC_BYTES == 4u) { return src[i]; }
  let byte = i * SRC_BYTES;
  return (src[byte >> 2u] >> ((byte & 3u) * 8u)) & width_mask(SRC_BYTES);
}

// Integer source element as a 32-bit two's complement value.
fn load_int(raw: u32) -> u32 {
  if (SRC_KIND == 3u && SRC_BYTES < 4u) {
    let shift = 32u - SRC_BYTES * 8u;
    return bitcast<u32>(bitcast<i32>(raw << shift) >> shift);
  }
  return raw;
}

fn load_float(raw: u32) -> f32 {
  if (SRC_KIND == 1u) { return f16_bits_to_f32(raw); }
  if (SRC_KIND == 2u) { return bf16_bits_to_f32(raw); }
  return bitcast<f32>(raw);
}

// Rounds the integer magnitude `mag` to nearest even in a float format with
// `mant` stored mantissa bits and exponent bias `bias`; returns its bits (no sign).
fn int_to_float_bits(mag: u32, mant: u32, bias: u32) -> u32 {
  if (mag == 0u) { return 0u; }
  var e = firstLeadingBit(mag);
  var q: u32;
  if (e <= mant) {
    q = mag << (mant - e);
  } else {
    let shift = e - mant;
    q = mag >> shift;
    let rest = mag & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (q & 1u) == 1u)) { q = q + 1u; }
    if (q == (2u << mant)) { q = q >> 1u; e = e + 1u; }
  }
  let exp_max = 2u * bias + 1u;
  if (e + bias >= exp_max) { return exp_max << mant; }
  return ((e + bias) << mant) | (q & ((1u << mant) - 1u));
}

// Truncates toward zero and saturates at the destination integer's range;
// NaN -> 0. Range checks read the exponent bits (|x| >= 2^k), not float compares.
fn float_to_int_bits(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  let a = bits & 0x7fffffffu;
  let neg = (bits >> 31u) == 1u;
  if (a > 0x7f800000u) { return 0u; }
  let nb = DST_BYTES * 8u;
  if (DST_KIND == 3u) {
    let limit = (127u + nb - 1u) << 23u; // bits of 2^(nb-1)
    if (a >= limit) {
      // 2^(nb-1) - 1 or -2^(nb-1)
      return select((1u << (nb - 1u)) - 1u, 0xffffffffu << (nb - 1u), neg);
    }
    return bitcast<u32>(i32(x));
  }
  if (neg) { return 0u; }
  if (a >= ((127u + nb) << 23u)) { return width_mask(DST_BYTES); }
  return u32(x);
}

fn convert(raw: u32) -> u32 {
  if (SRC_KIND <= 2u) {
    let x = load_float(raw);
    if (DST_KIND == 0u) { return bitcast<u32>(x); }
    if (DST_KIND == 1u) { return f32_to_f16_bits(x); }
    if (DST_KIND == 2u) { return f32_to_bf16_bits(x); }
    return float_to_int_bits(x);
  }
  let v = load_int(raw);
  if (DST_KIND >= 3u) { return v; }
  let neg = SRC_KIND == 3u && (v >> 31u) == 1u;
  let mag = select(v, ~v + 1u, neg);
  if (DST_KIND == 0u) { return select(0u, 0x80000000u, neg) | int_to_float_bits(mag, 23u, 127u); }
  if (DST_KIND == 1u) { return select(0u, 0x8000u, neg) | int_to_float_bits(mag, 10u, 15u); }
  return select(0u, 0x8000u, neg) | int_to_float_bits(mag, 7u, 127u);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = linear_index(wid, nwg, lid);
  let per_word = 4u / DST_BYTES;
  let first = w * per_word;
  if (first >= params.n) { return; }
  var word = 0u;
  let mask = width_mask(DST_BYTES);
  for (var j = 0u; j < per_word; j = j + 1u) {
    let i = first + j;
    if (i < params.n) {
      word = word | ((convert(load_raw(params.src_skip + i)) & mask) << (j * DST_BYTES * 8u));
    }
  }
  dst[w] = word;
}
