// A small llama-family model made from a fixed seed, as a Hugging Face folder
// would hold it: config.json, a byte-level BPE tokenizer (tokenizer.json,
// tokenizer_config.json) learned from embedded text, and bfloat16 weights.
// `wgarray demo` converts one; the tests and bench/e2e.ts build theirs with it.
// Weights come from a seeded PRNG on the CPU, so the same seed gives the same
// model on every machine (with or without a GPU).

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { saveSafetensors } from '../io/safetensors/writer.js';
import { f32ToBf16Bits, f32ToF16Bits } from '../runtime/half.js';
import { learnBpe, LLAMA3_SPLIT_SOURCE, type BpeVocabulary } from './bpe.js';
import { encodeSentencePieceModel, PIECE_TYPE, type Piece, type SentencePieceModel } from './sentencepiece.js';
import { seededNormals } from '../runtime/host-random.js';

export interface SyntheticModelOptions {
  seed?: number;
  /**
   * 'llama' (LlamaForCausalLM), 'qwen2' (Qwen2ForCausalLM: q/k/v biases, no q/k permutation),
   * 'qwen3' (per-head q/k norms), 'smollm3' (every 4th layer without rope),
   * 'qwen3moe' and 'mixtral' (mixtures of experts), 'gemma2' / 'gemma3' (norms as 1 + w,
   * post-norms, soft-capping, sliding windows, tied output), 'phi3' (fused qkv and gate_up).
   */
  arch?: SyntheticArch;
  /** config.json head_dim (default hidden / heads, not written). */
  headDim?: number;
  /** Experts (MoE archs; default 8), used per token (default 2), and one expert's feed-forward size (default ff). */
  experts?: number;
  expertsUsed?: number;
  expertFf?: number;
  /** Experts stored as transformers v5 does: fused 3-D mlp.experts.gate_up_proj and down_proj. */
  fusedExperts?: boolean;
  hidden?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  ff?: number;
  /** Embedding rows (config.json vocab_size); the tokenizer learns vocab - 258 merges. */
  vocab?: number;
  /** Tokens the tokenizer itself has (default: vocab); fewer leaves [PAD] ids. */
  tokenizerVocab?: number;
  /**
   * 'bpe': a byte-level BPE tokenizer.json (Llama 3 style, default); 'spm': a SentencePiece tokenizer.model
   * (Llama 2 style); 'spm-json': the same SentencePiece vocabulary as a tokenizer.json only (Hugging Face's
   * LlamaConverter layout: byte fallback, merges ordered by piece score), as Llama 2 / Mistral folders ship it.
   */
  tokenizer?: 'bpe' | 'spm' | 'spm-json';
  tied?: boolean;
  dtype?: 'bfloat16' | 'float16' | 'float32';
  /** config.json rope_scaling. */
  ropeScaling?: Record<string, unknown>;
  maxPositions?: number;
}

export type SyntheticArch = 'llama' | 'qwen2' | 'qwen3' | 'smollm3' | 'qwen3moe' | 'mixtral' | 'gemma2' | 'gemma3' | 'phi3';

const HF_CLASS: Record<SyntheticArch, [string, string]> = {
  llama: ['LlamaForCausalLM', 'llama'],
  qwen2: ['Qwen2ForCausalLM', 'qwen2'],
  qwen3: ['Qwen3ForCausalLM', 'qwen3'],
  smollm3: ['SmolLM3ForCausalLM', 'smollm3'],
  qwen3moe: ['Qwen3MoeForCausalLM', 'qwen3_moe'],
  mixtral: ['MixtralForCausalLM', 'mixtral'],
  gemma2: ['Gemma2ForCausalLM', 'gemma2'],
  gemma3: ['Gemma3ForCausalLM', 'gemma3_text'],
  phi3: ['Phi3ForCausalLM', 'phi3'],
};

export interface SyntheticTensor {
  name: string;
  shape: number[];
  dtype: 'bfloat16' | 'float16' | 'float32';
  /** The values (float32, before rounding to dtype). */
  values(): Float32Array;
  /** The bytes as the file stores them. */
  bytes(): Uint8Array;
}

export interface SyntheticModel {
  config: Record<string, unknown>;
  /** tokenizer.json, or undefined for a SentencePiece model. */
  tokenizer: Record<string, unknown> | undefined;
  /** The SentencePiece vocabulary of an 'spm' or 'spm-json' tokenizer. */
  sentencePiece?: SentencePieceModel;
  /** Written as tokenizer.model (else as tokenizer.json only). */
  sentencePieceFile?: boolean;
  tokenizerConfig: Record<string, unknown>;
  bpe: BpeVocabulary;
  tensors: SyntheticTensor[];
  parameterCount: number;
}

