// `wgarray convert HF_DIR`: the plan for a Hugging Face llama-family folder
// (config.json, safetensors weights, tokenizer.json or a SentencePiece
// tokenizer.model) as convert_hf_to_gguf.py
// does it, then, for a llama-quantize preset, llama-quantize's per-tensor
// types on top (as if the f32 GGUF were quantized).
//
// Also the plan for a bare .safetensors file without config.json (its tensor
// names kept as they are): `wgarray quantize weights.safetensors out.gguf Q8_0`.

import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ArgumentError, FileError, FormatError } from '../errors.js';
import { fileError } from '../io/atomic.js';
import { gguf } from '../io/gguf/metadata.js';
import { loadSafetensors, type SafetensorsFile } from '../io/safetensors/reader.js';
import { fromBytes } from '../ops/creation.js';
import type { Device } from '../runtime/device.js';
import { ggmlType, ggmlTypeOfDType, type GGMLType } from '../quant/ggml-types.js';
import {
  chooseTensorTypes,
  FTYPE,
  quantPreset,
  type ModelShape,
  type QuantPreset,
  type TypeChoiceOptions,
} from '../quant/presets.js';
import { expectedShape, llama3RopeFactors, mapTensor, modelMetadata, permuteRows, readHparams } from './architecture.js';
import { mlxModules, readMlxQuantization, type MlxModuleSource } from '../mlx/read.js';
import { Metadata } from './metadata.js';
import type { ConversionPlan, PlannedTensor, TensorSource } from './pipeline.js';
import { parseSentencePieceModel, sentencePieceMetadata, type SentencePieceModel } from './sentencepiece.js';
import { gpt2TokenizerMetadata } from './tokenizer.js';

type Json = Record<string, unknown>;

/** convert_hf_to_gguf.py's own --outtype values (its type rules); any other name is a llama-quantize preset. */
const CONVERT_OUTTYPES: Record<string, { type: string; ftype: number } | 'auto'> = {
  auto: 'auto',
  f32: { type: 'f32', ftype: FTYPE.ALL_F32 },
  f16: { type: 'f16', ftype: FTYPE.MOSTLY_F16 },
  bf16: { type: 'bf16', ftype: FTYPE.MOSTLY_BF16 },
  q8_0: { type: 'q8_0', ftype: FTYPE.MOSTLY_Q8_0 },
};

export interface HFPlanOptions extends TypeChoiceOptions {
  device?: Device;
  /** auto (the weights' own 16-bit type) | f32 | f16 | bf16 | q8_0 | any llama-quantize preset (Q4_K_M ...). Default auto. */
  outtype?: string;
  /** tokenizer.ggml.pre to write instead of the recognised one. */
  tokenizerPre?: string;
  /** general.name (default: the folder's name). */
  name?: string;
}

async function readJson(path: string): Promise<Json> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fileError(path, e, 'cannot read the file');
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Json;
  } catch (e) {
    throw new FormatError(path, undefined, `is not valid JSON: ${(e as Error).message}`);
  }
}

async function listing(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (e) {
    throw fileError(dir, e, 'cannot list the folder');
  }
}

function summarise(names: string[]): string {
  if (names.length === 0) return 'it is empty';
  const shown = names.slice(0, 12).join(', ');
  return `it holds ${shown}${names.length > 12 ? `, ... (${names.length} entries)` : ''}`;
}

/** Finds the weights of a Hugging Face folder: the shard index, model.safetensors, or the one .safetensors file. */
async function weightsPath(dir: string, names: string[]): Promise<string> {
  const index = names.find((n) => n === 'model.safetensors.index.json') ?? names.find((n) => n.endsWith('.safetensors.index.json'));
  if (index) return join(dir, index);
  if (names.includes('model.safetensors')) return join(dir, 'model.safetensors');
  const st = names.filter((n) => n.endsWith('.safetensors'));
  if (st.length === 1) return join(dir, st[0]);
  if (st.length > 1) {
    throw new FormatError(dir, undefined, `has ${st.length} .safetensors files (${st.slice(0, 4).join(', ')}...) but no model.safetensors.index.json naming which tensor is where`);
  }
  const bins = names.filter((n) => n.endsWith('.bin') || n.endsWith('.pt') || n.endsWith('.pth'));
  if (bins.length) {
    throw new FormatError(dir, undefined, `has PyTorch weights (${bins.slice(0, 3).join(', ')}) but no .safetensors; save the model with safe_serialization=True (wgarray reads safetensors only)`);
  }
  throw new FormatError(dir, undefined, `has no weights (model.safetensors or model.safetensors.index.json); ${summarise(names)}`);
}

