// What convert_hf_to_gguf.py does for the llama family: which Hugging Face
// architectures map to which GGUF architecture, the hyperparameters as
// <arch>.* keys with llama.cpp's types, the tensor renaming, and which tensors
// get the q/k row permutation llama.cpp's rope layout needs.

import { FormatError } from '../errors.js';
import { Metadata } from './metadata.js';

type Json = Record<string, unknown>;

export interface ArchitectureSpec {
  /** config.json "architectures" values handled. */
  hfNames: readonly string[];
  /** general.architecture. */
  arch: string;
  /** Permute q_proj/k_proj rows from Hugging Face's rotate-half layout to llama.cpp's interleaved one. */
  permuteQK: boolean;
  /** Writes <arch>.vocab_size and <arch>.rope.dimension_count (LlamaModel does; Qwen2Model does not). */
  llamaExtras: boolean;
}

export const ARCHITECTURES: readonly ArchitectureSpec[] = [
  { hfNames: ['LlamaForCausalLM', 'LLaMAForCausalLM', 'MistralForCausalLM'], arch: 'llama', permuteQK: true, llamaExtras: true },
  { hfNames: ['Qwen2ForCausalLM'], arch: 'qwen2', permuteQK: false, llamaExtras: false },
];

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
  nCtx: number | undefined;
  vocabSize: number | undefined;
  rmsEps: number | undefined;
  ropeTheta: number | undefined;
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

/** Reads and checks config.json; an architecture it does not handle is an error naming what it found. */
export function readHparams(rawConfig: Json, where: string): Hparams {
  let config = rawConfig;
  if (config.text_config && typeof config.text_config === 'object') config = { ...config, ...(config.text_config as Json) };
  const names = Array.isArray(config.architectures) ? (config.architectures as unknown[]).map(String) : [];
  const hfArch = names[0];
  const spec = ARCHITECTURES.find((a) => a.hfNames.includes(hfArch));
  if (!spec) {
    const found = hfArch ? `architecture ${hfArch}${config.model_type ? ` (model_type ${String(config.model_type)})` : ''}` : 'no "architectures" list';
    throw new FormatError(
      where,
      undefined,
      `${found}; wgarray converts ${ARCHITECTURES.flatMap((a) => a.hfNames).join(', ')}`,
    );
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
  if (!Number.isInteger(headDim)) throw new FormatError(where, undefined, `hidden_size ${nEmbd} is not a multiple of num_attention_heads ${nHead} and there is no head_dim`);
  if (spec.permuteQK && headDim % 2 !== 0) throw new FormatError(where, undefined, `head dimension ${headDim} is odd; rope needs pairs`);
  const rope: Json = { ...((config.rope_parameters ?? config.rope_scaling ?? {}) as Json) };
  const ropeTheta = num(config, ['rope_theta', 'rotary_emb_base'], where) ?? num(rope, ['rope_theta'], where);
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
    nCtx: int(config, ['max_position_embeddings', 'n_ctx', 'n_positions', 'max_length', 'max_sequence_length'], where, true),
    vocabSize: int(config, ['vocab_size'], where, true),
    rmsEps: num(config, ['rms_norm_eps', 'norm_eps'], where),
    ropeTheta,
    tiedEmbeddings: config.tie_word_embeddings === true,
    rope,
    config,
  };
}

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

/** general.* and <arch>.* keys as convert_hf_to_gguf.py writes them. */
export function modelMetadata(h: Hparams, options: ModelMetadataOptions): Metadata {
  const a = h.arch.arch;
  const m = new Metadata();
  m.string('general.architecture', a);
  m.string('general.type', 'model');
  m.string('general.name', options.name);
  if (options.parameterCount > 0) m.string('general.size_label', sizeLabel(options.parameterCount));
  m.u32(`${a}.block_count`, h.nLayer);
  if (h.nCtx !== undefined) m.u32(`${a}.context_length`, h.nCtx);
  m.u32(`${a}.embedding_length`, h.nEmbd);
  m.u32(`${a}.feed_forward_length`, h.nFf);
  m.u32(`${a}.attention.head_count`, h.nHead);
  m.u32(`${a}.attention.head_count_kv`, h.nHeadKv);
  const ropeType = typeof h.rope.rope_type === 'string' ? h.rope.rope_type.toLowerCase() : undefined;
  const factor = typeof h.rope.factor === 'number' ? h.rope.factor : undefined;
  if (ropeType === 'linear' && factor !== undefined) {
    m.string(`${a}.rope.scaling.type`, 'linear');
    m.f32(`${a}.rope.scaling.factor`, factor);
  } else if (ropeType === 'yarn' && factor !== undefined) {
    m.string(`${a}.rope.scaling.type`, 'yarn');
    m.f32(`${a}.rope.scaling.factor`, factor);
    const orig = h.rope.original_max_position_embeddings;
    if (typeof orig === 'number') m.u32(`${a}.rope.scaling.original_context_length`, orig);
  }
  if (h.ropeTheta !== undefined) m.f32(`${a}.rope.freq_base`, h.ropeTheta);
  if (h.rmsEps !== undefined) m.f32(`${a}.attention.layer_norm_rms_epsilon`, h.rmsEps);
  if (typeof h.config.head_dim === 'number') {
    m.u32(`${a}.attention.key_length`, h.config.head_dim);
    m.u32(`${a}.attention.value_length`, h.config.head_dim);
  }
  m.u32('general.file_type', options.ftype);
  if (h.arch.llamaExtras) {
    if (h.vocabSize !== undefined) m.u32(`${a}.vocab_size`, h.vocabSize);
    m.u32(`${a}.rope.dimension_count`, h.headDim);
  }
  m.u32('general.quantization_version', 2);
  return m;
}

