// Helpers shared by the kernels of Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS, MXFP4,
// TQ1_0 and TQ2_0 (shaders/quant/), mirroring src/quant/formats/legacy-common.ts:
// block loads, ggml's max / min loops, C's float -> int conversions as ggml's
// x86-64 build performs them (truncation; NaN and |x| >= 2^31 give INT_MIN), and
// the non-finite rule: a block holding NaN or ±Inf is written with NaN scales
// and zero quants. Special values are recognised from the bits, never by float
// compares: WGSL lets compilers assume floats are finite.
// Needs lib/quantize_io.wgsl.

const INT_MIN: i32 = -2147483647 - 1;
// float16 NaN: the scale of a block whose input holds NaN or ±Inf.
const F16_NAN: u32 = 0x7e00u;

// `n`, in a form the shader compiler cannot fold: a loop bounded by it stays rolled.
// (Unrolled and inlined, the IQ4 search takes lavapipe seconds to compile.)
fn opaque(n: u32) -> u32 {
  return select(n, 0u, qparams.n_blocks == 0xffffffffu);
}

// Elements i .. i + 3 of the chunk's input, as float32.
fn load_x4(i: u32) -> vec4<f32> {
  if (SRC_KIND == 0u) {
    let e = qparams.src_skip + i;
    return bitcast<vec4<f32>>(vec4<u32>(src[e], src[e + 1u], src[e + 2u], src[e + 3u]));
  }
  return vec4<f32>(load_x(i), load_x(i + 1u), load_x(i + 2u), load_x(i + 3u));
}

// 32 consecutive elements, element 4k + c in component c of xk.
struct Block32 {
  x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
  x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>,
}

fn load_block32(e: u32) -> Block32 {
  return Block32(load_x4(e), load_x4(e + 4u), load_x4(e + 8u), load_x4(e + 12u),
                 load_x4(e + 16u), load_x4(e + 20u), load_x4(e + 24u), load_x4(e + 28u));
}

// |x| as float32 bits: ordered like the magnitudes, Inf 0x7f800000, NaN above.
fn abs_bits4(x: vec4<f32>) -> vec4<u32> {
  return bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu);
}

fn hmax4(v: vec4<u32>) -> u32 {
  return max(max(v.x, v.y), max(v.z, v.w));
}

fn hmin4(v: vec4<u32>) -> u32 {
  return min(min(v.x, v.y), min(v.z, v.w));
}

// The largest |x| bits of a block: >= 0x7f800000 when it holds NaN or ±Inf.
fn abs_max_bits32(b: Block32) -> u32 {
  return hmax4(max(max(max(abs_bits4(b.x0), abs_bits4(b.x1)), max(abs_bits4(b.x2), abs_bits4(b.x3))),
                   max(max(abs_bits4(b.x4), abs_bits4(b.x5)), max(abs_bits4(b.x6), abs_bits4(b.x7)))));
}

fn is_finite_bits(abs_bits: u32) -> bool {
  return abs_bits < 0x7f800000u;
}

// Keys (index << 1 | sign bit) of the four elements first..first+3 whose |x| bits are `a`; ~0 for the others.
fn match_keys4(x: vec4<f32>, a: u32, first: u32) -> vec4<u32> {
  let bits = bitcast<vec4<u32>>(x);
  let key = ((vec4<u32>(first) + vec4<u32>(0u, 1u, 2u, 3u)) << vec4<u32>(1u)) | (bits >> vec4<u32>(31u));
  return select(vec4<u32>(0xffffffffu), key, abs_bits4(x) == vec4<u32>(a));
}

// The sign bit of the first element of the block whose |x| bits are `a` (one must exist).
fn first_sign32(b: Block32, a: u32) -> u32 {
  let k = min(min(min(match_keys4(b.x0, a, 0u), match_keys4(b.x1, a, 4u)), min(match_keys4(b.x2, a, 8u), match_keys4(b.x3, a, 12u))),
              min(min(match_keys4(b.x4, a, 16u), match_keys4(b.x5, a, 20u)), min(match_keys4(b.x6, a, 24u), match_keys4(b.x7, a, 28u))));
  return hmin4(k) & 1u;
}

// ggml's `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }` over a finite block
// whose largest |x| bits are `amax`: the value of largest magnitude, the first on ties, 0 for a zero block.
fn signed_abs_max32(b: Block32, amax: u32) -> f32 {
  if (amax == 0u) { return 0.0; }
  return bitcast<f32>(amax | (first_sign32(b, amax) << 31u));
}

