// Error of a dequantized chunk against its source, reduced per workgroup:
// partials[w] = (sum (approx - src)^2, sum src^2, max |approx - src|, count of
// non-finite differences), the sums over finite differences only.
// Run by src/kernels/quant-error.ts, which sums the partials on the host in
// float64. src holds float32 / float16 / bfloat16 elements (SRC_KIND 0 / 1 / 2)
// as 32-bit words; approx is float32.

//#include lib/half.wgsl

override SRC_KIND: u32 = 0u;

struct Params {
  // elements in this chunk
  n: u32,
  // elements between the source window's start and the chunk's first element
  src_skip: u32,
  // workgroups dispatched (the grid-stride loop's step is groups * 256)
  groups: u32,
  pad: u32,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read> approx: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> params: Params;

var<workgroup> acc: array<vec4<f32>, 256>;

fn load_src(i: u32) -> f32 {
  if (SRC_KIND == 0u) { return bitcast<f32>(src[i]); }
  let bits = (src[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu;
  if (SRC_KIND == 1u) { return f16_bits_to_f32(bits); }
  return bf16_bits_to_f32(bits);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  var err2 = 0.0;
  var ref2 = 0.0;
  var worst = 0.0;
  var bad = 0.0;
  let stride = params.groups * 256u;
  for (var i = wid.x * 256u + lid; i < params.n; i = i + stride) {
    let x = load_src(params.src_skip + i);
    let d = approx[i] - x;
    // WGSL may assume floats are finite: test the exponent bits, not d != d
    if ((bitcast<u32>(d) & 0x7f800000u) == 0x7f800000u) {
      bad = bad + 1.0;
    } else {
      err2 = err2 + d * d;
      ref2 = ref2 + x * x;
      worst = max(worst, abs(d));
    }
  }
  acc[lid] = vec4<f32>(err2, ref2, worst, bad);
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      let a = acc[lid];
      let b = acc[lid + s];
      acc[lid] = vec4<f32>(a.x + b.x, a.y + b.y, max(a.z, b.z), a.w + b.w);
    }
    workgroupBarrier();
  }
  if (lid == 0u) { partials[wid.x] = acc[0]; }
}
