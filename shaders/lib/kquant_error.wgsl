// The report's error sums inside the K-quant quantize dispatches (descriptor
// quantize.errorSums; src/kernels/quant-error.ts quantizeMeasured), as
// shaders/quant/q8_0.wgsl has them: each invocation adds, for every value it
// quantizes, the difference between the value its stored block decodes to
// (computed from the block's final, float16-rounded scales and stored levels
// exactly as the format's dequantize_part computes it) and the source value;
// each workgroup writes one vec4 (sum d^2, sum x^2, max |d|, non-finite count)
// over finite d, the sums of quant_entry.wgsl's quant_error entry point.
//
// The sums' binding follows the dispatch's other bindings (src/kernels/quantize.ts):
// 3 for an entry point that reads 0-2, 5 for one that also reads the importance
// weights at 3-4. Without a measurement it is a 16-byte placeholder (the writes clamp to it).

@group(0) @binding(3) var<storage, read_write> kq_err3: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> kq_err5: array<vec4<f32>>;
var<workgroup> kq_err_acc: array<vec4<f32>, QUANTIZE_WORKGROUP_SIZE>;

// This invocation's sums so far.
var<private> kq_err: vec4<f32>;

// Adds four values' error: x the source, dq what the stored block decodes them to.
fn kq_add_error4(x: vec4<f32>, dq: vec4<f32>) {
  let d = dq - x;
  // WGSL may assume floats are finite: test the exponent bits, not d != d
  let nonfinite = (bitcast<vec4<u32>>(d) & vec4<u32>(0x7f800000u)) == vec4<u32>(0x7f800000u);
  let dz = select(d, vec4<f32>(0.0), nonfinite);
  let xz = select(x, vec4<f32>(0.0), nonfinite);
  let e2 = dz * dz;
  let r2 = xz * xz;
  let w = abs(dz);
  let bad = select(vec4<f32>(0.0), vec4<f32>(1.0), nonfinite);
  kq_err = vec4<f32>(kq_err.x + ((e2.x + e2.y) + (e2.z + e2.w)), kq_err.y + ((r2.x + r2.y) + (r2.z + r2.w)),
                     max(kq_err.z, max(max(w.x, w.y), max(w.z, w.w))), kq_err.w + ((bad.x + bad.y) + (bad.z + bad.w)));
}

// The workgroup's sums of kq_err, returned to invocation 0 (others get zeros).
// Call in uniform control flow: every invocation of the workgroup, once.
fn kq_error_reduce(lid: u32) -> vec4<f32> {
  kq_err_acc[lid] = kq_err;
  workgroupBarrier();
  var t = vec4<f32>(0.0);
  if (lid == 0u) {
    for (var k = 0u; k < QUANTIZE_WORKGROUP_SIZE; k = k + 1u) {
      let a = kq_err_acc[k];
      t = vec4<f32>(t.x + a.x, t.y + a.y, max(t.z, a.z), t.w + a.w);
    }
  }
  return t;
}
