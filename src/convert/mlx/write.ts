// `wgarray convert model.gguf --to mlx -o DIR`: a GGUF as an MLX-LM folder
// (config.json with `quantization`, model.safetensors sharded past 5 GB,
// tokenizer.json + tokenizer_config.json). Tensor names and the q/k row order go
// back through the architecture table (src/convert/architecture.ts: each Hugging
// Face name mapped forward, then inverted). Q4_0, Q4_1 and Q8_0 map exactly, as
// MLX's own GGUF loader maps them (groups of 32: scale d with bias -8d, m, -128d);
// every other 2-D weight is decoded (on the GPU) and quantized with MLX's affine
// rule (--q-bits, --q-group-size); norms and biases are copied as floats.

import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ArgumentError, FileError, FormatError } from '../../errors.js';
import { loadGGUF, type GGUFFile, type GGUFTensorInfo } from '../../io/gguf/reader.js';
import { saveSafetensors } from '../../io/safetensors/writer.js';
import { castArray } from '../../kernels/cast.js';
import { mlxAffineDequantizeGpu, mlxAffineQuantizeGpu } from '../../kernels/mlx-quantize.js';
import { dequantize } from '../../kernels/quantize.js';
import { WgArray } from '../../runtime/array.js';
import type { Device } from '../../runtime/device.js';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../runtime/half.js';
import { QuantizedArray } from '../../runtime/quantized.js';
import { dequantizeHost } from '../../quant/host.js';
import { ARCHITECTURES, hfTensorNames, mapTensor, permuteRows, readHparams } from '../architecture.js';
import { permuteRowsGpu, permuteRowsHost } from '../permute.js';
import { PRE_TOKENIZERS, TOKEN_TYPE } from '../tokenizer.js';
import { checkMlxSpec, mlxAffineDequantizeHost, mlxAffineQuantizeHost } from '../../quant/mlx-host.js';

type Json = Record<string, unknown>;

export interface MlxWriteOptions {
  bits?: number;
  groupSize?: number;
  device?: Device;
  /** Shard size (default 5 GB, as mlx_lm writes). */
  maxShardBytes?: number;
  signal?: AbortSignal;
}

export interface MlxTensorReport {
  /** Hugging Face / MLX module weight name. */
  name: string;
  gguf: string;
  from: string;
  /** 'exact' (mapped bit for bit), 'requantized' (MLX affine from the decoded values) or 'float' (copied). */
  how: 'exact' | 'requantized' | 'float';
  bits?: number;
  groupSize?: number;
  /** RMSE of MLX's decoded values against the GGUF's (requantized only). */
  rmse?: number;
}

export interface MlxWriteResult {
  dir: string;
  files: string[];
  tensors: MlxTensorReport[];
}

const EXACT_BITS: Record<string, number> = { q4_0: 4, q4_1: 4, q8_0: 8 };

function meta(g: GGUFFile, key: string): unknown {
  const v = g.metadata[key];
  return typeof v === 'bigint' ? Number(v) : v;
}

/** config.json (transformers' keys) from the GGUF's <arch>.* metadata. */
/** config.json's model_type where it is not the GGUF architecture name. */
const MODEL_TYPE: Record<string, string> = { Qwen3MoeForCausalLM: 'qwen3_moe', MixtralForCausalLM: 'mixtral' };

