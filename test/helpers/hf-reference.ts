// A Hugging Face Llama / Qwen2 forward pass on the CPU, in float64, from the
// weights as the safetensors file holds them (Hugging Face's rotate-half rope
// on unpermuted q/k). It is the independent reference for `convert`: llama.cpp
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
 * names of the weights that multiply it (what llama-imatrix collects).
 */
export function referenceLogits(
  model: SyntheticModel,
  tokens: number[],
  onMatmulInput?: (weights: string[], x: Float64Array) => void,
): Float64Array[] {
  const c = model.config as Record<string, number | boolean | string>;
  const hidden = c.hidden_size as number;
  const nHead = c.num_attention_heads as number;
  const nKv = c.num_key_value_heads as number;
  const layers = c.num_hidden_layers as number;
  const eps = c.rms_norm_eps as number;
  const theta = c.rope_theta as number;
  const hd = hidden / nHead;
  const qwen = c.model_type === 'qwen2';
  const embed = mat(model, 'model.embed_tokens.weight');
  const head = c.tie_word_embeddings ? embed : mat(model, 'lm_head.weight');
  const L = Array.from({ length: layers }, (_, i) => {
    const p = `model.layers.${i}`;
    return {
      inNorm: values(model, `${p}.input_layernorm.weight`),
      q: mat(model, `${p}.self_attn.q_proj.weight`),
      k: mat(model, `${p}.self_attn.k_proj.weight`),
      v: mat(model, `${p}.self_attn.v_proj.weight`),
      qb: qwen ? values(model, `${p}.self_attn.q_proj.bias`) : undefined,
      kb: qwen ? values(model, `${p}.self_attn.k_proj.bias`) : undefined,
      vb: qwen ? values(model, `${p}.self_attn.v_proj.bias`) : undefined,
      o: mat(model, `${p}.self_attn.o_proj.weight`),
      postNorm: values(model, `${p}.post_attention_layernorm.weight`),
      gate: mat(model, `${p}.mlp.gate_proj.weight`),
      up: mat(model, `${p}.mlp.up_proj.weight`),
      down: mat(model, `${p}.mlp.down_proj.weight`),
    };
  });
  const finalNorm = values(model, 'model.norm.weight');

  const rope = (x: Float64Array, heads: number, pos: number) => {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < hd / 2; i++) {
        const ang = pos / theta ** ((2 * i) / hd);
        const cos = Math.cos(ang);
        const sin = Math.sin(ang);
        const a = x[h * hd + i];
        const b = x[h * hd + i + hd / 2];
        x[h * hd + i] = a * cos - b * sin;
        x[h * hd + i + hd / 2] = b * cos + a * sin;
      }
    }
  };

  const xs = tokens.map((t) => embed.w.slice(t * hidden, (t + 1) * hidden));
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
      rope(q, nHead, pos);
      rope(k, nKv, pos);
      qs.push(q);
      ks.push(k);
      vs.push(matvec(l.v, h, l.vb));
    });
    xs.forEach((x, pos) => {
      const att = new Float64Array(nHead * hd);
      for (let h = 0; h < nHead; h++) {
        const kvh = Math.floor(h / (nHead / nKv));
        const scores = new Float64Array(pos + 1);
        let max = -Infinity;
        for (let j = 0; j <= pos; j++) {
          let s = 0;
          for (let d = 0; d < hd; d++) s += qs[pos][h * hd + d] * ks[j][kvh * hd + d];
          scores[j] = s / Math.sqrt(hd);
          max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = 0; j <= pos; j++) sum += scores[j] = Math.exp(scores[j] - max);
        for (let j = 0; j <= pos; j++) {
          const p = scores[j] / sum;
          for (let d = 0; d < hd; d++) att[h * hd + d] += p * vs[j][kvh * hd + d];
        }
      }
      onMatmulInput?.(names('attn_output'), att);
      const o = matvec(l.o, att);
      for (let i = 0; i < hidden; i++) x[i] += o[i];
    });
    for (const x of xs) {
      const h = rmsnorm(x, l.postNorm, eps);
      onMatmulInput?.(names('ffn_gate', 'ffn_up'), h);
      const g = matvec(l.gate, h);
      const u = matvec(l.up, h);
      const a = g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]);
      onMatmulInput?.(names('ffn_down'), a);
      const d = matvec(l.down, a);
      for (let i = 0; i < hidden; i++) x[i] += d[i];
    }
  }
  return xs.map((x) => matvec(head, rmsnorm(x, finalNorm, eps)));
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
export function referenceGreedy(model: SyntheticModel, prompt: number[], n: number): number[] {
  const seq = [...prompt];
  for (let i = 0; i < n; i++) {
    const logits = referenceLogits(model, seq);
    seq.push(argmax(logits[logits.length - 1]));
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
