// The row-wide sigma2 of ggml's Q4_0/Q4_1/Q5_0/Q5_1 importance-matrix paths
// (quantize_row_q4_0_impl ..): sum x^2 / n_per_row per row, float32, summed
// in element order. One invocation per row; read by lib/legacy_weighted.wgsl.
// Dispatched by src/kernels/quantize.ts (qparams: n_blocks = rows of the
// chunk, pad = row length, a multiple of 32; dst: one float32 per row).
// The row is read eight elements at a time through lib/legacy_quant.wgsl's vector
// binding: on lavapipe every load is a per-lane loop, so one vec4 load costs
// about what one u32 load does (element by element, this pass took a tenth of
// the Q4_0 weighted quantize).

//#include lib/quantize_io.wgsl
//#include lib/dequantize_io.wgsl
//#include lib/legacy_quant.wgsl

// Elements g .. g + 7 of the window (g a multiple of 8 from the row's start) as float32.
fn sigma2_x8(g: u32) -> array<vec4<f32>, 2> {
  if (src_kind() == 0u && (qparams.src_skip & 3u) == 0u) {
    return array<vec4<f32>, 2>(bitcast<vec4<f32>>(src4[g >> 2u]), bitcast<vec4<f32>>(src4[(g >> 2u) + 1u]));
  }
  if (src_kind() != 0u && (qparams.src_skip & 7u) == 0u) {
    let v = src4[g >> 3u];
    return array<vec4<f32>, 2>(raw_to_f32x4(halves_raw4(v.xy)), raw_to_f32x4(halves_raw4(v.zw)));
  }
  // a view that starts mid-vector
  return array<vec4<f32>, 2>(raw_to_f32x4(src_raw4(g)), raw_to_f32x4(src_raw4(g + 4u)));
}

// s + x0^2 + x1^2 + x2^2 + x3^2, in that order.
fn sigma2_add4(s: f32, x: vec4<f32>) -> f32 {
  let q = x * x;
  return (((s + q.x) + q.y) + q.z) + q.w;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = workgroup_index(wid, nwg) * 64u + lid;
  if (row >= qparams.n_blocks) { return; }
  let n = qparams.pad;
  let g0 = qparams.src_skip + row * n;
  var s = 0.0;
  for (var j = 0u; j < n; j = j + 8u) {
    let x = sigma2_x8(g0 + j);
    s = sigma2_add4(s, x[0]);
    s = sigma2_add4(s, x[1]);
  }
  dst[row] = bitcast<u32>(s / f32(n));
}