/** Text the demo tokenizer learns its merges from (any ordinary English works). */
export const DEMO_CORPUS = `
Quantization stores the weights of a language model in fewer bits. A weight that took sixteen bits
takes four or five, and the model fits in the memory of a laptop. The trick is to keep the error small:
blocks of thirty-two or two hundred and fifty-six weights share a scale, and each weight keeps only
its position on a short grid. The k-quants give some blocks more bits than others, and the tensors
that matter most, like the output projection and the value projection, get more bits still.
The model is then saved as a single file. The file starts with a header that names every tensor,
gives its shape and its type, and lists the metadata a runtime needs: the number of layers, the
number of heads, the size of the vocabulary and the tokens themselves. Then come the tensors,
each one aligned, one after the other. A runtime maps the file into memory and starts at once.
Converting a model from the format it was trained in is mostly bookkeeping. The names of the
tensors change, the rows of the query and key projections are reordered for the rotary embedding,
and the tokenizer is written out as a list of tokens and a list of merges. Then the numbers are
rounded. It is easy to get one of these steps wrong, and a model that loads can still talk nonsense,
so the only real test is to run the model and read what it says. The quick brown fox jumps over the
lazy dog. She sells sea shells by the sea shore. It was the best of times, it was the worst of times.
In the beginning the weights were random, and then the model read the text, and the text was good.
Numbers like 1, 2, 3, 10, 42, 100, 256 and 4096 appear too, as do questions: what is the capital of
France? Paris is the capital of France. What is two plus two? Two plus two is four.
`;

function encode(values: Float32Array, dtype: SyntheticTensor['dtype']): Uint8Array {
  if (dtype === 'float32') return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  const bits = new Uint16Array(values.length);
  const conv = dtype === 'bfloat16' ? f32ToBf16Bits : f32ToF16Bits;
  for (let i = 0; i < values.length; i++) bits[i] = conv(values[i]);
  return new Uint8Array(bits.buffer);
}