function hfConfig(g: GGUFFile, path: string): Json {
  const arch = String(meta(g, 'general.architecture') ?? '');
  // a GGUF with experts is the architecture's MoE entry (llama + expert_count: Mixtral)
  const moe = typeof meta(g, `${arch}.expert_count`) === 'number';
  const spec = ARCHITECTURES.find((a) => a.arch === arch && !!a.moe === moe) ?? ARCHITECTURES.find((a) => a.arch === arch);
  if (!spec) throw new FormatError(path, undefined, `general.architecture is '${arch}'; --to mlx writes ${ARCHITECTURES.map((a) => a.arch).join(', ')}`);
  const k = (name: string) => meta(g, `${arch}.${name}`);
  const embd = g.tensorInfos.find((t) => t.name === 'token_embd.weight');
  if (!embd) throw new FormatError(path, undefined, 'has no token_embd.weight');
  const heads = Number(k('attention.head_count'));
  const hidden = Number(k('embedding_length'));
  const keyLength = k('attention.key_length');
  const hfName = spec.hfNames[0];
  const config: Json = {
    architectures: [hfName],
    model_type: MODEL_TYPE[hfName] ?? arch,
    hidden_size: hidden,
    intermediate_size: k('feed_forward_length'),
    num_attention_heads: heads,
    num_key_value_heads: k('attention.head_count_kv') ?? heads,
    num_hidden_layers: k('block_count'),
    rms_norm_eps: k('attention.layer_norm_rms_epsilon'),
    rope_theta: k('rope.freq_base'),
    max_position_embeddings: k('context_length'),
    vocab_size: embd.shape[0],
    tie_word_embeddings: !g.tensorInfos.some((t) => t.name === 'output.weight'),
    ...(typeof keyLength === 'number' && keyLength !== hidden / heads ? { head_dim: keyLength } : {}),
  };
  if (moe) {
    // the expert counts under the names transformers' (and mlx_lm's) config classes read
    config[hfName === 'MixtralForCausalLM' ? 'num_local_experts' : 'num_experts'] = k('expert_count');
    config.num_experts_per_tok = k('expert_used_count');
    if (k('expert_feed_forward_length') !== undefined) config.moe_intermediate_size = k('expert_feed_forward_length');
    // llama.cpp's qwen3moe always renormalises the chosen experts' weights, on every layer
    if (hfName === 'Qwen3MoeForCausalLM') Object.assign(config, { norm_topk_prob: true, decoder_sparse_step: 1, mlp_only_layers: [] });
  }
  const bos = meta(g, 'tokenizer.ggml.bos_token_id');
  const eos = meta(g, 'tokenizer.ggml.eos_token_id');
  if (typeof bos === 'number') config.bos_token_id = bos;
  if (typeof eos === 'number') config.eos_token_id = eos;
  for (const [key, v] of Object.entries(config)) if (v === undefined) delete config[key];
  return config;
}