/** llama3 rope scaling: the rope_freqs.weight factors convert_hf_to_gguf.py generates. */
export function llama3RopeFactors(h: Hparams): Float32Array | undefined {
  const type = typeof h.rope.rope_type === 'string' ? h.rope.rope_type.toLowerCase() : '';
  if (type !== 'llama3') return undefined;
  const base = h.ropeTheta ?? 10000;
  const dim = h.headDim;
  const factor = typeof h.rope.factor === 'number' ? h.rope.factor : 8;
  const low = typeof h.rope.low_freq_factor === 'number' ? h.rope.low_freq_factor : 1;
  const high = typeof h.rope.high_freq_factor === 'number' ? h.rope.high_freq_factor : 4;
  const oldCtx = typeof h.rope.original_max_position_embeddings === 'number' ? h.rope.original_max_position_embeddings : 8192;
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

/** How one source tensor becomes a GGUF tensor. */
export interface TensorMapping {
  /** GGUF name. */
  name: string;
  /** Heads to permute rows over (q: n_head, k: n_head_kv), when the rope layout needs it. */
  permuteHeads?: number;
}

const LAYER_TENSORS: Record<string, string> = {
  'input_layernorm': 'attn_norm',
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.o_proj': 'attn_output',
  'post_attention_layernorm': 'ffn_norm',
  'mlp.gate_proj': 'ffn_gate',
  'mlp.up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down',
};

const GLOBAL_TENSORS: Record<string, string> = {
  'model.embed_tokens': 'token_embd',
  'model.norm': 'output_norm',
  'lm_head': 'output',
};

/** Every Hugging Face tensor name the table knows for `nLayer` layers (weights and biases), for mapping back from GGUF. */
export function hfTensorNames(nLayer: number): string[] {
  const bases = [...Object.keys(GLOBAL_TENSORS)];
  for (let i = 0; i < nLayer; i++) for (const part of Object.keys(LAYER_TENSORS)) bases.push(`model.layers.${i}.${part}`);
  return bases.flatMap((b) => [`${b}.weight`, `${b}.bias`]);
}

/**
 * The GGUF name of Hugging Face tensor `hfName` (model.layers.3.self_attn.q_proj.weight
 * -> blk.3.attn_q.weight), null for tensors the converter drops (rotary inv_freq),
 * or an error naming the tensor it does not know.
 */
export function mapTensor(hfName: string, h: Hparams, where: string): TensorMapping | null {
  if (hfName.endsWith('.rotary_emb.inv_freq') || hfName.endsWith('.attention.masked_bias') || hfName.endsWith('.attention.bias')) return null;
  const m = /^(.*)\.(weight|bias)$/.exec(hfName);
  if (m) {
    const [, base, suffix] = m;
    const global = GLOBAL_TENSORS[base];
    if (global) return { name: `${global}.${suffix}` };
    const layer = /^model\.layers\.(\d+)\.(.+)$/.exec(base);
    if (layer) {
      const bid = Number(layer[1]);
      const part = LAYER_TENSORS[layer[2]];
      if (part && bid < h.nLayer) {
        const mapping: TensorMapping = { name: `blk.${bid}.${part}.${suffix}` };
        if (h.arch.permuteQK && part === 'attn_q') mapping.permuteHeads = h.nHead;
        if (h.arch.permuteQK && part === 'attn_k') mapping.permuteHeads = h.nHeadKv;
        return mapping;
      }
      if (part) throw new FormatError(where, undefined, `tensor ${hfName} is in layer ${bid}, but config.json has ${h.nLayer} layers`);
    }
  }
  throw new FormatError(where, undefined, `cannot map tensor ${hfName} to a GGUF tensor of ${h.arch.arch}`);
}

/** The shape each llama-family tensor must have, or undefined for one not checked. */
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
    ffn_gate: [h.nFf, h.nEmbd],
    ffn_up: [h.nFf, h.nEmbd],
    ffn_down: [h.nEmbd, h.nFf],
  };
  return table[part];
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
