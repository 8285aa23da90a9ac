// A Hugging Face Llama / Qwen2 / Qwen3 / SmolLM3 / Qwen3-MoE / Mixtral /
// Gemma 2 / Gemma 3 / Phi-3 forward pass on the CPU, in float64, from the
// weights as the safetensors file holds them, with the transformers modeling
// code's semantics: rotate-half rope on unpermuted q/k; per-head q/k RMS
// norms; SmolLM3's no-rope layers; softmax top-k routing over experts,
// renormalised (Qwen3MoeSparseMoeBlock with norm_topk_prob, Mixtral); Gemma's
// sqrt(hidden)-scaled embedding, (1 + w) norms, post-attention/feed-forward
// norms, gelu-tanh, query_pre_attn_scalar, soft-capping, sliding windows and
// local rope base, linear rope scaling on global layers; Phi-3's fused qkv
// and gate_up and longrope short factors with their attention factor. It is the independent reference for `convert`: llama.cpp
// running the converted GGUF must predict the same next tokens, which checks
// the tensor renaming, the q/k permutation and the hyperparameters at once.

import { bf16BitsToF32, f16BitsToF32 } from '../../src/runtime/half.js';
import type { SyntheticModel } from '../../src/convert/synthetic.js';
import { PIECE_TYPE, type SentencePieceModel } from '../../src/convert/sentencepiece.js';

type Mat = { rows: number; cols: number; w: Float64Array };

const decoded = new WeakMap<SyntheticModel, Map<string, Float64Array>>();

/** A tensor's values as the file stores them (rounded to its dtype), decoded once per model. */
function values(model: SyntheticModel, name: string): Float64Array {
  let cache = decoded.get(model);
  if (!cache) decoded.set(model, (cache = new Map()));
  let v = cache.get(name);
  if (!v) cache.set(name, (v = decode(model, name)));
  return v;
}

function decode(model: SyntheticModel, name: string): Float64Array {
  const t = model.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  const bytes = t.bytes();
  if (t.dtype === 'float32') return Float64Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
  const bits = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  const conv = t.dtype === 'bfloat16' ? bf16BitsToF32 : f16BitsToF32;
  return Float64Array.from(bits, conv);
}

function mat(model: SyntheticModel, name: string): Mat {
  const t = model.tensors.find((x) => x.name === name)!;
  return { rows: t.shape[0], cols: t.shape[1], w: values(model, name) };
}

/** Rows [from, from + rows) of matrix `e` of a 3-D [n, R, C] tensor. */
function slab(model: SyntheticModel, name: string, e: number, from: number, rows: number): Mat {
  const t = model.tensors.find((x) => x.name === name)!;
  const [, R, C] = t.shape;
  const start = (e * R + from) * C;
  return { rows, cols: C, w: values(model, name).subarray(start, start + rows * C) };
}

interface Expert {
  gate: Mat;
  up: Mat;
  down: Mat;
}

/** The experts of layer `p` in whichever layout the model stores them. */
function experts(model: SyntheticModel, p: string, n: number): Expert[] {
  const has = (name: string) => model.tensors.some((x) => x.name === name);
  if (has(`${p}.mlp.experts.gate_up_proj`)) {
    const ff = model.tensors.find((x) => x.name === `${p}.mlp.experts.gate_up_proj`)!.shape[1] / 2;
    const hidden = model.tensors.find((x) => x.name === `${p}.mlp.experts.down_proj`)!.shape[1];
    return Array.from({ length: n }, (_, e) => ({
      gate: slab(model, `${p}.mlp.experts.gate_up_proj`, e, 0, ff),
      up: slab(model, `${p}.mlp.experts.gate_up_proj`, e, ff, ff),
      down: slab(model, `${p}.mlp.experts.down_proj`, e, 0, hidden),
    }));
  }
  const mixtral = has(`${p}.block_sparse_moe.gate.weight`);
  const base = mixtral ? `${p}.block_sparse_moe.experts` : `${p}.mlp.experts`;
  const [g, u, d] = mixtral ? ['w1', 'w3', 'w2'] : ['gate_proj', 'up_proj', 'down_proj'];
  return Array.from({ length: n }, (_, e) => ({
    gate: mat(model, `${base}.${e}.${g}.weight`),
    up: mat(model, `${base}.${e}.${u}.weight`),
    down: mat(model, `${base}.${e}.${d}.weight`),
  }));
}