/** A protobuf varint. */
function varint(v: number, into: number[]): void {
  while (v >= 0x80) {
    into.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  into.push(v);
}

function protoField(field: number, body: number[], into: number[]): void {
  varint((field << 3) | 2, into);
  varint(body.length, into);
  into.push(...body);
}

function protoVarint(field: number, v: number, into: number[]): void {
  varint(field << 3, into);
  varint(v, into);
}

/**
 * tokenizer.model (sentencepiece's ModelProto) from a `llama` GGUF vocabulary: the
 * pieces (scores, types), a BPE trainer_spec (model_type 2, byte_fallback when byte
 * pieces exist, the unk/bos/eos ids) and the normalizer_spec (identity,
 * add_dummy_prefix from tokenizer.ggml.add_space_prefix). The [PAD<id>] entries the
 * GGUF converter appends up to the embedding's rows are left out.
 */
function sentencePieceFiles(g: GGUFFile): { model: Uint8Array; addedTokens: Record<string, number>; tokenizerConfig: Json } {
  const tokens = g.metadata['tokenizer.ggml.tokens'] as string[];
  const scores = g.metadata['tokenizer.ggml.scores'] as ArrayLike<number> | undefined;
  const types = g.metadata['tokenizer.ggml.token_type'] as ArrayLike<number> | undefined;
  let n = tokens.length;
  while (n > 0 && types?.[n - 1] === TOKEN_TYPE.UNUSED && tokens[n - 1] === `[PAD${n - 1}]`) n--;
  const out: number[] = [];
  const enc = new TextEncoder();
  const addedTokens: Record<string, number> = {};
  let bytePieces = false;
  for (let i = 0; i < n; i++) {
    const type = types ? types[i] : TOKEN_TYPE.NORMAL;
    if (type === TOKEN_TYPE.BYTE) bytePieces = true;
    if (type === TOKEN_TYPE.USER_DEFINED) addedTokens[tokens[i]] = i;
    const body: number[] = [];
    const text = enc.encode(tokens[i]);
    varint((1 << 3) | 2, body);
    varint(text.length, body);
    body.push(...text);
    varint((2 << 3) | 5, body);
    body.push(...new Uint8Array(new Float32Array([scores ? scores[i] : 0]).buffer));
    protoVarint(3, type, body);
    protoField(1, body, out);
  }
  const id = (key: string, dflt: number) => {
    const v = meta(g, key);
    return typeof v === 'number' ? v : dflt;
  };
  const trainer: number[] = [];
  protoVarint(3, 2, trainer); // model_type BPE
  protoVarint(4, n, trainer); // vocab_size
  if (bytePieces) protoVarint(35, 1, trainer); // byte_fallback
  protoVarint(40, id('tokenizer.ggml.unknown_token_id', 0), trainer);
  protoVarint(41, id('tokenizer.ggml.bos_token_id', 1), trainer);
  protoVarint(42, id('tokenizer.ggml.eos_token_id', 2), trainer);
  protoField(2, trainer, out);
  const addPrefix = meta(g, 'tokenizer.ggml.add_space_prefix');
  const norm: number[] = [];
  protoField(1, [...enc.encode('identity')], norm);
  protoVarint(3, addPrefix === false ? 0 : 1, norm); // add_dummy_prefix
  protoVarint(4, 0, norm); // remove_extra_whitespaces
  protoVarint(5, 1, norm); // escape_whitespaces
  protoField(3, norm, out);
  const name = (key: string) => {
    const v = meta(g, key);
    return typeof v === 'number' ? tokens[v] : undefined;
  };
  const tokenizerConfig: Json = { tokenizer_class: 'LlamaTokenizer', legacy: true, clean_up_tokenization_spaces: false };
  for (const [k, key] of [['bos_token', 'tokenizer.ggml.bos_token_id'], ['eos_token', 'tokenizer.ggml.eos_token_id'], ['unk_token', 'tokenizer.ggml.unknown_token_id'], ['pad_token', 'tokenizer.ggml.padding_token_id']]) {
    if (name(key)) tokenizerConfig[k] = name(key);
  }
  for (const [k, key] of [['add_bos_token', 'tokenizer.ggml.add_bos_token'], ['add_eos_token', 'tokenizer.ggml.add_eos_token'], ['add_prefix_space', 'tokenizer.ggml.add_space_prefix']]) {
    const v = meta(g, key);
    if (typeof v === 'boolean') tokenizerConfig[k] = v;
  }
  const tmpl = meta(g, 'tokenizer.chat_template');
  if (typeof tmpl === 'string') tokenizerConfig.chat_template = tmpl;
  return { model: Uint8Array.from(out), addedTokens, tokenizerConfig };
}

/** tokenizer.json and tokenizer_config.json from a gpt2 (byte-level BPE) GGUF vocabulary. */
function tokenizerFiles(g: GGUFFile, path: string): { tokenizer: Json; tokenizerConfig: Json } {
  const model = meta(g, 'tokenizer.ggml.model');
  if (model !== 'gpt2') {
    throw new FormatError(path, undefined, `tokenizer.ggml.model is '${String(model)}'; --to mlx writes byte-level BPE (gpt2) vocabularies as tokenizer.json and SentencePiece (llama) ones as tokenizer.model`);
  }
  const tokens = g.metadata['tokenizer.ggml.tokens'] as string[];
  const types = g.metadata['tokenizer.ggml.token_type'] as ArrayLike<number> | undefined;
  const merges = (g.metadata['tokenizer.ggml.merges'] as string[] | undefined) ?? [];
  const pre = String(meta(g, 'tokenizer.ggml.pre') ?? 'gpt-2');
  const sig = PRE_TOKENIZERS.find(([, name]) => name === pre)?.[0];
  if (!sig) throw new FormatError(path, undefined, `tokenizer.ggml.pre '${pre}' has no known pre-tokenizer regex; --to mlx knows ${PRE_TOKENIZERS.map(([, n]) => n).join(', ')}`);
  const vocab: Record<string, number> = {};
  const added: Json[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const type = types ? types[i] : TOKEN_TYPE.NORMAL;
    if (type === TOKEN_TYPE.UNUSED && /^\[PAD\d+\]$/.test(tokens[i])) continue;
    if (type === TOKEN_TYPE.CONTROL || type === TOKEN_TYPE.USER_DEFINED) {
      added.push({ id: i, content: tokens[i], single_word: false, lstrip: false, rstrip: false, normalized: type !== TOKEN_TYPE.CONTROL, special: type === TOKEN_TYPE.CONTROL });
    } else vocab[tokens[i]] = i;
  }
  const pretokenizers: Json[] = sig.map((r) => (r === 'DIGITS' ? { type: 'Digits', individual_digits: true } : { type: 'Split', pattern: { Regex: r }, behavior: 'Isolated', invert: false }));
  pretokenizers.push({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false });
  const tokenizer: Json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  };
  const name = (key: string) => {
    const id = meta(g, key);
    return typeof id === 'number' ? tokens[id] : undefined;
  };
  const tokenizerConfig: Json = { tokenizer_class: 'PreTrainedTokenizerFast', clean_up_tokenization_spaces: false };
  if (name('tokenizer.ggml.bos_token_id')) tokenizerConfig.bos_token = name('tokenizer.ggml.bos_token_id');
  if (name('tokenizer.ggml.eos_token_id')) tokenizerConfig.eos_token = name('tokenizer.ggml.eos_token_id');
  if (name('tokenizer.ggml.padding_token_id')) tokenizerConfig.pad_token = name('tokenizer.ggml.padding_token_id');
  const addBos = meta(g, 'tokenizer.ggml.add_bos_token');
  if (typeof addBos === 'boolean') tokenizerConfig.add_bos_token = addBos;
  const tmpl = meta(g, 'tokenizer.chat_template');
  if (typeof tmpl === 'string') tokenizerConfig.chat_template = tmpl;
  return { tokenizer, tokenizerConfig };
}

