// The fused kernels of the transformer forward pass (src/model/): RMSNorm with
// its weight, rotary embedding in place, causal grouped-query attention with an
// online softmax (sliding windows, soft-capped scores), and the gated MLP
// activations SwiGLU / GeGLU (shaders/transformer/*.wgsl). Every operand
// is a contiguous float32 array bound whole; the forward pass checks sizes
// against the device's binding limit before it starts.

import { LimitError, ShapeError } from '../errors.js';
import { WgArray } from '../runtime/array.js';
import type { Device } from '../runtime/device.js';
import { dummyBuffer, grid, WORKGROUP_SIZE } from './dispatch.js';
import { bindGroup, pipeline } from './shader.js';

function requireF32(a: WgArray, what: string): void {
  if (a.dtype !== 'float32' || !a.isContiguous || a.offset !== 0) {
    throw new ShapeError(`${what}: expected a contiguous float32 array starting at its buffer's start, got ${a.describe()}`);
  }
}

function requireBinding(device: Device, a: WgArray, what: string): void {
  if (a.nbytes > device.limits.maxStorageBufferBindingSize) {
    throw new LimitError(`${what}: ${a.describe()} takes ${a.nbytes} bytes, more than one storage binding may cover (${device.limits.maxStorageBufferBindingSize})`);
  }
}

/** Uniform words: u32 values, with floats given as { f32: x }. */
function words(values: (number | { f32: number })[]): Uint32Array {
  const u = new Uint32Array(values.length);
  const f = new Float32Array(u.buffer);
  values.forEach((v, i) => {
    if (typeof v === 'number') u[i] = v;
    else f[i] = v.f32;
  });
  return u;
}

/** y = x / sqrt(mean(x^2) + eps) * w over the last dimension of x ([rows, cols]). */
export function rmsNorm(x: WgArray, w: WgArray, eps: number): WgArray<'float32'> {
  const device = x.device;
  requireF32(x, 'rmsNorm');
  requireF32(w, 'rmsNorm weight');
  const cols = x.shape[x.shape.length - 1];
  if (w.size !== cols) throw new ShapeError(`rmsNorm: weight ${w.describe()} does not match rows of ${cols}`);
  const rows = x.size / cols;
  requireBinding(device, x, 'rmsNorm');
  const y = WgArray.empty(device, x.shape, 'float32');
  const pipe = pipeline(device, 'transformer/rms_norm.wgsl');
  device.dispatch(pipe, [bindGroup(device, pipe, [x.buffer, w.buffer, y.buffer, device.uniform(words([rows, cols, { f32: eps }]))])], grid(device, rows));
  return y;
}

export interface RopeSettings {
  nRot: number;
  neox: boolean;
  freqBase: number;
  freqScale: number;
  /** Per-pair divisors of the frequency (rope_freqs.weight, Llama 3.1 scaling; Phi-3's longrope factors). */
  factors?: WgArray;
  /** cos/sin scale (ggml's attn_factor / mscale; default 1). */
  attnFactor?: number;
  /** YaRN: extrapolation mix (0 = none) and the correction dimensions of its ramp (ggml_rope_yarn_corr_dims). */
  extFactor?: number;
  corrDims?: [number, number];
}

/** Rotates x ([tokens, heads, headDim]) in place for positions pos0, pos0 + 1, ... */
export function ropeInPlace(x: WgArray, settings: RopeSettings, pos0 = 0): void {
  const device = x.device;
  requireF32(x, 'rope');
  requireBinding(device, x, 'rope');
  const [tokens, heads, headDim] = x.shape;
  if (x.shape.length !== 3 || settings.nRot > headDim || settings.nRot % 2 !== 0) {
    throw new ShapeError(`rope: expected [tokens, heads, head_dim] with an even rotated width <= head_dim, got ${x.describe()} and ${settings.nRot}`);
  }
  const pairs = tokens * heads * (settings.nRot / 2);
  if (pairs === 0) return;
  if (settings.factors) requireF32(settings.factors, 'rope factors');
  const [corr0, corr1] = settings.corrDims ?? [0, 0];
  const params = words([
    pairs, heads, headDim, settings.nRot, settings.neox ? 1 : 0, pos0, settings.factors ? 1 : 0,
    { f32: settings.freqBase }, { f32: settings.freqScale }, { f32: settings.attnFactor ?? 1 }, { f32: settings.extFactor ?? 0 }, { f32: corr0 }, { f32: corr1 },
  ]);
  const pipe = pipeline(device, 'transformer/rope.wgsl');
  // without factors the binding still needs a buffer (never read then); x's own cannot be bound twice
  const factors = settings.factors ? settings.factors.buffer : dummyBuffer(device, 'read');
  device.dispatch(pipe, [bindGroup(device, pipe, [x.buffer, factors, device.uniform(params)])], grid(device, Math.ceil(pairs / WORKGROUP_SIZE)));
}

/** Largest head dimension the attention kernel handles (two dims per invocation of 128). */
export const MAX_HEAD_DIM = 256;

export interface AttentionOptions {
  /** Sliding window: a query at t sees the keys s with t - s < window (0: all). */
  window?: number;
  /** Scores soft-capped to cap * tanh(score / cap) before the softmax (0: none). */
  softcap?: number;
}

