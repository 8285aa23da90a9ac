// Proof that `wgarray convert` makes real models: small llama-family models
// made from a seed are written as Hugging Face folders, converted by the CLI,
// and run by llama.cpp (node-llama-cpp's prebuilt CPU build, in a child
// process). Checked against an independent float64 forward pass of the
// Hugging Face model (test/helpers/hf-reference.ts):
//   - llama.cpp tokenizes text exactly as the Hugging Face BPE tokenizer does;
//   - F32: llama.cpp's next token equals the reference's at every position
//     where the reference's top-2 margin is clear, and its greedy tokens equal
//     the reference's (this checks tensor names, q/k permutation, rope,
//     epsilon, GQA, tied embeddings and Qwen2 biases);
//   - F16 and BF16: greedy tokens identical to F32;
//   - quantized (Q8_0, Q6_K, Q4_K_M, Q4_0): top-1 agreement with F32 at the
//     forced positions >= the thresholds below;
//   - the same for files made by `wgarray quantize` from the F32 GGUF
//     (quantize:F16, quantize:Q4_K_M, ...).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli } from '../src/cli/cli.js';
import { close, init } from '../src/runtime/device.js';
import type { Device } from '../src/runtime/device.js';
import { encodeBpe } from '../src/convert/bpe.js';
import { syntheticModel, writeSyntheticModel, type SyntheticModel } from '../src/convert/synthetic.js';
import { argmax, encodeSentencePiece, margin, referenceGreedy, referenceLogits } from './helpers/hf-reference.js';
import { CORPUS } from './helpers/corpus.js';
import { runLlama, top1Agreement, type LlamaRun } from './helpers/llama.js';
import { sink } from './helpers/text-sink.js';

const PROMPT = 'The quick brown fox jumps over the lazy dog. What is the capital of France?';
const N_TOKENS = 8;
/** Reference positions whose top-2 logits differ by less than this are not judged (float32 vs float64 may swap them). */
const CLEAR_MARGIN = 0.05;

/** Minimum top-1 agreement with F32 over the forced positions, per quantized type. */
const THRESHOLDS: Record<string, number> = { Q8_0: 0.9, Q6_K: 0.85, Q4_K_M: 0.7, Q4_0: 0.7 };

let dir: string;
let device: Device;

async function convert(hf: string, out: string, outtype: string): Promise<void> {
  const stdout = sink();
  const stderr = sink();
  const code = await runCli(['convert', hf, '-o', out, '--outtype', outtype, '--quiet'], { stdout, stderr, isTTY: false, device });
  if (code !== 0) throw new Error(`convert --outtype ${outtype} failed (${code}): ${stderr.text}`);
}

async function quantize(inp: string, out: string, type: string): Promise<void> {
  const stderr = sink();
  const code = await runCli(['quantize', inp, out, type, '--quiet'], { stdout: sink(), stderr, isTTY: false, device });
  if (code !== 0) throw new Error(`quantize ${type} failed (${code}): ${stderr.text}`);
}

interface Variant {
  name: string;
  model: SyntheticModel;
  outtypes: string[];
  /** Types `wgarray quantize` makes from the F32 GGUF (run as 'quantize:TYPE'). */
  quantized?: string[];
  runs?: Map<string, LlamaRun>;
  prompt?: number[];
  forced?: number[];
  /** Tokens in the GGUF when the converter trims the embedding (Gemma 3); default config.json's vocab_size. */
  nVocab?: number;
}

const LONGROPE_SHORT = [1, 1.05, 1.2, 1.5, 2, 2.5, 3, 4];