// Float32 values as ordered integers (-0 taken as +0, as float compares do).
fn order_key4(x: vec4<f32>) -> vec4<i32> {
  let b = bitcast<vec4<i32>>(x);
  let k = b ^ ((b >> vec4<u32>(31u)) & vec4<i32>(0x7fffffff));
  return select(k, vec4<i32>(0), k == vec4<i32>(-1));
}

fn key_to_f32(k: i32) -> f32 {
  return bitcast<f32>(k ^ ((k >> 31u) & 0x7fffffff));
}

struct MinMax {
  min: f32,
  max: f32,
}

// ggml's `if (v < min) min = v; if (v > max) max = v;` over a finite block: where the
// result is zero, its sign is that of the first zero in the block.
fn min_max32(b: Block32) -> MinMax {
  let k0 = order_key4(b.x0); let k1 = order_key4(b.x1); let k2 = order_key4(b.x2); let k3 = order_key4(b.x3);
  let k4 = order_key4(b.x4); let k5 = order_key4(b.x5); let k6 = order_key4(b.x6); let k7 = order_key4(b.x7);
  let lo = min(min(min(k0, k1), min(k2, k3)), min(min(k4, k5), min(k6, k7)));
  let hi = max(max(max(k0, k1), max(k2, k3)), max(max(k4, k5), max(k6, k7)));
  var r = MinMax(key_to_f32(min(min(lo.x, lo.y), min(lo.z, lo.w))), key_to_f32(max(max(hi.x, hi.y), max(hi.z, hi.w))));
  let zero_min = bitcast<u32>(r.min) == 0u;
  let zero_max = bitcast<u32>(r.max) == 0u;
  if (zero_min || zero_max) {
    let zero = bitcast<f32>(first_sign32(b, 0u) << 31u);
    r.min = select(r.min, zero, zero_min);
    r.max = select(r.max, zero, zero_max);
  }
  return r;
}

// C's (int)x on x86-64.
fn c_int4(x: vec4<f32>) -> vec4<i32> {
  return select(vec4<i32>(INT_MIN), vec4<i32>(x), abs_bits4(x) < vec4<u32>(0x4f000000u));
}

// C's (int8_t)x on x86-64: (int)x, then its low byte, sign-extended.
fn c_int8_4(x: vec4<f32>) -> vec4<i32> {
  return (c_int4(x) << vec4<u32>(24u)) >> vec4<u32>(24u);
}

// C's `d ? 1.0f/d : 0.0f`, with d == 0 tested on the bits.
fn inverse_or_zero(d: f32) -> f32 {
  return select(0.0, 1.0 / d, (bitcast<u32>(d) & 0x7fffffffu) != 0u);
}

// Four bytes (low 8 bits of each component) as one little-endian word.
fn pack_bytes(b: vec4<u32>) -> u32 {
  let v = b & vec4<u32>(0xffu);
  return v.x | (v.y << 8u) | (v.z << 16u) | (v.w << 24u);
}

// Bit 4 of four 5-bit quants, placed at bits first..first+3.
fn high_bits4(q: vec4<u32>, first: u32) -> u32 {
  let h = ((q >> vec4<u32>(4u)) & vec4<u32>(1u)) << (vec4<u32>(first) + vec4<u32>(0u, 1u, 2u, 3u));
  return h.x | h.y | h.z | h.w;
}

// C's (int)lroundf(x) on x86-64: halfway cases away from zero; NaN and |x| >= 2^31 give 0
// (the low half of LONG_MIN; unreachable for finite blocks, whose |x * id| <= 1 or is infinite).
fn c_lround4(x: vec4<f32>) -> vec4<i32> {
  let a = abs(x);
  let r = floor(a);
  let up = r + select(vec4<f32>(0.0), vec4<f32>(1.0), a - r >= vec4<f32>(0.5));
  let v = select(-vec4<i32>(up), vec4<i32>(up), bitcast<vec4<u32>>(x) < vec4<u32>(0x80000000u));
  return select(vec4<i32>(0), v, abs_bits4(x) < vec4<u32>(0x4f000000u));
}

// Writes `word` of a block that starts half a word late: dst[w] gets the previous
// word's high half (`carry`) and this word's low half; returns this word's high half.
fn write_shifted(w: u32, word: u32, carry: u32) -> u32 {
  dst[w] = carry | (word << 16u);
  return word >> 16u;
}
