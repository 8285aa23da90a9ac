// wgarray's tokenizer (src/model/tokenizer.ts) against llama.cpp's own
// (node-llama-cpp 3.21.1, model.tokenize) on GGUFs that `wgarray convert`
// makes from small seeded models: a byte-level BPE vocabulary under three of
// llama.cpp's pre-tokenizers (llama-bpe, qwen2, gpt-2: the same vocabulary,
// tokenizer.ggml.pre set by --tokenizer-pre) and a SentencePiece one. The
// corpus mixes code, whitespace runs, digit runs, emoji, CJK, contractions,
// text the vocabulary never saw (byte fallback) and special-token text.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli } from '../src/cli/cli.js';
import { syntheticModel, writeSyntheticModel, DEMO_CORPUS } from '../src/convert/synthetic.js';
import { loadGGUF } from '../src/io/gguf/reader.js';
import { Tokenizer } from '../src/model/tokenizer.js';
import { FormatError } from '../src/errors.js';
import { close, init } from '../src/runtime/device.js';
import type { Device } from '../src/runtime/device.js';
import { llamaTokenize } from './helpers/llama-model.js';
import { sink } from './helpers/text-sink.js';
import { TOKENIZER_CORPUS } from './helpers/corpus.js';


let dir: string;
let device: Device;

async function convert(hf: string, out: string, extra: string[] = []): Promise<void> {
  const stderr = sink();
  const code = await runCli(['convert', hf, '-o', out, '--outtype', 'f32', '--quiet', ...extra], { stdout: sink(), stderr, isTTY: false, device });
  if (code !== 0) throw new Error(`convert failed (${code}): ${stderr.text}`);
}

interface Case {
  name: string;
  file: string;
  parseSpecial: string[];
}
const CASES: Case[] = [];
/** llama.cpp's tokens per case: the corpus, then the case's parseSpecial texts. */
let LLAMA: number[][][] = [];

beforeAll(async () => {
  device = await init();
  dir = mkdtempSync(join(tmpdir(), 'wgarray-tokenizer-'));
  const tiny = { layers: 1, hidden: 32, heads: 2, kvHeads: 1, ff: 64 };
  const bpe = join(dir, 'hf-bpe');
  await writeSyntheticModel(bpe, syntheticModel({ seed: 3, vocab: 1024, ...tiny }));
  const spm = join(dir, 'hf-spm');
  await writeSyntheticModel(spm, syntheticModel({ seed: 5, vocab: 768, tokenizer: 'spm', ...tiny }));
  const bosText = ['<|begin_of_text|>Hello', 'a<|end_of_text|> <|begin_of_text|>b'];
  for (const pre of ['llama-bpe', 'qwen2', 'gpt-2']) {
    const file = join(dir, `bpe-${pre}.gguf`);
    await convert(bpe, file, pre === 'llama-bpe' ? [] : ['--tokenizer-pre', pre]);
    CASES.push({ name: `byte-level BPE, pre ${pre}`, file, parseSpecial: bosText });
  }
  const spmFile = join(dir, 'spm.gguf');
  await convert(spm, spmFile);
  CASES.push({ name: 'SentencePiece', file: spmFile, parseSpecial: ['<s>Hello', 'a</s> <s>b <unk>'] });
  // one llama.cpp process for every file (both special-text lists go to every file; each case reads its own)
  const specials = CASES.flatMap((c) => c.parseSpecial);
  const all = await llamaTokenize(CASES.map((c) => c.file), TOKENIZER_CORPUS, specials);
  LLAMA = all.map((t, i) => {
    const from = TOKENIZER_CORPUS.length + CASES.slice(0, i).reduce((n, c) => n + c.parseSpecial.length, 0);
    return [...t.slice(0, TOKENIZER_CORPUS.length), ...t.slice(from, from + CASES[i].parseSpecial.length)];
  });
}, 120_000);

afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await close();
});

describe('tokenize like llama.cpp', () => {
  test.each([0, 1, 2, 3])('case %i', async (i) => {
    const c = CASES[i];
    const meta = (await loadGGUF(c.file)).metadata;
    const tok = new Tokenizer(meta, c.file);
    if (i === 0) expect(tok.pre).toBe('llama-bpe');
    const plain = LLAMA[i].slice(0, TOKENIZER_CORPUS.length);
    const special = LLAMA[i].slice(TOKENIZER_CORPUS.length);
    expect(special).toHaveLength(c.parseSpecial.length);
    let tokens = 0;
    for (const [k, text] of TOKENIZER_CORPUS.entries()) {
      expect(tok.encode(text), `${c.name}: ${JSON.stringify(text)}`).toEqual(plain[k]);
      tokens += plain[k].length;
    }
    for (const [k, text] of c.parseSpecial.entries()) {
      expect(tok.encode(text, { parseSpecial: true }), `${c.name} (special): ${JSON.stringify(text)}`).toEqual(special[k]);
    }
    // the comparison is not vacuous: merges happened and bytes fell back
    expect(tokens).toBeLessThan(TOKENIZER_CORPUS.join('').length);
    // decoding gives the text back (SentencePiece: with the prefixed space)
    const text = TOKENIZER_CORPUS[10];
    expect(tok.decode(tok.encode(text))).toBe(tok.model === 'llama' ? ` ${text}` : text);
    console.log(`${c.name}: ${tokens} tokens over ${TOKENIZER_CORPUS.length} texts equal to llama.cpp's`);
  });
});

test('BOS with addSpecial follows the vocabulary', async () => {
  const tok = new Tokenizer((await loadGGUF(CASES[0].file)).metadata, CASES[0].file);
  expect(tok.encode('Hi', { addSpecial: true })[0]).toBe(tok.bos);
  const spm = new Tokenizer((await loadGGUF(CASES[3].file)).metadata, CASES[3].file);
  expect(spm.encode('Hi', { addSpecial: true })).toEqual([1, ...spm.encode('Hi')]);
});

test('an unknown pre-tokenizer or tokenizer model is a one-line FormatError', async () => {
  const meta = (await loadGGUF(CASES[0].file)).metadata;
  expect(() => new Tokenizer({ ...meta, 'tokenizer.ggml.pre': 'starcoder' }, 'x.gguf')).toThrow(FormatError);
  expect(() => new Tokenizer({ ...meta, 'tokenizer.ggml.pre': 'starcoder' }, 'x.gguf')).toThrow(/tokenizer\.ggml\.pre is 'starcoder'; wgarray's tokenizer knows llama3/);
  expect(() => new Tokenizer({ ...meta, 'tokenizer.ggml.model': 'bert' }, 'x.gguf')).toThrow(/tokenizer\.ggml\.model is "bert"/);
});
