// A llama-family model from a GGUF, run on the GPU with wgarray's own kernels:
// token embedding (rows gathered from the file), then per layer RMSNorm,
// q/k/v projections (+ biases), rotary embedding with the GGUF's rope
// settings, causal grouped-query attention, output projection and residual,
// RMSNorm, SwiGLU MLP and residual; then the final norm and the output
// projection (tied to the embedding when output.weight is absent).
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
import { causalAttention, MAX_HEAD_DIM, rmsNorm, ropeInPlace, swiglu, type RopeSettings } from '../kernels/transformer.js';
import { add } from '../ops/elementwise.js';
import '../ops/methods.js'; // WgArray's reshape/data/view methods
import { dequantizeHost } from '../quant/host.js';
import { WgArray } from '../runtime/array.js';
import { deviceOf } from '../runtime/device.js';
import { fromBytes } from '../runtime/upload.js';
import type { Device } from '../runtime/device.js';
import { QuantizedArray } from '../runtime/quantized.js';
import { MODEL_ARCHITECTURES, type ModelArchitecture } from './architectures.js';
import { linear, loadProjection, type ModelWeight } from './linear.js';
import { Tokenizer, type TokenizeOptions } from './tokenizer.js';

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
  rope: Omit<RopeSettings, 'factors'>;
}

export interface LoadModelOptions {
  device?: Device;
}

export interface LogitsOptions {
  /**
   * Called with the float32 input of the blk.* matrix products (rows = tokens)
   * and the names of the weights that multiply it (q/k/v share one input, as
   * do gate/up), before the products: what llama-imatrix collects.
   */
  onMatmulInput?: (weights: readonly string[], input: WgArray<'float32'>) => void | Promise<void>;
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
  const scalingType = meta[`${arch}.rope.scaling.type`];
  let freqScale = 1;
  if (scalingType === 'linear') freqScale = 1 / num(meta, `${arch}.rope.scaling.factor`, f.path, 1);
  else if (scalingType !== undefined && scalingType !== 'none') {
    throw new FormatError(f.path, undefined, `${arch}.rope.scaling.type is ${JSON.stringify(scalingType)}; the forward pass does linear scaling and rope_freqs factors only`);
  }
  const tokenEmbd = f.tensor('token_embd.weight');
  const config: ModelConfig = {
    arch,
    layers: num(meta, `${arch}.block_count`, f.path),
    embedding,
    heads,
    kvHeads,
    headDim,
    feedForward: num(meta, `${arch}.feed_forward_length`, f.path),
    vocab: tokenEmbd.shape[0],
    contextLength: num(meta, `${arch}.context_length`, f.path),
    rmsEps: num(meta, `${arch}.attention.layer_norm_rms_epsilon`, f.path, 1e-5),
    rope: {
      nRot: num(meta, `${arch}.rope.dimension_count`, f.path, headDim),
      neox: spec.rope === 'neox',
      freqBase: num(meta, `${arch}.rope.freq_base`, f.path, 10000),
      freqScale,
    },
  };
  if (headDim > MAX_HEAD_DIM) throw new LimitError(`${f.path}: head dimension ${headDim} is more than the attention kernel's ${MAX_HEAD_DIM}`);
  if (heads % kvHeads !== 0) throw new FormatError(f.path, undefined, `${heads} attention heads are not a multiple of ${kvHeads} key/value heads`);
  return config;
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
   * the forward pass holds it: ggml blocks dequantized to float32, F16/BF16/F32
   * as stored (token_embd is read row by row on the host unless it is also the output).
   */
  private checkMemory(): void {
    const limit = this.device.limits.maxBufferSize;
    const tied = !this.file.tensorInfos.some((t) => t.name === 'output.weight');
    for (const t of this.file.tensorInfos) {
      if (t.name === 'token_embd.weight' && !tied) continue;
      const elements = t.shape.reduce((a, b) => a * b, 1);
      const bytes = t.type.dtype ? t.nbytes : elements * 4;
      if (bytes > limit) {
        throw new LimitError(`${this.file.path}: tensor '${t.name}' takes ${bytes} bytes on the GPU${t.type.dtype ? '' : ' dequantized to float32'}, more than this device's largest buffer (${limit} bytes); the model is too big for this GPU`);
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
    for (const s of seqs) xs.push(await this.embed(s));
    const factors = await this.weight('rope_freqs.weight', false);
    const rope: RopeSettings = { ...c.rope, factors };
    try {
      for (let l = 0; l < c.layers; l++) {
        const p = `blk.${l}.`;
        const names = ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'];
        const w: Record<string, WgArray> = {};
        const lw: Record<string, ModelWeight> = {};
        const b: Record<string, WgArray | undefined> = {};
        try {
          for (const n of names) {
            if (n.endsWith('_norm')) w[n] = (await this.weight(`${p}${n}.weight`))!;
            else lw[n] = await loadProjection(this.file, `${p}${n}.weight`, this.device);
          }
          for (const n of ['attn_q', 'attn_k', 'attn_v']) b[n] = await this.weight(`${p}${n}.bias`, this.architecture.qkvBias);
          const next: WgArray<'float32'>[] = [];
          for (const x of xs) {
            const tokens = x.shape[0];
            const h = rmsNorm(x, w.attn_norm, c.rmsEps);
            if (hook) await hook([`${p}attn_q.weight`, `${p}attn_k.weight`, `${p}attn_v.weight`], h);
            const q = reshaped(this.project(h, lw.attn_q, b.attn_q), [tokens, c.heads, c.headDim]);
            const k = reshaped(this.project(h, lw.attn_k, b.attn_k), [tokens, c.kvHeads, c.headDim]);
            const v = reshaped(this.project(h, lw.attn_v, b.attn_v), [tokens, c.kvHeads, c.headDim]);
            h.dispose();
            ropeInPlace(q, rope);
            ropeInPlace(k, rope);
            const att = reshaped(causalAttention(q, k, v, 1 / Math.sqrt(c.headDim)), [tokens, c.heads * c.headDim]);
            q.dispose();
            k.dispose();
            v.dispose();
            if (hook) await hook([`${p}attn_output.weight`], att);
            const o = this.project(att, lw.attn_output);
            att.dispose();
            const x2 = add(x, o) as WgArray<'float32'>;
            o.dispose();
            x.dispose();
            const h2 = rmsNorm(x2, w.ffn_norm, c.rmsEps);
            if (hook) await hook([`${p}ffn_gate.weight`, `${p}ffn_up.weight`], h2);
            const g = this.project(h2, lw.ffn_gate);
            const u = this.project(h2, lw.ffn_up);
            h2.dispose();
            const a = swiglu(g, u);
            g.dispose();
            u.dispose();
            if (hook) await hook([`${p}ffn_down.weight`], a);
            const d = this.project(a, lw.ffn_down);
            a.dispose();
            next.push(add(x2, d) as WgArray<'float32'>);
            d.dispose();
            x2.dispose();
          }
          xs = next;
        } finally {
          for (const a of [...Object.values(w), ...Object.values(lw), ...Object.values(b)]) a?.dispose();
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
          result.push((await logits.data()) as Float32Array);
          logits.dispose();
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