/** A string hash, so each tensor's values depend on (seed, name) alone. */
function hash(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export const BOS = '<|begin_of_text|>';
export const EOS = '<|end_of_text|>';

/** Builds the model description; tensor values are made when asked for (one tensor at a time). */
export function syntheticModel(options: SyntheticModelOptions = {}): SyntheticModel {
  const seed = options.seed ?? 1234;
  const arch = options.arch ?? 'llama';
  const hidden = options.hidden ?? 256;
  const layers = options.layers ?? 4;
  const heads = options.heads ?? 8;
  const kvHeads = options.kvHeads ?? 2;
  const ff = options.ff ?? 768;
  const vocab = options.vocab ?? 512;
  const dtype = options.dtype ?? 'bfloat16';
  const headDim = options.headDim ?? hidden / heads;
  const moe = arch === 'qwen3moe' || arch === 'mixtral';
  const experts = moe ? (options.experts ?? 8) : 0;
  const expertFf = options.expertFf ?? ff;

  const tokenizerVocab = Math.min(options.tokenizerVocab ?? vocab, vocab);
  const bpe = learnBpe(DEMO_CORPUS, Math.max(0, tokenizerVocab - 256 - 2));
  const spm = options.tokenizer === 'spm' || options.tokenizer === 'spm-json' ? learnSentencePiece(DEMO_CORPUS, tokenizerVocab) : undefined;
  const bosId = spm ? 1 : bpe.vocab.size;
  const eosId = spm ? 2 : bosId + 1;

  const added = [BOS, EOS].map((content, i) => ({
    id: bosId + i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: LLAMA3_SPLIT_SOURCE }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: BOS, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: BOS, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: BOS, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [BOS]: { id: BOS, ids: [bosId], tokens: [BOS] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: true,
      vocab: Object.fromEntries(bpe.vocab),
      merges: bpe.merges,
    },
  };
  const tokenizerConfig: Record<string, unknown> = spm
    ? {
        bos_token: '<s>',
        eos_token: '</s>',
        unk_token: '<unk>',
        add_bos_token: true,
        add_eos_token: false,
        model_max_length: options.maxPositions ?? 2048,
        tokenizer_class: 'LlamaTokenizer',
      }
    : {
    bos_token: BOS,
    eos_token: EOS,
    clean_up_tokenization_spaces: true,
    model_max_length: options.maxPositions ?? 2048,
    tokenizer_class: 'PreTrainedTokenizerFast',
    added_tokens_decoder: Object.fromEntries(added.map((t) => [String(t.id), { ...t, id: undefined }])),
    chat_template: "{% for m in messages %}{{ '<|begin_of_text|>' + m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}",
      };
  const config: Record<string, unknown> = {
    architectures: [HF_CLASS[arch][0]],
    model_type: HF_CLASS[arch][1],
    hidden_size: hidden,
    intermediate_size: ff,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    max_position_embeddings: options.maxPositions ?? 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    vocab_size: vocab,
    hidden_act: 'silu',
    tie_word_embeddings: options.tied ?? (arch === 'gemma2' || arch === 'gemma3'),
    bos_token_id: bosId,
    eos_token_id: eosId,
    torch_dtype: dtype,
    attention_bias: arch === 'qwen2',
  };
  if (options.ropeScaling) config.rope_scaling = options.ropeScaling;
  if (options.headDim !== undefined) config.head_dim = options.headDim;
  if (arch === 'smollm3') {
    config.no_rope_layer_interval = 4;
    config.no_rope_layers = Array.from({ length: layers }, (_, i) => ((i + 1) % 4 !== 0 ? 1 : 0));
  }
  if (arch === 'qwen3moe') {
    Object.assign(config, { num_experts: experts, num_experts_per_tok: options.expertsUsed ?? 2, moe_intermediate_size: expertFf, norm_topk_prob: true, decoder_sparse_step: 1, mlp_only_layers: [] });
  }
  if (arch === 'mixtral') Object.assign(config, { num_local_experts: experts, num_experts_per_tok: options.expertsUsed ?? 2 });
  const gemma = arch === 'gemma2' || arch === 'gemma3';
  if (gemma) {
    // small windows so that the tests' prompts reach past them
    Object.assign(config, { head_dim: headDim, query_pre_attn_scalar: headDim, sliding_window: 4, hidden_activation: 'gelu_pytorch_tanh', rms_norm_eps: 1e-6, tie_word_embeddings: true });
    delete config.hidden_act;
  }
  if (arch === 'gemma2') Object.assign(config, { attn_logit_softcapping: 50, final_logit_softcapping: 30 });
  if (arch === 'gemma3') {
    Object.assign(config, {
      rope_theta: 100000,
      rope_local_base_freq: 1000,
      rope_scaling: { rope_type: 'linear', factor: 2 },
      sliding_window_pattern: 6,
      layer_types: Array.from({ length: layers }, (_, i) => ((i + 1) % 6 !== 0 ? 'sliding_attention' : 'full_attention')),
      final_logit_softcapping: null,
      attn_logit_softcapping: null,
    });
  }
  if (arch === 'phi3') Object.assign(config, { original_max_position_embeddings: 2048, sliding_window: null });

  const tensors: SyntheticTensor[] = [];
  const add = (name: string, shape: number[], std: number, mean = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = () => seededNormals(n, hash(name, seed), std, mean);
    tensors.push({ name, shape, dtype, values, bytes: () => encode(values(), dtype) });
  };
  // Scales chosen so the random model's next-token distributions are peaked
  // (logits with a standard deviation of ~4): greedy decoding is then stable
  // under small perturbations, and quantization error shows as rare flips.
  const gemmaModel = arch === 'gemma2' || arch === 'gemma3';
  // Gemma scales the embedding by sqrt(hidden) (kept at unit size here, so that the layers, not the
  // tied embedding alone, decide the next token) and its norms by 1 + w: stored weights centred on 0
  const normMean = gemmaModel ? 0 : 1;
  add('model.embed_tokens.weight', [vocab, hidden], gemmaModel ? 1 / Math.sqrt(hidden) : 1);
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, [hidden], 0.05, normMean);
    if (arch === 'phi3') {
      add(`${p}.self_attn.qkv_proj.weight`, [(heads + 2 * kvHeads) * headDim, hidden], 1 / Math.sqrt(hidden));
      add(`${p}.self_attn.o_proj.weight`, [hidden, heads * headDim], 0.5 / Math.sqrt(heads * headDim));
      add(`${p}.post_attention_layernorm.weight`, [hidden], 0.05, 1);
      add(`${p}.mlp.gate_up_proj.weight`, [2 * ff, hidden], 1 / Math.sqrt(hidden));
      add(`${p}.mlp.down_proj.weight`, [hidden, ff], 0.5 / Math.sqrt(ff));
      continue;
    }
    add(`${p}.self_attn.q_proj.weight`, [heads * headDim, hidden], 1 / Math.sqrt(hidden));
    add(`${p}.self_attn.k_proj.weight`, [kvHeads * headDim, hidden], 1 / Math.sqrt(hidden));
    add(`${p}.self_attn.v_proj.weight`, [kvHeads * headDim, hidden], 0.5 / Math.sqrt(hidden));
    if (arch === 'qwen2') {
      add(`${p}.self_attn.q_proj.bias`, [heads * headDim], 0.1);
      add(`${p}.self_attn.k_proj.bias`, [kvHeads * headDim], 0.1);
      add(`${p}.self_attn.v_proj.bias`, [kvHeads * headDim], 0.1);
    }
    add(`${p}.self_attn.o_proj.weight`, [hidden, heads * headDim], 0.5 / Math.sqrt(heads * headDim));
    if (arch === 'qwen3' || arch === 'qwen3moe' || arch === 'gemma3') {
      add(`${p}.self_attn.q_norm.weight`, [headDim], 0.05, normMean);
      add(`${p}.self_attn.k_norm.weight`, [headDim], 0.05, normMean);
    }
    add(`${p}.post_attention_layernorm.weight`, [hidden], 0.05, normMean);
    if (gemmaModel) {
      add(`${p}.pre_feedforward_layernorm.weight`, [hidden], 0.05, 0);
      add(`${p}.post_feedforward_layernorm.weight`, [hidden], 0.05, 0);
    }
    if (!moe) {
      add(`${p}.mlp.gate_proj.weight`, [ff, hidden], 1 / Math.sqrt(hidden));
      add(`${p}.mlp.up_proj.weight`, [ff, hidden], 1 / Math.sqrt(hidden));
      add(`${p}.mlp.down_proj.weight`, [hidden, ff], 0.5 / Math.sqrt(ff));
      continue;
    }
    const m = arch === 'mixtral' ? `${p}.block_sparse_moe` : `${p}.mlp`;
    // a router that prefers a few experts per token clearly (so float32 and float64 pick the same ones)
    add(`${m}.gate.weight`, [experts, hidden], 3 / Math.sqrt(hidden));
    if (options.fusedExperts) {
      add(`${m}.experts.gate_up_proj`, [experts, 2 * expertFf, hidden], 1 / Math.sqrt(hidden));
      add(`${m}.experts.down_proj`, [experts, hidden, expertFf], 0.5 / Math.sqrt(expertFf));
      continue;
    }
    const [gate, up, down] = arch === 'mixtral' ? ['w1', 'w3', 'w2'] : ['gate_proj', 'up_proj', 'down_proj'];
    for (let e = 0; e < experts; e++) {
      add(`${m}.experts.${e}.${gate}.weight`, [expertFf, hidden], 1 / Math.sqrt(hidden));
      add(`${m}.experts.${e}.${up}.weight`, [expertFf, hidden], 1 / Math.sqrt(hidden));
      add(`${m}.experts.${e}.${down}.weight`, [hidden, expertFf], 0.5 / Math.sqrt(expertFf));
    }
  }
  // Gemma's final norm at 1 + 3: logits as peaked as the untied models' (standard deviation ~4)
  add('model.norm.weight', [hidden], 0.05, gemmaModel ? 3 : 1);
  if (!config.tie_word_embeddings) add('lm_head.weight', [vocab, hidden], 4 / Math.sqrt(hidden));
  const parameterCount = tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const json = options.tokenizer === 'spm-json' ? sentencePieceTokenizerJson(spm!) : spm ? undefined : tokenizer;
  return { config, tokenizer: json, sentencePiece: spm, sentencePieceFile: options.tokenizer === 'spm', tokenizerConfig, bpe, tensors, parameterCount };
}

