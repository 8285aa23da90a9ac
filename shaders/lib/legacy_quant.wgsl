// Helpers shared by the kernels of Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS, MXFP4,
// TQ1_0 and TQ2_0 (shaders/quant/), mirroring src/quant/formats/block-helpers.ts:
// vector loads of 32-element blocks, ggml's max / min loops, C's float -> int
// conversions as ggml's x86-64 build performs them, the non-finite rule (a block
// holding NaN or ±Inf is written with NaN scales and zero quants), and word /
// vector access for the dequantize entry points. Special values are recognised
// from the bits, never by float compares: WGSL lets compilers assume floats are
// finite. Needs lib/quantize_io.wgsl and lib/dequantize_io.wgsl.

// float16 NaN: the scale of a block whose input holds NaN or ±Inf.
const F16_NAN: u32 = 0x7e00u;

// `n`, in a form the shader compiler cannot fold: a loop bounded by it stays rolled.
// (Unrolled and inlined, the IQ4 search takes lavapipe seconds to compile.)
fn opaque(n: u32) -> u32 {
  return select(n, 0u, qparams.n_blocks == 0xffffffffu);
}

// The chunk's input as 16-byte vectors: the binding of lib/quantize_io.wgsl's `src`,
// which these quantize entry points never read (WGSL lets two variables share a
// binding when no entry point uses both). One vec4 load per lane costs lavapipe
// about what one u32 load does. src/kernels/dispatch.ts pads windows to whole
// vectors wherever the buffer has room.
@group(0) @binding(0) var<storage, read> src4: array<vec4<u32>>;

// 32 consecutive elements, element 4k + c in component c of xk.
struct Block32 {
  x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
  x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>,
}

// Four elements' raw bits (float32 bits, or float16/bfloat16 bits in the low
// half) as float32, for any input dtype. Branch-free vector code: inlined for
// each of a block's eight vectors, it keeps the pipeline quick to compile
// (lavapipe compiles every inlined copy) while one pipeline serves all dtypes.
fn raw_to_f32x4(raw: vec4<u32>) -> vec4<f32> {
  if (src_kind() == 0u) { return bitcast<vec4<f32>>(raw); }
  if (src_kind() == 2u) { return bitcast<vec4<f32>>(raw << vec4<u32>(16u)); }
  // float16: exact, subnormals and Inf/NaN included
  let sign = (raw & vec4<u32>(0x8000u)) << vec4<u32>(16u);
  let e = (raw >> vec4<u32>(10u)) & vec4<u32>(0x1fu);
  let m = raw & vec4<u32>(0x3ffu);
  let normal = sign | ((e + vec4<u32>(112u)) << vec4<u32>(23u)) | (m << vec4<u32>(13u));
  let special = sign | vec4<u32>(0x7f800000u) | (m << vec4<u32>(13u));
  let small = sign | bitcast<vec4<u32>>(vec4<f32>(m) * 5.9604644775390625e-8);
  return bitcast<vec4<f32>>(select(select(normal, special, e == vec4<u32>(31u)), small, e == vec4<u32>(0u)));
}

// Raw bits of window element g, one word at a time (inputs that start mid-vector).
fn src_raw(g: u32) -> u32 {
  if (src_kind() == 0u) { return src4[g >> 2u][g & 3u]; }
  let w = g >> 1u;
  return (src4[w >> 2u][w & 3u] >> ((g & 1u) * 16u)) & 0xffffu;
}

fn src_raw4(g: u32) -> vec4<u32> {
  return vec4<u32>(src_raw(g), src_raw(g + 1u), src_raw(g + 2u), src_raw(g + 3u));
}

// The four 16-bit values in two words, each in the low half of a component.
fn halves_raw4(v: vec2<u32>) -> vec4<u32> {
  return vec4<u32>(v.x & 0xffffu, v.x >> 16u, v.y & 0xffffu, v.y >> 16u);
}

// 32 elements' raw bits, element 4k + c in component c of xk.
struct Raw32 {
  x0: vec4<u32>, x1: vec4<u32>, x2: vec4<u32>, x3: vec4<u32>,
  x4: vec4<u32>, x5: vec4<u32>, x6: vec4<u32>, x7: vec4<u32>,
}