/** Rows [from, from + rows) of a matrix (a fused projection's part). */
function rowsOf(m: Mat, from: number, rows: number): Mat {
  return { rows, cols: m.cols, w: m.w.subarray(from * m.cols, (from + rows) * m.cols) };
}

/** gelu_pytorch_tanh. */
const geluTanh = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

/** y = W x (+ b). */
function matvec(m: Mat, x: Float64Array, bias?: Float64Array): Float64Array {
  const y = new Float64Array(m.rows);
  for (let r = 0; r < m.rows; r++) {
    let s = bias ? bias[r] : 0;
    const off = r * m.cols;
    for (let c = 0; c < m.cols; c++) s += m.w[off + c] * x[c];
    y[r] = s;
  }
  return y;
}

function rmsnorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const scale = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * scale * w[i]);
}

/**
 * Logits after each position of `tokens` (float64). `onMatmulInput`, when
 * given, sees the input vector of every layer's matrix products with the GGUF
 * names of the weights that multiply it (what llama-imatrix collects); an
 * expert's inputs come with the expert's index (the 3-D ffn_*_exps weights).
 */
export function referenceLogits(
  model: SyntheticModel,
  tokens: number[],
  onMatmulInput?: (weights: string[], x: Float64Array, expert?: number) => void,
): Float64Array[] {
  const c = model.config as Record<string, number | boolean | string>;
  const hidden = c.hidden_size as number;
  const nHead = c.num_attention_heads as number;
  const nKv = c.num_key_value_heads as number;
  const layers = c.num_hidden_layers as number;
  const eps = c.rms_norm_eps as number;
  const theta = c.rope_theta as number;
  const hd = typeof c.head_dim === 'number' ? c.head_dim : hidden / nHead;
  const qwen = c.model_type === 'qwen2';
  const qkNorm = c.model_type === 'qwen3' || c.model_type === 'qwen3_moe';
  const nExpert = (c.num_experts ?? c.num_local_experts ?? 0) as number;
  const nUsed = (c.num_experts_per_tok ?? 0) as number;
  const noRope = (c.no_rope_layers ?? []) as unknown as number[];
  const gemma = c.model_type === 'gemma2' || c.model_type === 'gemma3_text';
  const phi3 = c.model_type === 'phi3';
  /** Norm weights as multiplied: Gemma's RMSNorm scales by 1 + w. */
  const normW = (name: string) => (gemma ? values(model, name).map((v) => v + 1) : values(model, name));
  const attnScale = gemma ? (c.query_pre_attn_scalar as number) ** -0.5 : 1 / Math.sqrt(hd);
  const attnCap = typeof c.attn_logit_softcapping === 'number' ? c.attn_logit_softcapping : undefined;
  const finalCap = typeof c.final_logit_softcapping === 'number' ? c.final_logit_softcapping : undefined;
  const window = c.sliding_window as number;
  /** Sliding-window layers: config.layer_types where given (transformers' Gemma 3), else Gemma 2 every other one from the first, Gemma 3 all but every 6th. */
  const layerTypes = (c as Record<string, unknown>).layer_types;
  const sliding = (i: number) =>
    Array.isArray(layerTypes) && c.model_type === 'gemma3_text'
      ? layerTypes[i] === 'sliding_attention'
      : c.model_type === 'gemma2' ? i % 2 === 0 : c.model_type === 'gemma3_text' ? (i + 1) % 6 !== 0 : false;
  const ropeCfg = (c.rope_scaling ?? {}) as unknown as Record<string, unknown>;
  /** Rope of layer i: base, position scale (linear scaling), per-dimension frequency divisors and the cos/sin scale (longrope). */
  const ropeOf = (i: number) => {
    if (c.model_type === 'gemma3_text' && sliding(i)) return { base: c.rope_local_base_freq as number, posScale: 1, factors: undefined, mscale: 1 };
    const posScale = ropeCfg.rope_type === 'linear' ? 1 / (ropeCfg.factor as number) : 1;
    if (phi3 && Array.isArray(ropeCfg.short_factor)) {
      // sequences within original_max_position_embeddings use short_factor
      const scale = (c.max_position_embeddings as number) / (c.original_max_position_embeddings as number);
      const orig = c.original_max_position_embeddings as number;
      return { base: theta, posScale, factors: ropeCfg.short_factor as number[], mscale: scale > 1 ? Math.sqrt(1 + Math.log(scale) / Math.log(orig)) : 1 };
    }
    if (ropeCfg.rope_type === 'yarn') {
      // transformers' _compute_yarn_parameters: interpolated and extrapolated inverse
      // frequencies mixed by a linear ramp over the correction range, cos/sin times 0.1 ln(factor) + 1
      const factor = ropeCfg.factor as number;
      const orig = ropeCfg.original_max_position_embeddings as number;
      const corr = (rot: number) => (hd * Math.log(orig / (rot * 2 * Math.PI))) / (2 * Math.log(theta));
      const low = Math.max(Math.floor(corr((ropeCfg.beta_fast as number) ?? 32)), 0);
      const high = Math.min(Math.ceil(corr((ropeCfg.beta_slow as number) ?? 1)), hd - 1);
      const factors = Array.from({ length: hd / 2 }, (_, i) => {
        const ramp = Math.min(1, Math.max(0, (i - low) / (high === low ? 0.001 : high - low)));
        const extrapolation = 1 - ramp;
        // inv_freq / base^(-2i/d): 1/factor interpolated, 1 extrapolated; as a divisor of the frequency
        return 1 / ((1 / factor) * (1 - extrapolation) + extrapolation);
      });
      return { base: theta, posScale: 1, factors, mscale: 0.1 * Math.log(factor) + 1 };
    }
    return { base: theta, posScale, factors: undefined, mscale: 1 };
  };
  const embed = mat(model, 'model.embed_tokens.weight');
  const head = c.tie_word_embeddings ? embed : mat(model, 'lm_head.weight');
  const L = Array.from({ length: layers }, (_, i) => {
    const p = `model.layers.${i}`;
    const qkv = phi3 ? mat(model, `${p}.self_attn.qkv_proj.weight`) : undefined;
    const gateUp = phi3 ? mat(model, `${p}.mlp.gate_up_proj.weight`) : undefined;
    const ff = gateUp ? gateUp.rows / 2 : 0;
    return {
      inNorm: normW(`${p}.input_layernorm.weight`),
      q: qkv ? rowsOf(qkv, 0, nHead * hd) : mat(model, `${p}.self_attn.q_proj.weight`),
      k: qkv ? rowsOf(qkv, nHead * hd, nKv * hd) : mat(model, `${p}.self_attn.k_proj.weight`),
      v: qkv ? rowsOf(qkv, (nHead + nKv) * hd, nKv * hd) : mat(model, `${p}.self_attn.v_proj.weight`),
      ropeAt: ropeOf(i),
      sliding: sliding(i),
      preFfnNorm: gemma ? normW(`${p}.pre_feedforward_layernorm.weight`) : undefined,
      postFfnNorm: gemma ? normW(`${p}.post_feedforward_layernorm.weight`) : undefined,
      qb: qwen ? values(model, `${p}.self_attn.q_proj.bias`) : undefined,
      kb: qwen ? values(model, `${p}.self_attn.k_proj.bias`) : undefined,
      vb: qwen ? values(model, `${p}.self_attn.v_proj.bias`) : undefined,
      o: mat(model, `${p}.self_attn.o_proj.weight`),
      qNorm: qkNorm || c.model_type === 'gemma3_text' ? normW(`${p}.self_attn.q_norm.weight`) : undefined,
      kNorm: qkNorm || c.model_type === 'gemma3_text' ? normW(`${p}.self_attn.k_norm.weight`) : undefined,
      rope: noRope[i] !== 0,
      postNorm: normW(`${p}.post_attention_layernorm.weight`),
      router: nExpert ? mat(model, c.model_type === 'mixtral' ? `${p}.block_sparse_moe.gate.weight` : `${p}.mlp.gate.weight`) : undefined,
      experts: nExpert ? experts(model, p, nExpert) : undefined,
      gate: nExpert ? undefined : gateUp ? rowsOf(gateUp, 0, ff) : mat(model, `${p}.mlp.gate_proj.weight`),
      up: nExpert ? undefined : gateUp ? rowsOf(gateUp, ff, ff) : mat(model, `${p}.mlp.up_proj.weight`),
      down: nExpert ? undefined : mat(model, `${p}.mlp.down_proj.weight`),
    };
  });
  /** RMS norm of each head's slice of `x`, in place. */
  const headNorm = (x: Float64Array, heads: number, w: Float64Array) => {
    for (let h = 0; h < heads; h++) x.set(rmsnorm(x.subarray(h * hd, (h + 1) * hd), w, eps), h * hd);
  };
  /** Softmax over the router's logits, the top nUsed experts, their weights renormalised to sum 1. */
  const moe = (router: Mat, list: Expert[], x: Float64Array, names: (...ws: string[]) => string[]): Float64Array => {
    onMatmulInput?.(names('ffn_gate_inp'), x);
    const logits = matvec(router, x);
    const max = Math.max(...logits);
    const p = logits.map((v) => Math.exp(v - max));
    const top = [...p.keys()].sort((a, b) => p[b] - p[a]).slice(0, nUsed);
    const sum = top.reduce((s, e) => s + p[e], 0);
    const out = new Float64Array(hidden);
    for (const e of top) {
      onMatmulInput?.(names('ffn_gate_exps', 'ffn_up_exps'), x, e);
      const g = matvec(list[e].gate, x);
      const u = matvec(list[e].up, x);
      const a = g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]);
      onMatmulInput?.(names('ffn_down_exps'), a, e);
      const y = matvec(list[e].down, a);
      for (let i = 0; i < hidden; i++) out[i] += (p[e] / sum) * y[i];
    }
    return out;
  };
  const finalNorm = normW('model.norm.weight');

  const rope = (x: Float64Array, heads: number, pos: number, r: ReturnType<typeof ropeOf>) => {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < hd / 2; i++) {
        const ang = (pos * r.posScale) / (r.base ** ((2 * i) / hd) * (r.factors ? r.factors[i] : 1));
        const cos = Math.cos(ang) * r.mscale;
        const sin = Math.sin(ang) * r.mscale;
        const a = x[h * hd + i];
        const b = x[h * hd + i + hd / 2];
        x[h * hd + i] = a * cos - b * sin;
        x[h * hd + i + hd / 2] = b * cos + a * sin;
      }
    }
  };

  const xs = tokens.map((t) => embed.w.slice(t * hidden, (t + 1) * hidden).map((v) => (gemma ? v * Math.sqrt(hidden) : v)));
  for (const [li, l] of L.entries()) {
    const names = (...ws: string[]) => ws.map((w) => `blk.${li}.${w}.weight`);
    const ks: Float64Array[] = [];
    const vs: Float64Array[] = [];
    const qs: Float64Array[] = [];
    xs.forEach((x, pos) => {
      const h = rmsnorm(x, l.inNorm, eps);
      onMatmulInput?.(names('attn_q', 'attn_k', 'attn_v'), h);
      const q = matvec(l.q, h, l.qb);
      const k = matvec(l.k, h, l.kb);
      if (l.qNorm) headNorm(q, nHead, l.qNorm);
      if (l.kNorm) headNorm(k, nKv, l.kNorm);
      if (l.rope) {
        rope(q, nHead, pos, l.ropeAt);
        rope(k, nKv, pos, l.ropeAt);
      }
      qs.push(q);
      ks.push(k);
      vs.push(matvec(l.v, h, l.vb));
    });
    xs.forEach((x, pos) => {
      const att = new Float64Array(nHead * hd);
      for (let h = 0; h < nHead; h++) {
        const kvh = Math.floor(h / (nHead / nKv));
        const scores = new Float64Array(pos + 1);
        // a sliding-window layer sees the last `window` positions
        const first = l.sliding ? Math.max(0, pos - window + 1) : 0;
        let max = -Infinity;
        for (let j = first; j <= pos; j++) {
          let s = 0;
          for (let d = 0; d < hd; d++) s += qs[pos][h * hd + d] * ks[j][kvh * hd + d];
          s *= attnScale;
          scores[j] = attnCap ? Math.tanh(s / attnCap) * attnCap : s;
          max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = first; j <= pos; j++) sum += scores[j] = Math.exp(scores[j] - max);
        for (let j = 0; j < first; j++) scores[j] = 0;
        for (let j = 0; j <= pos; j++) {
          const p = scores[j] / sum;
          for (let d = 0; d < hd; d++) att[h * hd + d] += p * vs[j][kvh * hd + d];
        }
      }
      onMatmulInput?.(names('attn_output'), att);
      let o = matvec(l.o, att);
      if (gemma) o = rmsnorm(o, l.postNorm, eps);
      for (let i = 0; i < hidden; i++) x[i] += o[i];
    });
    for (const x of xs) {
      let d: Float64Array;
      if (gemma) {
        const h = rmsnorm(x, l.preFfnNorm!, eps);
        const g = matvec(l.gate!, h);
        const u = matvec(l.up!, h);
        d = rmsnorm(matvec(l.down!, g.map((v, i) => geluTanh(v) * u[i])), l.postFfnNorm!, eps);
      } else if (l.router) {
        d = moe(l.router, l.experts!, rmsnorm(x, l.postNorm, eps), names);
      } else {
        // SwiGLU, with the inputs of its matrix products reported (imatrix reference)
        const h = rmsnorm(x, l.postNorm, eps);
        onMatmulInput?.(names('ffn_gate', 'ffn_up'), h);
        const g = matvec(l.gate!, h);
        const u = matvec(l.up!, h);
        const a = g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]);
        onMatmulInput?.(names('ffn_down'), a);
        d = matvec(l.down!, a);
      }
      for (let i = 0; i < hidden; i++) x[i] += d[i];
    }
  }
  return xs.map((x) => {
    const logits = matvec(head, rmsnorm(x, finalNorm, eps));
    return finalCap ? logits.map((v) => Math.tanh(v / finalCap) * finalCap) : logits;
  });
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Difference between the largest and second largest logit. */
export function margin(x: ArrayLike<number>): number {
  let a = -Infinity;
  let b = -Infinity;
  for (let i = 0; i < x.length; i++) {
    if (x[i] > a) [a, b] = [x[i], a];
    else if (x[i] > b) b = x[i];
  }
  return a - b;
}

