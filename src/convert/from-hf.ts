// `wgarray convert HF_DIR`: the plan for a Hugging Face folder (config.json,
// safetensors weights, tokenizer.json or a SentencePiece tokenizer.model) as
// convert_hf_to_gguf.py does it, in four steps: read (config.json against the
// architecture table in architecture.ts, the weights' index, the tokenizer
// files), map (tensors renamed, experts stacked, fused halves split, norms
// shifted, shapes checked), choose (convert_hf_to_gguf's types, or for a
// llama-quantize preset its per-tensor types, as if the f32 GGUF were
// quantized) and metadata. An MLX-LM quantized folder goes through the same
// steps: read finds its packed modules (src/convert/mlx/read.ts), map gives each one
// a source that repacks it exactly or decodes it, choose keeps the exact type.
//
// Also the plan for a bare .safetensors file without config.json (its tensor
// names kept as they are): `wgarray quantize weights.safetensors out.gguf Q8_0`.

import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ArgumentError, FileError, FormatError, quoteName } from '../errors.js';
import { standardKeyTypes } from '../io/gguf/keys.js';
import { fileError } from '../io/atomic.js';
import { readRegularFile } from '../io/source.js';
import type { Imatrix } from '../io/imatrix.js';
import { gguf } from '../io/gguf/metadata.js';
import { loadSafetensors, type SafetensorsFile } from '../io/safetensors/reader.js';
import { WgArray } from '../runtime/array.js';
import { fromBytes } from '../ops/creation.js';
import { bf16BitsToF32, f16BitsToF32 } from '../runtime/half.js';
import type { Device } from '../runtime/device.js';
import { ggmlBytes, ggmlType, ggmlTypeOfDType, type GGMLType } from '../runtime/ggml-types.js';
import {
  chooseTensorTypes,
  FTYPE,
  quantPreset,
  type ModelShape,
  type QuantPreset,
  type TypeChoiceOptions,
} from '../quant/presets.js';
import { expectedShape, generatedTensors, mapTensor, modelMetadata, permuteRows, readHparams, requiredTensors, type Hparams } from './architecture.js';
import { mlxModules, readMlxQuantization, type MlxModules, type MlxModuleSource } from './mlx/read.js';
import { Metadata } from './metadata.js';
import { attachImatrix, effectiveImatrix, setImatrixMetadata } from './imatrix-plan.js';
import { checkConfigJson, checkLayersAgainstTensors, checkTokenizerConfigJson, checkTokenizerJson } from './hf-schema.js';
import type { ConversionPlan, PlannedTensor, TensorSource } from './pipeline.js';
import { parseSentencePieceModel, sentencePieceFromTokenizerJson, sentencePieceMetadata, type SentencePieceModel } from './sentencepiece.js';
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
  /** --imatrix (a preset outtype only): importance weights by GGUF tensor name, as for a GGUF input. */
  imatrix?: Imatrix;
}

