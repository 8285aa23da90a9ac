// llama-quantize's presets (file types) and its per-tensor choice of ggml type
// (llama.cpp src/llama-quant.cpp: tensor_allows_quantization,
// llama_tensor_get_type_impl, tensor_type_fallback, tensor_requires_imatrix),
// so that `wgarray quantize IN OUT Q4_K_M` makes the same mix of types
// llama-quantize makes. All of llama-quantize's presets are described
// (LLAMA_QUANT_PRESETS); wgarray makes those whose every possible type is in
// the registry (quantPresets()), so a preset appears when its formats do.

import { ArgumentError } from '../errors.js';
import { ggmlType, ggmlTypeByName, type GGMLType } from '../runtime/ggml-types.js';
import { PLAIN_FLOAT_TYPES, QUANT_FORMATS } from './registry.js';

export interface QuantPreset {
  /** llama-quantize's name: 'Q4_K_M'. */
  readonly name: string;
  /** llama.cpp's llama_ftype, written as general.file_type. */
  readonly ftype: number;
  /** The type most tensors get; null for COPY (tensors keep their types). */
  readonly defaultType: GGMLType | null;
  readonly description: string;
}

const p = (name: string, ftype: number, type: string | null, description: string): QuantPreset =>
  Object.freeze({ name, ftype, defaultType: type === null ? null : ggmlType(type), description });

/** llama_ftype values (llama.h). */
export const FTYPE = {
  ALL_F32: 0,
  MOSTLY_F16: 1,
  MOSTLY_Q4_0: 2,
  MOSTLY_Q4_1: 3,
  MOSTLY_Q8_0: 7,
  MOSTLY_Q5_0: 8,
  MOSTLY_Q5_1: 9,
  MOSTLY_Q2_K: 10,
  MOSTLY_Q3_K_S: 11,
  MOSTLY_Q3_K_M: 12,
  MOSTLY_Q3_K_L: 13,
  MOSTLY_Q4_K_S: 14,
  MOSTLY_Q4_K_M: 15,
  MOSTLY_Q5_K_S: 16,
  MOSTLY_Q5_K_M: 17,
  MOSTLY_Q6_K: 18,
  MOSTLY_IQ2_XXS: 19,
  MOSTLY_IQ2_XS: 20,
  MOSTLY_Q2_K_S: 21,
  MOSTLY_IQ3_XS: 22,
  MOSTLY_IQ3_XXS: 23,
  MOSTLY_IQ1_S: 24,
  MOSTLY_IQ4_NL: 25,
  MOSTLY_IQ3_S: 26,
  MOSTLY_IQ3_M: 27,
  MOSTLY_IQ2_S: 28,
  MOSTLY_IQ2_M: 29,
  MOSTLY_IQ4_XS: 30,
  MOSTLY_IQ1_M: 31,
  MOSTLY_BF16: 32,
  MOSTLY_TQ1_0: 36,
  MOSTLY_TQ2_0: 37,
  MOSTLY_MXFP4_MOE: 38,
} as const;

/**
 * llama-quantize's presets, in its order and with its descriptions (tools/quantize
 * QUANT_OPTIONS), each with the ftype and default type llama_ftype_get_default_type gives it.
 * wgarray makes those whose every possible type is implemented: quantPresets().
 */
