// A llama-family model from a GGUF, run on the GPU with wgarray's own kernels:
// token embedding (rows gathered from the file), then per layer RMSNorm,
// q/k/v projections (+ biases), rotary embedding with the GGUF's rope
// settings, causal grouped-query attention, output projection and residual,
// RMSNorm, SwiGLU MLP and residual; then the final norm and the output
// projection (tied to the embedding when output.weight is absent). What each
// architecture changes in that graph (q/k norms, post norms, GeGLU, sliding
// windows, soft caps, NoPE layers, fused q/k/v or gate/up) is its entry in
// architectures.ts; experts replace the MLP wherever blk.N.ffn_gate_inp is.
//
// Weights are read one layer at a time: uploaded as stored (F32/F16/BF16 or
// ggml blocks), turned into float32 on the GPU (cast or dequantize kernel),
// used for every sequence of the batch, then freed, so GPU memory holds one
// layer's weights plus the activations.

import { open } from 'node:fs/promises';
import { ArgumentError, FormatError, LimitError } from '../errors.js';
import { loadGGUF, type GGUFFile } from '../io/gguf/reader.js';
import type { GGUFPlainValue } from '../io/gguf/metadata.js';
import { castArray } from '../kernels/cast.js';
import { dequantize } from '../kernels/quantize.js';
import { causalAttention, gatedActivation, MAX_HEAD_DIM, rmsNorm, ropeInPlace, type RopeSettings } from '../kernels/transformer.js';
import { add, multiply } from '../ops/elementwise.js';
import { concatenate, take } from '../ops/layout.js';
import '../ops/methods.js'; // WgArray's reshape/data/view methods
import { dequantizeHost } from '../quant/host.js';
import { WgArray } from '../runtime/array.js';
import { deviceOf } from '../runtime/device.js';
import { fromBytes } from '../runtime/upload.js';
import type { Device } from '../runtime/device.js';
import { QuantizedArray } from '../runtime/quantized.js';
import { MODEL_ARCHITECTURES, type ModelArchitecture } from './architectures.js';
import { linear, loadProjection, type ModelWeight } from './linear.js';
import { LinearWeight, linearDirect } from '../kernels/matmul-linear.js';
import { Tokenizer, type TokenizeOptions } from './tokenizer.js';

/** The layer weights layerWeights loads with loadProjection (the direct matmul where it reads the type), besides the output. */
const PROJECTION = /^blk\.\d+\.(attn_[qkv]|attn_output|ffn_(gate|up|down))\.weight$/;

/** One layer's weights by short name: products' weights as loadProjection gives them, the rest float GPU arrays. */
type LayerWeights = Record<string, ModelWeight | undefined>;

/**
 * A layer weight read as a plain GPU array (a norm, a bias, the router, a fused
 * or 3-D weight read by rows): those are loaded by Model.weight, never for the direct kernel.
 */
function arrayWeight(w: LayerWeights, name: string): WgArray | undefined {
  const x = w[name];
  if (x instanceof LinearWeight) throw new Error(`internal: layer weight ${name} was loaded for the direct matmul kernel`);
  return x;
}

export interface ModelConfig {
  arch: string;
  layers: number;
  embedding: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  feedForward: number;
  vocab: number;
  contextLength: number;
  rmsEps: number;
  /** The global rope (full-attention layers). */
  rope: Omit<RopeSettings, 'factors'>;
  /** Per layer: its rope (null: none, smollm3's NoPE layers) and its sliding window (0: full attention). */
  layerRope: (Omit<RopeSettings, 'factors'> | null)[];
  layerWindow: number[];
  /** Context the rope scaling was trained for (rope.scaling.original_context_length): Phi-3 picks its long factors past it. */
  ropeOriginalContext: number;
  /** Query scale of the attention scores. */
  queryScale: number;
  /** Soft caps of the attention scores and of the logits (0: none). */
  attnSoftcap: number;
  finalSoftcap: number;
  /** Experts per MoE layer and experts used per token (0 for a dense model). */
  experts: number;
  expertsUsed: number;
}

export interface LoadModelOptions {
  device?: Device;
}

/** The matmul input of one expert of a 3-D ffn_*_exps weight: its rows are the tokens routed to expert `index` of `count`. */
export interface ExpertInput {
  index: number;
  count: number;
}

export interface LogitsOptions {
  /**
   * Called with the float32 input of the blk.* matrix products (rows = tokens)
   * and the names of the weights that multiply it (q/k/v share one input, as
   * do gate/up), before the products: what llama-imatrix collects.
   */
  onMatmulInput?: (weights: readonly string[], input: WgArray<'float32'>, expert?: ExpertInput) => void | Promise<void>;
  /** Only the last position's logits (what prompt processing needs): [1, vocab] per sequence. */
  lastOnly?: boolean;
}

