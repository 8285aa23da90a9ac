// One entry per GGUF architecture the forward pass runs (general.architecture):
// how llama.cpp builds its graph (src/models/llama.cpp, qwen2.cpp), as the
// differences the shared llama-family graph needs. A new architecture that is
// a llama-family variant is one more entry here.

export interface ModelArchitecture {
  /** Rotary layout llama.cpp uses (llama_model_rope_type): NORM pairs neighbours, NEOX pairs halves. */
  rope: 'norm' | 'neox';
  /** attn_q/attn_k/attn_v carry biases (blk.N.attn_q.bias, ...). */
  qkvBias: boolean;
}

export const MODEL_ARCHITECTURES: Readonly<Record<string, ModelArchitecture>> = {
  llama: { rope: 'norm', qkvBias: false },
  mistral: { rope: 'norm', qkvBias: false },
  qwen2: { rope: 'neox', qkvBias: true },
};
