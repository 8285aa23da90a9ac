// `wgarray quantize model.gguf ...`: the plan for re-typing a GGUF file's
// tensors under a llama-quantize preset. Metadata passes through unchanged
// except general.file_type and general.quantization_version (and split keys,
// which describe the input's shards).

import { ArgumentError, FormatError, quoteName } from '../errors.js';
import { imatrixWeights, type Imatrix } from '../io/imatrix.js';
import { loadGGUF, type GGUFFile } from '../io/gguf/reader.js';
import { gguf } from '../io/gguf/metadata.js';
import { standardKeyTypes } from '../io/gguf/keys.js';
import type { Device } from '../runtime/device.js';
import type { GGMLType } from '../runtime/ggml-types.js';
import {
  allowsQuantization,
  chooseTensorTypes,
  guessFtype,
  requiresImatrix,
  type ModelShape,
  type QuantPreset,
  type TypeChoiceOptions,
} from '../quant/presets.js';
import { Metadata } from './metadata.js';
import type { ConversionPlan, PlannedTensor, TensorSource } from './pipeline.js';

/** The hyperparameters the type choice needs, from a GGUF file's <arch>.* keys. */
export function modelShapeOf(f: Pick<GGUFFile, 'metadata' | 'path' | 'tensorInfos'>): ModelShape {
  const m = f.metadata;
  const arch = typeof m['general.architecture'] === 'string' ? (m['general.architecture'] as string) : '';
  const num = (key: string): number | undefined => {
    const v = m[key];
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return Number(v);
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      // per-layer values: llama.cpp's n_head() is layer 0's
      const first = (v as unknown as ArrayLike<number | bigint>)[0];
      return first === undefined ? undefined : Number(first);
    }
    return undefined;
  };
  let nLayer = num(`${arch}.block_count`);
  if (nLayer === undefined) {
    // no architecture keys: count blk.N. tensors
    let max = -1;
    for (const t of f.tensorInfos) {
      const b = /^blk\.(\d+)\./.exec(t.name);
      if (b) max = Math.max(max, Number(b[1]));
    }
    nLayer = max + 1;
  }
  const nHead = num(`${arch}.attention.head_count`) ?? 0;
  return {
    arch,
    nLayer,
    nHead,
    nHeadKv: num(`${arch}.attention.head_count_kv`) ?? nHead,
    nExpert: num(`${arch}.expert_count`) ?? 0,
  };
}

export interface GGUFPlanOptions extends TypeChoiceOptions {
  device?: Device;
  /** --imatrix (already filtered by --include/--exclude-weights): per-tensor weights, and the mix rules that change with one. */
  imatrix?: Imatrix;
}

/**
 * Each tensor's importance weights, checked as llama-quantize checks them
 * before anything is written: an entry whose size is not row length x experts
 * is an error (except for the token embedding, which then goes without); a
 * tensor whose type needs weights and has none is refused.
 */
function tensorWeights(
  infos: readonly { name: string; shape: readonly number[]; to: GGMLType; from: GGMLType }[],
  imatrix: Imatrix | undefined,
  ftype: number,
  options: TypeChoiceOptions,
): (Float32Array | undefined)[] {
  return infos.map((t) => {
    const quantized = t.to !== t.from && allowsQuantization({ name: t.name, shape: t.shape, type: t.from }, options);
    let w: Float32Array | undefined;
    if (imatrix && quantized) {
      const rowLength = t.shape[t.shape.length - 1];
      const experts = t.shape.length >= 3 ? t.shape[t.shape.length - 3] : 1;
      const tokenEmbd = t.name === 'token_embd.weight' || t.name === 'per_layer_token_embd.weight';
      const entry = imatrix.entries.get(t.name);
      if (entry && !(tokenEmbd && entry.length !== rowLength * experts)) w = imatrixWeights(imatrix, t.name, rowLength, experts);
    }
    if (!w && quantized && requiresImatrix(t.name, t.to, ftype)) {
      throw new ArgumentError(
        imatrix
          ? `tensor '${t.name}' (${t.to.name}) has no importance weights in ${imatrix.file}: very low-bit types need them (llama-quantize refuses too)`
          : `quantizing tensor '${t.name}' to ${t.to.name} requires an importance matrix: pass --imatrix FILE (from llama-imatrix or wgarray imatrix)`,
      );
    }
    return w;
  });
}