export const LLAMA_QUANT_PRESETS: readonly QuantPreset[] = Object.freeze([
  p('Q4_0', FTYPE.MOSTLY_Q4_0, 'q4_0', '4.34G, +0.4685 ppl @ Llama-3-8B'),
  p('Q4_1', FTYPE.MOSTLY_Q4_1, 'q4_1', '4.78G, +0.4511 ppl @ Llama-3-8B'),
  p('MXFP4_MOE', FTYPE.MOSTLY_MXFP4_MOE, 'mxfp4', 'MXFP4 for MoE expert tensors, Q8_0 for the rest'),
  p('Q5_0', FTYPE.MOSTLY_Q5_0, 'q5_0', '5.21G, +0.1316 ppl @ Llama-3-8B'),
  p('Q5_1', FTYPE.MOSTLY_Q5_1, 'q5_1', '5.65G, +0.1062 ppl @ Llama-3-8B'),
  p('IQ2_XXS', FTYPE.MOSTLY_IQ2_XXS, 'iq2_xxs', '2.06 bpw quantization'),
  p('IQ2_XS', FTYPE.MOSTLY_IQ2_XS, 'iq2_xs', '2.31 bpw quantization'),
  p('IQ2_S', FTYPE.MOSTLY_IQ2_S, 'iq2_xs', '2.5  bpw quantization'),
  p('IQ2_M', FTYPE.MOSTLY_IQ2_M, 'iq2_s', '2.7  bpw quantization'),
  p('IQ1_S', FTYPE.MOSTLY_IQ1_S, 'iq1_s', '1.56 bpw quantization'),
  p('IQ1_M', FTYPE.MOSTLY_IQ1_M, 'iq1_m', '1.75 bpw quantization'),
  p('TQ1_0', FTYPE.MOSTLY_TQ1_0, 'tq1_0', '1.69 bpw ternarization'),
  p('TQ2_0', FTYPE.MOSTLY_TQ2_0, 'tq2_0', '2.06 bpw ternarization'),
  p('Q2_K', FTYPE.MOSTLY_Q2_K, 'q2_K', '2.96G, +3.5199 ppl @ Llama-3-8B'),
  p('Q2_K_S', FTYPE.MOSTLY_Q2_K_S, 'q2_K', '2.96G, +3.1836 ppl @ Llama-3-8B'),
  p('IQ3_XXS', FTYPE.MOSTLY_IQ3_XXS, 'iq3_xxs', '3.06 bpw quantization'),
  p('IQ3_S', FTYPE.MOSTLY_IQ3_S, 'iq3_s', '3.44 bpw quantization'),
  p('IQ3_M', FTYPE.MOSTLY_IQ3_M, 'iq3_s', '3.66 bpw quantization mix'),
  p('IQ3_XS', FTYPE.MOSTLY_IQ3_XS, 'iq3_s', '3.3 bpw quantization'),
  p('Q3_K_S', FTYPE.MOSTLY_Q3_K_S, 'q3_K', '3.41G, +1.6321 ppl @ Llama-3-8B'),
  p('Q3_K_M', FTYPE.MOSTLY_Q3_K_M, 'q3_K', '3.74G, +0.6569 ppl @ Llama-3-8B'),
  p('Q3_K_L', FTYPE.MOSTLY_Q3_K_L, 'q3_K', '4.03G, +0.5562 ppl @ Llama-3-8B'),
  p('IQ4_NL', FTYPE.MOSTLY_IQ4_NL, 'iq4_nl', '4.50 bpw non-linear quantization'),
  p('IQ4_XS', FTYPE.MOSTLY_IQ4_XS, 'iq4_xs', '4.25 bpw non-linear quantization'),
  p('Q4_K_S', FTYPE.MOSTLY_Q4_K_S, 'q4_K', '4.37G, +0.2689 ppl @ Llama-3-8B'),
  p('Q4_K_M', FTYPE.MOSTLY_Q4_K_M, 'q4_K', '4.58G, +0.1754 ppl @ Llama-3-8B'),
  p('Q5_K_S', FTYPE.MOSTLY_Q5_K_S, 'q5_K', '5.21G, +0.1049 ppl @ Llama-3-8B'),
  p('Q5_K_M', FTYPE.MOSTLY_Q5_K_M, 'q5_K', '5.33G, +0.0569 ppl @ Llama-3-8B'),
  p('Q6_K', FTYPE.MOSTLY_Q6_K, 'q6_K', '6.14G, +0.0217 ppl @ Llama-3-8B'),
  p('Q8_0', FTYPE.MOSTLY_Q8_0, 'q8_0', '7.96G, +0.0026 ppl @ Llama-3-8B'),
  p('F16', FTYPE.MOSTLY_F16, 'f16', '14.00G, +0.0020 ppl @ Mistral-7B'),
  p('BF16', FTYPE.MOSTLY_BF16, 'bf16', '14.00G, -0.0050 ppl @ Mistral-7B'),
  p('F32', FTYPE.ALL_F32, 'f32', '26.00G @ 7B'),
  p('COPY', FTYPE.ALL_F32, null, 'only copy tensors, no quantizing'),
]);

/** llama-quantize's aliases, plus MXFP4 for MXFP4_MOE. */
const ALIASES: Record<string, string> = { Q3_K: 'Q3_K_M', Q4_K: 'Q4_K_M', Q5_K: 'Q5_K_M', MXFP4: 'MXFP4_MOE' };

/**
 * Models on which the type choice takes each of its branches (GQA or not, the
 * 70B rule, Falcon, 4 and 8 experts, tied embeddings, with and without an
 * imatrix): the types a preset can choose are those it chooses on one of
 * them, and their fallbacks for rows of 32 and 16.
 */
function probeRuns(): { tensors: TensorInfo[]; model: ModelShape; options: TypeChoiceOptions }[] {
  const f32 = ggmlType('f32');
  const models: ModelShape[] = [
    { arch: 'llama', nLayer: 8, nHead: 8, nHeadKv: 8, nExpert: 0 },
    { arch: 'llama', nLayer: 8, nHead: 8, nHeadKv: 2, nExpert: 0 },
    { arch: 'llama', nLayer: 80, nHead: 64, nHeadKv: 8, nExpert: 0 },
    { arch: 'falcon', nLayer: 8, nHead: 8, nHeadKv: 1, nExpert: 0 },
    { arch: 'llama', nLayer: 8, nHead: 8, nHeadKv: 8, nExpert: 8 },
    { arch: 'qwen3moe', nLayer: 8, nHead: 8, nHeadKv: 8, nExpert: 4 },
  ];
  const runs: { tensors: TensorInfo[]; model: ModelShape; options: TypeChoiceOptions }[] = [];
  for (const model of models) {
    const moe = model.nExpert > 1;
    const row = 256;
    const tensors: TensorInfo[] = [
      { name: 'token_embd.weight', shape: [64, row], type: f32 },
      { name: 'output.weight', shape: [64, row], type: f32 },
    ];
    // 8 layers take the n/8, 7n/8 and use_more_bits rules (the n/16 ones choose Q5_K / Q6_K,
    // which other rules choose too); the 70B rule reads only nLayer
    for (let l = 0; l < 8; l++) {
      for (const n of ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'attn_qkv']) tensors.push({ name: `blk.${l}.${n}.weight`, shape: [64, row], type: f32 });
      for (const n of ['ffn_up', 'ffn_gate', 'ffn_down']) {
        tensors.push(moe ? { name: `blk.${l}.${n}_exps.weight`, shape: [model.nExpert, 64, row], type: f32 } : { name: `blk.${l}.${n}.weight`, shape: [64, row], type: f32 });
      }
    }
    // tied embeddings (no output.weight): only the token embedding's rule changes
    const tied = [tensors[0]];
    for (const hasImatrix of [false, true]) {
      runs.push({ tensors, model, options: { hasImatrix } });
      runs.push({ tensors: tied, model, options: { hasImatrix } });
    }
  }
  return runs;
}

