// What convert_hf_to_gguf.py does per architecture, as one table entry each
// (ARCHITECTURES): the Hugging Face classes it takes, the GGUF architecture
// name, the <arch>.* keys with llama.cpp's types, the tensor renaming and the
// weight transforms (q/k row permutation, experts stacked into 3-D tensors,
// a fused gate_up split). Adding an architecture is one new entry.

import { FormatError } from '../errors.js';
import { Metadata } from './metadata.js';

type Json = Record<string, unknown>;

/** One <arch>.* metadata key: its name after `<arch>.`, its GGUF type, and its value (undefined: not written). */
export interface KeySpec {
  key: string;
  type: 'u32' | 'f32' | 'string' | 'bool';
  value: (h: Hparams) => number | string | boolean | undefined;
}

/** How a Hugging Face per-layer tensor (the part after `model.layers.N.`, without `.weight`) becomes a GGUF one. */
export interface TensorRule {
  /** GGUF part name (blk.N.<to>.weight); a split rule names one per part. */
  to: string | readonly string[];
  /** Rows permuted from Hugging Face's rotate-half layout (only where the architecture permutes). */
  permute?: 'q' | 'k';
  /** One expert's matrix (the `{e}` in the pattern), stacked with the others into a 3-D tensor. */
  stack?: boolean;
  /** A fused [n_expert, 2 * n_ff, n_embd] tensor split in halves along its rows (transformers v5 gate_up_proj). */
  split?: boolean;
}

export interface ArchitectureSpec {
  /** config.json "architectures" values handled. */
  hfNames: readonly string[];
  /** general.architecture. */
  arch: string;
  /** The architecture's own keys, written after general.file_type (convert_hf_to_gguf's subclass keys). */
  keys: readonly KeySpec[];
  /** Per-layer tensor renaming (pattern -> rule); `{e}` matches an expert index. */
  tensors: Readonly<Record<string, TensorRule>>;
  /** Permute q/k rows for llama.cpp's rope layout (LlamaModel.undo_permute). */
  permuteQK: boolean;
  /** Mixture of experts: config.json must give the expert counts. */
  moe?: boolean;
  /** Keys written before general.file_type, where the architecture replaces TextModel's list (Gemma 2, Phi-3). */
  baseKeys?: readonly KeySpec[];
  /** Added to every `*norm.weight` (Gemma's RMSNorm scales by 1 + w; llama.cpp's by w). */
  normShift?: number;
  /** token_embd cut to the tokenizer's real vocabulary (Gemma 3's embedding has padding rows). */
  trimEmbedding?: boolean;
  /** lm_head.weight skipped: the output is the embedding (Gemma 2). */
  dropOutput?: boolean;
  /** tokenizer.ggml.add_space_prefix written for a SentencePiece tokenizer (Gemma: false). */
  spmAddSpacePrefix?: boolean;
  /** Shapes that differ from the llama layer's (fused tensors), by GGUF part. */
  shapes?: (h: Hparams) => Record<string, number[]>;
}

// ---- the tables -----------------------------------------------------------------------------------

const ropeType = (h: Hparams) => (typeof h.rope.rope_type === 'string' ? h.rope.rope_type.toLowerCase() : undefined);
const ropeNum = (h: Hparams, ...keys: string[]) => {
  for (const k of keys) if (typeof h.rope[k] === 'number') return h.rope[k] as number;
  return undefined;
};
const yarn = (h: Hparams, ...keys: string[]) => (ropeType(h) === 'yarn' && ropeNum(h, 'factor') !== undefined ? ropeNum(h, ...keys) : undefined);