async function readJson(path: string): Promise<Json> {
  const text = await readRegularFile(path, 'utf8');
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

/** A tensor assembled from pieces held on the host (stacked experts, split halves), as one source. */
function hostSource(label: string, shape: number[], type: GGMLType, read: () => Promise<Uint8Array>): TensorSource {
  return {
    label,
    shape,
    type,
    load: async (device) => fromBytes(await read(), shape, type.dtype!, device, label),
    read,
  };
}

/**
 * Experts e = 0..n-1, each [rows, cols], stacked into one [n, rows, cols]
 * tensor (torch.stack(dim=0)). Each expert is read and uploaded on its own,
 * so the host never holds more than one expert's bytes on the GPU path.
 */
function stackedSource(pieces: TensorSource[], shape: number[]): TensorSource {
  const first = pieces[0];
  const pieceBytes = ggmlBytes(first.type, shape[1] * shape[2]);
  const label = first.label.replace(/\.experts\.0\./, '.experts.*.');
  const read = async () => {
    const out = new Uint8Array(pieces.length * pieceBytes);
    for (const [e, p] of pieces.entries()) out.set(await p.read(), e * pieceBytes);
    return out;
  };
  return {
    label,
    shape,
    type: first.type,
    read,
    load: async (device) => {
      if (pieceBytes % 4 !== 0) return fromBytes(await read(), shape, first.type.dtype!, device, label);
      const out = WgArray.empty(device, shape, first.type.dtype!, label);
      for (const [e, p] of pieces.entries()) device.writeBuffer(out.buffer, e * pieceBytes, await p.read());
      return out;
    },
  };
}

/** Half `half` (0: first rows, 1: last rows) of each expert's rows of a fused [n, 2 * rows, cols] tensor. */
function halfSource(whole: TensorSource, half: 0 | 1): TensorSource {
  const [n, rows2, cols] = whole.shape;
  const rows = rows2 / 2;
  const rowBytes = ggmlBytes(whole.type, cols);
  return hostSource(`${whole.label} (${half === 0 ? 'first' : 'second'} half)`, [n, rows, cols], whole.type, async () => {
    const all = await whole.read();
    const out = new Uint8Array(n * rows * rowBytes);
    for (let e = 0; e < n; e++) {
      const from = (e * rows2 + half * rows) * rowBytes;
      out.set(all.subarray(from, from + rows * rowBytes), e * rows * rowBytes);
    }
    return out;
  });
}

/** The first `rows` rows of a 2-D tensor (Gemma 3's embedding cut to the real vocabulary). */
function leadingRowsSource(whole: TensorSource, rows: number): TensorSource {
  const cols = whole.shape[1];
  return hostSource(`${whole.label} (first ${rows} rows)`, [rows, cols], whole.type, async () => (await whole.read()).slice(0, rows * ggmlBytes(whole.type, cols)));
}

/** A float tensor plus `shift`, as F32 (Gemma's norms: llama.cpp multiplies by w where Gemma multiplies by 1 + w). */
function shiftedSource(whole: TensorSource, shift: number): TensorSource {
  const f32 = ggmlType('f32');
  return hostSource(`${whole.label} (+${shift})`, [...whole.shape], f32, async () => {
    const bytes = await whole.read();
    const n = whole.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const type = whole.type.name;
    for (let i = 0; i < n; i++) {
      const v =
        type === 'f32' ? view.getFloat32(i * 4, true) : type === 'f16' ? f16BitsToF32(view.getUint16(i * 2, true)) : bf16BitsToF32(view.getUint16(i * 2, true));
      out[i] = v + shift;
    }
    return new Uint8Array(out.buffer);
  });
}

/** What `read` finds in a Hugging Face folder. */
interface HFFolder {
  root: string;
  names: string[];
  configPath: string;
  h: Hparams;
  weights: SafetensorsFile;
  tokenizer: TokenizerFiles;
  /** An MLX-LM quantized folder's packed modules; `repack`: kept in their exact ggml type (--outtype auto), else decoded. */
  mlx?: MlxModules & { repack: boolean };
}

/** The tokenizer files of a folder, parsed. */
interface TokenizerFiles {
  tokPath: string;
  spmPath: string;
  tokenizer: Json | undefined;
  tokenizerConfig: Json | undefined;
  chatTemplateFile: string | undefined;
  spm: SentencePieceModel | undefined;
  addedTokens: Json | undefined;
}

async function readTokenizerFiles(root: string, names: string[]): Promise<TokenizerFiles> {
  const tokPath = join(root, 'tokenizer.json');
  const spmPath = join(root, 'tokenizer.model');
  if (!names.includes('tokenizer.json') && !names.includes('tokenizer.model')) {
    throw new FormatError(root, undefined, `has no tokenizer (tokenizer.json or tokenizer.model); ${summarise(names)}`);
  }
  const tokenizer = names.includes('tokenizer.json') ? await readJson(tokPath) : undefined;
  if (tokenizer) checkTokenizerJson(tokenizer, tokPath);
  const tokenizerConfig = names.includes('tokenizer_config.json') ? await readJson(join(root, 'tokenizer_config.json')) : undefined;
  if (tokenizerConfig) checkTokenizerConfigJson(tokenizerConfig, join(root, 'tokenizer_config.json'));
  let chatTemplateFile: string | undefined;
  if (names.includes('chat_template.jinja')) chatTemplateFile = await readRegularFile(join(root, 'chat_template.jinja'), 'utf8');
  else if (names.includes('chat_template.json')) {
    const t = (await readJson(join(root, 'chat_template.json'))).chat_template;
    if (typeof t === 'string') chatTemplateFile = t;
  }
  let spm: SentencePieceModel | undefined;
  if (names.includes('tokenizer.model')) {
    spm = parseSentencePieceModel(await readRegularFile(spmPath), spmPath);
  }
  const addedTokens = names.includes('added_tokens.json') ? await readJson(join(root, 'added_tokens.json')) : undefined;
  return { tokPath, spmPath, tokenizer, tokenizerConfig, chatTemplateFile, spm, addedTokens };
}

/** The tokenizer's own vocabulary size, as Gemma3Model.modify_tensors counts it. */
function realVocabulary(t: TokenizerFiles, h: Hparams): number {
  if (t.spm) return h.vocabSize ?? t.spm.pieces.length;
  const vocab = (t.tokenizer?.model as Json | undefined)?.vocab;
  const added = t.tokenizer?.added_tokens;
  // ids, not entries: added tokens may re-list ids of the base vocabulary (Gemma 3's 6415 <unusedN> do)
  let maxId = -1;
  if (vocab && typeof vocab === 'object') for (const id of Object.values(vocab)) if (typeof id === 'number' && id > maxId) maxId = id;
  if (Array.isArray(added)) for (const a of added) if (typeof a?.id === 'number' && a.id > maxId) maxId = a.id;
  return maxId + 1;
}

/** One GGUF tensor as mapped from the folder (before its type is chosen). */
interface MappedTensor {
  name: string;
  hfName: string;
  shape: number[];
  source: TensorSource;
  permuteHeads?: number;
  /** The MLX module it comes from (packed weight, scales, biases). */
  mlx?: MlxModuleSource;
}

/** Step 1, read: the folder's config.json (checked) and its weights' index. */
async function readFolder(dir: string, options: HFPlanOptions): Promise<HFFolder> {
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
  checkConfigJson(config, configPath);
  const h = readHparams(config, configPath);
  const weights = await loadSafetensors(await weightsPath(root, names), { device: options.device });
  const tokenizer = await readTokenizerFiles(root, names);
  const folder: HFFolder = { root, names, configPath, h, weights, tokenizer };
  const mlxQuant = readMlxQuantization(config, configPath);
  if (mlxQuant) {
    // repacked exactly under --outtype auto (each module's scales read to decide whether it can be), else decoded and requantized
    const out = resolveOuttype(options.outtype ?? 'auto');
    const repack = 'convert' in out && out.convert === 'auto';
    folder.mlx = { ...mlxModules(weights, mlxQuant, options.device), repack };
    if (repack) for (const m of folder.mlx.byWeight.values()) await m.decide();
  }
  return folder;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Step 2, map: every safetensors tensor renamed by the architecture's table,
 * experts stacked, fused halves split, each checked against config.json's
 * shapes (an error names the file, the tensor and the shape expected), and
 * the generated rope_freqs added; in llama.cpp's layer-then-name order.
 */
function mapTensors(folder: HFFolder): { tensors: MappedTensor[]; vocabRows: number } {
  const { h, weights, root, configPath } = folder;
  const mapped: MappedTensor[] = [];
  const seen = new Map<string, string>();
  const experts = new Map<string, { hfName: string; source: TensorSource }[]>();
  const claim = (name: string, hfName: string, file: string) => {
    const other = seen.get(name);
    if (other) throw new FormatError(file, undefined, `tensors ${other} and ${hfName} both map to ${name}`);
    seen.set(name, hfName);
  };
  const { mlx } = folder;
  for (const info of weights.tensorInfos) {
    if (mlx?.companions.has(info.name)) continue;
    const m = mapTensor(info.name, h, basename(info.file));
    if (!m) continue;
    const mq = mlx?.byWeight.get(info.name);
    if (mq) {
      if (m.expert !== undefined || m.split) {
        throw new FormatError(info.file, info.fileOffset, `MLX-quantized ${info.name} maps to a part of ${m.name}; wgarray converts MLX-quantized experts only stacked (switch_mlp), not one by one`);
      }
      claim(m.name, info.name, info.file);
      // a repacked tensor's rows are permuted in its packed form; a decoded one's by the pipeline
      const repacked = mlx!.repack && mq.exact !== undefined;
      const permute = repacked && m.permuteHeads ? permuteRows(mq.shape[0], m.permuteHeads) : undefined;
      const source = mq.source({ repack: mlx!.repack, permute });
      mapped.push({ name: m.name, hfName: info.name, shape: mq.shape, source, mlx: mq, ...(m.permuteHeads && !repacked ? { permuteHeads: m.permuteHeads } : {}) });
      continue;
    }
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new FormatError(info.file, info.fileOffset, `tensor ${info.name} is ${info.fileDtype}; wgarray converts F32, F16 and BF16 weights`);
    }
    const source = sourceOf(weights, info.name);
    if (m.expert !== undefined) {
      let list = experts.get(m.name);
      if (!list) experts.set(m.name, (list = []));
      if (list[m.expert]) throw new FormatError(info.file, undefined, `tensors ${list[m.expert].hfName} and ${info.name} are both expert ${m.expert} of ${m.name}`);
      list[m.expert] = { hfName: info.name, source };
    } else if (m.split) {
      const halves = m.split.map((n) => expectedShape(n, h, 0)!);
      const want = [halves[0][0], halves[0][1] * 2, halves[0][2]];
      if (!sameShape(info.shape, want)) {
        throw new FormatError(source.label, undefined, `shape [${info.shape.join(', ')}] of ${info.name} does not match config.json (expected [${want.join(', ')}]: ${m.split.join(' and ')} fused)`);
      }
      m.split.forEach((name, i) => {
        claim(name, info.name, info.file);
        mapped.push({ name, hfName: info.name, shape: halves[i], source: halfSource(source, i as 0 | 1) });
      });
    } else {
      claim(m.name, info.name, info.file);
      const shifted = h.arch.normShift && m.name.endsWith('norm.weight') ? shiftedSource(source, h.arch.normShift) : source;
      mapped.push({ name: m.name, hfName: info.name, shape: info.shape, source: shifted, ...(m.permuteHeads ? { permuteHeads: m.permuteHeads } : {}) });
    }
  }
  for (const [name, list] of experts) {
    const want = expectedShape(name, h, 0)!;
    for (let e = 0; e < h.nExpert; e++) {
      if (!list[e]) {
        const some = list.find((x) => x)!.hfName;
        throw new FormatError(root, undefined, `is missing expert ${e} of ${name} (config.json has ${h.nExpert} experts; ${some.replace(/\.experts\.\d+\./, `.experts.${e}.`)} expected, shape [${want.slice(1).join(', ')}])`);
      }
      const piece = list[e];
      if (!sameShape(piece.source.shape, want.slice(1))) {
        throw new FormatError(piece.source.label, undefined, `shape [${piece.source.shape.join(', ')}] of ${piece.hfName} does not match config.json (expected [${want.slice(1).join(', ')}] for expert ${e} of ${name})`);
      }
      if (piece.source.type !== list[0].source.type) {
        throw new FormatError(piece.source.label, undefined, `${piece.hfName} is ${piece.source.type.name} but expert 0 of ${name} is ${list[0].source.type.name}; experts of one tensor must share a dtype`);
      }
    }
    claim(name, list[0].hfName, root);
    mapped.push({ name, hfName: list[0].hfName.replace(/\.experts\.0\./, '.experts.*.'), shape: want, source: stackedSource(list.map((x) => x.source), want) });
  }
  const embd = mapped.find((t) => t.name === 'token_embd.weight');
  if (!embd) throw new FormatError(root, undefined, 'has no model.embed_tokens.weight (the token embedding)');
  if (h.vocabSize !== undefined && h.vocabSize !== embd.shape[0]) {
    throw new FormatError(configPath, undefined, `vocab_size is ${h.vocabSize}, but model.embed_tokens.weight has ${embd.shape[0]} rows`);
  }
  if (h.arch.trimEmbedding) {
    const real = realVocabulary(folder.tokenizer, h);
    if (real > embd.shape[0]) {
      throw new FormatError(folder.tokenizer.spm ? folder.tokenizer.spmPath : folder.tokenizer.tokPath, undefined, `has ${real} tokens, but model.embed_tokens.weight has only ${embd.shape[0]} rows`);
    }
    if (real < embd.shape[0]) {
      embd.source = leadingRowsSource(embd.source, real);
      embd.shape = [real, embd.shape[1]];
    }
  }
  const vocabRows = embd.shape[0];
  for (const t of mapped) {
    const want = expectedShape(t.name, h, vocabRows);
    if (want && !sameShape(want, t.shape)) {
      throw new FormatError(
        t.source.label,
        undefined,
        `shape [${t.shape.join(', ')}] of ${t.hfName} does not match config.json (expected [${want.join(', ')}] for ${t.name})`,
      );
    }
  }
  // before anything is sized by the layer count (a config may claim 2^53 layers)
  checkLayersAgainstTensors(configPath, h.nLayer, weights.tensorInfos.map((t) => t.name));
  const missing = requiredTensors(h).filter((n) => !seen.has(n));
  if (missing.length) {
    throw new FormatError(root, undefined, `is missing ${missing.length} tensor(s) a ${h.hfArch} needs: ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ', ...' : ''}`);
  }
  for (const g of generatedTensors(h)) mapped.push({ name: g.name, hfName: g.name, shape: [g.values.length], source: generatedSource(`${g.name} (${g.why})`, g.values) });
  mapped.sort((a, b) => byLayer(a.name, b.name));
  return { tensors: mapped, vocabRows };
}

/** Step 3, choose: each tensor's output type (convert_hf_to_gguf's rules for its outtypes, llama-quantize's for a preset). */
function chooseTypes(
  folder: HFFolder,
  mapped: MappedTensor[],
  model: ModelShape,
  options: HFPlanOptions,
): { types: { to: GGMLType; note?: string }[]; ftype: number; outName: string } {
  const out = resolveOuttype(options.outtype ?? 'auto');
  const f32 = ggmlType('f32');
  if ('preset' in out) {
    const preset = out.preset;
    const choices = chooseTensorTypes(
      mapped.map((t) => ({ name: t.name, shape: t.shape, type: f32 })),
      preset,
      model,
      { ...options, hasImatrix: effectiveImatrix(options.imatrix) !== undefined },
    );
    const types = choices.map((c, i) => {
      const m = mapped[i].mlx;
      const note = m ? `MLX ${mlxLabel(m)}: dequantized, requantized` : c.note;
      return { to: c.to, ...(note ? { note } : {}) };
    });
    return { types, ftype: preset.ftype, outName: preset.name };
  }
  let rule = out.convert;
  if (rule === 'auto') {
    // the weights' own 16-bit type; an all-MLX-quantized folder's is its scales'
    const first = mapped.find((t) => t.shape.length >= 2 && !t.mlx);
    const scales = folder.mlx ? folder.weights.tensorInfos.find((t) => t.name.endsWith('.scales'))?.dtype : undefined;
    const dt = first?.source.type.name ?? (scales === 'bfloat16' ? 'bf16' : scales);
    rule = dt === 'bf16' ? CONVERT_OUTTYPES.bf16 : CONVERT_OUTTYPES.f16;
  }
  const r = rule as { type: string; ftype: number };
  // kept in F32: 1-D tensors, norms, biases and the MoE router (ffn_gate_inp)
  const keepsF32 = (t: MappedTensor) =>
    t.shape.length <= 1 || t.name.endsWith('_norm.weight') || !t.name.endsWith('.weight') || t.name.endsWith('.ffn_gate_inp.weight');
  const want = ggmlType(r.type);
  const types = mapped.map((t) => {
    if (t.mlx) return mlxType(t.mlx, out.convert === 'auto' ? undefined : want, t.shape);
    if (keepsF32(t)) return { to: f32 };
    if (t.shape[t.shape.length - 1] % want.blockSize !== 0) return { to: ggmlType('f16'), note: `row length not a multiple of ${want.blockSize}: F16` };
    return { to: want };
  });
  if (folder.mlx && out.convert === 'auto') {
    // general.file_type names the type most MLX modules went to (as llama-quantize's would)
    const count = new Map<string, number>();
    for (const [i, t] of mapped.entries()) if (t.mlx) count.set(types[i].to.name, (count.get(types[i].to.name) ?? 0) + 1);
    const top = [...count.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
    if (top && MLX_FTYPE[top] !== undefined) return { types, ftype: MLX_FTYPE[top], outName: top.toUpperCase() };
  }
  return { types, ftype: r.ftype, outName: r.type.toUpperCase() };
}

/** general.file_type for the ggml type MLX modules repack to. */
const MLX_FTYPE: Record<string, number> = { q4_0: FTYPE.MOSTLY_Q4_0, q4_1: FTYPE.MOSTLY_Q4_1, q5_1: FTYPE.MOSTLY_Q5_1, q8_0: FTYPE.MOSTLY_Q8_0, mxfp4: FTYPE.MOSTLY_MXFP4_MOE };

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

/** Step 4, metadata: the model's keys, then the tokenizer's (tokenizer.model first, as convert_hf_to_gguf tries it, else tokenizer.json). */
async function folderMetadata(folder: HFFolder, mapped: MappedTensor[], vocabRows: number, ftype: number, options: HFPlanOptions): Promise<Metadata> {
  const { root, h } = folder;
  const { tokPath, spmPath, tokenizer, tokenizerConfig, chatTemplateFile, spm, addedTokens } = folder.tokenizer;
  const generated = new Set(generatedTensors(h).map((g) => g.name));
  const parameterCount = mapped.filter((t) => !generated.has(t.name)).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const meta = modelMetadata(h, { name: options.name ?? basename(root), ftype, parameterCount });
  // a tokenizer.json-only SentencePiece BPE (Llama 2 / Mistral 7B saved without tokenizer.model) is written as one too
  const spmJson = !spm && tokenizer ? sentencePieceFromTokenizerJson(tokenizer, tokPath) : undefined;
  const tokMeta = spm
    ? sentencePieceMetadata({ model: spm, modelPath: spmPath, tokenizer, tokenizerConfig, config: h.config, chatTemplateFile, addedTokens }, vocabRows)
    : spmJson
      ? sentencePieceMetadata({ model: spmJson, modelPath: tokPath, tokenizer, tokenizerConfig, config: h.config, chatTemplateFile, addedTokens }, vocabRows)
    : gpt2TokenizerMetadata({ tokenizer: tokenizer!, tokenizerPath: tokPath, tokenizerConfig, config: h.config, chatTemplateFile }, vocabRows, {
        pre: options.tokenizerPre,
      });
  meta.merge(tokMeta);
  if (spm && h.arch.spmAddSpacePrefix !== undefined) meta.bool('tokenizer.ggml.add_space_prefix', h.arch.spmAddSpacePrefix);
  // llama.cpp's SentencePiece tokenizer adds the space prefix unless told not to
  if (spmJson && !spmJson.addDummyPrefix) meta.bool('tokenizer.ggml.add_space_prefix', false);
  // keep general.file_type / quantization_version where modelMetadata put them
  meta.set('general.file_type', gguf.u32(ftype));
  return meta;
}

/** Plans the conversion of the Hugging Face folder `dir`: read, map, choose, metadata. */
export async function planFromHF(dir: string, options: HFPlanOptions = {}): Promise<ConversionPlan> {
  const folder = await readFolder(dir, options);
  const { h } = folder;
  const { tensors: mapped, vocabRows } = mapTensors(folder);
  const model: ModelShape = { arch: h.arch.arch, nLayer: h.nLayer, nHead: h.nHead, nHeadKv: h.nHeadKv, nExpert: h.nExpert };
  const out = resolveOuttype(options.outtype ?? 'auto');
  if (options.imatrix && !('preset' in out)) {
    throw new ArgumentError(`--imatrix weights a quantization preset (e.g. Q4_K_M, IQ2_M); --outtype ${options.outtype ?? 'auto'} does not quantize with one`);
  }
  const { types, ftype, outName } = chooseTypes(folder, mapped, model, options);
  const metadata = await folderMetadata(folder, mapped, vocabRows, ftype, options);
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
  const imatrix = effectiveImatrix(options.imatrix);
  if ('preset' in out) {
    // after the name mapping: the imatrix names GGUF tensors
    attachImatrix(tensors, imatrix, { name: out.preset.name, ftype }, options);
    if (imatrix) setImatrixMetadata(metadata, imatrix);
  }
  return {
    description: `Hugging Face ${h.hfArch} folder (${h.nLayer} layers, hidden ${h.nEmbd}${h.nExpert ? `, ${h.nExpert} experts` : ''}, vocab ${vocabRows}) -> ${h.arch.arch} ${outName}`,
    metadata,
    tensors,
    model,
  };
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
  const imatrix = effectiveImatrix(options.imatrix);
  const choices = chooseTensorTypes(infos, preset, model, { ...options, hasImatrix: imatrix !== undefined });
  const meta = new Metadata();
  for (const [k, v] of Object.entries(f.metadata)) {
    // safetensors metadata values are strings: a standard GGUF key of another type is the file's fault, named here
    const standard = standardKeyTypes(k);
    if (standard && !standard.includes('string')) {
      throw new FormatError(path, undefined, `__metadata__ ${quoteName(k)} is the string ${quoteName(v, 40)}, but llama.cpp reads ${quoteName(k)} as ${standard.join(' or ')}`);
    }
    meta.string(k, v);
  }
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
  attachImatrix(tensors, imatrix, { name: preset.name, ftype: preset.ftype }, options);
  if (imatrix) setImatrixMetadata(meta, imatrix);
  return { description: `safetensors (${infos.length} tensors)`, metadata: meta, tensors, model };
}

/** Whether `path` is a file inside a Hugging Face folder (config.json beside it). */
export function isInHFFolder(path: string): boolean {
  return existsSync(join(dirname(resolve(path)), 'config.json'));
}
