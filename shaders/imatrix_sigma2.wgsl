// The row-wide sigma2 of ggml's Q4_0/Q4_1/Q5_0/Q5_1 importance-matrix paths
// (quantize_row_q4_0_impl ..): sum x^2 / n_per_row per row, float32, summed
// in element order. One invocation per row; read by lib/legacy_weighted.wgsl.
// Dispatched by src/kernels/quantize.ts (qparams: n_blocks = rows of the
// chunk, pad = row length; dst: one float32 per row).

//#include lib/quantize_io.wgsl

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = workgroup_index(wid, nwg) * 64u + lid;
  if (row >= qparams.n_blocks) { return; }
  let n = qparams.pad;
  var s = 0.0;
  for (var j = 0u; j < n; j = j + 1u) {
    let x = load_x(row * n + j);
    let x2 = x * x;
    s = s + x2;
  }
  dst[row] = bitcast<u32>(s / f32(n));
}