/** TextModel.set_gguf_parameters: the keys every architecture writes (before general.file_type). */
const TEXT_MODEL_KEYS: readonly KeySpec[] = [
  { key: 'block_count', type: 'u32', value: (h) => h.nLayer },
  { key: 'context_length', type: 'u32', value: (h) => h.nCtx },
  { key: 'embedding_length', type: 'u32', value: (h) => h.nEmbd },
  { key: 'feed_forward_length', type: 'u32', value: (h) => h.nFf },
  { key: 'attention.head_count', type: 'u32', value: (h) => h.nHead },
  { key: 'attention.head_count_kv', type: 'u32', value: (h) => h.nHeadKv },
  {
    key: 'rope.scaling.type',
    type: 'string',
    value: (h) => {
      const t = ropeType(h);
      if ((t === 'linear' || t === 'yarn') && ropeNum(h, 'factor') !== undefined) return t;
      return t === 'longrope' || t === 'su' ? 'longrope' : undefined;
    },
  },
  { key: 'rope.scaling.factor', type: 'f32', value: (h) => (ropeType(h) === 'linear' || ropeType(h) === 'yarn' ? ropeNum(h, 'factor') : undefined) },
  { key: 'rope.scaling.original_context_length', type: 'u32', value: (h) => yarn(h, 'original_max_position_embeddings') },
  { key: 'rope.scaling.yarn_ext_factor', type: 'f32', value: (h) => yarn(h, 'extrapolation_factor') },
  { key: 'rope.scaling.yarn_attn_factor', type: 'f32', value: (h) => yarn(h, 'attention_factor', 'attn_factor') },
  { key: 'rope.scaling.yarn_beta_fast', type: 'f32', value: (h) => yarn(h, 'beta_fast') },
  { key: 'rope.scaling.yarn_beta_slow', type: 'f32', value: (h) => yarn(h, 'beta_slow') },
  { key: 'rope.freq_base', type: 'f32', value: (h) => h.ropeTheta },
  { key: 'rope.freq_base_swa', type: 'f32', value: (h) => h.ropeThetaSwa },
  { key: 'attention.layer_norm_rms_epsilon', type: 'f32', value: (h) => h.rmsEps },
  { key: 'expert_count', type: 'u32', value: (h) => (h.nExpert > 0 ? h.nExpert : undefined) },
  { key: 'expert_used_count', type: 'u32', value: (h) => (h.nExpert > 0 ? h.nExpertUsed : undefined) },
  { key: 'attention.key_length', type: 'u32', value: (h) => (typeof h.config.head_dim === 'number' ? h.config.head_dim : undefined) },
  { key: 'attention.value_length', type: 'u32', value: (h) => (typeof h.config.head_dim === 'number' ? h.config.head_dim : undefined) },
];

/** LlamaModel's additions. */
const LLAMA_KEYS: readonly KeySpec[] = [
  { key: 'vocab_size', type: 'u32', value: (h) => h.vocabSize },
  { key: 'rope.dimension_count', type: 'u32', value: (h) => h.headDim },
];

/** Qwen2MoeModel's additions. */
const QWEN_MOE_KEYS: readonly KeySpec[] = [
  { key: 'expert_feed_forward_length', type: 'u32', value: (h) => (typeof h.config.moe_intermediate_size === 'number' ? h.config.moe_intermediate_size : undefined) },
];

const cfg = (h: Hparams, key: string) => (typeof h.config[key] === 'number' ? (h.config[key] as number) : undefined);

/** Gemma2Model.set_gguf_parameters (its own list, not TextModel's). */
const GEMMA2_BASE_KEYS: readonly KeySpec[] = [
  { key: 'context_length', type: 'u32', value: (h) => h.nCtx },
  { key: 'embedding_length', type: 'u32', value: (h) => h.nEmbd },
  { key: 'block_count', type: 'u32', value: (h) => h.nLayer },
  { key: 'feed_forward_length', type: 'u32', value: (h) => h.nFf },
  { key: 'attention.head_count', type: 'u32', value: (h) => h.nHead },
  { key: 'attention.head_count_kv', type: 'u32', value: (h) => h.nHeadKv },
  { key: 'attention.layer_norm_rms_epsilon', type: 'f32', value: (h) => h.rmsEps },
  { key: 'attention.key_length', type: 'u32', value: (h) => h.headDim },
  { key: 'attention.value_length', type: 'u32', value: (h) => h.headDim },
];
const GEMMA2_KEYS: readonly KeySpec[] = [
  { key: 'attn_logit_softcapping', type: 'f32', value: (h) => cfg(h, 'attn_logit_softcapping') },
  { key: 'final_logit_softcapping', type: 'f32', value: (h) => cfg(h, 'final_logit_softcapping') },
  { key: 'attention.sliding_window', type: 'u32', value: (h) => cfg(h, 'sliding_window') },
];
/** Gemma3Model's additions (TextModel's keys first; the repeated ones keep their place, take these values). */
const GEMMA3_KEYS: readonly KeySpec[] = [
  { key: 'context_length', type: 'u32', value: (h) => h.nCtx ?? 131072 },
  { key: 'attention.head_count', type: 'u32', value: (h) => h.nHead },
  { key: 'attention.layer_norm_rms_epsilon', type: 'f32', value: (h) => h.rmsEps ?? 1e-6 },
  { key: 'attention.key_length', type: 'u32', value: (h) => h.headDim },
  { key: 'attention.value_length', type: 'u32', value: (h) => h.headDim },
  { key: 'rope.freq_base', type: 'f32', value: (h) => h.ropeTheta ?? 1_000_000 },
  { key: 'final_logit_softcapping', type: 'f32', value: (h) => cfg(h, 'final_logit_softcapping') || undefined },
  { key: 'attention.sliding_window', type: 'u32', value: (h) => (h.config.sliding_window_pattern !== 1 ? cfg(h, 'sliding_window') : undefined) },
  { key: 'attention.head_count_kv', type: 'u32', value: (h) => h.nHeadKv },
];