const FLOAT_DTYPES = new Set(['float32', 'float16', 'bfloat16']);

function sourceOf(f: SafetensorsFile, name: string): TensorSource {
  const info = f.tensor(name);
  const type = ggmlTypeOfDType(info.dtype)!;
  return {
    label: `${basename(info.file)}: ${name}`,
    shape: info.shape,
    type,
    load: () => f.arrays[name](),
    read: () => f.readTensorBytes(name),
  };
}

/** A tensor computed by the converter (rope_freqs), held on the host. */
function generatedSource(label: string, values: Float32Array): TensorSource {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return {
    label,
    shape: [values.length],
    type: ggmlType('f32'),
    load: async (device) => fromBytes(bytes, [values.length], 'float32', device, label),
    read: async () => bytes,
  };
}

/** The preset for an outtype, or the convert_hf_to_gguf rule it names. */
export function resolveOuttype(outtype: string): { convert: { type: string; ftype: number } | 'auto' } | { preset: QuantPreset } {
  const key = outtype.trim().toLowerCase();
  const c = CONVERT_OUTTYPES[key];
  if (c) return { convert: c };
  const preset = quantPreset(outtype);
  if (preset.defaultType === null) throw new ArgumentError(`--outtype ${outtype}: COPY keeps a GGUF's types; for a Hugging Face folder use --outtype auto`);
  return { preset };
}

