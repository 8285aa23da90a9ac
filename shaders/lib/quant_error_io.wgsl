// The `quant_error` entry point's own bindings and loads (shaders/lib/quant_entry.wgsl,
// dispatched by src/kernels/quant-error.ts). They sit in bind group 1 from binding 1
// (binding 0 is the format's static tables, the IQ grids, where it has them): group 0 is
// the dequantize entry's (lib/dequantize_io.wgsl: the chunk's blocks, `out` as a
// float32 scratch, dparams), whose bindings the format's dequantize_part writes
// through, so that every format's own block decoder serves unchanged.

struct ErrorParams {
  // elements between the source window's start and the chunk's first element
  src_skip: u32,
  // source dtype: 0 float32, 1 float16, 2 bfloat16 (two per word)
  src_kind: u32,
  // invocations dispatched: the grid-stride loop's step, in blocks
  stride: u32,
  pad: u32,
}

// The source window as 16-byte vectors (src/kernels/dispatch.ts pads windows to them).
@group(1) @binding(1) var<storage, read> err_src: array<vec4<u32>>;
// One vec4 per workgroup: (sum d^2, sum x^2, max |d|, non-finite count) over finite d.
@group(1) @binding(2) var<storage, read_write> err_partials: array<vec4<f32>>;
@group(1) @binding(3) var<uniform> eparams: ErrorParams;

// Four float16 / bfloat16 values (bits in the low halves) as float32, exact:
// subnormals, ±Inf and NaN included. Branch-free, from the bits.
fn err_halves_to_f32x4(raw: vec4<u32>) -> vec4<f32> {
  if (eparams.src_kind == 2u) { return bitcast<vec4<f32>>(raw << vec4<u32>(16u)); }
  let sign = (raw & vec4<u32>(0x8000u)) << vec4<u32>(16u);
  let e = (raw >> vec4<u32>(10u)) & vec4<u32>(0x1fu);
  let m = raw & vec4<u32>(0x3ffu);
  let normal = sign | ((e + vec4<u32>(112u)) << vec4<u32>(23u)) | (m << vec4<u32>(13u));
  let special = sign | vec4<u32>(0x7f800000u) | (m << vec4<u32>(13u));
  let small = sign | bitcast<vec4<u32>>(vec4<f32>(m) * 5.9604644775390625e-8);
  return bitcast<vec4<f32>>(select(select(normal, special, e == vec4<u32>(31u)), small, e == vec4<u32>(0u)));
}

// Raw bits of window element g (float32 bits, or a half in the low 16 bits).
fn err_src_raw(g: u32) -> u32 {
  if (eparams.src_kind == 0u) { return err_src[g >> 2u][g & 3u]; }
  let w = g >> 1u;
  return (err_src[w >> 2u][w & 3u] >> ((g & 1u) * 16u)) & 0xffffu;
}

// Elements i .. i + 3 of the chunk's source (i a multiple of 4), as float32: one
// vector load where the window's data is vector-aligned, one by one otherwise (a view).
fn err_src4(i: u32) -> vec4<f32> {
  let g = eparams.src_skip + i;
  var raw: vec4<u32>;
  if ((g & 3u) == 0u) {
    if (eparams.src_kind == 0u) { return bitcast<vec4<f32>>(err_src[g >> 2u]); }
    let v = err_src[g >> 3u];
    let h = select(v.xy, v.zw, (g & 4u) != 0u);
    raw = vec4<u32>(h.x & 0xffffu, h.x >> 16u, h.y & 0xffffu, h.y >> 16u);
  } else {
    raw = vec4<u32>(err_src_raw(g), err_src_raw(g + 1u), err_src_raw(g + 2u), err_src_raw(g + 3u));
    if (eparams.src_kind == 0u) { return bitcast<vec4<f32>>(raw); }
  }
  return err_halves_to_f32x4(raw);
}