const presetTypeCache = new Map<string, readonly GGMLType[]>();

/** The types `preset`'s rules can give a tensor (the probe models above), by name. */
export function presetTypes(preset: QuantPreset): readonly GGMLType[] {
  let types = presetTypeCache.get(preset.name);
  if (!types) {
    const seen = new Map<string, GGMLType>();
    if (preset.defaultType) {
      for (const run of probeRuns()) for (const c of chooseTensorTypes(run.tensors, preset, run.model, run.options)) seen.set(c.to.name, c.to);
      for (const t of [...seen.values()]) {
        for (const row of [32, 16]) {
          const fb = fallback({ name: 'probe.weight', shape: [1, row], type: t }, t);
          seen.set(fb.name, fb);
        }
      }
    }
    types = Object.freeze([...seen.values()].sort((a, b) => (a.name < b.name ? -1 : 1)));
    presetTypeCache.set(preset.name, types);
  }
  return types;
}

/** The types `preset` can choose that the registry has no format for (empty: wgarray makes the preset). */
export function missingFormats(preset: QuantPreset): readonly GGMLType[] {
  return presetTypes(preset).filter((t) => !QUANT_FORMATS.has(t.name) && !(PLAIN_FLOAT_TYPES as readonly string[]).includes(t.name));
}

/** llama-quantize's preset `name` (case-insensitive, aliases and ftype numbers accepted), whether wgarray makes it or not. */
export function llamaPreset(name: string): QuantPreset | undefined {
  const upper = name.trim().toUpperCase();
  const canonical = ALIASES[upper] ?? upper;
  const found = LLAMA_QUANT_PRESETS.find((x) => x.name === canonical);
  if (found) return found;
  if (/^\d+$/.test(upper)) return LLAMA_QUANT_PRESETS.find((x) => x.ftype === Number(upper) && x.defaultType !== null);
  return undefined;
}

/** The preset `name` names: case-insensitive, aliases (Q4_K = Q4_K_M) and llama.cpp's ftype numbers accepted. */
export function quantPreset(name: string): QuantPreset {
  const found = llamaPreset(name);
  if (found) {
    const missing = missingFormats(found);
    if (missing.length === 0) return found;
    throw new ArgumentError(
      `quantization type ${found.name} is not supported: its ${missing.map((t) => t.name.toUpperCase()).join('/')} blocks are not implemented`,
    );
  }
  throw new ArgumentError(
    `unknown quantization type '${name}'; known: ${[...quantPresets().map((x) => x.name), ...Object.keys(ALIASES)].join(', ')}`,
  );
}

/** A ggml type by name for the options that take one (--output-tensor-type q8_0), case-insensitive. */
export function parseTensorType(name: string, option: string): GGMLType {
  const t = ggmlTypeByName(name.trim());
  if (!t) throw new ArgumentError(`${option}: unknown ggml type '${name}'`);
  return t;
}

/** The hyperparameters llama.cpp's type choice looks at. */
export interface ModelShape {
  /** general.architecture ('llama', 'qwen2', ...). */
  arch: string;
  /** <arch>.block_count. */
  nLayer: number;
  /** <arch>.attention.head_count and head_count_kv (grouped-query attention: n_head / n_head_kv). */
  nHead: number;
  nHeadKv: number;
  /** <arch>.expert_count, 0 for dense models. */
  nExpert: number;
}

/** One tensor as the type choice sees it: its name, row-major shape and current type. */
export interface TensorInfo {
  name: string;
  shape: readonly number[];
  type: GGMLType;
}

export interface TensorTypeOverride {
  /** A regular expression searched for in the tensor name (llama-quantize lower-cases it). */
  pattern: string;
  type: GGMLType;
}

