// One entry per GGUF architecture the forward pass runs (general.architecture):
// how llama.cpp builds its graph (src/models/<arch>.cpp, llm_graph_context's
// build_attn / build_ffn / build_moe_ffn), as the differences from the shared
// llama-family graph. A new architecture that is a llama-family variant is one
// more entry here. Facts that are per file rather than per architecture are
// read from the GGUF by model.ts whatever the entry: a fused attn_qkv (any
// arch, as llama.cpp's create_tensor_qkv accepts it), experts (expert_count
// and blk.N.ffn_gate_inp), rope scaling keys.

/** Which layers use sliding-window attention and with which rope (llama.cpp's load_arch_hparams). */
export interface SlidingWindowSpec {
  /** Window when the GGUF has no attention.sliding_window; undefined: no sliding layers without the key (gemma3). */
  defaultWindow?: number;
  /** Layer l slides when l % pattern < pattern - 1 (llama_hparams::set_swa_pattern), unless attention.sliding_window_pattern says otherwise. */
  pattern: number;
  /** The sliding layers' rope: freq base from rope.freq_base_swa, else the global base (true) or 10000 (false); frequency scale the global one (true) or 1 (false). */
  swaRopeFromGlobal: boolean;
}

export interface ModelArchitecture {
  /** Rotary layout llama.cpp uses (llama_model_rope_type): NORM pairs neighbours, NEOX pairs halves. */
  rope: 'norm' | 'neox';
  /** attn_q/attn_k/attn_v carry biases (blk.N.attn_q.bias, ...). */
  qkvBias: boolean;
  /** attn_q_norm / attn_k_norm: RMSNorm over each head of q and k before rope (qwen3, gemma3). */
  qkNorm?: boolean;
  /** post_attention_norm / post_ffw_norm: RMSNorm of the attention and MLP outputs before each residual add (gemma2/3). */
  postNorms?: boolean;
  /** The gated MLP's activation: silu (SwiGLU) or GELU's tanh approximation (GeGLU). */
  activation: 'silu' | 'gelu';
  /** Token embeddings scaled by sqrt(n_embd) (gemma). */
  embeddingScale?: boolean;
  /** The graph hands rope_freqs / rope_factors_long|short to rope (llama's and phi3's get_rope_factors; qwen3, gemma and smollm3 pass none). */
  ropeFactors?: boolean;
  /** Layer l runs without rope when (l + 1) % noRopeEvery == 0 (smollm3's n_no_rope_layer_step). */
  noRopeEvery?: number;
  slidingWindow?: SlidingWindowSpec;
  /** Attention scores soft-capped by <arch>.attn_logit_softcapping, this value when the key is absent (gemma2's attn_soft_cap). */
  attnSoftcapDefault?: number;
  /** Logits soft-capped by <arch>.final_logit_softcapping, this value when the key is absent (0: none unless the key says so). */
  finalSoftcapDefault?: number;
  /** Query scale (default 1/sqrt(head_dim)): gemma's f_attention_scale. */
  queryScale?: (c: { embedding: number; heads: number; headDim: number; layers: number }) => number;
}

/** Gemma 2/3's f_attention_scale: 1/sqrt(head_dim), except the 27B models' 1/sqrt(n_embd / n_head) (llama.cpp ignores query_pre_attn_scalar otherwise). */
const gemmaQueryScale = (layers27b: number) => (c: { embedding: number; heads: number; headDim: number; layers: number }) =>
  c.layers === layers27b ? 1 / Math.sqrt(Math.floor(c.embedding / c.heads)) : 1 / Math.sqrt(c.headDim);

export const MODEL_ARCHITECTURES: Readonly<Record<string, ModelArchitecture>> = {
  // Mixtral is `llama` with experts
  llama: { rope: 'norm', qkvBias: false, activation: 'silu', ropeFactors: true },
  mistral: { rope: 'norm', qkvBias: false, activation: 'silu', ropeFactors: true },
  qwen2: { rope: 'neox', qkvBias: true, activation: 'silu' },
  qwen3: { rope: 'neox', qkvBias: false, activation: 'silu', qkNorm: true },
  qwen3moe: { rope: 'neox', qkvBias: false, activation: 'silu', qkNorm: true },
  smollm3: { rope: 'norm', qkvBias: false, activation: 'silu', noRopeEvery: 4 },
  // Phi-3's sliding window is switched off in llama.cpp (load_arch_hparams: "Phi SWA is currently disabled")
  phi3: { rope: 'neox', qkvBias: false, activation: 'silu', ropeFactors: true },
  gemma2: {
    rope: 'neox',
    qkvBias: false,
    activation: 'gelu',
    postNorms: true,
    embeddingScale: true,
    slidingWindow: { defaultWindow: 4096, pattern: 2, swaRopeFromGlobal: true },
    attnSoftcapDefault: 50,
    finalSoftcapDefault: 30,
    queryScale: gemmaQueryScale(46),
  },
  gemma3: {
    rope: 'neox',
    qkvBias: false,
    activation: 'gelu',
    qkNorm: true,
    postNorms: true,
    embeddingScale: true,
    slidingWindow: { pattern: 6, swaRopeFromGlobal: false },
    finalSoftcapDefault: 0,
    queryScale: gemmaQueryScale(62),
  },
};