/** Phi-3's rotary dimensions: partial_rotary_factor of the head. */
const phi3RopeDims = (h: Hparams) => Math.trunc(((ropeNum(h, 'partial_rotary_factor') ?? cfg(h, 'partial_rotary_factor') ?? 1) * h.nEmbd) / h.nHead);
const origCtx = (h: Hparams) => ropeNum(h, 'original_max_position_embeddings') ?? cfg(h, 'original_max_position_embeddings');
/** Phi3MiniModel.set_gguf_parameters. */
const PHI3_BASE_KEYS: readonly KeySpec[] = [
  { key: 'context_length', type: 'u32', value: (h) => h.nCtx },
  { key: 'rope.scaling.original_context_length', type: 'u32', value: origCtx },
  { key: 'embedding_length', type: 'u32', value: (h) => h.nEmbd },
  { key: 'feed_forward_length', type: 'u32', value: (h) => h.nFf },
  { key: 'block_count', type: 'u32', value: (h) => h.nLayer },
  { key: 'attention.head_count', type: 'u32', value: (h) => h.nHead },
  { key: 'attention.head_count_kv', type: 'u32', value: (h) => h.nHeadKv },
  { key: 'attention.layer_norm_rms_epsilon', type: 'f32', value: (h) => h.rmsEps },
  { key: 'rope.dimension_count', type: 'u32', value: phi3RopeDims },
  { key: 'rope.freq_base', type: 'f32', value: (h) => h.ropeTheta ?? 10000 },
];
const PHI3_KEYS: readonly KeySpec[] = [
  { key: 'attention.sliding_window', type: 'u32', value: (h) => cfg(h, 'sliding_window') ?? 0 },
  { key: 'rope.scaling.attn_factor', type: 'f32', value: (h) => longrope(h)?.attnFactor },
];

/** Phi-3's long-context rope (su / longrope / yarn with long_factor): the factor tensors and the attention factor. */
export function longrope(h: Hparams): { long: Float32Array; short: Float32Array; attnFactor: number } | undefined {
  const long = h.rope.long_factor;
  const short = h.rope.short_factor;
  if (!Array.isArray(long) || long.length === 0) return undefined;
  const orig = origCtx(h);
  const where = 'config.json rope_scaling';
  if (orig === undefined || h.nCtx === undefined) throw new FormatError(where, undefined, 'long_factor needs max_position_embeddings and original_max_position_embeddings');
  const scale = h.nCtx / orig;
  const type = ropeType(h) ?? '';
  let attnFactor: number;
  if (type === 'su' || type === 'longrope') attnFactor = scale > 1 ? Math.sqrt(1 + Math.log(scale) / Math.log(orig)) : 1;
  else if (type === 'yarn') attnFactor = scale > 1 ? 0.1 * Math.log(scale) + 1 : 1;
  else throw new FormatError(where, undefined, `rope type ${JSON.stringify(h.rope.rope_type)} with long_factor is not supported (longrope, su or yarn)`);
  const half = phi3RopeDims(h) / 2;
  if (!Array.isArray(short) || short.length !== long.length || long.length !== half) {
    throw new FormatError(where, undefined, `long_factor and short_factor must both have ${half} values (rotary dimensions / 2); they have ${long.length} and ${Array.isArray(short) ? short.length : 'no'}`);
  }
  return { long: Float32Array.from(long as number[]), short: Float32Array.from(short as number[]), attnFactor };
}

/** gguf-py's tensor_mapping for the llama-style decoder layer. */
const DENSE: Readonly<Record<string, TensorRule>> = {
  input_layernorm: { to: 'attn_norm' },
  'self_attn.q_proj': { to: 'attn_q', permute: 'q' },
  'self_attn.k_proj': { to: 'attn_k', permute: 'k' },
  'self_attn.v_proj': { to: 'attn_v' },
  'self_attn.o_proj': { to: 'attn_output' },
  post_attention_layernorm: { to: 'ffn_norm' },
  'mlp.gate_proj': { to: 'ffn_gate' },
  'mlp.up_proj': { to: 'ffn_up' },
  'mlp.down_proj': { to: 'ffn_down' },
};

const { 'mlp.gate_proj': _g, 'mlp.up_proj': _u, 'mlp.down_proj': _d, ...ATTENTION } = DENSE;

/** Per-head RMS norms of q and k (Qwen3). */
const QK_NORM: Readonly<Record<string, TensorRule>> = {
  'self_attn.q_norm': { to: 'attn_q_norm' },
  'self_attn.k_norm': { to: 'attn_k_norm' },
};