export interface TypeChoiceOptions {
  /** --pure: every quantizable tensor gets the preset's type (no k-quant mixes). */
  pure?: boolean;
  /** --output-tensor-type. */
  outputTensorType?: GGMLType;
  /** --token-embedding-type. */
  tokenEmbeddingType?: GGMLType;
  /** --leave-output-tensor: output.weight keeps its type. */
  leaveOutputTensor?: boolean;
  /** --tensor-type PATTERN=TYPE, first match wins. */
  tensorTypes?: readonly TensorTypeOverride[];
  /** --allow-requantize: quantized sources may be quantized again. */
  allowRequantize?: boolean;
  /** An importance matrix is given (llama.cpp's qs.has_imatrix): some mix rules change with it. */
  hasImatrix?: boolean;
}

export interface TensorTypeChoice {
  name: string;
  from: GGMLType;
  to: GGMLType;
  /** Why `to` is not the preset's default type, when it is not ('output tensor', 'fallback: ...'). */
  note?: string;
}

export type Category =
  | 'token_embd'
  | 'attn_q'
  | 'attn_k'
  | 'attn_v'
  | 'attn_qkv'
  | 'attn_kv_b'
  | 'attn_output'
  | 'ffn_up'
  | 'ffn_gate'
  | 'ffn_down'
  | 'output'
  | 'other';

function category(name: string): Category {
  if (name === 'output.weight') return 'output';
  if (name === 'token_embd.weight' || name === 'per_layer_token_embd.weight') return 'token_embd';
  if (name.includes('attn_qkv.weight')) return 'attn_qkv';
  if (name.includes('attn_kv_b.weight')) return 'attn_kv_b';
  if (name.includes('attn_v.weight')) return 'attn_v';
  if (name.includes('attn_k.weight')) return 'attn_k';
  if (name.includes('attn_q.weight')) return 'attn_q';
  if (name.includes('attn_output.weight')) return 'attn_output';
  if (name.includes('ffn_up')) return 'ffn_up';
  if (name.includes('ffn_gate')) return 'ffn_gate';
  if (name.includes('ffn_down')) return 'ffn_down';
  return 'other';
}

const isAttnV = (c: Category) => c === 'attn_v' || c === 'attn_qkv' || c === 'attn_kv_b';

/** ggml_is_quantized: block formats (every type whose block holds more than one element). */
export function isQuantizedType(t: GGMLType): boolean {
  return t.blockSize > 1;
}

/** ggml_n_dims: dimensions up to the last one larger than 1. */
function ggmlDims(shape: readonly number[]): number {
  // shape is row-major: ggml's ne[i] is shape[n - 1 - i]; trailing ne of 1 do not count.
  let i = 0;
  while (i < shape.length - 1 && shape[i] === 1) i++;
  return Math.max(1, shape.length - i);
}

/** Substrings of tensor names llama.cpp never quantizes (tensor_allows_quantization). */
const NEVER_QUANTIZED = [
  '_norm.weight',
  'ffn_gate_inp.weight',
  'ffn_gate_tid2eid.weight',
  'altup',
  'laurel',
  'per_layer_model_proj',
  'ssm_conv1d',
  'shortconv.conv.weight',
  'indexer.k_proj.weight',
  'indexer.q_proj.weight',
  'time_mix_first.weight',
  'time_mix_w0.weight',
  'time_mix_w1.weight',
  'time_mix_w2.weight',
  'time_mix_v0.weight',
  'time_mix_v1.weight',
  'time_mix_v2.weight',
  'time_mix_a0.weight',
  'time_mix_a1.weight',
  'time_mix_a2.weight',
  'time_mix_g1.weight',
  'time_mix_g2.weight',
  'time_mix_decay_w1.weight',
  'time_mix_decay_w2.weight',
  'time_mix_lerp_fused.weight',
  'attn_rel_b.weight',
  '.position_embd',
  'sam.pos_embd',
  'sam.neck.',
  'sam.net_',
  '.rel_pos',
  '.patch_embd',
  '.patch_merger',
  'a.rvq.codebook',
  'mm.a.code_embd',
];

/** Whether llama.cpp would quantize this tensor at all (2-D+ `*weight`, not a norm, ...). */
export function allowsQuantization(t: TensorInfo, options: TypeChoiceOptions = {}): boolean {
  if (ggmlDims(t.shape) < 2) return false;
  const name = t.name;
  if (!name.endsWith('weight')) return false;
  if (options.leaveOutputTensor && name === 'output.weight') return false;
  if (name === 'position_embd.weight' || name === 'token_types.weight') return false;
  return !NEVER_QUANTIZED.some((s) => name.includes(s));
}

/** Layer of a `blk.N.` tensor, -1 for the others (llama.cpp's weight order: by layer, then name). */
function layerOf(name: string): number {
  const m = /^blk\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : -1;
}

const useMoreBits = (i: number, n: number) => i < Math.trunc(n / 8) || i >= Math.trunc((7 * n) / 8) || (i - Math.trunc(n / 8)) % 3 === 2;

/** What llama-quantize's type choice carries from tensor to tensor (quantize_state_impl) and the model facts it reads. */
export interface QuantState {
  preset: QuantPreset;
  ftype: number;
  model: ModelShape;
  options: TypeChoiceOptions;
  /** n_head / n_head_kv. */
  nGqa: number;
  /** LLM_TYPE_70B: llama with 80 layers and grouped-query attention. */
  is70B: boolean;
  falcon: boolean;
  tiedEmbeddings: boolean;
  nAttnV: number;
  iAttnV: number;
  iFfnDown: number;
  iFfnGate: number;
  iFfnUp: number;
}