const VARIANTS: Variant[] = [
  {
    name: 'llama (GQA 8/2, untied)',
    model: syntheticModel({ seed: 7, layers: 2, ff: 512 }),
    outtypes: ['f32', 'f16', 'bf16', 'Q8_0', 'Q6_K', 'Q4_K_M', 'Q4_0'],
    quantized: ['F16', 'Q8_0', 'Q6_K', 'Q4_K_M', 'Q4_0'],
  },
  {
    name: 'llama with a SentencePiece tokenizer.model (Llama 2 style)',
    model: syntheticModel({ seed: 13, layers: 2, ff: 512, tokenizer: 'spm' }),
    outtypes: ['f32'],
  },
  {
    name: 'llama with only a tokenizer.json (SentencePiece BPE, Llama 2 / Mistral 7B style)',
    model: syntheticModel({ seed: 67, layers: 2, hidden: 64, heads: 4, kvHeads: 2, ff: 128, tokenizer: 'spm-json' }),
    outtypes: ['f32'],
  },
  {
    name: 'qwen2 (biases, tied embeddings, no permutation)',
    model: syntheticModel({ seed: 11, arch: 'qwen2', layers: 2, ff: 512, heads: 4, kvHeads: 2, tied: true }),
    outtypes: ['f32', 'f16'],
  },
  {
    name: 'qwen3 (per-head q/k norms, head_dim unlike hidden / heads)',
    model: syntheticModel({ seed: 17, arch: 'qwen3', layers: 2, hidden: 64, heads: 4, kvHeads: 2, headDim: 24, ff: 128 }),
    outtypes: ['f32', 'f16'],
  },
  {
    name: 'smollm3 (4 layers, the 4th without rope)',
    model: syntheticModel({ seed: 19, arch: 'smollm3', layers: 4, hidden: 64, heads: 4, kvHeads: 2, ff: 128 }),
    outtypes: ['f32'],
  },
  {
    name: 'qwen3moe (8 experts, 2 used, stacked into 3-D tensors)',
    model: syntheticModel({ seed: 23, arch: 'qwen3moe', layers: 2, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, ff: 128, experts: 8, expertFf: 32 }),
    outtypes: ['f32', 'f16'],
  },
  {
    name: 'qwen3moe with transformers v5 fused gate_up_proj experts',
    model: syntheticModel({ seed: 29, arch: 'qwen3moe', layers: 2, hidden: 64, heads: 4, kvHeads: 2, ff: 128, experts: 4, expertFf: 32, fusedExperts: true }),
    outtypes: ['f32'],
  },
  {
    name: 'gemma2 (1 + w norms, post-norms, soft-capping, sliding window 4, tied output)',
    model: syntheticModel({ seed: 37, arch: 'gemma2', layers: 2, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, ff: 128 }),
    outtypes: ['f32', 'f16'],
  },
  {
    name: 'gemma3 (q/k norms, 5 sliding layers with the local rope base, a global one with linear scaling, embedding trimmed to the tokenizer)',
    model: syntheticModel({ seed: 59, arch: 'gemma3', layers: 6, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, ff: 128, tokenizerVocab: 500 }),
    outtypes: ['f32'],
    nVocab: 500,
  },
  {
    name: 'phi3 (fused qkv and gate_up, longrope factors, SentencePiece tokenizer)',
    model: syntheticModel({
      seed: 61,
      arch: 'phi3',
      layers: 2,
      hidden: 64,
      heads: 4,
      kvHeads: 2,
      ff: 128,
      tokenizer: 'spm',
      maxPositions: 8192,
      ropeScaling: { type: 'longrope', short_factor: LONGROPE_SHORT, long_factor: LONGROPE_SHORT.map((f) => f * 4) },
    }),
    outtypes: ['f32'],
  },
  {
    name: 'mixtral (4 experts, 2 used, permuted q/k)',
    model: syntheticModel({ seed: 31, arch: 'mixtral', layers: 2, hidden: 64, heads: 4, kvHeads: 2, ff: 64, experts: 4 }),
    outtypes: ['f32', 'f16'],
  },
];

