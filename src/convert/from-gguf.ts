// `wgarray quantize model.gguf ...`: the plan for re-typing a GGUF file's
// tensors under a llama-quantize preset. Metadata passes through unchanged
// except general.file_type and general.quantization_version (and split keys,
// which describe the input's shards).

import { ArgumentError, FormatError, quoteName } from '../errors.js';
import type { Imatrix } from '../io/imatrix.js';
import { loadGGUF, type GGUFFile } from '../io/gguf/reader.js';
import { gguf } from '../io/gguf/metadata.js';
import { standardKeyTypes } from '../io/gguf/keys.js';
import type { Device } from '../runtime/device.js';
import {
  chooseTensorTypes,
  guessFtype,
  type ModelShape,
  type QuantPreset,
  type TypeChoiceOptions,
} from '../quant/presets.js';
import { Metadata } from './metadata.js';
import { attachImatrix, effectiveImatrix, setImatrixMetadata } from './imatrix-plan.js';
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
  const imatrix = effectiveImatrix(options.imatrix);
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
        : guessFtype(f.tensorInfos.map((t) => t.type), f.tensorInfos.map((t) => t.name))
      : preset.ftype;
  meta.set('general.file_type', gguf.u32(ftype));
  if (imatrix) setImatrixMetadata(meta, imatrix);

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
    };
  });
  attachImatrix(tensors, imatrix, { name: preset.name, ftype }, options);
  const arch = model.arch || 'unknown architecture';
  return {
    description: `GGUF v${f.version} (${arch}, ${f.tensorInfos.length} tensors)`,
    metadata: meta,
    tensors,
    model,
  };
}