/**
 * layer_info: the layer a counted tensor belongs to. With experts, llama.cpp
 * reads it from the name (experts are not consecutive in some files);
 * otherwise the count of such tensors so far is the layer.
 */
function layerInfo(q: QuantState, counter: number, name: string): [number, number] {
  const nLayer = q.model.nLayer;
  if (Math.max(1, q.model.nExpert) > 1) {
    const layer = layerOf(name);
    if (layer < 0 || layer >= nLayer) throw new ArgumentError(`cannot find the layer of tensor ${name} (block_count ${nLayer})`);
    return [layer, nLayer];
  }
  return [counter, nLayer];
}

/**
 * llama_tensor_get_type_impl: the type
 * `t` (of category `cat`) gets instead of `start`, the preset's default,
 * and why. Updates the counters in `q`; call it in llama.cpp's tensor order.
 */
export function mixType(q: QuantState, t: TensorInfo, cat: Category, start: GGMLType): { type: GGMLType; note?: string } {
  const T = ggmlType;
  const f = q.ftype;
  const nExpert = q.model.nExpert;
  const hasImatrix = !!q.options.hasImatrix;
  let type = start;
  let note: string | undefined;
  if (cat === 'output' || (q.tiedEmbeddings && cat === 'token_embd')) {
    const what = cat === 'output' ? 'output tensor' : 'tied token embedding';
    if (q.options.outputTensorType) {
      type = q.options.outputTensorType;
      note = `${what}: --output-tensor-type`;
    } else {
      const nx = t.shape[t.shape.length - 1];
      if (f === FTYPE.MOSTLY_MXFP4_MOE || q.falcon || nx % type.blockSize !== 0) type = T('q8_0');
      else if (IQ2_OUTPUT_Q5_K.includes(f)) type = T('q5_K');
      else if (type.name !== 'q8_0') type = T('q6_K');
      note = what;
    }
  } else if (f === FTYPE.MOSTLY_MXFP4_MOE) {
    // expert tensors (3-D) to MXFP4, the rest to Q8_0
    const ne2 = t.shape.length >= 3 ? t.shape[t.shape.length - 3] : 1;
    type = ne2 > 1 ? T('mxfp4') : T('q8_0');
    note = ne2 > 1 ? 'expert tensor' : 'not an expert tensor';
  } else if (cat === 'token_embd') {
    if (q.options.tokenEmbeddingType) type = q.options.tokenEmbeddingType;
    else if (f === FTYPE.MOSTLY_IQ2_XXS || f === FTYPE.MOSTLY_IQ2_XS || f === FTYPE.MOSTLY_IQ1_S || f === FTYPE.MOSTLY_IQ1_M) type = T('q2_K');
    else if (f === FTYPE.MOSTLY_IQ2_S || f === FTYPE.MOSTLY_IQ2_M || f === FTYPE.MOSTLY_IQ3_XXS) type = T('iq3_s');
    else if (f === FTYPE.MOSTLY_TQ1_0 || f === FTYPE.MOSTLY_TQ2_0) type = T('q4_K');
  } else if (IQ2_FAMILY.includes(f)) {
    // the 1-2 bit IQ presets have their own rules (no 70B or 8-expert Q8_0 bumps)
    const iq2sm = f === FTYPE.MOSTLY_IQ2_S || f === FTYPE.MOSTLY_IQ2_M;
    if (isAttnV(cat)) {
      type = q.nGqa >= 4 || nExpert >= 4 ? T('q4_K') : iq2sm ? T('iq3_s') : T('q2_K');
      q.iAttnV++;
    } else if (nExpert === 8 && cat === 'attn_k') {
      type = T('q4_K');
    } else if (cat === 'ffn_down') {
      // llama.cpp counts ffn_down tensors here, not layers (no layer_info)
      if (q.iFfnDown < Math.trunc(q.model.nLayer / 8)) type = iq2sm ? T('iq3_s') : T('q2_K');
      q.iFfnDown++;
    } else if (cat === 'attn_output') {
      if (nExpert === 8) type = T('q5_K');
      else if (f === FTYPE.MOSTLY_IQ1_S || f === FTYPE.MOSTLY_IQ1_M) type = T('iq2_xxs');
      else if (iq2sm) type = T('iq3_s');
    }
  } else if (isAttnV(cat)) {
    const i = q.iAttnV;
    if (f === FTYPE.MOSTLY_Q2_K) type = q.nGqa >= 4 ? T('q4_K') : T('q3_K');
    else if (f === FTYPE.MOSTLY_Q2_K_S && q.nGqa >= 4) type = T('q4_K');
    else if (f === FTYPE.MOSTLY_IQ3_XXS) type = q.nGqa >= 4 ? T('q4_K') : !hasImatrix ? T('iq3_s') : T('iq3_xxs');
    else if ((f === FTYPE.MOSTLY_IQ3_XS || f === FTYPE.MOSTLY_IQ3_S) && q.nGqa >= 4) type = T('q4_K');
    else if (f === FTYPE.MOSTLY_IQ3_M) type = T('q4_K');
    else if (f === FTYPE.MOSTLY_Q3_K_M) type = i < 2 ? T('q5_K') : T('q4_K');
    else if (f === FTYPE.MOSTLY_Q3_K_L) type = T('q5_K');
    else if ((f === FTYPE.MOSTLY_IQ4_NL || f === FTYPE.MOSTLY_IQ4_XS) && q.nGqa >= 4) type = T('q5_K');
    else if ((f === FTYPE.MOSTLY_Q4_K_M || f === FTYPE.MOSTLY_Q5_K_M) && useMoreBits(i, q.nAttnV)) type = T('q6_K');
    else if (f === FTYPE.MOSTLY_Q4_K_S && i < 4) type = T('q5_K');
    if (q.is70B && (type.name === 'q3_K' || type.name === 'q4_K')) type = T('q5_K');
    if (nExpert === 8) type = T('q8_0');
    q.iAttnV++;
  } else if (cat === 'attn_k') {
    if (nExpert === 8) type = T('q8_0');
    else if (f === FTYPE.MOSTLY_IQ3_XS) type = T('iq3_xxs');
    else if (f === FTYPE.MOSTLY_IQ3_XXS) type = T('iq2_s');
  } else if (cat === 'attn_q') {
    if (f === FTYPE.MOSTLY_IQ3_XS) type = T('iq3_xxs');
    else if (f === FTYPE.MOSTLY_IQ3_XXS) type = T('iq2_s');
  } else if (cat === 'ffn_down') {
    const [i, n] = layerInfo(q, q.iFfnDown, t.name);
    const n8 = Math.trunc(n / 8);
    if (f === FTYPE.MOSTLY_Q2_K) type = T('q3_K');
    else if (f === FTYPE.MOSTLY_Q2_K_S) {
      if (i < n8) type = T('q4_K');
    } else if (f === FTYPE.MOSTLY_IQ3_XXS && !hasImatrix) type = i < n8 ? T('q4_K') : T('q3_K');
    else if (f === FTYPE.MOSTLY_Q3_K_M) {
      type = i < Math.trunc(n / 16) ? T('q5_K') : !q.falcon || useMoreBits(i, n) ? T('q4_K') : T('q3_K');
    } else if (f === FTYPE.MOSTLY_IQ3_M && (i < n8 || (nExpert === 8 && useMoreBits(i, n)))) type = T('q4_K');
    else if (f === FTYPE.MOSTLY_Q3_K_L) type = q.falcon ? T('q4_K') : T('q5_K');
    else if (f === FTYPE.MOSTLY_Q4_K_M) {
      if (q.falcon) type = i < Math.trunc(n / 16) ? T('q6_K') : useMoreBits(i, n) ? T('q5_K') : T('q4_K');
      else if (useMoreBits(i, n)) type = T('q6_K');
    } else if (i < n8 && (f === FTYPE.MOSTLY_IQ4_NL || f === FTYPE.MOSTLY_IQ4_XS) && !hasImatrix) type = T('q5_K');
    else if (f === FTYPE.MOSTLY_Q5_K_M && useMoreBits(i, n)) type = T('q6_K');
    else if (f === FTYPE.MOSTLY_Q4_K_S && !q.falcon && i < n8) type = T('q5_K');
    else if ((f === FTYPE.MOSTLY_Q4_0 || f === FTYPE.MOSTLY_Q5_0) && hasImatrix && i < n8) {
      // llama.cpp guards the first ffn_down layers of Q4_0/Q5_0 only when an imatrix is given
      type = f === FTYPE.MOSTLY_Q4_0 ? T('q4_1') : T('q5_1');
    }
    q.iFfnDown++;
  } else if (cat === 'attn_output') {
    if (!q.falcon) {
      if (nExpert === 8) {
        if (MOE8_ATTN_OUTPUT_Q5_K.includes(f)) type = T('q5_K');
      } else if (f === FTYPE.MOSTLY_Q2_K) type = T('q3_K');
      else if (f === FTYPE.MOSTLY_IQ3_XXS) type = T('iq3_s');
      else if (f === FTYPE.MOSTLY_Q3_K_M) type = T('q4_K');
      else if (f === FTYPE.MOSTLY_Q3_K_L) type = T('q5_K');
      else if (f === FTYPE.MOSTLY_IQ3_M) type = T('q4_K');
    } else if (f === FTYPE.MOSTLY_Q3_K_L) type = T('q4_K');
  } else if (cat === 'ffn_gate' || cat === 'ffn_up') {
    // IQ3_XS: the middle layers' gate and up to IQ3_XXS
    const counter = cat === 'ffn_gate' ? q.iFfnGate : q.iFfnUp;
    const [i, n] = layerInfo(q, counter, t.name);
    if (f === FTYPE.MOSTLY_IQ3_XS && i >= Math.trunc(n / 8) && i < Math.trunc((7 * n) / 8)) type = T('iq3_xxs');
    if (cat === 'ffn_gate') q.iFfnGate++;
    else q.iFfnUp++;
  }
  if (!note && type !== start) note = `${q.preset.name} mix`;
  return { type, note };
}

