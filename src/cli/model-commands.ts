// `wgarray eval` and `wgarray imatrix`: the forward pass (src/model/) from the
// command line. Both need the GPU (the forward pass has no CPU path).

import { readFile } from 'node:fs/promises';
import { ArgumentError, DeviceError, FileError } from '../errors.js';
import { evaluate, type EvalResult } from '../model/eval.js';
import { computeImatrix, saveImatrix } from '../model/imatrix.js';
import { textChunks, type ChunkOptions } from '../model/chunks.js';
import { loadModel, type Model } from '../model/model.js';
import type { Device } from '../runtime/device.js';
import { openBackend } from './backend.js';
import type { CommandIO } from './commands.js';

export interface ChunkArgs {
  text: string;
  ctx?: string;
  chunks?: string;
  quiet?: boolean;
}

function intOption(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new ArgumentError(`${name} ${v}: expected a positive integer`);
  return n;
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new FileError(path, `cannot read the text file: ${(e as Error).message}`, { cause: e });
  }
}

async function gpu(io: CommandIO) {
  const backend = await openBackend({ stderr: io.stderr, device: io.device });
  if (!backend.device) {
    await backend.close();
    throw new DeviceError('NO_ADAPTER', 'the forward pass runs on the GPU, and no WebGPU adapter was found');
  }
  return { backend, device: backend.device };
}

function elapsed(t0: number): string {
  return `${((performance.now() - t0) / 1000).toFixed(1)} s`;
}

export async function evalCommand(a: ChunkArgs & { base: string; quant: string; json?: boolean }, io: CommandIO): Promise<EvalResult> {
  const text = await readText(a.text);
  const { backend, device } = await gpu(io);
  try {
    const base = await loadModel(a.base, { device });
    const quant = await loadModel(a.quant, { device });
    return await runEval(base, quant, text, a, io);
  } finally {
    await backend.close();
  }
}

/** Evaluates QUANT against BASE with per-chunk progress on stderr, and prints the summary (or --json). */
export async function runEval(base: Model, quant: Model, text: string, a: Omit<ChunkArgs, 'text'> & { json?: boolean }, io: CommandIO): Promise<EvalResult> {
  const t0 = performance.now();
  const result = await evaluate(base, quant, text, {
    ...chunkOptions(a),
    onChunk: (done, total, pb, pq) => {
      if (!a.quiet) io.stderr.write(`eval: chunk ${done}/${total}  PPL base ${pb.toFixed(4)}  quant ${pq.toFixed(4)}  ${elapsed(t0)}, ETA ${(((performance.now() - t0) / done) * (total - done) / 1000).toFixed(1)} s\n`);
    },
  });
  if (a.json) io.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else io.stdout.write(formatEval(result));
  return result;
}

/** -c and --chunks, checked. */
export function chunkOptions(a: Omit<ChunkArgs, 'text'>): ChunkOptions {
  return { ctx: intOption(a.ctx, '-c'), chunks: intOption(a.chunks, '--chunks') };
}

/**
 * What `quantize --eval` checks before anything is written: the text can be
 * read, `input` is a model the forward pass runs (architecture, GPU memory),
 * and the text holds two contexts. Returns the loaded model and the text.
 */
export async function prepareEval(input: string, a: ChunkArgs, device: Device): Promise<{ base: Model; text: string }> {
  const text = await readText(a.text);
  const base = await loadModel(input, { device });
  textChunks(base, text, chunkOptions(a));
  return { base, text };
}

/** llama-perplexity's summary lines. */
export function formatEval(r: EvalResult): string {
  const pct = (x: number) => `${(100 * x).toFixed(3)} %`;
  const k = r.kld;
  return [
    `chunks: ${r.chunks} of ${r.ctx} tokens, ${r.tokens} tokens scored (second half of each chunk)`,
    `PPL(base)        : ${r.pplBase.toFixed(6)}`,
    `PPL(Q)           : ${r.pplQuant.toFixed(6)}`,
    `PPL(Q)/PPL(base) : ${r.pplRatio.toFixed(6)}   ln ratio ${r.lnPplRatio.toFixed(6)}`,
    `Mean    KLD: ${r.kldMean.toFixed(6)}`,
    `Maximum KLD: ${k.max.toFixed(6)}`,
    `99.9%   KLD: ${k.p99_9.toFixed(6)}`,
    `99.0%   KLD: ${k.p99.toFixed(6)}`,
    `95.0%   KLD: ${k.p95.toFixed(6)}`,
    `90.0%   KLD: ${k.p90.toFixed(6)}`,
    `Median  KLD: ${k.median.toFixed(6)}`,
    `10.0%   KLD: ${k.p10.toFixed(6)}`,
    ` 5.0%   KLD: ${k.p5.toFixed(6)}`,
    ` 1.0%   KLD: ${k.p1.toFixed(6)}`,
    ` 0.1%   KLD: ${k.p0_1.toFixed(6)}`,
    `Minimum KLD: ${k.min.toFixed(6)}`,
    `Mean    Δp: ${pct(r.meanDp)}`,
    `RMS Δp    : ${pct(r.rmsDp)}`,
    `Same top p: ${pct(r.sameTop)}`,
    '',
  ].join('\n');
}

export async function imatrixCommand(a: ChunkArgs & { model: string; output?: string }, io: CommandIO): Promise<void> {
  const text = await readText(a.text);
  const out = a.output ?? 'imatrix.gguf';
  const { backend, device } = await gpu(io);
  try {
    const model = await loadModel(a.model, { device });
    const t0 = performance.now();
    const result = await computeImatrix(model, text, {
      ...chunkOptions(a),
      onChunk: (done, total, ppl) => {
        if (!a.quiet) io.stderr.write(`[${done}]${ppl.toFixed(4)},${done === 1 ? ` ${((performance.now() - t0) / 1000).toFixed(2)} seconds per pass - ETA ${(((performance.now() - t0) * (total - 1)) / 60000).toFixed(2)} minutes` : ''}${done === total ? '\n' : ''}`);
      },
    });
    await saveImatrix(out, result, [a.text]);
    if (!a.quiet) io.stderr.write(`Final estimate: PPL = ${result.ppl.toFixed(4)}\n`);
    io.stdout.write(`wrote ${out}: ${result.entries.size} entries over ${result.chunks} chunks of ${result.ctx} tokens\n`);
  } finally {
    await backend.close();
  }
}
