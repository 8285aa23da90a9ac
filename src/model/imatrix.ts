// `wgarray imatrix`: llama-imatrix's importance matrix. For every blk.* weight
// W of a matrix product y = x W^T, the per-column sum over all token rows of
// x^2 (the squared input activations) and the number of rows, over the chunks
// of a calibration text (cut as llama-imatrix cuts it: chunks.ts). The sums
// of one chunk are reduced on the GPU (x*x, summed over rows) and accumulated
// on the host in float64.
//
// Saved in llama-imatrix's GGUF format (tools/imatrix/imatrix.cpp
// save_imatrix): general.type = "imatrix", imatrix.datasets (the text files),
// imatrix.chunk_count, imatrix.chunk_size (u32); per weight, in name order,
// "<weight>.in_sum2" (F32, ne [columns]) and "<weight>.counts" (F32, ne [1]);
// for a 3-D expert weight (ffn_*_exps, llama-imatrix's MUL_MAT_ID) the sums of
// each expert over the tokens routed to it, ne [columns, experts], and one
// count per expert (tokens routed to it), ne [1, experts]; an expert no token
// reached keeps zeros, as llama-imatrix writes it.

import { ArgumentError } from '../errors.js';
import { saveGGUF } from '../io/gguf/writer.js';
import { gguf } from '../io/gguf/metadata.js';
import { multiply } from '../ops/elementwise.js';
import { sum } from '../ops/reduce.js';
import '../ops/methods.js'; // WgArray's data()
import type { WgArray } from '../runtime/array.js';
import { chunkGroups, firstScored, logSoftmax, textChunks, type ChunkOptions } from './chunks.js';
import type { ExpertInput, Model } from './model.js';

export interface ImatrixEntry {
  /** Sum over rows of x^2, per input column (per expert, then column, for an expert weight). */
  sums: Float64Array;
  /** Rows (tokens) summed: one count, or one per expert. */
  counts: number[];
}

export interface ImatrixResult {
  entries: Map<string, ImatrixEntry>;
  chunks: number;
  ctx: number;
  /** Perplexity over the scored halves of the chunks (what llama-imatrix prints). */
  ppl: number;
}

export interface ImatrixOptions extends ChunkOptions {
  /** Called after each chunk with the running perplexity. */
  onChunk?: (done: number, total: number, ppl: number) => void;
}

/** llama-imatrix ignores products of fewer rows than this (its collect_imatrix). */
const MIN_ROWS = 16;

/** Collects the importance matrix of `model` over `text`. */
export async function computeImatrix(model: Model, text: string, options: ImatrixOptions = {}): Promise<ImatrixResult> {
  const chunks = textChunks(model, text, options);
  const ctx = chunks[0].length;
  const vocab = model.config.vocab;
  const entries = new Map<string, ImatrixEntry>();
  const collect = async (weights: readonly string[], x: WgArray<'float32'>, expert?: ExpertInput) => {
    const rows = x.shape[0];
    // llama-imatrix skips small dense products, never an expert's (MUL_MAT_ID)
    if (rows < MIN_ROWS && !expert) return;
    const sq = multiply(x, x);
    const s = sum(sq, 0);
    sq.dispose();
    const colSums = (await s.data()) as Float32Array;
    s.dispose();
    const slots = expert?.count ?? 1;
    const slot = expert?.index ?? 0;
    const cols = colSums.length;
    for (const w of weights) {
      let e = entries.get(w);
      if (!e) entries.set(w, (e = { sums: new Float64Array(cols * slots), counts: new Array<number>(slots).fill(0) }));
      if (e.counts.length !== slots || e.sums.length !== cols * slots) throw new ArgumentError(`imatrix: ${w} was collected as ${e.counts.length} matrices of ${e.sums.length / e.counts.length} columns, now ${slots} of ${cols}`);
      for (let j = 0; j < cols; j++) e.sums[slot * cols + j] += colSums[j];
      e.counts[slot] += rows;
    }
  };
  let nll = 0;
  let count = 0;
  for (const [g, group] of chunkGroups(chunks)) {
    const ls = await model.logits(group, { onMatmulInput: collect });
    for (const [k, chunk] of group.entries()) {
      for (let i = firstScored(ctx); i < ctx - 1; i++) {
        nll -= logSoftmax(ls[k].subarray(i * vocab, (i + 1) * vocab))[chunk[i + 1]];
        count++;
      }
      options.onChunk?.(g + k + 1, chunks.length, Math.exp(nll / count));
    }
  }
  return { entries, chunks: chunks.length, ctx, ppl: Math.exp(nll / count) };
}

/** Writes `result` as llama-imatrix's GGUF imatrix file; `datasets` names the calibration files. */
export async function saveImatrix(path: string, result: ImatrixResult, datasets: readonly string[]): Promise<void> {
  if (result.entries.size === 0) throw new ArgumentError('imatrix: no matrix products were collected');
  const names = [...result.entries.keys()].sort();
  const tensors: [string, { shape: number[]; type: string; data: Float32Array }][] = [];
  for (const name of names) {
    const e = result.entries.get(name)!;
    // ggml writes n_dims = ggml_n_dims(): ne [cols, 1] and [1, 1] lose their trailing 1s
    const experts = e.counts.length;
    tensors.push([`${name}.in_sum2`, { shape: experts > 1 ? [experts, e.sums.length / experts] : [e.sums.length], type: 'f32', data: Float32Array.from(e.sums) }]);
    tensors.push([`${name}.counts`, { shape: experts > 1 ? [experts, 1] : [1], type: 'f32', data: Float32Array.from(e.counts) }]);
  }
  const chunkCount = Math.floor(Math.max(...names.flatMap((n) => result.entries.get(n)!.counts)) / result.ctx);
  await saveGGUF(path, tensors, {
    'general.type': 'imatrix',
    'imatrix.datasets': gguf.array('string', [...datasets]),
    'imatrix.chunk_count': gguf.u32(chunkCount),
    'imatrix.chunk_size': gguf.u32(result.ctx),
  });
}
