// The report's error sums written by a format's own quantize dispatch (descriptor
// quantize.errorSums: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the K-quants), with no second
// pass over the source: each invocation compares its blocks' dequantized values, exactly
// as the format's dequantize_part computes them (from the stored float16 scales and
// levels), with the source still in registers, and each workgroup writes one vec4
// (sum d^2, sum x^2, max |d|, non-finite count) over finite d, the sums of
// quant_entry.wgsl's quant_error entry point.
// src/kernels/quant-error.ts (quantizeMeasured) reads them back; without a
// measurement the binding is a 16-byte placeholder, and the kernel skips the sums
// (error_sums_wanted: a uniform branch, which lavapipe takes as a real jump; the
// sums and their barrier made a plain Q4_0 / Q4_1 quantize ~50% slower).
// Binding 6 follows the importance weights (3-4) and the legacy weighted entry
// points' row sigma2 (5), so every entry point, weighted or not, measures there.

@group(0) @binding(6) var<storage, read_write> quantize_err: array<vec4<f32>>;
var<workgroup> quantize_err_acc: array<vec4<f32>, QUANTIZE_WORKGROUP_SIZE>;

// Whether this dispatch measures: quantizeMeasured binds one entry per workgroup, the
// placeholder one entry in all. (A one-workgroup dispatch with the placeholder writes
// its sums there, unread.) Uniform: the binding's length and the chunk's block count.
fn error_sums_wanted() -> bool {
  return arrayLength(&quantize_err) * (QUANTIZE_WORKGROUP_SIZE * QUANTIZE_BLOCKS_PER_INVOCATION) >= qparams.n_blocks;
}

// Adds x's four elements' error against dq to s (see quant_entry.wgsl's quant_error).
fn add_error4(s: ptr<function, vec4<f32>>, x: vec4<f32>, dq: vec4<f32>) {
  if (!error_sums_wanted()) { return; }
  let d = dq - x;
  // WGSL may assume floats are finite: test the exponent bits, not d != d
  let nonfinite = (bitcast<vec4<u32>>(d) & vec4<u32>(0x7f800000u)) == vec4<u32>(0x7f800000u);
  let dz = select(d, vec4<f32>(0.0), nonfinite);
  let xz = select(x, vec4<f32>(0.0), nonfinite);
  let e2 = dz * dz;
  let r2 = xz * xz;
  let w = abs(dz);
  let bad = select(vec4<f32>(0.0), vec4<f32>(1.0), nonfinite);
  *s = vec4<f32>((*s).x + ((e2.x + e2.y) + (e2.z + e2.w)), (*s).y + ((r2.x + r2.y) + (r2.z + r2.w)),
                 max((*s).z, max(max(w.x, w.y), max(w.z, w.w))), (*s).w + ((bad.x + bad.y) + (bad.z + bad.w)));
}

// The sums of a block written invalid (non-finite input: a NaN scale): all its values decode to NaN.
fn add_invalid_block(s: ptr<function, vec4<f32>>) {
  *s = *s + vec4<f32>(0.0, 0.0, 0.0, f32(QK));
}

// Reduces the workgroup's sums into quantize_err[its index] (`inv`: the invocation's
// index in the dispatch). Every invocation of the workgroup must call it (a barrier):
// control flow stays uniform up to here.
fn write_error_sums(inv: u32, s: vec4<f32>) {
  if (!error_sums_wanted()) { return; }
  let lid = inv % QUANTIZE_WORKGROUP_SIZE;
  quantize_err_acc[lid] = s;
  workgroupBarrier();
  if (lid == 0u) {
    var t = vec4<f32>(0.0);
    for (var k = 0u; k < QUANTIZE_WORKGROUP_SIZE; k = k + 1u) {
      let a = quantize_err_acc[k];
      t = vec4<f32>(t.x + a.x, t.y + a.y, max(t.z, a.z), t.w + a.w);
    }
    quantize_err[inv / QUANTIZE_WORKGROUP_SIZE] = t;
  }
}

// For kernels that measure deep inside their block loops (the K-quants): the
// invocation's sums in a private accumulator, written by write_error_sums(inv, error_sums).
var<private> error_sums: vec4<f32>;

fn accumulate_error4(x: vec4<f32>, dq: vec4<f32>) {
  var s = error_sums;
  add_error4(&s, x, dq);
  error_sums = s;
}