/** Plans `preset` over the GGUF file at `path`. */
export async function planFromGGUF(path: string, preset: QuantPreset, options: GGUFPlanOptions = {}): Promise<ConversionPlan> {
  const f = await loadGGUF(path, { device: options.device });
  if (f.tensorInfos.length === 0) throw new FormatError(path, undefined, 'has no tensors to quantize');
  const splits = Number(f.metadata['split.count'] ?? 1);
  if (splits > 1) {
    throw new FormatError(
      path,
      undefined,
      `is shard ${Number(f.metadata['split.no'] ?? 0) + 1} of ${splits} of a split model; merge the shards first (llama-gguf-split --merge)`,
    );
  }
  const model = modelShapeOf(f);
  const infos = f.tensorInfos.map((t) => ({ name: t.name, shape: t.shape, type: t.type }));
  const imatrix = options.imatrix && options.imatrix.entries.size > 0 ? options.imatrix : undefined;
  const choices = chooseTensorTypes(infos, preset, model, { ...options, hasImatrix: imatrix !== undefined });

  const meta = new Metadata();
  for (const [k, v] of Object.entries(f.typedMetadata)) {
    if (k === 'split.no' || k === 'split.count' || k === 'split.tensors.count') continue;
    // a standard key of a type llama.cpp rejects is the input's fault: say so here, naming the file and key
    const standard = standardKeyTypes(k);
    if (standard && !standard.includes(v.type) && !(standard[0] === 'array<i32>' && v.type === 'array<u32>')) {
      throw new FormatError(path, undefined, `metadata ${quoteName(k)} is ${v.type}, but llama.cpp reads it as ${standard.join(' or ')}; the quantized model would not load`);
    }
    meta.set(k, v);
  }
  meta.set('general.quantization_version', gguf.u32(2));
  const ftype =
    preset.defaultType === null
      ? typeof f.metadata['general.file_type'] === 'number'
        ? (f.metadata['general.file_type'] as number)
        : guessFtype(f.tensorInfos.map((t) => t.type))
      : preset.ftype;
  meta.set('general.file_type', gguf.u32(ftype));
  const weights = tensorWeights(
    f.tensorInfos.map((t, i) => ({ name: t.name, shape: t.shape, from: t.type, to: choices[i].to })),
    imatrix,
    ftype,
    options,
  );
  if (imatrix) {
    // llama-quantize's kv overrides: strings cut at 127 bytes, counts as u32
    meta.set('quantize.imatrix.file', gguf.string(truncate127(imatrix.file)));
    if (imatrix.datasets.length) meta.set('quantize.imatrix.dataset', gguf.string(truncate127(imatrix.datasets[0])));
    meta.set('quantize.imatrix.entries_count', gguf.u32(imatrix.entries.size));
    if (imatrix.chunkCount > 0) meta.set('quantize.imatrix.chunks_count', gguf.u32(imatrix.chunkCount));
  }

  const tensors: PlannedTensor[] = f.tensorInfos.map((info, i) => {
    const source: TensorSource = {
      label: `${path}: ${info.name}`,
      shape: info.shape,
      type: info.type,
      load: () => f.arrays[info.name](),
      read: () => f.readTensorBytes(info.name),
    };
    const c = choices[i];
    return {
      name: info.name,
      shape: info.shape,
      from: info.type,
      to: c.to,
      ...(c.note ? { note: c.note } : {}),
      source,
      sourceName: info.name,
      ...(weights[i] ? { imatrix: weights[i] } : {}),
    };
  });
  const arch = model.arch || 'unknown architecture';
  return {
    description: `GGUF v${f.version} (${arch}, ${f.tensorInfos.length} tensors)`,
    metadata: meta,
    tensors,
    model,
  };
}

/** strncpy(val_str, s, 127): the first 127 bytes (UTF-8) of s. */
function truncate127(s: string): string {
  const b = new TextEncoder().encode(s);
  return b.length <= 127 ? s : new TextDecoder().decode(b.subarray(0, 127));
}