/** The 1-2 bit IQ presets, which share one branch of llama_tensor_get_type_impl. */
const IQ2_FAMILY: readonly number[] = [
  FTYPE.MOSTLY_IQ2_XXS, FTYPE.MOSTLY_IQ2_XS, FTYPE.MOSTLY_IQ1_S, FTYPE.MOSTLY_IQ2_S, FTYPE.MOSTLY_IQ2_M, FTYPE.MOSTLY_IQ1_M,
];
/** Presets whose output tensor is Q5_K rather than Q6_K. */
const IQ2_OUTPUT_Q5_K: readonly number[] = [...IQ2_FAMILY, FTYPE.MOSTLY_IQ3_XXS];
/** Presets whose attn_output is Q5_K in an 8-expert model. */
const MOE8_ATTN_OUTPUT_Q5_K: readonly number[] = [
  FTYPE.MOSTLY_Q2_K, FTYPE.MOSTLY_IQ3_XS, FTYPE.MOSTLY_IQ3_XXS, FTYPE.MOSTLY_Q3_K_S, FTYPE.MOSTLY_Q3_K_M, FTYPE.MOSTLY_IQ4_NL,
  FTYPE.MOSTLY_Q4_K_S, FTYPE.MOSTLY_Q4_K_M, FTYPE.MOSTLY_IQ3_S, FTYPE.MOSTLY_IQ3_M, FTYPE.MOSTLY_IQ4_XS,
];

