// Rotary position embedding in place on [tokens, heads, head_dim] (ggml_rope_ext):
// pair (a, b) of dimension i rotates by theta_extrap = (pos0 + t) *
// base^(-2i / n_rot) / freq_factor[i], interpolated to freq_scale * theta_extrap;
// with YaRN (ext_factor != 0) the two are mixed by a ramp over the correction
// dimensions [corr0, corr1] and the magnitude grows by 1 + 0.1 ln(1/freq_scale)
// (ggml's rope_yarn). cos and sin are scaled by attn_factor (mscale).
// NORMAL mode pairs neighbours (2i, 2i+1) (llama: convert permuted q/k for it);
// NEOX mode pairs (i, i + n_rot/2) (qwen2). Dimensions past n_rot stay as they are.
// One invocation per pair. Run by src/kernels/transformer.ts.

//#include lib/grid.wgsl

struct Params {
  pairs: u32,
  heads: u32,
  head_dim: u32,
  n_rot: u32,
  neox: u32,
  pos0: u32,
  has_factors: u32,
  freq_base: f32,
  freq_scale: f32,
  attn_factor: f32,
  ext_factor: f32,
  corr0: f32,
  corr1: f32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> factors: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let p = linear_index(wid, nwg, lid);
  if (p >= params.pairs) { return; }
  let half_rot = params.n_rot / 2u;
  let i = p % half_rot;
  let row = p / half_rot;              // token * heads + head
  let t = row / params.heads;
  let base = row * params.head_dim;
  var theta_extrap = f32(params.pos0 + t) * pow(params.freq_base, -2.0 * f32(i) / f32(params.n_rot));
  if (params.has_factors != 0u) { theta_extrap = theta_extrap / factors[i]; }
  var theta = params.freq_scale * theta_extrap;
  var mscale = params.attn_factor;
  if (params.ext_factor != 0.0) {
    let y = (f32(i) - params.corr0) / max(0.001, params.corr1 - params.corr0);
    let ramp_mix = (1.0 - min(1.0, max(0.0, y))) * params.ext_factor;
    theta = theta * (1.0 - ramp_mix) + theta_extrap * ramp_mix;
    mscale = mscale * (1.0 + 0.1 * log(1.0 / params.freq_scale));
  }
  let c = cos(theta) * mscale;
  let s = sin(theta) * mscale;
  var ia = base + 2u * i;
  var ib = ia + 1u;
  if (params.neox != 0u) {
    ia = base + i;
    ib = base + i + half_rot;
  }
  let a = x[ia];
  let b = x[ib];
  x[ia] = a * c - b * s;
  x[ib] = a * s + b * c;
}