beforeAll(async () => {
  device = await init();
  dir = mkdtempSync(join(tmpdir(), 'wgarray-llama-convert-'));
  for (const [i, v] of VARIANTS.entries()) {
    const hf = join(dir, `hf${i}`);
    await writeSyntheticModel(hf, v.model);
    const files: string[] = [];
    for (const t of v.outtypes) {
      const out = join(dir, `m${i}-${t}.gguf`);
      await convert(hf, out, t);
      files.push(out);
    }
    for (const t of v.quantized ?? []) {
      const out = join(dir, `m${i}-quantize-${t}.gguf`);
      await quantize(join(dir, `m${i}-f32.gguf`), out, t);
      files.push(out);
    }
    const names = [...v.outtypes, ...(v.quantized ?? []).map((t) => `quantize:${t}`)];
    // The reference's prompt tokens and greedy continuation: the forced sequence.
    const bos = v.model.config.bos_token_id as number;
    const sp = v.model.sentencePiece;
    v.prompt = [bos, ...(sp ? encodeSentencePiece(sp, PROMPT) : encodeBpe(v.model.bpe, PROMPT))];
    v.forced = [...v.prompt, ...referenceGreedy(v.model, v.prompt, N_TOKENS, v.nVocab)];
    const runs = await runLlama(files, { prompt: PROMPT, nTokens: N_TOKENS, forced: v.forced, texts: sp ? CORPUS : undefined });
    v.runs = new Map(names.map((t, k) => [t, runs[k]]));
  }
}, 240_000);

afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await close();
});

describe.each(VARIANTS)('$name', (v) => {
  test('llama.cpp tokenizes like the Hugging Face tokenizer', () => {
    const f32 = v.runs!.get('f32')!;
    expect(f32.nVocab).toBe(v.nVocab ?? v.model.config.vocab_size);
    expect(f32.vocabularyType).toBe(v.model.sentencePiece ? 'spm' : 'bpe');
    expect(f32.promptTokens).toEqual(v.prompt);
    // SentencePiece vocabularies (tokenizer.model, or tokenizer.json only): the corpus as SentencePiece's BPE encodes it
    const sp = v.model.sentencePiece;
    if (sp) CORPUS.forEach((text, i) => expect(f32.textTokens[i], text).toEqual(encodeSentencePiece(sp, text)));
  });

  test('F32: llama.cpp predicts what the Hugging Face model predicts', () => {
    const f32 = v.runs!.get('f32')!;
    const logits = referenceLogits(v.model, v.forced!).map((l) => l.subarray(0, v.nVocab));
    let judged = 0;
    for (let i = 0; i < v.forced!.length; i++) {
      if (margin(logits[i]) < CLEAR_MARGIN) continue;
      judged++;
      expect(f32.top1[i], `position ${i}`).toBe(argmax(logits[i]));
    }
    expect(judged).toBeGreaterThan(v.forced!.length * 0.8);
    // greedy decoding from the prompt follows the reference (its margins were clear at every step)
    const greedy = v.forced!.slice(v.prompt!.length);
    const clear = logits.slice(v.prompt!.length - 1, -1).every((l) => margin(l) >= CLEAR_MARGIN);
    if (clear) expect(f32.generated).toEqual(greedy);
  });

  test.each(['f16', 'bf16', 'quantize:F16'])('%s: greedy tokens identical to F32', (t) => {
    if (!v.runs!.has(t)) return;
    expect(v.runs!.get(t)!.generated).toEqual(v.runs!.get('f32')!.generated);
  });

  test.each([...Object.keys(THRESHOLDS), ...Object.keys(THRESHOLDS).map((t) => `quantize:${t}`)])('%s: top-1 agreement with F32', (t) => {
    if (!v.runs!.has(t)) return;
    const agreement = top1Agreement(v.runs!.get(t)!, v.runs!.get('f32')!);
    console.log(`${v.name} ${t}: top-1 agreement ${agreement.toFixed(3)} over ${v.forced!.length} positions`);
    expect(agreement).toBeGreaterThanOrEqual(THRESHOLDS[t.replace('quantize:', '')]);
  });
});