/** llama.cpp's layer-then-name order (the order llama-quantize writes). */
function byLayer(a: string, b: string): number {
  const la = /^blk\.(\d+)\./.exec(a);
  const lb = /^blk\.(\d+)\./.exec(b);
  const ia = la ? Number(la[1]) : -1;
  const ib = lb ? Number(lb[1]) : -1;
  if (ia !== ib) return ia - ib;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Plans the conversion of the Hugging Face folder `dir`. */
export async function planFromHF(dir: string, options: HFPlanOptions = {}): Promise<ConversionPlan> {
  const root = resolve(dir);
  let st;
  try {
    st = await stat(root);
  } catch (e) {
    throw fileError(root, e, 'cannot read the model folder');
  }
  if (!st.isDirectory()) throw new FileError(root, 'expected a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)');
  const names = await listing(root);
  if (!names.includes('config.json')) {
    throw new FormatError(root, undefined, `is not a Hugging Face model folder: no config.json; ${summarise(names)}`);
  }
  const configPath = join(root, 'config.json');
  const config = await readJson(configPath);
  const h = readHparams(config, configPath);
  const weights = await loadSafetensors(await weightsPath(root, names), { device: options.device });
  const out = resolveOuttype(options.outtype ?? 'auto');
  // An MLX-LM quantized folder: its packed modules repacked exactly under --outtype auto, else decoded and requantized.
  const mlxQuant = readMlxQuantization(config, configPath);
  const mlx = mlxQuant ? mlxModules(weights, mlxQuant, options.device) : undefined;
  const mlxRepack = 'convert' in out && out.convert === 'auto';
  if (mlx && mlxRepack) for (const m of mlx.byWeight.values()) await m.decide();

  // Tokenizer: SentencePiece (tokenizer.model) first, as convert_hf_to_gguf.py tries it, else a byte-level BPE tokenizer.json.
  const tokPath = join(root, 'tokenizer.json');
  const spmPath = join(root, 'tokenizer.model');
  if (!names.includes('tokenizer.json') && !names.includes('tokenizer.model')) {
    throw new FormatError(root, undefined, `has no tokenizer (tokenizer.json or tokenizer.model); ${summarise(names)}`);
  }
  const tokenizer = names.includes('tokenizer.json') ? await readJson(tokPath) : undefined;
  const tokenizerConfig = names.includes('tokenizer_config.json') ? await readJson(join(root, 'tokenizer_config.json')) : undefined;
  let chatTemplateFile: string | undefined;
  if (names.includes('chat_template.jinja')) chatTemplateFile = await readFile(join(root, 'chat_template.jinja'), 'utf8');
  else if (names.includes('chat_template.json')) {
    const t = (await readJson(join(root, 'chat_template.json'))).chat_template;
    if (typeof t === 'string') chatTemplateFile = t;
  }
  let spm: SentencePieceModel | undefined;
  if (names.includes('tokenizer.model')) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(spmPath);
    } catch (e) {
      throw fileError(spmPath, e, 'cannot read the file');
    }
    spm = parseSentencePieceModel(bytes, spmPath);
  }
  const addedTokens = names.includes('added_tokens.json') ? await readJson(join(root, 'added_tokens.json')) : undefined;

  // Tensors: renamed, checked against the hyperparameters.
  interface Mapped {
    name: string;
    hfName: string;
    shape: number[];
    source: TensorSource;
    permuteHeads?: number;
    mlx?: MlxModuleSource;
  }
  const mapped: Mapped[] = [];
  const seen = new Map<string, string>();
  let vocabRows: number | undefined;
  for (const info of weights.tensorInfos) {
    if (mlx?.companions.has(info.name)) continue;
    const m = mapTensor(info.name, h, basename(info.file));
    if (!m) continue;
    const mq = mlx?.byWeight.get(info.name);
    if (mq) {
      const other = seen.get(m.name);
      if (other) throw new FormatError(info.file, undefined, `tensors ${other} and ${info.name} both map to ${m.name}`);
      seen.set(m.name, info.name);
      if (m.name === 'token_embd.weight') vocabRows = mq.shape[0];
      // a repacked tensor's rows are permuted in its packed form; a decoded one's by the pipeline
      const repacked = mlxRepack && mq.exact !== undefined;
      const permute = repacked && m.permuteHeads ? permuteRows(mq.shape[0], m.permuteHeads) : undefined;
      const source = mq.source({ repack: mlxRepack, permute });
      mapped.push({ name: m.name, hfName: info.name, shape: mq.shape, source, mlx: mq, ...(m.permuteHeads && !repacked ? { permuteHeads: m.permuteHeads } : {}) });
      continue;
    }
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new FormatError(info.file, info.fileOffset, `tensor ${info.name} is ${info.fileDtype}; wgarray converts F32, F16 and BF16 weights`);
    }
    const other = seen.get(m.name);
    if (other) throw new FormatError(info.file, undefined, `tensors ${other} and ${info.name} both map to ${m.name}`);
    seen.set(m.name, info.name);
    if (m.name === 'token_embd.weight') vocabRows = info.shape[0];
    mapped.push({ name: m.name, hfName: info.name, shape: info.shape, source: sourceOf(weights, info.name), ...(m.permuteHeads ? { permuteHeads: m.permuteHeads } : {}) });
  }
  if (vocabRows === undefined) throw new FormatError(root, undefined, 'has no model.embed_tokens.weight (the token embedding)');
  if (h.vocabSize !== undefined && h.vocabSize !== vocabRows) {
    throw new FormatError(configPath, undefined, `vocab_size is ${h.vocabSize}, but model.embed_tokens.weight has ${vocabRows} rows`);
  }
  for (const t of mapped) {
    const want = expectedShape(t.name, h, vocabRows);
    if (want && (want.length !== t.shape.length || want.some((d, i) => d !== t.shape[i]))) {
      throw new FormatError(
        t.source.label,
        undefined,
        `shape [${t.shape.join(', ')}] of ${t.hfName} does not match config.json (expected [${want.join(', ')}] for ${t.name})`,
      );
    }
  }
  const required = ['token_embd.weight', 'output_norm.weight'];
  for (let i = 0; i < h.nLayer; i++) {
    for (const p of ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down']) required.push(`blk.${i}.${p}.weight`);
  }
  const missing = required.filter((n) => !seen.has(n));
  if (missing.length) {
    throw new FormatError(root, undefined, `is missing ${missing.length} tensor(s) a ${h.hfArch} needs: ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ', ...' : ''}`);
  }
  const rope = llama3RopeFactors(h);
  if (rope) mapped.push({ name: 'rope_freqs.weight', hfName: 'rope_freqs.weight', shape: [rope.length], source: generatedSource('rope_freqs.weight (llama3 rope scaling)', rope) });
  mapped.sort((a, b) => byLayer(a.name, b.name));

  // Types: convert_hf_to_gguf's rules for its own outtypes; for a preset, its rules over the f32 conversion.
  const f32 = ggmlType('f32');
  const isFloatKeeper = (t: Mapped) => t.shape.length <= 1 || t.name.endsWith('_norm.weight') || !t.name.endsWith('.weight');
  let types: { to: GGMLType; note?: string }[];
  let ftype: number;
  let outName: string;
  if ('convert' in out) {
    let rule = out.convert;
    if (rule === 'auto') {
      const first = mapped.find((t) => t.shape.length >= 2 && !t.mlx);
      const dt = first?.source.type.name ?? (mlx ? weights.tensorInfos.find((t) => t.name.endsWith('.scales'))?.dtype.replace('bfloat16', 'bf16') : undefined);
      rule = dt === 'bf16' ? CONVERT_OUTTYPES.bf16 : CONVERT_OUTTYPES.f16;
    }
    const r = rule as { type: string; ftype: number };
    ftype = r.ftype;
    outName = r.type.toUpperCase();
    types = mapped.map((t) => {
      if (t.mlx) return mlxType(t.mlx, out.convert === 'auto' ? undefined : ggmlType(r.type), t.shape);
      if (isFloatKeeper(t)) return { to: f32 };
      const want = ggmlType(r.type);
      if (t.shape[t.shape.length - 1] % want.blockSize !== 0) return { to: ggmlType('f16'), note: `row length not a multiple of ${want.blockSize}: F16` };
      return { to: want };
    });
    if (mlx && out.convert === 'auto') {
      // general.file_type names the type most MLX modules went to (as llama-quantize's would)
      const count = new Map<string, number>();
      for (const [i, t] of mapped.entries()) if (t.mlx) count.set(types[i].to.name, (count.get(types[i].to.name) ?? 0) + 1);
      const top = [...count.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
      const MLX_FTYPE: Record<string, number> = { q4_0: FTYPE.MOSTLY_Q4_0, q4_1: FTYPE.MOSTLY_Q4_1, q5_1: FTYPE.MOSTLY_Q5_1, q8_0: FTYPE.MOSTLY_Q8_0, mxfp4: FTYPE.MOSTLY_MXFP4_MOE };
      if (top && MLX_FTYPE[top] !== undefined) {
        ftype = MLX_FTYPE[top];
        outName = top.toUpperCase();
      }
    }
  } else {
    const preset = out.preset;
    ftype = preset.ftype;
    outName = preset.name;
    const model: ModelShape = { arch: h.arch.arch, nLayer: h.nLayer, nHead: h.nHead, nHeadKv: h.nHeadKv, nExpert: 0 };
    const choices = chooseTensorTypes(
      mapped.map((t) => ({ name: t.name, shape: t.shape, type: f32 })),
      preset,
      model,
      options,
    );
    types = choices.map((c, i) => {
      const m = mapped[i].mlx;
      const note = m ? `MLX ${mlxLabel(m)}: dequantized, requantized` : c.note;
      return { to: c.to, ...(note ? { note } : {}) };
    });
  }

  const parameterCount = mapped.filter((t) => t.name !== 'rope_freqs.weight').reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const meta = modelMetadata(h, { name: options.name ?? basename(root), ftype, parameterCount });
  const tokMeta = spm
    ? sentencePieceMetadata({ model: spm, modelPath: spmPath, tokenizer, tokenizerConfig, config: h.config, chatTemplateFile, addedTokens }, vocabRows)
    : gpt2TokenizerMetadata({ tokenizer: tokenizer!, tokenizerPath: tokPath, tokenizerConfig, config: h.config, chatTemplateFile }, vocabRows, {
        pre: options.tokenizerPre,
      });
  meta.merge(tokMeta);
  // keep general.file_type / quantization_version where modelMetadata put them
  meta.set('general.file_type', gguf.u32(ftype));

  const tensors: PlannedTensor[] = mapped.map((t, i) => ({
    name: t.name,
    shape: t.shape,
    from: t.source.type,
    to: types[i].to,
    ...(types[i].note ? { note: types[i].note } : {}),
    source: t.source,
    ...(t.permuteHeads ? { permuteHeads: t.permuteHeads } : {}),
    sourceName: t.hfName,
  }));
  return {
    description: `Hugging Face ${h.hfArch} folder (${h.nLayer} layers, hidden ${h.nEmbd}, vocab ${vocabRows}) -> ${h.arch.arch} ${outName}`,
    metadata: meta,
    tensors,
    model: { arch: h.arch.arch, nLayer: h.nLayer, nHead: h.nHead, nHeadKv: h.nHeadKv, nExpert: 0 },
  };
}

function mlxLabel(m: MlxModuleSource): string {
  return m.spec.mode === 'mxfp4' ? 'mxfp4' : `affine ${m.spec.bits}-bit g${m.spec.groupSize}`;
}

/**
 * The output type of an MLX-quantized tensor: under --outtype auto its exact ggml
 * type, else (no exact type) Q8_0; under another outtype, that type (dequantized first).
 */
function mlxType(m: MlxModuleSource, requested: GGMLType | undefined, shape: readonly number[]): { to: GGMLType; note: string } {
  if (!requested && m.exact) return { to: m.exact, note: `MLX ${mlxLabel(m)}: repacked exactly` };
  const row = shape[shape.length - 1];
  let to = requested ?? ggmlType('q8_0');
  if (row % to.blockSize !== 0) to = ggmlType('f16');
  const why = requested ? `--outtype ${requested.name}` : m.why;
  return { to, note: `MLX ${mlxLabel(m)}: dequantized${to.dtype ? '' : ', requantized'} (${why})` };
}

/** Plans a bare .safetensors file (no config.json beside it): tensor names kept, a llama-quantize preset applied. */
export async function planFromSafetensors(path: string, preset: QuantPreset, options: HFPlanOptions = {}): Promise<ConversionPlan> {
  const f = await loadSafetensors(path, { device: options.device });
  const infos = f.tensorInfos.map((t) => {
    if (!FLOAT_DTYPES.has(t.dtype)) throw new FormatError(t.file, t.fileOffset, `tensor ${t.name} is ${t.fileDtype}; wgarray quantizes F32, F16 and BF16 tensors`);
    return { name: t.name, shape: t.shape, type: ggmlTypeOfDType(t.dtype)! };
  });
  let maxLayer = -1;
  for (const t of infos) {
    const b = /^blk\.(\d+)\./.exec(t.name);
    if (b) maxLayer = Math.max(maxLayer, Number(b[1]));
  }
  const model: ModelShape = { arch: '', nLayer: maxLayer + 1, nHead: 0, nHeadKv: 0, nExpert: 0 };
  const choices = chooseTensorTypes(infos, preset, model, options);
  const meta = new Metadata();
  for (const [k, v] of Object.entries(f.metadata)) meta.string(k, v);
  meta.u32('general.quantization_version', 2);
  meta.u32('general.file_type', preset.defaultType === null ? FTYPE.ALL_F32 : preset.ftype);
  const tensors: PlannedTensor[] = infos.map((t, i) => ({
    name: t.name,
    shape: t.shape,
    from: t.type,
    to: choices[i].to,
    ...(choices[i].note ? { note: choices[i].note } : {}),
    source: sourceOf(f, t.name),
    sourceName: t.name,
  }));
  return { description: `safetensors (${infos.length} tensors)`, metadata: meta, tensors, model };
}

/** Whether `path` is a file inside a Hugging Face folder (config.json beside it). */
export function isInHFFolder(path: string): boolean {
  return existsSync(join(dirname(resolve(path)), 'config.json'));
}