/** Gemma 2/3's four norms per layer. */
const GEMMA: Readonly<Record<string, TensorRule>> = {
  ...DENSE,
  post_attention_layernorm: { to: 'post_attention_norm' },
  pre_feedforward_layernorm: { to: 'ffn_norm' },
  post_feedforward_layernorm: { to: 'post_ffw_norm' },
};

/** Phi-3's fused projections, kept fused (llama.cpp splits them at run time). */
const PHI3: Readonly<Record<string, TensorRule>> = {
  input_layernorm: { to: 'attn_norm' },
  'self_attn.qkv_proj': { to: 'attn_qkv' },
  'self_attn.o_proj': { to: 'attn_output' },
  post_attention_layernorm: { to: 'ffn_norm' },
  'mlp.gate_up_proj': { to: 'ffn_up' },
  'mlp.down_proj': { to: 'ffn_down' },
};

/** Experts as transformers writes them: one matrix per expert, or (v5) fused 3-D tensors. */
const MOE_MLP: Readonly<Record<string, TensorRule>> = {
  'mlp.gate': { to: 'ffn_gate_inp' },
  'mlp.experts.{e}.gate_proj': { to: 'ffn_gate_exps', stack: true },
  'mlp.experts.{e}.up_proj': { to: 'ffn_up_exps', stack: true },
  'mlp.experts.{e}.down_proj': { to: 'ffn_down_exps', stack: true },
  'mlp.experts.gate_up_proj': { to: ['ffn_gate_exps', 'ffn_up_exps'], split: true },
  'mlp.experts.down_proj': { to: 'ffn_down_exps' },
};

/** Mixtral's names (block_sparse_moe.experts.E.w1/w2/w3 = gate/down/up). */
const MIXTRAL_MLP: Readonly<Record<string, TensorRule>> = {
  'block_sparse_moe.gate': { to: 'ffn_gate_inp' },
  'block_sparse_moe.experts.{e}.w1': { to: 'ffn_gate_exps', stack: true },
  'block_sparse_moe.experts.{e}.w3': { to: 'ffn_up_exps', stack: true },
  'block_sparse_moe.experts.{e}.w2': { to: 'ffn_down_exps', stack: true },
  ...MOE_MLP,
};

export const ARCHITECTURES: readonly ArchitectureSpec[] = [
  { hfNames: ['LlamaForCausalLM', 'LLaMAForCausalLM', 'MistralForCausalLM'], arch: 'llama', keys: LLAMA_KEYS, tensors: DENSE, permuteQK: true },
  { hfNames: ['MixtralForCausalLM'], arch: 'llama', keys: LLAMA_KEYS, tensors: { ...ATTENTION, ...MIXTRAL_MLP }, permuteQK: true, moe: true },
  { hfNames: ['Qwen2ForCausalLM'], arch: 'qwen2', keys: [], tensors: DENSE, permuteQK: false },
  { hfNames: ['Qwen3ForCausalLM'], arch: 'qwen3', keys: [], tensors: { ...DENSE, ...QK_NORM }, permuteQK: false },
  { hfNames: ['Qwen3MoeForCausalLM'], arch: 'qwen3moe', keys: QWEN_MOE_KEYS, tensors: { ...ATTENTION, ...QK_NORM, ...MOE_MLP }, permuteQK: false, moe: true },
  { hfNames: ['SmolLM3ForCausalLM'], arch: 'smollm3', keys: LLAMA_KEYS, tensors: DENSE, permuteQK: true },
  {
    hfNames: ['Gemma2ForCausalLM'],
    arch: 'gemma2',
    baseKeys: GEMMA2_BASE_KEYS,
    keys: GEMMA2_KEYS,
    tensors: GEMMA,
    permuteQK: false,
    normShift: 1,
    dropOutput: true,
    spmAddSpacePrefix: false,
  },
  {
    hfNames: ['Gemma3ForCausalLM'],
    arch: 'gemma3',
    keys: GEMMA3_KEYS,
    tensors: { ...GEMMA, ...QK_NORM },
    permuteQK: false,
    normShift: 1,
    trimEmbedding: true,
    spmAddSpacePrefix: false,
  },
  {
    hfNames: ['Phi3ForCausalLM'],
    arch: 'phi3',
    baseKeys: PHI3_BASE_KEYS,
    keys: PHI3_KEYS,
    tensors: PHI3,
    permuteQK: false,
    shapes: (h) => ({ attn_qkv: [(h.nHead + 2 * h.nHeadKv) * h.headDim, h.nEmbd], ffn_up: [2 * h.nFf, h.nEmbd] }),
  },
];

// ---- reading config.json ----------------------------------------------------------------------------