function inverse(perm: Int32Array): Int32Array {
  const inv = new Int32Array(perm.length);
  for (let j = 0; j < perm.length; j++) inv[perm[j]] = j;
  return inv;
}

function halves(x: Float32Array, dtype: 'float16' | 'bfloat16'): Uint8Array {
  const h = Uint16Array.from(x, dtype === 'float16' ? f32ToF16Bits : f32ToBf16Bits);
  return new Uint8Array(h.buffer);
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

interface Module {
  wq: Uint8Array;
  scales: Uint8Array;
  biases: Uint8Array;
}

/** Q4_0 / Q4_1 / Q8_0 blocks as MLX groups of 32 (host): rows permuted by `inv` first. Undefined when a bias overflows float16. */
function exactModule(bytes: Uint8Array, t: GGUFTensorInfo, inv: Int32Array | undefined): Module | undefined {
  const type = t.type.name;
  const rows = t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const cols = t.shape[t.shape.length - 1];
  const rowBytes = (cols / 32) * t.type.typeSize;
  const bits = EXACT_BITS[type];
  const nGroups = rows * (cols / 32);
  const wq = new Uint32Array((rows * cols * bits) / 32);
  const scales = new Uint16Array(nGroups);
  const biases = new Uint16Array(nGroups);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let r = 0; r < rows; r++) {
    const src = (inv ? inv[r % inv.length] + Math.floor(r / inv.length) * inv.length : r) * rowBytes;
    for (let b = 0; b < cols / 32; b++) {
      const p = src + b * t.type.typeSize;
      const g = r * (cols / 32) + b;
      const dBits = dv.getUint16(p, true);
      const d = f16BitsToF32(dBits);
      scales[g] = dBits;
      const bias = type === 'q4_0' ? -8 * d : type === 'q8_0' ? -128 * d : f16BitsToF32(dv.getUint16(p + 2, true));
      const biasBits = f32ToF16Bits(bias);
      if (f16BitsToF32(biasBits) !== bias && !Number.isNaN(bias)) return undefined;
      biases[g] = biasBits;
      const e0 = g * 32;
      for (let j = 0; j < 32; j++) {
        let q: number;
        if (type === 'q8_0') q = (bytes[p + 2 + j] + 128) & 0xff;
        else {
          const qs = p + (type === 'q4_0' ? 2 : 4);
          q = j < 16 ? bytes[qs + j] & 15 : bytes[qs + j - 16] >> 4;
        }
        const bit = (e0 + j) * bits;
        wq[bit >>> 5] = (wq[bit >>> 5] | (q << (bit & 31))) >>> 0;
      }
    }
  }
  return { wq: bytesOf(wq), scales: bytesOf(scales), biases: bytesOf(biases) };
}

