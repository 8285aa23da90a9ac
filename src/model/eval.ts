// `wgarray eval`: how much a quantization costs, as llama-perplexity's
// --kl-divergence reports it, from the two models run side by side on the
// same chunks (no intermediate logits file): PPL of each and their ratio, KL
// divergence of QUANT from BASE (mean, median, percentiles), "same top token"
// and the change in the correct token's probability (Δp, RMS Δp). Scored
// tokens are the second half of each chunk (see chunks.ts).
//
// Unlike llama-perplexity, BASE's log-probabilities are not rounded to 16 bits
// through a file and KLD sums over the whole vocabulary (llama.cpp skips base
// probabilities below e^-16), so figures agree with llama.cpp's to those
// roundings.

import { ArgumentError } from '../errors.js';
import { chunkGroups, firstScored, logSoftmax, textChunks, type ChunkOptions } from './chunks.js';
import type { Model } from './model.js';

export interface EvalOptions extends ChunkOptions {
  /** Called after each chunk with the running PPL of each model. */
  onChunk?: (done: number, total: number, pplBase: number, pplQuant: number) => void;
}

export interface Percentiles {
  max: number;
  p99_9: number;
  p99: number;
  p95: number;
  p90: number;
  median: number;
  p10: number;
  p5: number;
  p1: number;
  p0_1: number;
  min: number;
}

export interface EvalResult {
  chunks: number;
  ctx: number;
  /** Tokens scored. */
  tokens: number;
  pplBase: number;
  pplQuant: number;
  /** PPL(QUANT) / PPL(BASE) and its logarithm. */
  pplRatio: number;
  lnPplRatio: number;
  /** KL(BASE || QUANT) per token, in nats. */
  kldMean: number;
  kld: Percentiles;
  /** Fraction of scored positions where both models' most likely token is the same. */
  sameTop: number;
  /** p_QUANT(correct) - p_BASE(correct): mean and root mean square. */
  meanDp: number;
  rmsDp: number;
}

/** llama-perplexity's percentile: linear between the sorted neighbours. */
function percentile(sorted: Float64Array, fraction: number): number {
  if (fraction <= 0) return sorted[0];
  if (fraction >= 1) return sorted[sorted.length - 1];
  const p = fraction * (sorted.length - 1);
  const i = Math.floor(p);
  const f = p - i;
  return (1 - f) * sorted[i] + f * sorted[Math.min(i + 1, sorted.length - 1)];
}

function percentiles(values: number[]): Percentiles {
  const s = Float64Array.from(values).sort();
  const n = s.length;
  const median = n % 2 === 0 ? 0.5 * (s[n / 2] + s[n / 2 - 1]) : s[(n - 1) / 2];
  return {
    max: s[n - 1],
    p99_9: percentile(s, 0.999),
    p99: percentile(s, 0.99),
    p95: percentile(s, 0.95),
    p90: percentile(s, 0.9),
    median,
    p10: percentile(s, 0.1),
    p5: percentile(s, 0.05),
    p1: percentile(s, 0.01),
    p0_1: percentile(s, 0.001),
    min: s[0],
  };
}

/** Checks that two models share a vocabulary (same tokens, in the same order). */
export function requireSameVocabulary(base: Model, quant: Model): void {
  const a = base.tokenizer.tokens;
  const b = quant.tokenizer.tokens;
  if (a.length !== b.length) {
    throw new ArgumentError(`vocabularies differ: ${base.file.path} has ${a.length} tokens, ${quant.file.path} has ${b.length}`);
  }
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) throw new ArgumentError(`vocabularies differ at token ${i}: ${JSON.stringify(a[i])} in ${base.file.path}, ${JSON.stringify(b[i])} in ${quant.file.path}`);
  }
  if (base.config.vocab !== quant.config.vocab) {
    throw new ArgumentError(`vocabularies differ: ${base.file.path} has ${base.config.vocab} embedding rows, ${quant.file.path} has ${quant.config.vocab}`);
  }
}

/** PPL/KLD statistics of QUANT against BASE on `text`. */
export async function evaluate(base: Model, quant: Model, text: string, options: EvalOptions = {}): Promise<EvalResult> {
  requireSameVocabulary(base, quant);
  const chunks = textChunks(base, text, options);
  const ctx = chunks[0].length;
  textChunks(quant, text, { ...options, chunks: 1 }); // QUANT's context length checked too
  const vocab = base.config.vocab;
  const first = firstScored(ctx);
  let nllBase = 0;
  let nllQuant = 0;
  let count = 0;
  let same = 0;
  let sumDp = 0;
  let sumDp2 = 0;
  let sumKld = 0;
  const klds: number[] = [];
  for (const [g, group] of chunkGroups(chunks)) {
    const lbs = await base.logits(group);
    const lqs = await quant.logits(group);
    for (const [k, chunk] of group.entries()) {
      const c = g + k;
      const lb = lbs[k];
      const lq = lqs[k];
      for (let i = first; i < ctx - 1; i++) {
        const pb = logSoftmax(lb.subarray(i * vocab, (i + 1) * vocab));
        const pq = logSoftmax(lq.subarray(i * vocab, (i + 1) * vocab));
        const tok = chunk[i + 1];
        nllBase -= pb[tok];
        nllQuant -= pq[tok];
        let kld = 0;
        let topB = 0;
        let topQ = 0;
        for (let j = 0; j < vocab; j++) {
          kld += Math.exp(pb[j]) * (pb[j] - pq[j]);
          if (pb[j] > pb[topB]) topB = j;
          if (pq[j] > pq[topQ]) topQ = j;
        }
        klds.push(kld);
        sumKld += kld;
        if (topB === topQ) same++;
        const dp = Math.exp(pq[tok]) - Math.exp(pb[tok]);
        sumDp += dp;
        sumDp2 += dp * dp;
        count++;
      }
      options.onChunk?.(c + 1, chunks.length, Math.exp(nllBase / count), Math.exp(nllQuant / count));
    }
  }
  const pplBase = Math.exp(nllBase / count);
  const pplQuant = Math.exp(nllQuant / count);
  return {
    chunks: chunks.length,
    ctx,
    tokens: count,
    pplBase,
    pplQuant,
    pplRatio: pplQuant / pplBase,
    lnPplRatio: (nllQuant - nllBase) / count,
    kldMean: sumKld / count,
    kld: percentiles(klds),
    sameTop: same / count,
    meanDp: sumDp / count,
    rmsDp: Math.sqrt(sumDp2 / count),
  };
}

/** Perplexity of one model on `text` (llama-perplexity's, second half of each chunk scored). */
export async function perplexity(model: Model, text: string, options: ChunkOptions = {}): Promise<{ ppl: number; tokens: number; chunks: number }> {
  const chunks = textChunks(model, text, options);
  const ctx = chunks[0].length;
  const vocab = model.config.vocab;
  let nll = 0;
  let count = 0;
  for (const [, group] of chunkGroups(chunks)) {
    const ls = await model.logits(group);
    for (const [k, chunk] of group.entries()) {
      for (let i = firstScored(ctx); i < ctx - 1; i++) {
        nll -= logSoftmax(ls[k].subarray(i * vocab, (i + 1) * vocab))[chunk[i + 1]];
        count++;
      }
    }
  }
  return { ppl: Math.exp(nll / count), tokens: count, chunks: chunks.length };
}