function num(meta: Record<string, GGUFPlainValue>, key: string, file: string, fallback?: number): number {
  const v = meta[key];
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (fallback !== undefined) return fallback;
  throw new FormatError(file, undefined, `metadata ${key} is missing; the forward pass needs it`);
}

/** The hyperparameters of a GGUF's llama-family model, checked. */
export function modelConfig(f: GGUFFile): ModelConfig {
  const meta = f.metadata;
  const arch = meta['general.architecture'];
  if (typeof arch !== 'string' || !(arch in MODEL_ARCHITECTURES)) {
    throw new FormatError(f.path, undefined, `general.architecture is ${JSON.stringify(arch)}; the forward pass runs ${Object.keys(MODEL_ARCHITECTURES).join(', ')}`);
  }
  const spec = MODEL_ARCHITECTURES[arch];
  const embedding = num(meta, `${arch}.embedding_length`, f.path);
  const heads = num(meta, `${arch}.attention.head_count`, f.path);
  const kvHeads = num(meta, `${arch}.attention.head_count_kv`, f.path, heads);
  const headDim = num(meta, `${arch}.attention.key_length`, f.path, embedding / heads);
  const layers = num(meta, `${arch}.block_count`, f.path);
  const contextLength = num(meta, `${arch}.context_length`, f.path);
  const rope = ropeSettings(f, arch, spec, headDim, contextLength);
  const ropeOriginalContext = num(meta, `${arch}.rope.scaling.original_context_length`, f.path, contextLength);
  // sliding-window layers and their rope (llama.cpp's load_arch_hparams and get_rope_freq_base/scale)
  const layerWindow = new Array<number>(layers).fill(0);
  const layerRope: (Omit<RopeSettings, 'factors'> | null)[] = new Array(layers).fill(rope);
  const sw = spec.slidingWindow;
  const windowKey = meta[`${arch}.attention.sliding_window`];
  const window = windowKey !== undefined ? num(meta, `${arch}.attention.sliding_window`, f.path) : sw?.defaultWindow;
  if (sw && window) {
    const sliding = slidingLayers(f, `${arch}.attention.sliding_window_pattern`, layers, sw.pattern);
    const swaRope = {
      ...rope,
      freqBase: num(meta, `${arch}.rope.freq_base_swa`, f.path, sw.swaRopeFromGlobal ? rope.freqBase : 10000),
      freqScale: sw.swaRopeFromGlobal ? rope.freqScale : 1,
    };
    for (let l = 0; l < layers; l++) {
      if (sliding[l]) {
        layerWindow[l] = window;
        layerRope[l] = swaRope;
      }
    }
  }
  if (spec.noRopeEvery) for (let l = 0; l < layers; l++) if ((l + 1) % spec.noRopeEvery === 0) layerRope[l] = null;
  const experts = num(meta, `${arch}.expert_count`, f.path, 0);
  const tokenEmbd = f.tensor('token_embd.weight');
  const config: ModelConfig = {
    arch,
    layers,
    embedding,
    heads,
    kvHeads,
    headDim,
    feedForward: num(meta, `${arch}.feed_forward_length`, f.path),
    vocab: tokenEmbd.shape[0],
    contextLength,
    rmsEps: num(meta, `${arch}.attention.layer_norm_rms_epsilon`, f.path, 1e-5),
    rope,
    layerRope,
    layerWindow,
    ropeOriginalContext,
    queryScale: spec.queryScale ? spec.queryScale({ embedding, heads, headDim, layers }) : 1 / Math.sqrt(headDim),
    attnSoftcap: spec.attnSoftcapDefault !== undefined ? num(meta, `${arch}.attn_logit_softcapping`, f.path, spec.attnSoftcapDefault) : 0,
    finalSoftcap: spec.finalSoftcapDefault !== undefined ? num(meta, `${arch}.final_logit_softcapping`, f.path, spec.finalSoftcapDefault) : 0,
    experts,
    expertsUsed: experts > 0 ? num(meta, `${arch}.expert_used_count`, f.path) : 0,
  };
  if (headDim > MAX_HEAD_DIM) throw new LimitError(`${f.path}: head dimension ${headDim} is more than the attention kernel's ${MAX_HEAD_DIM}`);
  if (heads % kvHeads !== 0) throw new FormatError(f.path, undefined, `${heads} attention heads are not a multiple of ${kvHeads} key/value heads`);
  if (experts > 0 && !(config.expertsUsed > 0 && config.expertsUsed <= experts)) {
    throw new FormatError(f.path, undefined, `${arch}.expert_used_count is ${config.expertsUsed}; expected 1 to ${arch}.expert_count (${experts})`);
  }
  return config;
}