fn load_raw32(g: u32) -> Raw32 {
  if (src_kind() == 0u && (qparams.src_skip & 3u) == 0u) {
    let k = g >> 2u;
    return Raw32(src4[k], src4[k + 1u], src4[k + 2u], src4[k + 3u], src4[k + 4u], src4[k + 5u], src4[k + 6u], src4[k + 7u]);
  }
  if (src_kind() != 0u && (qparams.src_skip & 7u) == 0u) {
    let k = g >> 3u;
    let v0 = src4[k]; let v1 = src4[k + 1u]; let v2 = src4[k + 2u]; let v3 = src4[k + 3u];
    return Raw32(halves_raw4(v0.xy), halves_raw4(v0.zw), halves_raw4(v1.xy), halves_raw4(v1.zw),
                 halves_raw4(v2.xy), halves_raw4(v2.zw), halves_raw4(v3.xy), halves_raw4(v3.zw));
  }
  // A view that starts mid-vector: one element at a time.
  return Raw32(src_raw4(g), src_raw4(g + 4u), src_raw4(g + 8u), src_raw4(g + 12u),
               src_raw4(g + 16u), src_raw4(g + 20u), src_raw4(g + 24u), src_raw4(g + 28u));
}

// Elements e .. e + 31 of the chunk's input as float32 (e a multiple of 32). A
// window too short to hold them (a buffer without room for the padding) gives NaN,
// which marks the block invalid rather than quantizing wrong values.
fn load_block32(e: u32) -> Block32 {
  let g = qparams.src_skip + e;
  let per_vec = select(8u, 4u, src_kind() == 0u);
  if ((g + 31u) / per_vec >= arrayLength(&src4)) {
    // (a runtime value: WGSL constant expressions cannot hold NaN)
    let nan = vec4<f32>(bitcast<f32>(0x7fc00000u | (g & 0u)));
    return Block32(nan, nan, nan, nan, nan, nan, nan, nan);
  }
  let r = load_raw32(g);
  return Block32(raw_to_f32x4(r.x0), raw_to_f32x4(r.x1), raw_to_f32x4(r.x2), raw_to_f32x4(r.x3),
                 raw_to_f32x4(r.x4), raw_to_f32x4(r.x5), raw_to_f32x4(r.x6), raw_to_f32x4(r.x7));
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

// ggml's `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }` over a block: `amax`, the
// largest |x| as bits (>= 0x7f800000 when the block holds NaN or ±Inf), and `max`, the
// value that has it, the first on ties (0 for a zero block). Found with two integer
// max trees: the largest positive value (signed order of the bits) and the negative
// value of largest magnitude (unsigned order); only a tie between +amax and -amax
// needs the elements' order.
struct AbsMax {
  amax: u32,
  max: f32,
}

fn abs_max32(b: Block32) -> AbsMax {
  let s0 = bitcast<vec4<i32>>(b.x0); let s1 = bitcast<vec4<i32>>(b.x1); let s2 = bitcast<vec4<i32>>(b.x2); let s3 = bitcast<vec4<i32>>(b.x3);
  let s4 = bitcast<vec4<i32>>(b.x4); let s5 = bitcast<vec4<i32>>(b.x5); let s6 = bitcast<vec4<i32>>(b.x6); let s7 = bitcast<vec4<i32>>(b.x7);
  let ps = max(max(max(s0, s1), max(s2, s3)), max(max(s4, s5), max(s6, s7)));
  let ns = max(max(max(bitcast<vec4<u32>>(s0), bitcast<vec4<u32>>(s1)), max(bitcast<vec4<u32>>(s2), bitcast<vec4<u32>>(s3))),
               max(max(bitcast<vec4<u32>>(s4), bitcast<vec4<u32>>(s5)), max(bitcast<vec4<u32>>(s6), bitcast<vec4<u32>>(s7))));
  let top_pos = max(max(ps.x, ps.y), max(ps.z, ps.w));
  let top_neg = hmax4(ns);
  let p = u32(max(top_pos, 0)); // |largest positive| (0 if none)
  let n = select(0u, top_neg & 0x7fffffffu, top_neg >= 0x80000000u); // |most negative| (0 if none)
  let amax = max(p, n);
  var sign = select(0u, 1u, n > p);
  if (p == n && amax != 0u) { sign = first_sign32(b, amax); }
  return AbsMax(amax, bitcast<f32>(select(amax | (sign << 31u), 0u, amax == 0u)));
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

// C's (int)v on x86-64 for the values ggml's quantizers convert: v in [0, 2^22) gives
// trunc(v); NaN, ±Inf and |v| >= 2^22 give INT_MIN, returned as 0, its low byte
// (the quantizers below reach no other values). Float arithmetic instead of a
// conversion: WGSL's float -> int conversions saturate, and lavapipe compiles them
// to scalar code for every lane.
fn c_small_int4(v: vec4<f32>) -> vec4<u32> {
  let t = bitcast<vec4<u32>>(floor(v) + vec4<f32>(8388608.0)) - vec4<u32>(0x4b000000u);
  return select(vec4<u32>(0u), t, abs_bits4(v) < vec4<u32>(0x4a800000u));
}

// Whether x is ±Inf or NaN (from the bits).
fn is_inf_or_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) >= 0x7f800000u;
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

// C's (int)lroundf(x) on x86-64 (halfway cases away from zero) for |x| < 2^22; NaN,
// ±Inf and larger values give 0, the low half of LONG_MIN (ternary blocks reach only
// |x * id| <= 1, or infinity when the scale is subnormal). Integer from float bits,
// as c_small_int4.
fn c_lround4(x: vec4<f32>) -> vec4<i32> {
  let a = abs(x);
  let r = floor(a);
  let up = r + select(vec4<f32>(0.0), vec4<f32>(1.0), a - r >= vec4<f32>(0.5));
  let n = bitcast<vec4<i32>>(up + vec4<f32>(12582912.0)) - vec4<i32>(0x4b400000);
  let v = select(-n, n, bitcast<vec4<u32>>(x) < vec4<u32>(0x80000000u));
  return select(vec4<i32>(0), v, abs_bits4(x) < vec4<u32>(0x4a800000u));
}

// Writes `word` of a block that starts half a word late: dst[w] gets the previous
// word's high half (`carry`) and this word's low half; returns this word's high half.
fn write_shifted(w: u32, word: u32, carry: u32) -> u32 {
  dst[w] = carry | (word << 16u);
  return word >> 16u;
}

// ---- dequantize ----

// The chunk's output as 16-byte vectors: the binding of lib/dequantize_io.wgsl's `out`,
// which these dequantize entry points never write (as src4 above). Block starts are
// multiples of 32 elements, so each block's outputs are whole vectors.
@group(0) @binding(1) var<storage, read_write> out4: array<vec4<f32>>;

// The little-endian u32 at byte p of the chunk's blocks (any alignment).
fn block_u32_at(p: u32) -> u32 {
  let k = p >> 2u;
  let s = (p & 3u) * 8u;
  let lo = blocks[k];
  if (s == 0u) { return lo; }
  return (lo >> s) | (blocks[k + 1u] << (32u - s));
}

// The 16 bytes at byte p of the chunk's blocks (any alignment), as four words.
fn block_bytes16(p: u32) -> vec4<u32> {
  let k = p >> 2u;
  let s = (p & 3u) * 8u;
  let w = vec4<u32>(blocks[k], blocks[k + 1u], blocks[k + 2u], blocks[k + 3u]);
  if (s == 0u) { return w; }
  let next = vec4<u32>(w.yzw, blocks[k + 4u]);
  return (w >> vec4<u32>(s)) | (next << vec4<u32>(32u - s));
}

// Low (hi = false) or high nibbles of a word's four bytes.
fn nibbles4(w: u32, hi: bool) -> vec4<u32> {
  let v = (vec4<u32>(w) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu);
  return select(v & vec4<u32>(15u), v >> vec4<u32>(4u), hi);
}

// The four bytes of a word.
fn bytes4(w: u32) -> vec4<u32> {
  return (vec4<u32>(w) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu);
}