/** Causal attention: q [tokens, heads, dim], k and v [tokens, kvHeads, dim] -> [tokens, heads, dim]. */
export function causalAttention(q: WgArray, k: WgArray, v: WgArray, scale: number, options: AttentionOptions = {}): WgArray<'float32'> {
  const device = q.device;
  for (const [a, what] of [[q, 'q'], [k, 'k'], [v, 'v']] as const) {
    requireF32(a, `attention ${what}`);
    requireBinding(device, a, `attention ${what}`);
  }
  const [tokens, heads, dim] = q.shape;
  const kvHeads = k.shape[1];
  if (dim > MAX_HEAD_DIM) throw new LimitError(`attention: head dimension ${dim} is more than the kernel's ${MAX_HEAD_DIM}`);
  if (heads % kvHeads !== 0 || k.shape[0] !== tokens || k.shape[2] !== dim || v.shape.join() !== k.shape.join()) {
    throw new ShapeError(`attention: q ${q.describe()}, k ${k.describe()} and v ${v.describe()} do not fit grouped-query attention`);
  }
  const o = WgArray.empty(device, q.shape, 'float32');
  if (tokens === 0) return o;
  const window = options.window ?? 0;
  const softcap = options.softcap ?? 0;
  // the windowed and soft-capped variants are pipelines of their own
  const variant = { WINDOWED: window > 0 ? 1 : 0, SOFTCAPPED: softcap > 0 ? 1 : 0 };
  // the last word: attention_subgroup.wgsl's keys per softmax block (at most 8; attention.wgsl does not read it)
  const params = device.uniform(words([tokens, heads, kvHeads, dim, { f32: scale }, window, { f32: softcap }, 8]));
  // attention_subgroup.wgsl broadcasts from 8 lanes: subgroups must have at least 8 (lavapipe 8, Apple 32)
  const subgroupMin = (device.adapter.info as { subgroupMinSize?: number }).subgroupMinSize ?? 0;
  if (device.features.subgroups && subgroupMin >= 8 && !plainAttention && dim % 4 === 0) {
    // one invocation per query, SUBGROUP_QUERIES of one head per workgroup; one pipeline per head dimension
    const pipe = pipeline(device, 'transformer/attention_subgroup.wgsl', { ...variant, HD4: dim / 4 });
    const groups = Math.ceil(tokens / SUBGROUP_QUERIES);
    if (groups > device.limits.maxComputeWorkgroupsPerDimension || heads > device.limits.maxComputeWorkgroupsPerDimension) {
      throw new LimitError(`attention: ${tokens} tokens x ${heads} heads exceed this device's dispatch limit`);
    }
    device.dispatch(pipe, [bindGroup(device, pipe, [q.buffer, k.buffer, v.buffer, o.buffer, params])], [groups, heads]);
    return o;
  }
  const pipe = pipeline(device, 'transformer/attention.wgsl', variant);
  device.dispatch(pipe, [bindGroup(device, pipe, [q.buffer, k.buffer, v.buffer, o.buffer, params])], grid(device, tokens * heads));
  return o;
}

/** Queries per workgroup of attention_subgroup.wgsl (its WG). */
const SUBGROUP_QUERIES = 64;

let plainAttention = false;
/** Tests and benches: the attention kernel without subgroup operations (attention.wgsl) even where the adapter offers them. */
export function setPlainAttention(plain: boolean): void {
  plainAttention = plain;
}

/** silu(g) * u, element-wise (SwiGLU's gate: gatedActivation's silu form). */
export function swiglu(g: WgArray, u: WgArray): WgArray<'float32'> {
  return gatedActivation('silu', g, u);
}

/**
 * A gated MLP's activation, act(gate) * up element-wise: act = silu or GELU
 * (tanh approximation). With one operand ([rows, 2 * cols]) gate and up are
 * the two halves of each row (Phi-3's fused ffn_up): the result is [rows, cols].
 */
export function gatedActivation(activation: 'silu' | 'gelu', gate: WgArray, up?: WgArray): WgArray<'float32'> {
  const device = gate.device;
  requireF32(gate, 'gated activation gate');
  requireBinding(device, gate, 'gated activation');
  let shape: number[];
  if (up) {
    requireF32(up, 'gated activation up');
    if (gate.shape.join() !== up.shape.join()) throw new ShapeError(`gated activation: gate ${gate.describe()} and up ${up.describe()} differ in shape`);
    shape = [...gate.shape];
  } else {
    const last = gate.shape[gate.shape.length - 1];
    if (last % 2 !== 0) throw new ShapeError(`gated activation: a fused gate/up ${gate.describe()} needs an even last dimension`);
    shape = [...gate.shape.slice(0, -1), last / 2];
  }
  const y = WgArray.empty(device, shape, 'float32');
  if (y.size === 0) return y;
  const cols = shape[shape.length - 1];
  const pipe = pipeline(device, 'transformer/glu.wgsl');
  // a fused gate/up is bound twice, read-only both times
  const params = device.uniform(words([y.size, cols, up ? 0 : 1, activation === 'gelu' ? 1 : 0]));
  device.dispatch(pipe, [bindGroup(device, pipe, [gate.buffer, (up ?? gate).buffer, y.buffer, params])], grid(device, Math.ceil(y.size / WORKGROUP_SIZE)));
  return y;
}