/** Hyperparameters read from config.json, checked. */
export interface Hparams {
  arch: ArchitectureSpec;
  hfArch: string;
  nLayer: number;
  nEmbd: number;
  nFf: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  /** Experts (0 for a dense model), experts used per token, and one expert's feed-forward size. */
  nExpert: number;
  nExpertUsed: number;
  nFfExp: number;
  nCtx: number | undefined;
  vocabSize: number | undefined;
  rmsEps: number | undefined;
  ropeTheta: number | undefined;
  /** rope theta of the sliding-window layers (Gemma 3's rope_local_base_freq). */
  ropeThetaSwa: number | undefined;
  tiedEmbeddings: boolean;
  /** rope_scaling / rope_parameters, normalised. */
  rope: Json;
  config: Json;
}

function int(config: Json, keys: string[], where: string, optional = false): number | undefined {
  for (const k of keys) {
    const v = config[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      throw new FormatError(where, undefined, `"${k}" is ${JSON.stringify(v)}, expected a non-negative integer`);
    }
    return v;
  }
  if (optional) return undefined;
  throw new FormatError(where, undefined, `has no "${keys[0]}"${keys.length > 1 ? ` (nor ${keys.slice(1).map((k) => `"${k}"`).join(', ')})` : ''}`);
}

function num(config: Json, keys: string[], where: string): number | undefined {
  for (const k of keys) {
    const v = config[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new FormatError(where, undefined, `"${k}" is ${JSON.stringify(v)}, expected a number`);
    return v;
  }
  return undefined;
}

/** The Hugging Face classes wgarray converts, for messages. */
export function supportedArchitectures(): string {
  return ARCHITECTURES.flatMap((a) => a.hfNames).join(', ');
}

/** Reads and checks config.json; an architecture it does not handle is an error naming what it found. */
export function readHparams(rawConfig: Json, where: string): Hparams {
  let config = rawConfig;
  if (config.text_config && typeof config.text_config === 'object') config = { ...config, ...(config.text_config as Json) };
  const names = Array.isArray(config.architectures) ? (config.architectures as unknown[]).map(String) : [];
  const hfArch = names[0];
  const spec = ARCHITECTURES.find((a) => a.hfNames.includes(hfArch));
  if (!spec) {
    const found = hfArch ? `architecture ${hfArch}${config.model_type ? ` (model_type ${String(config.model_type)})` : ''}` : 'no "architectures" list';
    throw new FormatError(where, undefined, `${found}; wgarray converts ${supportedArchitectures()}`);
  }
  const nLayer = int(config, ['num_hidden_layers', 'n_layers', 'n_layer', 'num_layers'], where)!;
  const nEmbd = int(config, ['hidden_size', 'n_embd', 'dim'], where)!;
  const nFf = int(config, ['intermediate_size', 'n_inner', 'hidden_dim'], where)!;
  const nHead = int(config, ['num_attention_heads', 'n_head', 'n_heads'], where)!;
  const nHeadKv = int(config, ['num_key_value_heads', 'n_kv_heads'], where, true) ?? nHead;
  if (nLayer === 0 || nEmbd === 0 || nFf === 0 || nHead === 0 || nHeadKv === 0) {
    throw new FormatError(where, undefined, `hyperparameters must be positive (layers ${nLayer}, hidden ${nEmbd}, ffn ${nFf}, heads ${nHead}/${nHeadKv})`);
  }
  if (nHead % nHeadKv !== 0) throw new FormatError(where, undefined, `num_attention_heads ${nHead} is not a multiple of num_key_value_heads ${nHeadKv}`);
  const headDim = int(config, ['head_dim'], where, true) ?? nEmbd / nHead;
  if (!Number.isInteger(headDim) || headDim === 0) {
    throw new FormatError(where, undefined, `hidden_size ${nEmbd} is not a multiple of num_attention_heads ${nHead} and there is no head_dim`);
  }
  if (spec.permuteQK && headDim % 2 !== 0) throw new FormatError(where, undefined, `head dimension ${headDim} is odd; rope needs pairs`);
  let nExpert = 0;
  let nExpertUsed = 0;
  let nFfExp = nFf;
  if (spec.moe) {
    nExpert = int(config, ['num_local_experts', 'num_experts'], where)!;
    nExpertUsed = int(config, ['num_experts_per_tok'], where)!;
    nFfExp = int(config, ['moe_intermediate_size'], where, true) ?? nFf;
    if (nExpert === 0 || nExpertUsed === 0 || nExpertUsed > nExpert || nFfExp === 0) {
      throw new FormatError(where, undefined, `expert counts must be positive and num_experts_per_tok at most the experts (experts ${nExpert}, used ${nExpertUsed}, expert ffn ${nFfExp})`);
    }
  }
  // transformers v5 nests rope_parameters per attention kind (full_attention / sliding_attention)
  const ropeAll = (config.rope_parameters ?? config.rope_scaling ?? {}) as Json;
  const rope: Json = { ...((ropeAll.full_attention ?? ropeAll) as Json) };
  const ropeTheta = num(config, ['rope_theta', 'rotary_emb_base'], where) ?? num(rope, ['rope_theta'], where);
  const ropeThetaSwa =
    num((ropeAll.sliding_attention ?? {}) as Json, ['rope_theta'], where) ??
    num(config, ['local_rope_theta', 'rope_local_theta', 'rope_theta_local', 'swa_rope_theta', 'rope_local_base_freq'], where);
  if (rope.rope_type === undefined && rope.type !== undefined) rope.rope_type = rope.type;
  return {
    arch: spec,
    hfArch,
    nLayer,
    nEmbd,
    nFf,
    nHead,
    nHeadKv,
    headDim,
    nExpert,
    nExpertUsed,
    nFfExp,
    nCtx: int(config, ['max_position_embeddings', 'n_ctx', 'n_positions', 'max_length', 'max_sequence_length'], where, true),
    vocabSize: int(config, ['vocab_size'], where, true),
    rmsEps: num(config, ['rms_norm_eps', 'norm_eps'], where),
    ropeTheta,
    ropeThetaSwa,
    tiedEmbeddings: config.tie_word_embeddings === true,
    rope,
    config,
  };
}

// ---- metadata -----------------------------------------------------------------------------------------

/** gguf-py's size_label: parameters rounded to two significant digits with K/M/B/T. */
export function sizeLabel(params: number): string {
  let scaled: number;
  let suffix: string;
  if (params > 1e12) [scaled, suffix] = [params * 1e-12, 'T'];
  else if (params > 1e9) [scaled, suffix] = [params * 1e-9, 'B'];
  else if (params > 1e6) [scaled, suffix] = [params * 1e-6, 'M'];
  else [scaled, suffix] = [params * 1e-3, 'K'];
  const digits = String(Math.round(scaled)).replace(/^0+/, '').length;
  return `${scaled.toFixed(Math.max(2 - digits, 0))}${suffix}`;
}

export interface ModelMetadataOptions {
  /** general.name. */
  name: string;
  /** general.file_type (llama_ftype). */
  ftype: number;
  /** Weights in the model (for general.size_label). */
  parameterCount: number;
}

function writeKeys(m: Metadata, arch: string, keys: readonly KeySpec[], h: Hparams): void {
  for (const k of keys) {
    const v = k.value(h);
    if (v === undefined) continue;
    const key = `${arch}.${k.key}`;
    if (k.type === 'u32') m.u32(key, v as number);
    else if (k.type === 'f32') m.f32(key, v as number);
    else if (k.type === 'bool') m.bool(key, v as boolean);
    else m.string(key, v as string);
  }
}

/** general.* and <arch>.* keys as convert_hf_to_gguf.py writes them. */
export function modelMetadata(h: Hparams, options: ModelMetadataOptions): Metadata {
  const a = h.arch.arch;
  const m = new Metadata();
  m.string('general.architecture', a);
  m.string('general.type', 'model');
  m.string('general.name', options.name);
  if (options.parameterCount > 0) m.string('general.size_label', sizeLabel(options.parameterCount));
  writeKeys(m, a, h.arch.baseKeys ?? TEXT_MODEL_KEYS, h);
  m.u32('general.file_type', options.ftype);
  writeKeys(m, a, h.arch.keys, h);
  m.u32('general.quantization_version', 2);
  return m;
}

/** The tensors convert_hf_to_gguf.py computes rather than reads: rope_freqs (llama3 scaling), rope_factors_long/short (Phi-3 longrope). */
export function generatedTensors(h: Hparams): { name: string; values: Float32Array; why: string }[] {
  const out = [];
  const freqs = llama3RopeFactors(h);
  if (freqs) out.push({ name: 'rope_freqs.weight', values: freqs, why: 'llama3 rope scaling' });
  const lr = h.arch.arch === 'phi3' ? longrope(h) : undefined;
  if (lr) {
    out.push({ name: 'rope_factors_long.weight', values: lr.long, why: 'longrope long_factor' });
    out.push({ name: 'rope_factors_short.weight', values: lr.short, why: 'longrope short_factor' });
  }
  return out;
}

/** llama3 rope scaling: the rope_freqs.weight factors convert_hf_to_gguf.py generates. */
export function llama3RopeFactors(h: Hparams): Float32Array | undefined {
  if (ropeType(h) !== 'llama3') return undefined;
  const base = h.ropeTheta ?? 10000;
  const dim = h.headDim;
  const factor = ropeNum(h, 'factor') ?? 8;
  const low = ropeNum(h, 'low_freq_factor') ?? 1;
  const high = ropeNum(h, 'high_freq_factor') ?? 4;
  const oldCtx = ropeNum(h, 'original_max_position_embeddings') ?? 8192;
  const lowWavelen = oldCtx / low;
  const highWavelen = oldCtx / high;
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    // torch computes the frequencies in float32
    const freq = Math.fround(1 / Math.fround(base ** Math.fround((2 * i) / dim)));
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = factor;
    else {
      const smooth = (oldCtx / wavelen - low) / (high - low);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

// ---- tensors -----------------------------------------------------------------------------------------

/** How one source tensor becomes a GGUF tensor (or part of one). */
export interface TensorMapping {
  /** GGUF name (for a split: the first part's). */
  name: string;
  /** Heads to permute rows over (q: n_head, k: n_head_kv), when the rope layout needs it. */
  permuteHeads?: number;
  /** This is expert `expert` of the stacked 3-D tensor `name`. */
  expert?: number;
  /** A fused tensor split in halves along its rows into these GGUF tensors. */
  split?: readonly string[];
}

const GLOBAL_TENSORS: Record<string, string> = {
  'model.embed_tokens': 'token_embd',
  'model.norm': 'output_norm',
  lm_head: 'output',
};

/** MLX-LM's SwitchGLU projection of each stacked expert tensor. */
const SWITCH_MLP_PROJ: Record<string, string> = { ffn_gate_exps: 'gate_proj', ffn_up_exps: 'up_proj', ffn_down_exps: 'down_proj' };

/**
 * The architecture's patterns compiled once: `{e}` becomes a captured index.
 * Each stacked-expert rule `<moe>.experts.{e}.<w>` also yields MLX-LM's name for
 * the whole stacked tensor, `<moe>.switch_mlp.<gate|up|down>_proj` (mlx_lm's
 * sanitize stacks the experts so; already 3-D, so no expert index).
 */
const compiled = new WeakMap<ArchitectureSpec, { re: RegExp | undefined; exact: string; rule: TensorRule }[]>();
function patterns(spec: ArchitectureSpec) {
  let list = compiled.get(spec);
  if (!list) {
    list = Object.entries(spec.tensors).map(([exact, rule]) => ({
      exact,
      rule,
      re: exact.includes('{e}') ? new RegExp(`^${exact.replace(/\./g, '\\.').replace('{e}', '(\\d+)')}$`) : undefined,
    }));
    for (const [exact, rule] of Object.entries(spec.tensors)) {
      const moe = /^(.*)\.experts\.\{e\}\./.exec(exact);
      const proj = typeof rule.to === 'string' ? SWITCH_MLP_PROJ[rule.to] : undefined;
      if (rule.stack && moe && proj) list.push({ exact: `${moe[1]}.switch_mlp.${proj}`, rule: { to: rule.to }, re: undefined });
    }
    compiled.set(spec, list);
  }
  return list;
}

/**
 * Every Hugging Face tensor name the model's table entry knows for its
 * hyperparameters (weights and biases, `{e}` expanded to each expert, MLX-LM's
 * switch_mlp names of the stacked experts), for mapping GGUF names back through mapTensor.
 */
export function hfTensorNames(h: Hparams): string[] {
  const bases = Object.keys(GLOBAL_TENSORS);
  for (let i = 0; i < h.nLayer; i++) {
    for (const { exact: part } of patterns(h.arch)) {
      if (part.includes('{e}')) for (let e = 0; e < h.nExpert; e++) bases.push(`model.layers.${i}.${part.replace('{e}', String(e))}`);
      else bases.push(`model.layers.${i}.${part}`);
    }
  }
  return bases.flatMap((b) => [`${b}.weight`, `${b}.bias`]);
}

/**
 * The GGUF name of Hugging Face tensor `hfName` (model.layers.3.self_attn.q_proj.weight
 * -> blk.3.attn_q.weight), null for tensors the converter drops (rotary inv_freq),
 * or an error naming the tensor it does not know.
 */
export function mapTensor(hfName: string, h: Hparams, where: string): TensorMapping | null {
  if (hfName.endsWith('.rotary_emb.inv_freq') || hfName.endsWith('.attention.masked_bias') || hfName.endsWith('.attention.bias')) return null;
  // transformers v5 stores fused experts as bare parameters (no .weight)
  const m = /^(.*)\.(weight|bias)$/.exec(hfName) ?? (/\.experts\.(gate_up_proj|down_proj)$/.test(hfName) ? [hfName, hfName, 'weight'] : null);
  if (m) {
    const [, base, suffix] = m;
    if (base === 'lm_head' && h.arch.dropOutput) return null;
    const global = GLOBAL_TENSORS[base];
    if (global) return { name: `${global}.${suffix}` };
    const layer = /^model\.layers\.(\d+)\.(.+)$/.exec(base);
    if (layer) {
      const bid = Number(layer[1]);
      const part = layer[2];
      for (const p of patterns(h.arch)) {
        let expert: number | undefined;
        if (p.re) {
          const e = p.re.exec(part);
          if (!e) continue;
          expert = Number(e[1]);
        } else if (p.exact !== part) continue;
        if (bid >= h.nLayer) throw new FormatError(where, undefined, `tensor ${hfName} is in layer ${bid}, but config.json has ${h.nLayer} layers`);
        if (expert !== undefined && expert >= h.nExpert) {
          throw new FormatError(where, undefined, `tensor ${hfName} is expert ${expert}, but config.json has ${h.nExpert} experts`);
        }
        const to = typeof p.rule.to === 'string' ? [p.rule.to] : p.rule.to;
        const names = to.map((t) => `blk.${bid}.${t}.${suffix}`);
        const mapping: TensorMapping = { name: names[0] };
        if (p.rule.split) mapping.split = names;
        if (expert !== undefined) mapping.expert = expert;
        if (h.arch.permuteQK && p.rule.permute) mapping.permuteHeads = p.rule.permute === 'q' ? h.nHead : h.nHeadKv;
        return mapping;
      }
    }
  }
  throw new FormatError(where, undefined, `cannot map tensor ${hfName} to a GGUF tensor of ${h.arch.arch}`);
}

/** The shape each GGUF tensor must have (row-major), or undefined for one not checked. */
export function expectedShape(ggufName: string, h: Hparams, vocab: number): number[] | undefined {
  const kv = h.nHeadKv * h.headDim;
  const q = h.nHead * h.headDim;
  const m = /^blk\.\d+\.(\w+)\.(weight|bias)$/.exec(ggufName);
  const part = m ? m[1] : ggufName.replace(/\.(weight|bias)$/, '');
  const bias = ggufName.endsWith('.bias');
  const table: Record<string, number[]> = {
    token_embd: [vocab, h.nEmbd],
    output: [vocab, h.nEmbd],
    output_norm: [h.nEmbd],
    attn_norm: [h.nEmbd],
    ffn_norm: [h.nEmbd],
    attn_q: bias ? [q] : [q, h.nEmbd],
    attn_k: bias ? [kv] : [kv, h.nEmbd],
    attn_v: bias ? [kv] : [kv, h.nEmbd],
    attn_output: bias ? [h.nEmbd] : [h.nEmbd, q],
    attn_q_norm: [h.headDim],
    attn_k_norm: [h.headDim],
    post_attention_norm: [h.nEmbd],
    post_ffw_norm: [h.nEmbd],
    ffn_gate: [h.nFf, h.nEmbd],
    ffn_up: [h.nFf, h.nEmbd],
    ffn_down: [h.nEmbd, h.nFf],
    ffn_gate_inp: [h.nExpert, h.nEmbd],
    ffn_gate_exps: [h.nExpert, h.nFfExp, h.nEmbd],
    ffn_up_exps: [h.nExpert, h.nFfExp, h.nEmbd],
    ffn_down_exps: [h.nExpert, h.nEmbd, h.nFfExp],
    ...h.arch.shapes?.(h),
  };
  return bias && h.arch.shapes?.(h)[part] ? [table[part][0]] : table[part];
}

/** The GGUF weights every model of this architecture must have. */
export function requiredTensors(h: Hparams): string[] {
  const parts = new Set<string>();
  for (const rule of Object.values(h.arch.tensors)) for (const t of typeof rule.to === 'string' ? [rule.to] : rule.to) parts.add(t);
  const out = ['token_embd.weight', 'output_norm.weight'];
  for (let i = 0; i < h.nLayer; i++) for (const p of parts) out.push(`blk.${i}.${p}.weight`);
  return out;
}

/**
 * LlamaModel.permute as a row map: output row j takes input row perm[j].
 * Rows split into `heads` groups of 2 x half; within a head, rows of the two
 * halves are interleaved (reshape(heads, 2, half).swapaxes(1, 2)).
 */
export function permuteRows(rows: number, heads: number): Int32Array {
  const perHead = rows / heads;
  if (!Number.isInteger(perHead) || perHead % 2 !== 0) {
    throw new FormatError('q/k permutation', undefined, `${rows} rows do not split into ${heads} heads of an even size`);
  }
  const half = perHead / 2;
  const perm = new Int32Array(rows);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let k = 0; k < 2; k++) perm[h * perHead + i * 2 + k] = h * perHead + k * half + i;
    }
  }
  return perm;
}