/** Writes `model` as a Hugging Face folder: config.json, tokenizer files and (sharded past maxShardBytes) safetensors. */
export async function writeSyntheticModel(
  dir: string,
  model: SyntheticModel,
  options: { maxShardBytes?: number; signal?: AbortSignal } = {},
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const json = (name: string, value: unknown) => writeFile(join(dir, name), JSON.stringify(value, null, 2) + '\n');
  await json('config.json', model.config);
  if (model.tokenizer) await json('tokenizer.json', model.tokenizer);
  if (model.sentencePiece && model.sentencePieceFile !== false) await writeFile(join(dir, 'tokenizer.model'), encodeSentencePieceModel(model.sentencePiece));
  await json('tokenizer_config.json', model.tokenizerConfig);
  const tensors = model.tensors.map((t) => [t.name, { shape: t.shape, dtype: t.dtype, produce: () => t.bytes() }] as const);
  const saved = await saveSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' }, {
    maxShardBytes: options.maxShardBytes,
    signal: options.signal,
  });
  const tokenizerFile = join(dir, model.sentencePiece && model.sentencePieceFile !== false ? 'tokenizer.model' : 'tokenizer.json');
  return [join(dir, 'config.json'), tokenizerFile, join(dir, 'tokenizer_config.json'), ...saved.files];
}

