// Real llama.cpp (node-llama-cpp's prebuilt CPU build) loads and runs a tiny
// llama model written by saveGGUF with plain JS numbers for its standard keys
// (f32, f16 and q8_0 tensors), and refuses the same model when a standard key
// is forced to a type llama.cpp does not read: the key-type table is the
// difference between the two.
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { array, gguf, quantize, saveGGUF, type TensorInputs } from '../src/index.js';
import { dir, setUpDeviceAndTempDir } from './helpers/files.js';
import { runLlama } from './helpers/llama.js';

setUpDeviceAndTempDir('wgarray-io-llama-');

const N_EMBD = 64;
const N_FF = 128;

/** A byte-fallback SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens, a few pieces. */
function vocab(): { tokens: string[]; types: number[] } {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  for (const piece of ['▁', '▁a', '▁b', 'a', 'b', 'ab', '▁ab']) {
    tokens.push(piece);
    types.push(1);
  }
  return { tokens, types };
}

function weights(n: number, seed: number): Float32Array {
  let x = seed * 2654435761 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 4294967296 - 0.5) * 0.2;
  }
  return out;
}

async function tinyLlama(path: string, overrides: Record<string, unknown> = {}, strictKeyTypes = true): Promise<void> {
  const { tokens, types } = vocab();
  const nVocab = tokens.length;
  let seed = 1;
  const f32 = (shape: number[]) => array(weights(shape.reduce((a, b) => a * b, 1), seed++), { shape });
  const ones = (n: number) => array(new Float32Array(n).fill(1), { shape: [n] });
  const q8 = (shape: number[]) => {
    const x = f32(shape);
    try {
      return quantize(x, 'q8_0');
    } finally {
      x.dispose();
    }
  };
  const f16 = (shape: number[]) => {
    const x = f32(shape);
    try {
      return x.astype('float16');
    } finally {
      x.dispose();
    }
  };
  const tensors: TensorInputs = {
    'token_embd.weight': f32([nVocab, N_EMBD]),
    'output_norm.weight': ones(N_EMBD),
    'output.weight': f32([nVocab, N_EMBD]),
    'blk.0.attn_norm.weight': ones(N_EMBD),
    'blk.0.attn_q.weight': q8([N_EMBD, N_EMBD]),
    'blk.0.attn_k.weight': q8([N_EMBD, N_EMBD]),
    'blk.0.attn_v.weight': q8([N_EMBD, N_EMBD]),
    'blk.0.attn_output.weight': q8([N_EMBD, N_EMBD]),
    'blk.0.ffn_norm.weight': ones(N_EMBD),
    'blk.0.ffn_gate.weight': f16([N_FF, N_EMBD]),
    'blk.0.ffn_up.weight': f16([N_FF, N_EMBD]),
    'blk.0.ffn_down.weight': f16([N_EMBD, N_FF]),
  };
  try {
    await saveGGUF(
      path,
      tensors,
      {
        'general.architecture': 'llama',
        'general.name': 'tiny',
        'general.file_type': 1,
        'llama.context_length': 256,
        'llama.embedding_length': N_EMBD,
        'llama.block_count': 1,
        'llama.feed_forward_length': N_FF,
        'llama.attention.head_count': 4,
        'llama.attention.head_count_kv': 4,
        'llama.rope.dimension_count': N_EMBD / 4,
        'llama.rope.freq_base': 10000,
        'llama.attention.layer_norm_rms_epsilon': 1e-5,
        'tokenizer.ggml.model': 'llama',
        'tokenizer.ggml.tokens': tokens,
        'tokenizer.ggml.scores': new Array(nVocab).fill(0),
        'tokenizer.ggml.token_type': types,
        'tokenizer.ggml.unknown_token_id': 0,
        'tokenizer.ggml.bos_token_id': 1,
        'tokenizer.ggml.eos_token_id': 2,
        'tokenizer.ggml.add_bos_token': true,
        'general.quantization_version': 2,
        ...overrides,
      },
      { strictKeyTypes },
    );
  } finally {
    for (const t of Object.values(tensors)) (t as { dispose(): void }).dispose();
  }
}

test('llama.cpp loads and runs a model saved with plain numbers for its standard keys', async () => {
  const path = join(dir, 'tiny.gguf');
  await tinyLlama(path);
  const [run] = await runLlama([path], { prompt: 'ab', nTokens: 4 });
  const nVocab = vocab().tokens.length;
  expect(run.promptTokens[0]).toBe(1); // <s>, as add_bos_token says
  expect(run.promptTokens.length).toBeGreaterThan(1);
  expect(run.generated).toHaveLength(4);
  for (const t of [...run.promptTokens, ...run.generated]) expect(t).toBeLessThan(nVocab);
}, 120_000);

test.each([
  ['llama.context_length as i32', { 'llama.context_length': gguf.i32(256) }, /llama.context_length has wrong type i32 but expected type u32/],
  ['the rms epsilon as f64', { 'llama.attention.layer_norm_rms_epsilon': gguf.f64(1e-5) }, /layer_norm_rms_epsilon has wrong type f64 but expected type f32/],
])('llama.cpp refuses %s, which saveGGUF only writes with strictKeyTypes: false', async (_, override, message) => {
  const path = join(dir, 'wrong-type.gguf');
  await expect(tinyLlama(path, override)).rejects.toThrow(/but llama.cpp reads it as/);
  await tinyLlama(path, override, false);
  await expect(runLlama([path], { prompt: 'ab', nTokens: 1 })).rejects.toThrow(message);
}, 120_000);