/**
 * Which layers slide, from attention.sliding_window_pattern in either of the
 * forms gguf-py writes (GGUFWriter.add_sliding_window_pattern): a period n
 * (layer l slides when l % n < n - 1, every layer when n is 0:
 * llama_hparams::set_swa_pattern), or one flag per layer (true: sliding), as
 * llama.cpp's get_key_or_arr(..., is_swa_impl, n_layer) reads it (bool or
 * integer elements, exactly n_layer of them). Absent: the architecture's period.
 * (The bundled llama.cpp's gemma2/gemma3 loaders take only the period form and
 * keep their default period for an array: the two agree wherever the flags
 * follow that period, as Gemma 2/3's layer_types do.)
 */
function slidingLayers(f: GGUFFile, key: string, layers: number, defaultPeriod: number): boolean[] {
  const v = f.metadata[key];
  if (v === undefined || typeof v === 'number' || typeof v === 'bigint') {
    const n = num(f.metadata, key, f.path, defaultPeriod);
    return Array.from({ length: layers }, (_, l) => n === 0 || l % n < n - 1);
  }
  const flags = typeof v === 'object' && v !== null && 'length' in v ? Array.from(v as ArrayLike<unknown>) : undefined;
  if (!flags || !flags.every((x) => typeof x === 'boolean' || typeof x === 'number' || typeof x === 'bigint')) {
    throw new FormatError(f.path, undefined, `${key} is neither a number nor an array of per-layer flags (bool or integer)`);
  }
  if (flags.length !== layers) {
    throw new FormatError(f.path, undefined, `${key} has ${flags.length} per-layer flags; expected one per layer (${layers}, block_count)`);
  }
  return flags.map((x) => Boolean(x));
}

/**
 * The global rope as llama.cpp sets it up (llama_model_base::load_hparams,
 * llama_context's cparams): rope.scaling.factor divides the frequencies
 * whatever the scaling type (not for 'none'); YaRN mixes interpolation and
 * extrapolation over its correction dimensions (beta_fast 32, beta_slow 1:
 * llama.cpp reads no other values for these architectures) and scales cos/sin
 * by its mscale, which llama_context cancels down to rope.scaling.attn_factor;
 * longrope (Phi-3) scales cos/sin by rope.scaling.attn_factor.
 */
function ropeSettings(f: GGUFFile, arch: string, spec: ModelArchitecture, headDim: number, contextLength: number): Omit<RopeSettings, 'factors'> {
  const meta = f.metadata;
  const scalingType = meta[`${arch}.rope.scaling.type`] ?? 'linear';
  if (typeof scalingType !== 'string' || !['none', 'linear', 'yarn', 'longrope'].includes(scalingType)) {
    throw new FormatError(f.path, undefined, `${arch}.rope.scaling.type is ${JSON.stringify(scalingType)}; the forward pass does none, linear, yarn and longrope`);
  }
  const factor = num(meta, `${arch}.rope.scaling.factor`, f.path, 0);
  const freqScale = scalingType === 'none' || factor === 0 ? 1 : 1 / factor;
  const nRot = num(meta, `${arch}.rope.dimension_count`, f.path, headDim);
  const freqBase = num(meta, `${arch}.rope.freq_base`, f.path, 10000);
  const attnFactor = num(meta, `${arch}.rope.scaling.attn_factor`, f.path, 1);
  const rope: Omit<RopeSettings, 'factors'> = { nRot, neox: spec.rope === 'neox', freqBase, freqScale, attnFactor };
  if (scalingType === 'yarn' && freqScale !== 1) {
    const origCtx = num(meta, `${arch}.rope.scaling.original_context_length`, f.path, contextLength);
    // ggml_rope_yarn_corr_dims
    const corrDim = (rot: number) => (nRot * Math.log(origCtx / (rot * 2 * Math.PI))) / (2 * Math.log(freqBase));
    rope.extFactor = 1;
    rope.corrDims = [Math.max(0, Math.floor(corrDim(32))), Math.min(nRot - 1, Math.ceil(corrDim(1)))];
    // llama_context: mscale (1 + 0.1 ln factor) times 1 / (1 + 0.1 ln factor), then rope.scaling.attn_factor
    rope.attnFactor = attnFactor;
  }
  return rope;
}

export class Model {
  readonly file: GGUFFile;
  readonly config: ModelConfig;
  readonly architecture: ModelArchitecture;
  readonly tokenizer: Tokenizer;
  readonly device: Device;