/**
 * A SentencePiece BPE vocabulary of `size` pieces learned from `text`, laid out
 * as Llama 2's: <unk>, <s>, </s>, the 256 byte pieces <0x00>..<0xFF>, the
 * text's characters, then merged pieces; a piece's score ranks its merge
 * (earlier merges score higher), which is what SentencePiece's BPE encoder
 * and llama.cpp's SPM tokenizer merge by.
 */
export function learnSentencePiece(text: string, size: number): SentencePieceModel {
  const pieces: Piece[] = [
    { piece: '<unk>', score: 0, type: PIECE_TYPE.UNKNOWN },
    { piece: '<s>', score: 0, type: PIECE_TYPE.CONTROL },
    { piece: '</s>', score: 0, type: PIECE_TYPE.CONTROL },
  ];
  for (let b = 0; b < 256; b++) pieces.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, score: 0, type: PIECE_TYPE.BYTE });
  // words as SentencePiece sees them: whitespace becomes U+2581 and starts the word it precedes
  const normalized = ('\u2581' + text.trim().replace(/\s+/g, ' ')).replaceAll(' ', '\u2581');
  const words = new Map<string, number>();
  for (const w of normalized.split(/(?=\u2581)/u)) words.set(w, (words.get(w) ?? 0) + 1);
  const chars = [...new Set([...normalized])].sort();
  let list = [...words].map(([w, n]) => ({ pieces: [...w], n }));
  const known = new Set<string>(chars);
  const merged: string[] = [];
  while (pieces.length + chars.length + merged.length < size) {
    const pairs = new Map<string, number>();
    for (const { pieces: p, n } of list) for (let i = 0; i + 1 < p.length; i++) pairs.set(`${p[i]}\u0000${p[i + 1]}`, (pairs.get(`${p[i]}\u0000${p[i + 1]}`) ?? 0) + n);
    let best: string | undefined;
    let bestN = 0;
    for (const [k, n] of pairs) if (n > bestN || (n === bestN && best !== undefined && k < best)) [best, bestN] = [k, n];
    if (!best) break;
    const [a, b] = best.split('\u0000');
    list = list.map(({ pieces: p, n }) => {
      const out: string[] = [];
      for (let i = 0; i < p.length; i++) {
        if (i + 1 < p.length && p[i] === a && p[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(p[i]);
      }
      return { pieces: out, n };
    });
    if (!known.has(a + b)) {
      known.add(a + b);
      merged.push(a + b);
    }
  }
  // merged pieces score by rank; single characters below every merge
  merged.forEach((piece, i) => pieces.push({ piece, score: -i, type: PIECE_TYPE.NORMAL }));
  chars.forEach((piece, i) => pieces.push({ piece, score: -(merged.length + i), type: PIECE_TYPE.NORMAL }));
  return { pieces, addDummyPrefix: true };
}

/**
 * A SentencePiece BPE vocabulary as transformers' LlamaConverter writes it to
 * tokenizer.json: the pieces as a BPE vocab with byte fallback, U+2581 for
 * spaces with one prepended, and merges of every split of a piece into two
 * pieces, ordered by the merged piece's score (best first).
 */
export function sentencePieceTokenizerJson(spm: SentencePieceModel): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  spm.pieces.forEach((p, id) => (vocab[p.piece] = id));
  const merges: { pair: [string, string]; score: number; ids: [number, number] }[] = [];
  spm.pieces.forEach((p) => {
    if (p.type !== PIECE_TYPE.NORMAL) return;
    const chars = [...p.piece];
    for (let k = 1; k < chars.length; k++) {
      const a = chars.slice(0, k).join('');
      const b = chars.slice(k).join('');
      if (vocab[a] !== undefined && vocab[b] !== undefined) merges.push({ pair: [a, b], score: p.score, ids: [vocab[a], vocab[b]] });
    }
  });
  merges.sort((x, y) => y.score - x.score || x.ids[0] - y.ids[0] || x.ids[1] - y.ids[1]);
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '\u2581' },
        { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: merges.map((m) => m.pair),
    },
  };
}
