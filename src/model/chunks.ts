// How llama-perplexity and llama-imatrix cut a text into contexts: the whole
// text tokenized once (BOS first when the vocabulary adds one), cut into
// n_ctx-token chunks (the tail dropped), the first token of each chunk
// replaced by BOS; each chunk is evaluated from position 0, and only its
// second half is scored (positions n_ctx/2 .. n_ctx-2 predicting the next
// token), so every scored token has at least n_ctx/2 tokens of context.

import { ArgumentError } from '../errors.js';
import type { Model } from './model.js';

export interface ChunkOptions {
  /** Tokens per chunk (llama.cpp's -c; default 512). */
  ctx?: number;
  /** Use at most this many chunks (--chunks; default all). */
  chunks?: number;
}

/** The token chunks of `text` for `model`, checked as llama-perplexity checks them. */
export function textChunks(model: Model, text: string, options: ChunkOptions = {}): number[][] {
  const ctx = options.ctx ?? 512;
  if (!Number.isInteger(ctx) || ctx < 16) throw new ArgumentError(`context ${ctx}: expected an integer of at least 16 tokens`);
  if (ctx > model.config.contextLength) {
    throw new ArgumentError(`context ${ctx} is longer than the model's context length (${model.config.contextLength}) in ${model.file.path}`);
  }
  const tok = model.tokenizer;
  const tokens = tok.encode(text, { addSpecial: true });
  if (tokens.length < 2 * ctx) {
    throw new ArgumentError(`the text has ${tokens.length} tokens; a context of ${ctx} needs at least ${2 * ctx} (two contexts)`);
  }
  let n = Math.floor(tokens.length / ctx);
  if (options.chunks !== undefined) {
    if (!Number.isInteger(options.chunks) || options.chunks < 1) throw new ArgumentError(`--chunks ${options.chunks}: expected a positive integer`);
    n = Math.min(n, options.chunks);
  }
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    const chunk = tokens.slice(i * ctx, (i + 1) * ctx);
    if (tok.addBos && tok.bos !== undefined) chunk[0] = tok.bos;
    out.push(chunk);
  }
  return out;
}

/** Chunks run together through the forward pass (one weight load per layer for all of them), as llama.cpp's n_batch / n_ctx = 2048 / 512. */
export const CHUNKS_PER_PASS = 4;

/** The chunks in groups of CHUNKS_PER_PASS, with the index of each group's first chunk. */
export function* chunkGroups(chunks: number[][]): Generator<[number, number[][]]> {
  for (let g = 0; g < chunks.length; g += CHUNKS_PER_PASS) yield [g, chunks.slice(g, g + CHUNKS_PER_PASS)];
}

/** First scored position of a chunk: the logits at positions first .. ctx-2 predict tokens first+1 .. ctx-1. */
export function firstScored(ctx: number): number {
  return Math.floor(ctx / 2);
}

/** Natural-log probabilities of one row of logits (float64). */
export function logSoftmax(row: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of row) if (v > m) m = v;
  let s = 0;
  for (const v of row) s += Math.exp(v - m);
  const lse = m + Math.log(s);
  const out = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = row[i] - lse;
  return out;
}