  constructor(file: GGUFFile, device: Device) {
    this.file = file;
    this.device = device;
    this.config = modelConfig(file);
    this.architecture = MODEL_ARCHITECTURES[this.config.arch];
    this.tokenizer = new Tokenizer(file.metadata, file.path);
    this.checkMemory();
  }

  /** Token ids of `text` with this model's vocabulary (no BOS unless addSpecial), as llama.cpp's llama_tokenize. */
  tokenize(text: string, options?: TokenizeOptions): number[] {
    return this.tokenizer.encode(text, options);
  }

  /**
   * A clear error, with the numbers, when a weight cannot be one GPU buffer as
   * the forward pass holds it: the projections the direct matmul reads
   * (PROJECTION, linearDirect) as stored, other ggml blocks dequantized to
   * float32, F16/BF16/F32 as stored (token_embd is read row by row on the host
   * unless it is also the output). The direct kernel pads some blocks (Q6_K
   * 210 -> 224 bytes); its upload checks that size again when it loads.
   */
  private checkMemory(): void {
    const limit = this.device.limits.maxBufferSize;
    const tied = !this.file.tensorInfos.some((t) => t.name === 'output.weight');
    for (const t of this.file.tensorInfos) {
      if (t.name === 'token_embd.weight' && !tied) continue;
      const projection = PROJECTION.test(t.name) || t.name === (tied ? 'token_embd.weight' : 'output.weight');
      const inPlace = t.type.dtype !== undefined || (projection && t.shape.length === 2 && linearDirect(t.type, t.shape[1]));
      const elements = t.shape.reduce((a, b) => a * b, 1);
      const bytes = inPlace ? t.nbytes : elements * 4;
      if (bytes > limit) {
        const how = t.type.dtype ? '' : inPlace ? ` as stored (${t.type.name} blocks, read in place by the matmul)` : ` dequantized to float32 (${t.nbytes} bytes of ${t.type.name} in the file)`;
        throw new LimitError(`${this.file.path}: tensor '${t.name}' takes ${bytes} bytes on the GPU${how}, more than this device's largest buffer (${limit} bytes); the model is too big for this GPU`);
      }
    }
  }

  /**
   * A weight as a float GPU array, or undefined when the file lacks it: ggml
   * blocks dequantized to float32 on the GPU; F16/BF16 kept as stored for the
   * matrix products (which read them exactly and accumulate in float32) unless
   * `f32` asks for float32 (norm weights, biases, rope factors).
   */
  private async weight(name: string, required = true, f32 = true): Promise<WgArray | undefined> {
    if (!this.file.tensorInfos.some((t) => t.name === name)) {
      if (!required) return undefined;
      throw new FormatError(this.file.path, undefined, `tensor '${name}' is missing; the ${this.config.arch} forward pass needs it`);
    }
    const raw = await this.file.arrays[name]();
    try {
      if (raw instanceof QuantizedArray) return dequantize(raw, 'float32');
      if (raw.dtype === 'float32' || !f32) return raw.view(raw.shape);
      return castArray(raw, 'float32');
    } finally {
      raw.dispose();
    }
  }

  /** Rows of token_embd for `ids`, read from the file and decoded on the host ([n, embedding]). */
  private async embed(ids: readonly number[]): Promise<WgArray<'float32'>> {
    const t = this.file.tensor('token_embd.weight');
    const d = this.config.embedding;
    const rowBytes = t.nbytes / t.shape[0];
    const out = new Float32Array(ids.length * d);
    const fh = await open(this.file.path, 'r');
    try {
      const row = new Uint8Array(rowBytes);
      for (const [i, id] of ids.entries()) {
        await fh.read(row, 0, rowBytes, t.fileOffset + id * rowBytes);
        out.set(dequantizeHost(row, t.type, 'token_embd.weight'), i * d);
      }
    } finally {
      await fh.close();
    }
    return fromBytes(out, [ids.length, d], 'float32', this.device);
  }

  /** x @ W^T (+ b) for a weight W [out, in] (src/model/linear.ts). */
  private project(x: WgArray, w: ModelWeight, b?: WgArray): WgArray<'float32'> {
    return linear(x, w, b);
  }

