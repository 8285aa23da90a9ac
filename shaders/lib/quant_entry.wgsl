// The `quantize` and `dequantize` entry points every format shares
// (shaders/quant/<type>.wgsl includes this file and supplies only its block
// functions), dispatched by src/kernels/quantize.ts. The dispatch geometry
// comes from the format's descriptor (src/quant/formats/<type>.ts) as override
// constants; QK, BLOCK_BYTES and BLOCK_WORDS (when whole) from the ggml type
// table, generated (src/kernels/wgsl-gen.ts). A format includes, beside this
// file, the binding of its input: lib/quantize_io.wgsl (u32 words) or
// lib/kquant_io.wgsl (vec4 loads); both define qparams and workgroup_index.
//
// The third entry point, `quant_error`, measures a quantized tensor against its
// source in one pass (the report's RMSE / SNR / max error): each invocation
// decodes whole blocks with the format's own dequantize_part into the float32
// scratch `out` and at once reads them back (its own writes, still in cache)
// against the source, so formats supply nothing for it.

//#include gen/block_geometry.wgsl
//#include lib/dequantize_io.wgsl
//#include lib/quant_error_io.wgsl
//#include gen/dequantized_read.wgsl

override QUANTIZE_WORKGROUP_SIZE: u32;
override QUANTIZE_BLOCKS_PER_INVOCATION: u32;
override DEQUANTIZE_WORKGROUP_SIZE: u32;
override DEQUANTIZE_INVOCATIONS_PER_BLOCK: u32;

// Invocation `inv` writes blocks first .. first + QUANTIZE_BLOCKS_PER_INVOCATION - 1.
// The format's quantize_blocks checks them against qparams.n_blocks itself: some
// keep control flow uniform past the end (see q6_K.wgsl).
@compute @workgroup_size(QUANTIZE_WORKGROUP_SIZE)
fn quantize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let inv = workgroup_index(wid, nwg) * QUANTIZE_WORKGROUP_SIZE + lid;
  quantize_blocks(inv, inv * QUANTIZE_BLOCKS_PER_INVOCATION);
}

// DEQUANTIZE_INVOCATIONS_PER_BLOCK invocations decode one block, each its part.
@compute @workgroup_size(DEQUANTIZE_WORKGROUP_SIZE)
fn dequantize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let inv = workgroup_index(wid, nwg) * DEQUANTIZE_WORKGROUP_SIZE + lid;
  let b = inv / DEQUANTIZE_INVOCATIONS_PER_BLOCK;
  if (b >= dparams.n_blocks) { return; }
  dequantize_part(b, inv % DEQUANTIZE_INVOCATIONS_PER_BLOCK);
}

const QUANT_ERROR_WORKGROUP_SIZE: u32 = 64u;
var<workgroup> err_acc: array<vec4<f32>, QUANT_ERROR_WORKGROUP_SIZE>;

// Error sums of the chunk's blocks against the source: invocation g takes blocks
// g, g + stride, ... whole (all DEQUANTIZE_INVOCATIONS_PER_BLOCK parts of each), so
// it reads back only what it wrote itself and needs no barrier; the workgroup's sums
// are reduced once, into err_partials[workgroup] (summed on the host in float64).
@compute @workgroup_size(QUANT_ERROR_WORKGROUP_SIZE)
fn quant_error(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  var err2 = vec4<f32>(0.0);
  var ref2 = vec4<f32>(0.0);
  var worst = vec4<f32>(0.0);
  var bad = vec4<u32>(0u);
  for (var b = wid.x * QUANT_ERROR_WORKGROUP_SIZE + lid; b < dparams.n_blocks; b = b + eparams.stride) {
    for (var p = 0u; p < DEQUANTIZE_INVOCATIONS_PER_BLOCK; p = p + 1u) { dequantize_part(b, p); }
    for (var k = 0u; k < QK / 4u; k = k + 1u) {
      let i = b * QK + 4u * k;
      let x = err_src4(i);
      let d = dequantized4(i >> 2u) - x;
      // WGSL may assume floats are finite: test the exponent bits, not d != d
      let nonfinite = (bitcast<vec4<u32>>(d) & vec4<u32>(0x7f800000u)) == vec4<u32>(0x7f800000u);
      let dz = select(d, vec4<f32>(0.0), nonfinite);
      let xz = select(x, vec4<f32>(0.0), nonfinite);
      err2 = err2 + dz * dz;
      ref2 = ref2 + xz * xz;
      worst = max(worst, abs(dz));
      bad = bad + select(vec4<u32>(0u), vec4<u32>(1u), nonfinite);
    }
  }
  let w = max(max(worst.x, worst.y), max(worst.z, worst.w));
  err_acc[lid] = vec4<f32>(err2.x + err2.y + err2.z + err2.w, ref2.x + ref2.y + ref2.z + ref2.w, w, f32(bad.x + bad.y + bad.z + bad.w));
  workgroupBarrier();
  for (var s = QUANT_ERROR_WORKGROUP_SIZE / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      let a = err_acc[lid];
      let c = err_acc[lid + s];
      err_acc[lid] = vec4<f32>(a.x + c.x, a.y + c.y, max(a.z, c.z), a.w + c.w);
    }
    workgroupBarrier();
  }
  if (lid == 0u) { err_partials[wid.x] = err_acc[0]; }
}