/**
 * The type llama-quantize gives each tensor under `preset`: the k-quant mixes
 * (_S/_M/_L), output and tied-embedding rules, use_more_bits layers,
 * --tensor-type overrides and the fallbacks for rows that do not split into
 * whole blocks. Results are in the order of `tensors`.
 */
export function chooseTensorTypes(
  tensors: readonly TensorInfo[],
  preset: QuantPreset,
  model: ModelShape,
  options: TypeChoiceOptions = {},
): TensorTypeChoice[] {
  const defaultType = preset.defaultType;
  const overrides = (options.tensorTypes ?? []).map((o) => ({ re: compilePattern(o.pattern), type: o.type }));
  const q: QuantState = {
    preset,
    ftype: preset.ftype,
    model,
    options,
    nGqa: model.nHeadKv > 0 ? Math.floor(model.nHead / model.nHeadKv) : 1,
    is70B: model.arch === 'llama' && model.nLayer === 80 && model.nHead !== model.nHeadKv,
    falcon: model.arch === 'falcon',
    tiedEmbeddings: !tensors.some((t) => t.name === 'output.weight'),
    nAttnV: tensors.filter((t) => isAttnV(category(t.name))).length,
    iAttnV: 0,
    iFfnDown: 0,
    iFfnGate: 0,
    iFfnUp: 0,
  };


  // The mix rules (llama_tensor_get_type_impl) for the presets wgarray makes.

  // llama.cpp visits weights ordered by layer, then name; the counters above depend on it.
  const order = tensors.map((_, i) => i);
  const layers = tensors.map((t) => layerOf(t.name));
  order.sort((a, b) => {
    const la = layers[a];
    const lb = layers[b];
    if (la !== lb) return la - lb;
    const na = tensors[a].name;
    const nb = tensors[b].name;
    return na < nb ? -1 : na > nb ? 1 : 0;
  });

  const out = new Array<TensorTypeChoice>(tensors.length);
  for (const i of order) {
    const t = tensors[i];
    const cat = category(t.name);
    let to = t.type;
    let note: string | undefined;
    if (defaultType === null || !allowsQuantization(t, options)) {
      to = t.type;
    } else if (options.tokenEmbeddingType && cat === 'token_embd') {
      to = options.tokenEmbeddingType;
      note = '--token-embedding-type';
    } else if (options.outputTensorType && cat === 'output') {
      to = options.outputTensorType;
      note = '--output-tensor-type';
    } else {
      to = defaultType;
      if (isQuantizedType(defaultType)) {
        let manual = false;
        for (const o of overrides) {
          if (o.re.test(t.name)) {
            if (o.type !== to) note = `--tensor-type ${o.re.source}`;
            to = o.type;
            manual = true;
            break;
          }
        }
        if (!manual && !options.pure) ({ type: to, note } = mixType(q, t, cat, to));
        const fb = fallback(t, to);
        if (fb !== to) {
          note = `row length ${t.shape[t.shape.length - 1]} is not a multiple of ${to.blockSize} (${to.name}): fallback`;
          to = fb;
        }
      }
    }
    if (to !== t.type && isQuantizedType(t.type) && !options.allowRequantize) {
      throw new ArgumentError(
        `tensor '${t.name}' is already quantized (${t.type.name}); requantizing to ${to.name} loses quality: pass --allow-requantize to do it anyway`,
      );
    }
    out[i] = note ? { name: t.name, from: t.type, to, note } : { name: t.name, from: t.type, to };
  }
  return out;
}