  /**
   * Logits ([tokens, vocab], row i predicting token i + 1; with lastOnly the
   * last row alone) of each token sequence, each attending causally from
   * position 0. Sequences given together share each layer's weight load.
   */
  async logits(sequences: readonly number[] | readonly (readonly number[])[], options: LogitsOptions = {}): Promise<Float32Array[]> {
    const seqs = (typeof sequences[0] === 'number' ? [sequences] : sequences) as readonly (readonly number[])[];
    const c = this.config;
    for (const s of seqs) {
      if (s.length === 0) throw new ArgumentError('logits: a token sequence is empty');
      if (s.length > c.contextLength) throw new ArgumentError(`logits: a sequence of ${s.length} tokens is longer than the model's context (${c.contextLength})`);
      for (const id of s) {
        if (!Number.isInteger(id) || id < 0 || id >= c.vocab) throw new ArgumentError(`logits: token id ${id} is outside the vocabulary (0..${c.vocab - 1})`);
      }
    }
    const hook = options.onMatmulInput;
    let xs: WgArray<'float32'>[] = [];
    for (const s of seqs) {
      const e = await this.embed(s);
      // Gemma: ggml_scale by sqrtf(n_embd)
      xs.push(this.architecture.embeddingScale ? (scaled(e, Math.fround(Math.sqrt(c.embedding))) as WgArray<'float32'>) : e);
    }
    const factors = await this.ropeFactors(Math.max(...seqs.map((s) => s.length)));
    try {
      for (let l = 0; l < c.layers; l++) {
        const w = await this.layerWeights(l);
        try {
          const next: WgArray<'float32'>[] = [];
          for (const x of xs) next.push(await this.layer(l, x, w, factors, hook));
          xs = next;
        } finally {
          for (const a of Object.values(w)) a?.dispose();
        }
      }
      const norm = (await this.weight('output_norm.weight'))!;
      const tied = !this.file.tensorInfos.some((t) => t.name === 'output.weight');
      const out = await loadProjection(this.file, tied ? 'token_embd.weight' : 'output.weight', this.device);
      try {
        const result: Float32Array[] = [];
        for (const x of xs) {
          const h = rmsNorm(x, norm, c.rmsEps);
          // the last row, read in place by the product (a view)
          const rows = options.lastOnly ? h.view([1, c.embedding], { offset: (h.shape[0] - 1) * c.embedding }) : h;
          const logits = this.project(rows, out);
          if (rows !== h) rows.dispose();
          h.dispose();
          const values = (await logits.data()) as Float32Array;
          logits.dispose();
          if (c.finalSoftcap) softcapInPlace(values, c.finalSoftcap);
          result.push(values);
        }
        return result;
      } finally {
        norm.dispose();
        out.dispose();
      }
    } finally {
      for (const x of xs) x.dispose();
      factors?.dispose();
    }
  }

  /**
   * The rope frequency factors the architecture's graph uses, if the file has
   * them: rope_freqs (Llama 3.1), else Phi-3's longrope factors, long ones when
   * the context passes rope.scaling.original_context_length (get_rope_factors).
   */
  private async ropeFactors(context: number): Promise<WgArray | undefined> {
    if (!this.architecture.ropeFactors) return undefined;
    const freqs = await this.weight('rope_freqs.weight', false);
    if (freqs) return freqs;
    return this.weight(context > this.config.ropeOriginalContext ? 'rope_factors_long.weight' : 'rope_factors_short.weight', false);
  }

  /** Layer l's weights by short name (attn_q, ffn_gate_exps, ...; norms, biases and the router as float32), the optional ones only where the file has them. */
  private async layerWeights(l: number): Promise<LayerWeights> {
    const p = `blk.${l}.`;
    const a = this.architecture;
    const has = (n: string) => this.file.tensorInfos.some((t) => t.name === `${p}${n}`);
    const w: LayerWeights = {};
    try {
      const get = async (n: string, required = true, f32 = false) => {
        w[n] = await this.weight(`${p}${n}.weight`, required, f32);
      };
      // a 2-D weight used whole by a product: as stored where the direct kernel reads it (src/model/linear.ts)
      const projection = async (n: string, required = true) => {
        if (has(`${n}.weight`)) w[n] = await loadProjection(this.file, `${p}${n}.weight`, this.device);
        else await this.weight(`${p}${n}.weight`, required); // throws the missing-tensor error where required
      };
      await get('attn_norm', true, true);
      if (has('attn_qkv.weight')) {
        await get('attn_qkv');
        w['attn_qkv.bias'] = await this.weight(`${p}attn_qkv.bias`, false);
      } else {
        for (const n of ['attn_q', 'attn_k', 'attn_v']) {
          await projection(n);
          w[`${n}.bias`] = await this.weight(`${p}${n}.bias`, a.qkvBias);
        }
      }
      if (a.qkNorm) {
        await get('attn_q_norm', true, true);
        await get('attn_k_norm', true, true);
      }
      await projection('attn_output');
      w['attn_output.bias'] = await this.weight(`${p}attn_output.bias`, false);
      if (a.postNorms) {
        await get('post_attention_norm', true, true);
        await get('post_ffw_norm', true, true);
      }
      await get('ffn_norm', true, true);
      if (has('ffn_gate_inp.weight')) {
        if (this.config.experts === 0) throw new FormatError(this.file.path, undefined, `tensor '${p}ffn_gate_inp.weight' routes to experts but ${this.config.arch}.expert_count is missing`);
        await get('ffn_gate_inp', true, true);
        for (const n of ['ffn_gate_exps', 'ffn_up_exps', 'ffn_down_exps']) await get(n);
      } else {
        // Phi-3 keeps gate and up fused in ffn_up ([2 n_ff, n_embd]) and has no ffn_gate
        await projection('ffn_gate', !has('ffn_up.weight') || this.file.tensor(`${p}ffn_up.weight`).shape[0] !== 2 * this.config.feedForward);
        await projection('ffn_up');
        await projection('ffn_down');
      }
      return w;
    } catch (e) {
      for (const x of Object.values(w)) x?.dispose();
      throw e;
    }
  }

