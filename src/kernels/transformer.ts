// The fused kernels of the transformer forward pass (src/model/): RMSNorm with
// its weight, rotary embedding in place, causal grouped-query attention with an
// online softmax, and SwiGLU's gate (shaders/transformer/*.wgsl). Every operand
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
  /** Per-pair divisors of the frequency (rope_freqs.weight, Llama 3.1 scaling). */
  factors?: WgArray;
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
  const params = words([pairs, heads, headDim, settings.nRot, settings.neox ? 1 : 0, pos0, settings.factors ? 1 : 0, { f32: settings.freqBase }, { f32: settings.freqScale }]);
  const pipe = pipeline(device, 'transformer/rope.wgsl');
  // without factors the binding still needs a buffer (never read then); x's own cannot be bound twice
  const factors = settings.factors ? settings.factors.buffer : dummyBuffer(device, 'read');
  device.dispatch(pipe, [bindGroup(device, pipe, [x.buffer, factors, device.uniform(params)])], grid(device, Math.ceil(pairs / WORKGROUP_SIZE)));
}

/** Largest head dimension the attention kernel handles (two dims per invocation of 128). */
export const MAX_HEAD_DIM = 256;

/** Causal attention: q [tokens, heads, dim], k and v [tokens, kvHeads, dim] -> [tokens, heads, dim]. */
export function causalAttention(q: WgArray, k: WgArray, v: WgArray, scale: number): WgArray<'float32'> {
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
  const pipe = pipeline(device, 'transformer/attention.wgsl');
  const params = device.uniform(words([tokens, heads, kvHeads, dim, { f32: scale }]));
  device.dispatch(pipe, [bindGroup(device, pipe, [q.buffer, k.buffer, v.buffer, o.buffer, params])], grid(device, tokens * heads));
  return o;
}

/** silu(g) * u, element-wise. */
export function swiglu(g: WgArray, u: WgArray): WgArray<'float32'> {
  const device = g.device;
  requireF32(g, 'swiglu gate');
  requireF32(u, 'swiglu up');
  requireBinding(device, g, 'swiglu');
  if (g.shape.join() !== u.shape.join()) throw new ShapeError(`swiglu: gate ${g.describe()} and up ${u.describe()} differ in shape`);
  const y = WgArray.empty(device, g.shape, 'float32');
  if (g.size === 0) return y;
  const pipe = pipeline(device, 'transformer/swiglu.wgsl');
  device.dispatch(pipe, [bindGroup(device, pipe, [g.buffer, u.buffer, y.buffer, device.uniform([g.size])])], grid(device, Math.ceil(g.size / WORKGROUP_SIZE)));
  return y;
}
