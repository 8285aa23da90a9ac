// --imatrix on a plan, as llama-quantize applies it (src/llama-quant.cpp and
// tools/quantize): each tensor's importance weights found by its GGUF name
// (so a Hugging Face folder's tensors find theirs after the name mapping),
// checked before anything is written, and the quantize.imatrix.* keys.

import { ArgumentError } from '../errors.js';
import { imatrixWeights, type Imatrix } from '../io/imatrix.js';
import { gguf } from '../io/gguf/metadata.js';
import { allowsQuantization, isQuantizedType, requiresImatrix, type TypeChoiceOptions } from '../quant/presets.js';
import { QUANT_FORMATS } from '../quant/registry.js';
import type { Metadata } from './metadata.js';
import type { PlannedTensor } from './pipeline.js';

/** The imatrix the type choice sees: none when it has no entries (llama-quantize passes none then). */
export function effectiveImatrix(imatrix: Imatrix | undefined): Imatrix | undefined {
  return imatrix && imatrix.entries.size > 0 ? imatrix : undefined;
}

/**
 * Gives each planned tensor that is quantized its importance weights, and
 * refuses what llama-quantize refuses, before anything is written: an entry
 * whose size is not row length x experts (except for the token embedding,
 * which then goes without), a tensor whose type needs weights (IQ1-IQ3_XXS,
 * Q2_K in Q2_K_S) and has none. `preset` names the preset in messages.
 */
export function attachImatrix(
  tensors: PlannedTensor[],
  imatrix: Imatrix | undefined,
  preset: { name: string; ftype: number },
  options: TypeChoiceOptions,
): void {
  for (const t of tensors) {
    const quantized = t.to !== t.from && allowsQuantization({ name: t.name, shape: t.shape, type: t.from }, options);
    if (!quantized) continue;
    let w: Float32Array | undefined;
    if (imatrix) {
      const rowLength = t.shape[t.shape.length - 1];
      const experts = t.shape.length >= 3 ? t.shape[t.shape.length - 3] : 1;
      const tokenEmbd = t.name === 'token_embd.weight' || t.name === 'per_layer_token_embd.weight';
      const entry = imatrix.entries.get(t.name);
      if (entry && !(tokenEmbd && entry.length !== rowLength * experts)) w = imatrixWeights(imatrix, t.name, rowLength, experts);
    }
    if (!w && requiresImatrix(t.name, t.to, preset.ftype)) {
      throw new ArgumentError(
        imatrix
          ? `${imatrix.file}: missing importance matrix for tensor ${t.name} in a very low-bit quantization (${preset.name} makes it ${t.to.name}); llama-quantize refuses it too: use an imatrix that covers it`
          : `${preset.name} requires an importance matrix: pass --imatrix FILE (from llama-imatrix or wgarray imatrix); without one tensor '${t.name}' would be ${t.to.name}, which llama-quantize makes only with importance weights`,
      );
    }
    if (w) t.imatrix = w;
    else delete t.imatrix;
  }
}

/** Tensors quantized to a type that would use importance weights, but which have none in the imatrix (llama-quantize: "did not find weights for ..."). */
export function unweightedTensors(tensors: readonly PlannedTensor[]): string[] {
  return tensors
    .filter((t) => t.to !== t.from && isQuantizedType(t.to) && !t.imatrix && (QUANT_FORMATS.get(t.to.name)?.imatrix ?? 'optional') !== 'ignored')
    .map((t) => t.name);
}

/** llama-quantize's kv overrides for an imatrix: file and first dataset cut at 127 bytes, counts as u32. */
export function setImatrixMetadata(meta: Metadata, imatrix: Imatrix): void {
  meta.set('quantize.imatrix.file', gguf.string(truncate127(imatrix.file)));
  if (imatrix.datasets.length) meta.set('quantize.imatrix.dataset', gguf.string(truncate127(imatrix.datasets[0])));
  meta.set('quantize.imatrix.entries_count', gguf.u32(imatrix.entries.size));
  if (imatrix.chunkCount > 0) meta.set('quantize.imatrix.chunks_count', gguf.u32(imatrix.chunkCount));
}

/** strncpy(val_str, s, 127): the first 127 bytes (UTF-8) of s. */
function truncate127(s: string): string {
  const b = new TextEncoder().encode(s);
  return b.length <= 127 ? s : new TextDecoder().decode(b.subarray(0, 127));
}