  /** One transformer block on one sequence's hidden states x ([tokens, n_embd]; given up): attention and MLP, each with its residual. */
  private async layer(l: number, x: WgArray<'float32'>, w: LayerWeights, factors: WgArray | undefined, hook: LogitsOptions['onMatmulInput']): Promise<WgArray<'float32'>> {
    const c = this.config;
    const a = this.architecture;
    const p = `blk.${l}.`;
    const tokens = x.shape[0];
    const qRows = c.heads * c.headDim;
    const kvRows = c.kvHeads * c.headDim;
    const h = rmsNorm(x, arrayWeight(w, 'attn_norm')!, c.rmsEps);
    let q: WgArray<'float32'>;
    let k: WgArray<'float32'>;
    let v: WgArray<'float32'>;
    if (arrayWeight(w, 'attn_qkv')) {
      // fused q/k/v (Phi-3): the three row blocks of one weight, one imatrix entry
      if (hook) await hook([`${p}attn_qkv.weight`], h);
      const bias = arrayWeight(w, 'attn_qkv.bias');
      const part = (start: number, n: number) => this.projectRows(h, arrayWeight(w, 'attn_qkv')!, start, n, bias);
      q = part(0, qRows);
      k = part(qRows, kvRows);
      v = part(qRows + kvRows, kvRows);
    } else {
      if (hook) await hook([`${p}attn_q.weight`, `${p}attn_k.weight`, `${p}attn_v.weight`], h);
      q = this.project(h, w.attn_q!, arrayWeight(w, 'attn_q.bias'));
      k = this.project(h, w.attn_k!, arrayWeight(w, 'attn_k.bias'));
      v = this.project(h, w.attn_v!, arrayWeight(w, 'attn_v.bias'));
    }
    h.dispose();
    q = reshaped(q, [tokens, c.heads, c.headDim]);
    k = reshaped(k, [tokens, c.kvHeads, c.headDim]);
    v = reshaped(v, [tokens, c.kvHeads, c.headDim]);
    const qNorm = arrayWeight(w, 'attn_q_norm');
    if (qNorm) {
      // RMSNorm over each head's head_dim values
      q = replaced(q, rmsNorm(q, qNorm, c.rmsEps));
      k = replaced(k, rmsNorm(k, arrayWeight(w, 'attn_k_norm')!, c.rmsEps));
    }
    const rope = c.layerRope[l];
    if (rope) {
      ropeInPlace(q, { ...rope, factors });
      ropeInPlace(k, { ...rope, factors });
    }
    const att = reshaped(causalAttention(q, k, v, c.queryScale, { window: c.layerWindow[l], softcap: c.attnSoftcap }), [tokens, c.heads * c.headDim]);
    q.dispose();
    k.dispose();
    v.dispose();
    if (hook) await hook([`${p}attn_output.weight`], att);
    let o = this.project(att, w.attn_output!, arrayWeight(w, 'attn_output.bias'));
    att.dispose();
    const postAttentionNorm = arrayWeight(w, 'post_attention_norm');
    if (postAttentionNorm) o = replaced(o, rmsNorm(o, postAttentionNorm, c.rmsEps));
    const x2 = add(x, o) as WgArray<'float32'>;
    o.dispose();
    x.dispose();
    const h2 = rmsNorm(x2, arrayWeight(w, 'ffn_norm')!, c.rmsEps);
    let d = arrayWeight(w, 'ffn_gate_inp') ? await this.moe(p, h2, w, hook) : await this.mlp(p, h2, w, hook);
    h2.dispose();
    const postFfwNorm = arrayWeight(w, 'post_ffw_norm');
    if (postFfwNorm) d = replaced(d, rmsNorm(d, postFfwNorm, c.rmsEps));
    const out = add(x2, d) as WgArray<'float32'>;
    d.dispose();
    x2.dispose();
    return out;
  }