/** Greedy continuation of `prompt` by the reference model. */
export function referenceGreedy(model: SyntheticModel, prompt: number[], n: number, nVocab?: number): number[] {
  const seq = [...prompt];
  for (let i = 0; i < n; i++) {
    const logits = referenceLogits(model, seq);
    seq.push(argmax(logits[logits.length - 1].subarray(0, nVocab)));
  }
  return seq.slice(prompt.length);
}

/**
 * SentencePiece BPE encoding (what Hugging Face's LlamaTokenizer and llama.cpp's
 * SPM tokenizer do): spaces become U+2581 with one added in front, characters
 * merge pairwise, highest-scoring pair that forms a piece first (leftmost on a
 * tie), and characters without a piece fall back to their UTF-8 byte pieces.
 */
export function encodeSentencePiece(model: SentencePieceModel, text: string): number[] {
  const id = new Map<string, number>();
  model.pieces.forEach((p, i) => {
    if (p.type === PIECE_TYPE.NORMAL || p.type === PIECE_TYPE.USER_DEFINED) id.set(p.piece, i);
  });
  const score = (s: string) => model.pieces[id.get(s)!].score;
  const normalized = ((model.addDummyPrefix ? ' ' : '') + text).replaceAll(' ', '\u2581');
  let symbols = [...normalized];
  for (;;) {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const m = symbols[i] + symbols[i + 1];
      if (id.has(m) && score(m) > bestScore) [best, bestScore] = [i, score(m)];
    }
    if (best < 0) break;
    symbols = [...symbols.slice(0, best), symbols[best] + symbols[best + 1], ...symbols.slice(best + 2)];
  }
  const out: number[] = [];
  const enc = new TextEncoder();
  for (const s of symbols) {
    const t = id.get(s);
    if (t !== undefined) out.push(t);
    else for (const b of enc.encode(s)) out.push(model.pieces.findIndex((p) => p.piece === `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
  }
  return out;
}