/** Writes the GGUF at `input` as an MLX-LM folder `outDir` (atomically: a temporary folder renamed at the end). */
export async function writeMlxFromGGUF(input: string, outDir: string, o: MlxWriteOptions = {}): Promise<MlxWriteResult> {
  const bits = o.bits ?? 4;
  const groupSize = o.groupSize ?? 64;
  checkMlxSpec({ mode: 'affine', bits, groupSize }, '--to mlx');
  const path = resolve(input);
  const dir = resolve(outDir);
  try {
    const st = await stat(dir);
    throw new FileError(dir, st.isDirectory() ? 'the output folder exists; remove it or name another' : 'exists and is not a folder');
  } catch (e) {
    if (e instanceof FileError) throw e;
  }
  const g = await loadGGUF(path, o.device ? { device: o.device } : {});
  const config = hfConfig(g, path);
  const h = readHparams(config, path);
  // GGUF name -> Hugging Face name and q/k permutation, through the architecture table
  const back = new Map<string, { hf: string; permuteHeads?: number }>();
  for (const hf of hfTensorNames(h)) {
    const m = mapTensor(hf, h, path);
    // one expert's or one fused half's name does not name the whole stacked GGUF tensor
    if (m && m.expert === undefined && !m.split) back.set(m.name, { hf, ...(m.permuteHeads ? { permuteHeads: m.permuteHeads } : {}) });
  }
  const spm = meta(g, 'tokenizer.ggml.model') === 'llama' ? sentencePieceFiles(g) : undefined;
  const bpe = spm ? undefined : tokenizerFiles(g, path);

  const reports: MlxTensorReport[] = [];
  const overrides: Record<string, { group_size: number; bits: number; mode?: string }> = {};
  const entries: [string, { shape: number[]; dtype: string; produce: () => Promise<Uint8Array> }][] = [];
  for (const t of g.tensorInfos) {
    if (t.name === 'rope_freqs.weight') continue; // generated from config.json's rope_scaling by the GGUF converter
    const b = back.get(t.name);
    if (!b) throw new FormatError(path, t.fileOffset, `tensor ${t.name} has no Hugging Face name in the ${h.arch.arch} table`);
    const inv = b.permuteHeads ? inverse(permuteRows(t.shape[0], b.permuteHeads)) : undefined;
    const module = b.hf.replace(/\.weight$/, '');
    const isWeight2d = t.shape.length === 2 && b.hf.endsWith('.weight') && !/norm/.test(b.hf);
    const cols = t.shape[t.shape.length - 1];
    if (isWeight2d && EXACT_BITS[t.type.name] !== undefined) {
      const bytes = await g.readTensorBytes(t.name);
      const m = exactModule(bytes, t, inv);
      if (m) {
        const mbits = EXACT_BITS[t.type.name];
        if (mbits !== bits || groupSize !== 32) overrides[module] = { group_size: 32, bits: mbits };
        const gshape = [t.shape[0], cols / 32];
        entries.push([`${module}.weight`, { shape: [t.shape[0], (cols * mbits) / 32], dtype: 'uint32', produce: async () => m.wq }]);
        entries.push([`${module}.scales`, { shape: gshape, dtype: 'float16', produce: async () => m.scales }]);
        entries.push([`${module}.biases`, { shape: gshape, dtype: 'float16', produce: async () => m.biases }]);
        reports.push({ name: b.hf, gguf: t.name, from: t.type.name, how: 'exact', bits: mbits, groupSize: 32 });
        continue;
      }
    }
    if (isWeight2d && t.type.name === 'mxfp4') {
      // the same E2M1 codes and E8M0 bytes: MLX's mxfp4 mode, codes back in element order
      const bytes = await g.readTensorBytes(t.name);
      const rows = t.shape[0];
      const blocksPerRow = cols / 32;
      const wq = new Uint32Array((rows * cols) / 8);
      const scales = new Uint8Array(rows * blocksPerRow);
      for (let r = 0; r < rows; r++) {
        const srcRow = inv ? inv[r] : r;
        for (let b = 0; b < blocksPerRow; b++) {
          const p = (srcRow * blocksPerRow + b) * 17;
          const grp = r * blocksPerRow + b;
          scales[grp] = bytes[p];
          for (let j = 0; j < 16; j++) {
            const lo = bytes[p + 1 + j] & 15;
            const hi = bytes[p + 1 + j] >> 4;
            wq[grp * 4 + (j >> 3)] |= lo << (4 * (j & 7));
            wq[grp * 4 + 2 + (j >> 3)] |= hi << (4 * (j & 7));
          }
        }
      }
      overrides[module] = { group_size: 32, bits: 4, mode: 'mxfp4' };
      entries.push([`${module}.weight`, { shape: [rows, cols / 8], dtype: 'uint32', produce: async () => bytesOf(wq) }]);
      entries.push([`${module}.scales`, { shape: [rows, blocksPerRow], dtype: 'uint8', produce: async () => scales }]);
      reports.push({ name: b.hf, gguf: t.name, from: t.type.name, how: 'exact', bits: 4, groupSize: 32 });
      continue;
    }
    if (isWeight2d && cols % groupSize === 0) {
      const dtype = t.type.name === 'bf16' ? 'bfloat16' : 'float16';
      const gshape = [t.shape[0], cols / groupSize];
      const report: MlxTensorReport = { name: b.hf, gguf: t.name, from: t.type.name, how: 'requantized', bits, groupSize };
      reports.push(report);
      let pending: Promise<Module> | undefined;
      const compute = (): Promise<Module> => (pending ??= requantize(g, t, inv, dtype, bits, groupSize, report, o.device));
      entries.push([`${module}.weight`, { shape: [t.shape[0], (cols * bits) / 32], dtype: 'uint32', produce: async () => (await compute()).wq }]);
      entries.push([`${module}.scales`, { shape: gshape, dtype, produce: async () => (await compute()).scales }]);
      entries.push([`${module}.biases`, { shape: gshape, dtype, produce: async () => {
        const r = (await compute()).biases;
        pending = undefined; // the module is written: free it
        return r;
      } }]);
      continue;
    }
    // floats (norms, biases, rows that do not split into groups): decoded to float32 unless already a float
    const dtype = t.type.dtype ?? 'float32';
    entries.push([b.hf, { shape: t.shape, dtype, produce: async () => {
      const bytes = await g.readTensorBytes(t.name);
      let x: Uint8Array = t.type.dtype ? bytes : bytesOf(dequantizeHost(bytes, t.type, t.name));
      if (inv) {
        const f = dtype === 'float32' ? new Float32Array(x.slice().buffer) : Float32Array.from(new Uint16Array(x.slice().buffer), dtype === 'float16' ? f16BitsToF32 : bf16BitsToF32);
        const p = permuteRowsHost(f, t.shape[0], inv);
        x = dtype === 'float32' ? bytesOf(p) : halves(p, dtype as 'float16' | 'bfloat16');
      }
      return x;
    } }]);
    reports.push({ name: b.hf, gguf: t.name, from: t.type.name, how: 'float' });
  }

  const quantization: Json = { group_size: groupSize, bits, mode: 'affine', ...overrides };
  const outConfig = { ...config, quantization, quantization_config: quantization };
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    const saved = await saveSafetensors(join(tmp, 'model.safetensors'), entries as never, { format: 'mlx' }, {
      maxShardBytes: o.maxShardBytes ?? 5 * 2 ** 30,
      signal: o.signal,
    });
    const json = (name: string, v: unknown) => writeFile(join(tmp, name), JSON.stringify(v, null, 2) + '\n');
    await json('config.json', outConfig);
    const written = ['config.json', 'tokenizer_config.json'];
    if (spm) {
      await writeFile(join(tmp, 'tokenizer.model'), spm.model);
      await json('tokenizer_config.json', spm.tokenizerConfig);
      written.push('tokenizer.model');
      if (Object.keys(spm.addedTokens).length) {
        await json('added_tokens.json', spm.addedTokens);
        written.push('added_tokens.json');
      }
    } else {
      await json('tokenizer.json', bpe!.tokenizer);
      await json('tokenizer_config.json', bpe!.tokenizerConfig);
      written.push('tokenizer.json');
    }
    await rename(tmp, dir);
    const files = [...saved.files.map((f) => join(dir, basename(f))), ...written.map((f) => join(dir, f))];
    return { dir, files, tensors: reports };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Decodes a GGUF weight (rows back in Hugging Face order) and quantizes it with MLX's affine rule; sets the report's RMSE. */
async function requantize(
  g: GGUFFile,
  t: GGUFTensorInfo,
  inv: Int32Array | undefined,
  dtype: 'float16' | 'bfloat16',
  bits: number,
  groupSize: number,
  report: MlxTensorReport,
  device: Device | undefined,
): Promise<Module> {
  if (device) {
    const loaded = await g.arrays[t.name]();
    let x: WgArray = loaded instanceof QuantizedArray ? dequantize(loaded, 'float32') : loaded;
    if (x !== loaded) loaded.dispose();
    if (inv) {
      const p = permuteRowsGpu(x, inv);
      x.dispose();
      x = p;
    }
    const half = castArray(x, dtype);
    const q = mlxAffineQuantizeGpu(half, groupSize, bits);
    half.dispose();
    const back = mlxAffineDequantizeGpu(q.wq, q.scales, q.biases, groupSize, bits);
    const [ref, got] = [(await (x.dtype === 'float32' ? x : castArray(x, 'float32')).data()) as Float32Array, (await back.data()) as Float32Array];
    report.rmse = rmse(ref, got);
    const m = { wq: bytesOf((await q.wq.data()) as Uint32Array), scales: bytesOf((await q.scales.data()) as Uint16Array), biases: bytesOf((await q.biases.data()) as Uint16Array) };
    for (const a of [x, q.wq, q.scales, q.biases, back]) a.dispose();
    return m;
  }
  const bytes = await g.readTensorBytes(t.name);
  let x = t.type.name === 'f32' ? new Float32Array(bytes.slice().buffer) : t.type.dtype ? Float32Array.from(new Uint16Array(bytes.slice().buffer), t.type.name === 'bf16' ? bf16BitsToF32 : f16BitsToF32) : dequantizeHost(bytes, t.type, t.name);
  if (inv) x = permuteRowsHost(x, t.shape[0], inv);
  const rounded = Float32Array.from(x, dtype === 'float16' ? (v) => f16BitsToF32(f32ToF16Bits(v)) : (v) => bf16BitsToF32(f32ToBf16Bits(v)));
  const q = mlxAffineQuantizeHost(rounded, t.shape[1], groupSize, bits, dtype);
  report.rmse = rmse(x, mlxAffineDequantizeHost(q.wq, q.scales, q.biases, groupSize, bits));
  return { wq: bytesOf(q.wq), scales: halves(q.scales, dtype), biases: halves(q.biases, dtype) };
}

function rmse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / Math.max(1, a.length));
}

export function checkToMlxArgs(bits: number, groupSize: number): void {
  if (!Number.isInteger(bits) || !Number.isInteger(groupSize)) throw new ArgumentError('--q-bits and --q-group-size take integers');
  checkMlxSpec({ mode: 'affine', bits, groupSize }, '--to mlx');
}