  /** The gated MLP: act(h gate^T) * (h up^T), then down; gate and up fused in ffn_up when there is no ffn_gate (Phi-3). */
  private async mlp(p: string, h: WgArray<'float32'>, w: LayerWeights, hook: LogitsOptions['onMatmulInput']): Promise<WgArray<'float32'>> {
    const act = this.architecture.activation;
    let a: WgArray<'float32'>;
    if (w.ffn_gate) {
      if (hook) await hook([`${p}ffn_gate.weight`, `${p}ffn_up.weight`], h);
      const g = this.project(h, w.ffn_gate);
      const u = this.project(h, w.ffn_up!);
      a = gatedActivation(act, g, u);
      g.dispose();
      u.dispose();
    } else {
      if (hook) await hook([`${p}ffn_up.weight`], h);
      const gu = this.project(h, w.ffn_up!);
      a = gatedActivation(act, gu);
      gu.dispose();
    }
    if (hook) await hook([`${p}ffn_down.weight`], a);
    const d = this.project(a, w.ffn_down!);
    a.dispose();
    return d;
  }

  /**
   * A mixture-of-experts MLP as llama.cpp's build_moe_ffn runs it for these
   * architectures: the router's logits (h ffn_gate_inp^T) softmaxed over all
   * experts, the top expert_used_count kept (highest first), their weights
   * divided by their sum (clamped below at 2^-14); each token's output is the
   * weighted sum of its experts' SwiGLU MLPs, added in that order. Routing is
   * decided on the host from the read-back router logits (readback + top-k:
   * 1.2-1.3% of logits() on lavapipe, `npm run bench -- moe`); each expert runs
   * on the rows routed to it (gathered on the GPU), and the matmul inputs of
   * an expert reach the hook with its index (llama-imatrix's MUL_MAT_ID).
   */
  private async moe(p: string, h: WgArray<'float32'>, w: LayerWeights, hook: LogitsOptions['onMatmulInput']): Promise<WgArray<'float32'>> {
    const c = this.config;
    const tokens = h.shape[0];
    const nExp = c.experts;
    const k = c.expertsUsed;
    if (hook) await hook([`${p}ffn_gate_inp.weight`], h);
    const routerLogits = this.project(h, arrayWeight(w, 'ffn_gate_inp')!);
    const logits = (await routerLogits.data()) as Float32Array;
    routerLogits.dispose();
    const { experts, weights } = routeTokens(logits, tokens, nExp, k);
    // rows routed to each expert, in token order
    const rowsOf: number[][] = Array.from({ length: nExp }, () => []);
    for (let t = 0; t < tokens; t++) for (let j = 0; j < k; j++) rowsOf[experts[t * k + j]].push(t);
    const gateW = arrayWeight(w, 'ffn_gate_exps')!;
    const ff = gateW.shape[1];
    const outputs: WgArray<'float32'>[] = [];
    // start[e]: the first row of the stacked outputs (all experts' rows, expert by expert) that holds expert e's
    const start: number[] = new Array(nExp).fill(0);
    let stacked = 0;
    try {
      for (let e = 0; e < nExp; e++) {
        const rows = rowsOf[e];
        if (rows.length === 0) continue;
        start[e] = stacked;
        stacked += rows.length;
        const xe = take(h, rows, 0) as WgArray<'float32'>;
        const info = { index: e, count: nExp };
        if (hook) await hook([`${p}ffn_gate_exps.weight`, `${p}ffn_up_exps.weight`], xe, info);
        const g = this.projectRows(xe, gateW, e * ff, ff);
        const u = this.projectRows(xe, arrayWeight(w, 'ffn_up_exps')!, e * ff, ff);
        xe.dispose();
        const a = gatedActivation('silu', g, u);
        g.dispose();
        u.dispose();
        if (hook) await hook([`${p}ffn_down_exps.weight`], a, info);
        const d = this.projectRows(a, arrayWeight(w, 'ffn_down_exps')!, e * c.embedding, c.embedding);
        a.dispose();
        // each row times its token's routing weight for this expert
        const scale = new Float32Array(rows.length);
        rows.forEach((t, i) => {
          for (let j = 0; j < k; j++) if (experts[t * k + j] === e) scale[i] = weights[t * k + j];
        });
        const sw = fromBytes(scale, [rows.length, 1], 'float32', this.device);
        outputs.push(multiply(d, sw) as WgArray<'float32'>);
        d.dispose();
        sw.dispose();
      }
      const all = outputs.length === 1 ? outputs[0] : (concatenate(outputs, 0) as WgArray<'float32'>);
      try {
        // slot j of every token: the row of its j-th expert's output, summed in slot order
        const seen: number[] = new Array(nExp).fill(0);
        const slotRows = Array.from({ length: k }, () => new Array<number>(tokens));
        for (let t = 0; t < tokens; t++) {
          for (let j = 0; j < k; j++) {
            const e = experts[t * k + j];
            // tokens reach an expert in token order, so its i-th row is its i-th token
            slotRows[j][t] = start[e] + rowIndex(rowsOf[e], t, seen, e);
          }
        }
        let sum = take(all, slotRows[0], 0) as WgArray<'float32'>;
        for (let j = 1; j < k; j++) {
          const part = take(all, slotRows[j], 0);
          sum = replaced(sum, add(sum, part) as WgArray<'float32'>);
          part.dispose();
        }
        return sum;
      } finally {
        if (all !== outputs[0]) all.dispose();
      }
    } finally {
      for (const o of outputs) o.dispose();
    }
  }