function compilePattern(pattern: string): RegExp {
  try {
    return new RegExp(pattern);
  } catch (cause) {
    throw new ArgumentError(`--tensor-type: '${pattern}' is not a regular expression: ${(cause as Error).message}`);
  }
}

/** tensor_type_fallback: a type whose blocks fit the row when `type`'s do not. */
function fallback(t: TensorInfo, type: GGMLType): GGMLType {
  const ncols = t.shape[t.shape.length - 1];
  if (ncols % type.blockSize === 0) return type;
  const FALLBACK: Record<string, string> = {
    iq1_s: 'iq4_nl',
    iq1_m: 'iq4_nl',
    iq2_xxs: 'iq4_nl',
    iq2_xs: 'iq4_nl',
    iq2_s: 'iq4_nl',
    iq3_xxs: 'iq4_nl',
    iq3_s: 'iq4_nl',
    iq4_xs: 'iq4_nl',
    q2_K: 'q4_0',
    q3_K: 'q4_0',
    tq1_0: 'q4_0',
    tq2_0: 'q4_0',
    q4_K: 'q5_0',
    q5_K: 'q5_1',
    q6_K: 'q8_0',
  };
  const next = FALLBACK[type.name];
  // A 32-block type has no smaller block to fall back to: F16 below.
  const fb = next ? ggmlType(next) : type;
  return ncols % fb.blockSize === 0 ? fb : ggmlType('f16');
}

/** llama_model_loader's guess of the ftype from the most common tensor type. */
const FTYPE_OF_TYPE: Record<string, number> = {
  f32: FTYPE.ALL_F32, f16: FTYPE.MOSTLY_F16, bf16: FTYPE.MOSTLY_BF16, q4_0: FTYPE.MOSTLY_Q4_0, q4_1: FTYPE.MOSTLY_Q4_1,
  q5_0: FTYPE.MOSTLY_Q5_0, q5_1: FTYPE.MOSTLY_Q5_1, q8_0: FTYPE.MOSTLY_Q8_0, q2_K: FTYPE.MOSTLY_Q2_K, q3_K: FTYPE.MOSTLY_Q3_K_M,
  q4_K: FTYPE.MOSTLY_Q4_K_M, q5_K: FTYPE.MOSTLY_Q5_K_M, q6_K: FTYPE.MOSTLY_Q6_K, tq1_0: FTYPE.MOSTLY_TQ1_0, tq2_0: FTYPE.MOSTLY_TQ2_0,
  iq2_xxs: FTYPE.MOSTLY_IQ2_XXS, iq2_xs: FTYPE.MOSTLY_IQ2_XS, iq2_s: FTYPE.MOSTLY_IQ2_S, iq3_xxs: FTYPE.MOSTLY_IQ3_XXS,
  iq1_s: FTYPE.MOSTLY_IQ1_S, iq1_m: FTYPE.MOSTLY_IQ1_M, iq4_nl: FTYPE.MOSTLY_IQ4_NL, iq4_xs: FTYPE.MOSTLY_IQ4_XS, iq3_s: FTYPE.MOSTLY_IQ3_S,
};

/**
 * The ftype a file's tensors suggest when general.file_type is missing: llama.cpp
 * takes the type that first reaches the highest count (tensors in its
 * layer-then-name order) and maps it with FTYPE_OF_TYPE (unknown types: ALL_F32).
 */
export function guessFtype(types: readonly GGMLType[], names?: readonly string[]): number {
  const order = types.map((_, i) => i);
  if (names) {
    const layers = names.map(layerOf);
    order.sort((a, b) => layers[a] - layers[b] || (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0));
  }
  const counts = new Map<string, number>();
  let best = 'f32';
  let most = 0;
  for (const i of order) {
    const name = types[i].name;
    const n = (counts.get(name) ?? 0) + 1;
    counts.set(name, n);
    if (n > most) [best, most] = [name, n];
  }
  return FTYPE_OF_TYPE[best] ?? FTYPE.ALL_F32;
}

/**
 * tensor_requires_imatrix: whether llama-quantize refuses to quantize this
 * tensor to `to` without importance weights (the IQ1-IQ3 types, and Q2_K in a
 * Q2_K_S file; never the token embedding or the output tensor).
 */
export function requiresImatrix(name: string, to: GGMLType, ftype: number): boolean {
  if (name === 'token_embd.weight' || name === 'per_layer_token_embd.weight' || name === 'output.weight') return false;
  if (['iq3_xxs', 'iq2_xxs', 'iq2_xs', 'iq2_s', 'iq1_m', 'iq1_s'].includes(to.name)) return true;
  return to.name === 'q2_K' && ftype === FTYPE.MOSTLY_Q2_K_S;
}

let madePresets: readonly QuantPreset[] | undefined;
/**
 * The presets wgarray makes (every type they can choose is implemented), in llama-quantize's order.
 * Computed on first call, not at import: it runs the type choice over the probe models for every
 * preset (~0.1 s of every CLI start-up when it was a module constant).
 */
export function quantPresets(): readonly QuantPreset[] {
  return (madePresets ??= Object.freeze(LLAMA_QUANT_PRESETS.filter((x) => missingFormats(x).length === 0)));
}