  /** x @ W[start:start+n]^T (+ b[start:start+n]): rows of a weight (a fused q/k/v's block, one expert of a 3-D stack), read in place. */
  private projectRows(x: WgArray, w: WgArray, start: number, n: number, b?: WgArray): WgArray<'float32'> {
    const cols = w.shape[w.shape.length - 1];
    const rows = w.view([n, cols], { offset: w.offset + start * cols });
    const bias = b?.view([n], { offset: b.offset + start });
    try {
      return this.project(x, rows, bias);
    } finally {
      rows.dispose();
      bias?.dispose();
    }
  }
}

/**
 * build_moe_ffn's routing for softmax gating with normalised weights: per
 * token, softmax over the experts' logits, the k most probable (highest
 * first; the lower index first on a tie), their probabilities divided by their
 * sum (clamped below at 6.1e-5, as ggml_clamp does). Float32 like ggml.
 */
export function routeTokens(logits: Float32Array, tokens: number, nExp: number, k: number): { experts: Int32Array; weights: Float32Array } {
  const experts = new Int32Array(tokens * k);
  const weights = new Float32Array(tokens * k);
  const probs = new Float32Array(nExp);
  for (let t = 0; t < tokens; t++) {
    const row = logits.subarray(t * nExp, (t + 1) * nExp);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (let e = 0; e < nExp; e++) sum += probs[e] = Math.fround(Math.exp(row[e] - max));
    for (let e = 0; e < nExp; e++) probs[e] = Math.fround(probs[e] / Math.fround(sum));
    const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a] || a - b).slice(0, k);
    let total = 0;
    for (const e of order) total = Math.fround(total + probs[e]);
    total = Math.max(total, 6.103515625e-5);
    order.forEach((e, j) => {
      experts[t * k + j] = e;
      weights[t * k + j] = Math.fround(probs[e] / total);
    });
  }
  return { experts, weights };
}

/** Index of token t among the tokens routed to expert e (ascending), found by a cursor per expert: the tokens are visited in ascending order. */
function rowIndex(rows: readonly number[], t: number, cursor: number[], e: number): number {
  while (rows[cursor[e]] !== t) cursor[e]++;
  return cursor[e];
}

/** a's values with c * tanh(v / c) (ggml_scale, ggml_tanh, ggml_scale), in place. */
function softcapInPlace(a: Float32Array, cap: number): void {
  const inv = Math.fround(1 / cap);
  for (let i = 0; i < a.length; i++) a[i] = Math.fround(cap * Math.fround(Math.tanh(Math.fround(a[i] * inv))));
}

/** a * s, the original given up. */
function scaled(a: WgArray<'float32'>, s: number): WgArray {
  try {
    return multiply(a, s);
  } finally {
    a.dispose();
  }
}

/** `next`, `prev` given up. */
function replaced(prev: WgArray<'float32'>, next: WgArray<'float32'>): WgArray<'float32'> {
  prev.dispose();
  return next;
}

/** A contiguous array in another shape, the original given up. */
function reshaped(a: WgArray<'float32'>, shape: number[]): WgArray<'float32'> {
  try {
    return a.reshape(shape);
  } finally {
    a.dispose();
  }
}

/** Opens a GGUF model for the forward pass on `device` (default: the one init() opened). */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<Model> {
  const device = deviceOf(options.device);
  const file = await loadGGUF(path, { device });
  return new Model(file, device);
}
