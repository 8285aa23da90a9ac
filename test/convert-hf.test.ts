// `wgarray convert` on Hugging Face folders: the GGUF it writes (read back by
// @huggingface/gguf, an independent parser), the q/k permutation, sharded
// input, llama3 rope factors, the CPU path, and the errors for folders it
// does not understand (naming what it found, leaving no output file).
import { gguf, GGUFValueType } from '@huggingface/gguf';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { permuteRows } from '../src/convert/architecture.js';
import { permuteRowsHost } from '../src/convert/permute.js';
import { syntheticModel, writeSyntheticModel, type SyntheticModel } from '../src/convert/synthetic.js';
import { TOKEN_TYPE } from '../src/convert/tokenizer.js';
import { loadGGUF } from '../src/io/gguf/reader.js';
import { saveSafetensors } from '../src/io/safetensors/writer.js';
import { close, init } from '../src/runtime/device.js';
import type { Device } from '../src/runtime/device.js';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../src/runtime/half.js';
import { runCliCaptured } from './helpers/run-cli.js';

let dir: string;
let device: Device;
let model: SyntheticModel;
let hf: string;

function cli(args: string[], opts: { device?: Device | null } = {}) {
  return runCliCaptured(args, { device: opts.device === null ? undefined : (opts.device ?? device) });
}

async function convert(input: string, out: string, ...args: string[]) {
  const r = await cli(['convert', input, '-o', out, '-q', ...args]);
  if (r.code !== 0) throw new Error(`convert failed (${r.code}): ${r.stderr}`);
  return r;
}

beforeAll(async () => {
  device = await init();
  dir = mkdtempSync(join(tmpdir(), 'wgarray-convert-'));
  model = syntheticModel({ seed: 5, layers: 2, ff: 512, vocab: 512 });
  hf = join(dir, 'tiny');
  await writeSyntheticModel(hf, model);
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await close();
});

describe('the GGUF convert writes', () => {
  test('metadata: llama.cpp key types, tokenizer, general.*', async () => {
    const out = join(dir, 'f16.gguf');
    await convert(hf, out, '--outtype', 'f16');
    const { typedMetadata: m, tensorInfos } = await gguf(out, { allowLocalFile: true, typedMetadata: true });
    const t = (k: string) => [m[k]?.type, m[k]?.value];
    const U32 = GGUFValueType.UINT32;
    const F32 = GGUFValueType.FLOAT32;
    expect(t('general.architecture')).toEqual([GGUFValueType.STRING, 'llama']);
    expect(t('general.name')).toEqual([GGUFValueType.STRING, 'tiny']);
    expect(t('general.file_type')).toEqual([U32, 1]);
    expect(t('general.quantization_version')).toEqual([U32, 2]);
    expect(t('general.size_label')).toEqual([GGUFValueType.STRING, '1.4M']);
    expect(t('llama.block_count')).toEqual([U32, 2]);
    expect(t('llama.context_length')).toEqual([U32, 2048]);
    expect(t('llama.embedding_length')).toEqual([U32, 256]);
    expect(t('llama.feed_forward_length')).toEqual([U32, 512]);
    expect(t('llama.attention.head_count')).toEqual([U32, 8]);
    expect(t('llama.attention.head_count_kv')).toEqual([U32, 2]);
    expect(t('llama.rope.dimension_count')).toEqual([U32, 32]);
    expect(t('llama.vocab_size')).toEqual([U32, 512]);
    expect(t('llama.rope.freq_base')).toEqual([F32, 10000]);
    expect(m['llama.attention.layer_norm_rms_epsilon'].type).toBe(F32);
    expect(m['llama.attention.layer_norm_rms_epsilon'].value).toBeCloseTo(1e-5, 10);
    expect(t('tokenizer.ggml.model')).toEqual([GGUFValueType.STRING, 'gpt2']);
    expect(t('tokenizer.ggml.pre')).toEqual([GGUFValueType.STRING, 'llama-bpe']);
    expect(m['tokenizer.ggml.tokens'].subType).toBe(GGUFValueType.STRING);
    expect(m['tokenizer.ggml.token_type'].subType).toBe(GGUFValueType.INT32);
    expect(m['tokenizer.ggml.merges'].subType).toBe(GGUFValueType.STRING);
    const tokens = m['tokenizer.ggml.tokens'].value as string[];
    const types = m['tokenizer.ggml.token_type'].value as number[];
    expect(tokens.length).toBe(512);
    expect(tokens[32]).toBe('Ġ'); // byte 0x20 in GPT-2's alphabet
    expect(tokens[510]).toBe('<|begin_of_text|>');
    expect(types[510]).toBe(TOKEN_TYPE.CONTROL);
    expect(types[100]).toBe(TOKEN_TYPE.NORMAL);
    expect((m['tokenizer.ggml.merges'].value as string[])[0]).toBe(model.bpe.merges[0].join(' '));
    expect(t('tokenizer.ggml.bos_token_id')).toEqual([U32, 510]);
    expect(t('tokenizer.ggml.eos_token_id')).toEqual([U32, 511]);
    expect(t('tokenizer.ggml.add_bos_token')).toEqual([GGUFValueType.BOOL, true]);
    expect(m['tokenizer.chat_template'].value).toBe(model.tokenizerConfig.chat_template);
    // tensors: renamed, ne = reversed shape, norms f32, weights f16
    const info = Object.fromEntries(tensorInfos.map((x) => [x.name, x]));
    expect(Object.keys(info).sort()).toEqual(
      [
        'token_embd.weight', 'output_norm.weight', 'output.weight',
        ...[0, 1].flatMap((i) =>
          ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'].map((p) => `blk.${i}.${p}.weight`),
        ),
      ].sort(),
    );
    expect(info['blk.1.attn_k.weight'].shape).toEqual([256n, 64n]);
    expect(info['blk.1.ffn_down.weight'].shape).toEqual([512n, 256n]);
    expect(info['blk.0.attn_norm.weight'].dtype).toBe(0); // F32
    expect(info['blk.0.attn_q.weight'].dtype).toBe(1); // F16
  });

  test('a SentencePiece tokenizer.model: model llama, scores, byte pieces', async () => {
    const m = syntheticModel({ seed: 5, layers: 1, ff: 256, tokenizer: 'spm' });
    const d = join(dir, 'spm');
    await writeSyntheticModel(d, m);
    writeFileSync(join(d, 'added_tokens.json'), JSON.stringify({ '<extra>': 511 }));
    const out = join(dir, 'spm.gguf');
    await convert(d, out, '--outtype', 'f16');
    const { typedMetadata: g } = await gguf(out, { allowLocalFile: true, typedMetadata: true });
    expect(g['tokenizer.ggml.model']?.value).toBe('llama');
    expect(g['tokenizer.ggml.pre']?.value).toBe('default');
    expect(g['tokenizer.ggml.scores']?.subType).toBe(GGUFValueType.FLOAT32);
    const tokens = g['tokenizer.ggml.tokens']?.value as string[];
    const types = g['tokenizer.ggml.token_type']?.value as number[];
    const scores = g['tokenizer.ggml.scores']?.value as number[];
    expect(tokens.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
    expect(types.slice(0, 4)).toEqual([TOKEN_TYPE.UNKNOWN, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL, TOKEN_TYPE.BYTE]);
    const sp = m.sentencePiece!;
    expect(tokens[300]).toBe(sp.pieces[300].piece);
    expect(scores[300]).toBe(sp.pieces[300].score);
    expect([tokens[511], types[511], scores[511]]).toEqual(['<extra>', TOKEN_TYPE.USER_DEFINED, -1000]);
    expect(g['tokenizer.ggml.bos_token_id']?.value).toBe(1);
    expect(g['tokenizer.ggml.eos_token_id']?.value).toBe(2);
    expect(g['tokenizer.ggml.add_bos_token']?.value).toBe(true);
    expect(g['tokenizer.ggml.add_eos_token']?.value).toBe(false);
    expect('tokenizer.ggml.merges' in g).toBe(false);
  });

  test('q/k rows are permuted for llama.cpp rope, v rows are not', async () => {
    const out = join(dir, 'f32.gguf');
    await convert(hf, out, '--outtype', 'f32');
    const f = await loadGGUF(out);
    const src = (name: string) => {
      const t = model.tensors.find((x) => x.name === name)!;
      const bytes = t.bytes();
      return Float32Array.from(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2), bf16BitsToF32);
    };
    const got = async (name: string) => {
      const b = await f.readTensorBytes(name);
      return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
    };
    const q = src('model.layers.1.self_attn.q_proj.weight');
    const k = src('model.layers.1.self_attn.k_proj.weight');
    expect(await got('blk.1.attn_q.weight')).toEqual(permuteRowsHost(q, 256, permuteRows(256, 8)));
    expect(await got('blk.1.attn_k.weight')).toEqual(permuteRowsHost(k, 64, permuteRows(64, 2)));
    expect(await got('blk.1.attn_v.weight')).toEqual(src('model.layers.1.self_attn.v_proj.weight'));
    // the permutation interleaves the two halves of each head: row 1 of a head is its row 16 before
    expect(Array.from(permuteRows(64, 2).slice(0, 4))).toEqual([0, 16, 1, 17]);
  });

  test('a sharded model converts to the same file', async () => {
    const sharded = join(dir, 'sharded');
    await writeSyntheticModel(sharded, model, { maxShardBytes: 400_000 });
    expect(readdirSync(sharded).filter((n) => /model-\d+-of-\d+\.safetensors/.test(n)).length).toBeGreaterThan(2);
    const a = join(dir, 'one.gguf');
    const b = join(dir, 'shards.gguf');
    await convert(hf, a, '--outtype', 'q8_0', '--name', 'x');
    await convert(sharded, b, '--outtype', 'q8_0', '--name', 'x');
    expect(Buffer.compare(await readFile(a), await readFile(b))).toBe(0);
  });

  test('llama3 rope scaling: rope_freqs.weight', async () => {
    const m = syntheticModel({ seed: 5, layers: 1, ff: 256, ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } });
    const d = join(dir, 'llama3');
    await writeSyntheticModel(d, m);
    const out = join(dir, 'llama3.gguf');
    await convert(d, out, '--outtype', 'f16');
    const f = await loadGGUF(out);
    const t = f.tensor('rope_freqs.weight');
    expect([t.shape, t.type.name]).toEqual([[16], 'f32']);
    const b = await f.readTensorBytes('rope_freqs.weight');
    const factors = Array.from(new Float32Array(b.buffer, b.byteOffset, 16));
    // high frequencies untouched, the lowest scaled by the full factor, smooth between
    expect(factors[0]).toBe(1);
    expect(factors[15]).toBe(8);
    for (let i = 1; i < 16; i++) expect(factors[i]).toBeGreaterThanOrEqual(factors[i - 1]);
  });

  test('qwen2: biases kept as f32, no permutation, tied embeddings: no output.weight', async () => {
    const m = syntheticModel({ seed: 9, arch: 'qwen2', layers: 1, ff: 256, tied: true });
    const d = join(dir, 'qwen');
    await writeSyntheticModel(d, m);
    const out = join(dir, 'qwen.gguf');
    await convert(d, out, '--outtype', 'Q8_0');
    const f = await loadGGUF(out);
    expect(f.metadata['general.architecture']).toBe('qwen2');
    expect(f.metadata['tokenizer.ggml.pre']).toBe('llama-bpe');
    expect(f.tensor('blk.0.attn_q.bias').type.name).toBe('f32');
    expect(f.tensorInfos.some((t) => t.name === 'output.weight')).toBe(false);
    // tied: token_embd takes the output tensor's type (Q8_0 stays Q8_0)
    expect(f.tensor('token_embd.weight').type.name).toBe('q8_0');
    expect('qwen2.rope.dimension_count' in f.metadata).toBe(false);
  });

  test('qwen3moe: expert keys, 3-D expert tensors (ne = n_embd, n_ff, n_expert), router and q/k norms F32', async () => {
    const m = syntheticModel({ seed: 9, arch: 'qwen3moe', layers: 2, hidden: 64, heads: 4, kvHeads: 2, headDim: 24, ff: 128, experts: 8, expertFf: 32 });
    const d = join(dir, 'qwen3moe');
    await writeSyntheticModel(d, m);
    const out = join(dir, 'qwen3moe.gguf');
    await convert(d, out, '--outtype', 'f16');
    const { typedMetadata: md, tensorInfos } = await gguf(out, { allowLocalFile: true, typedMetadata: true });
    const t = (k: string) => [md[k]?.type, md[k]?.value];
    const U32 = GGUFValueType.UINT32;
    expect(t('general.architecture')).toEqual([GGUFValueType.STRING, 'qwen3moe']);
    expect(t('qwen3moe.expert_count')).toEqual([U32, 8]);
    expect(t('qwen3moe.expert_used_count')).toEqual([U32, 2]);
    expect(t('qwen3moe.expert_feed_forward_length')).toEqual([U32, 32]);
    expect(t('qwen3moe.feed_forward_length')).toEqual([U32, 128]);
    expect(t('qwen3moe.attention.key_length')).toEqual([U32, 24]);
    expect(t('qwen3moe.attention.value_length')).toEqual([U32, 24]);
    const info = Object.fromEntries(tensorInfos.map((x) => [x.name, x]));
    expect(info['blk.1.ffn_gate_exps.weight'].shape).toEqual([64n, 32n, 8n]);
    expect(info['blk.1.ffn_up_exps.weight'].shape).toEqual([64n, 32n, 8n]);
    expect(info['blk.1.ffn_down_exps.weight'].shape).toEqual([32n, 64n, 8n]);
    expect(info['blk.1.ffn_gate_exps.weight'].dtype).toBe(1); // F16
    expect(info['blk.1.ffn_gate_inp.weight'].shape).toEqual([64n, 8n]);
    expect(info['blk.1.ffn_gate_inp.weight'].dtype).toBe(0); // F32, as convert_hf_to_gguf keeps the router
    expect(info['blk.0.attn_q_norm.weight'].shape).toEqual([24n]);
    expect(info['blk.0.attn_q.weight'].shape).toEqual([64n, 96n]);
    // expert 5 of layer 1 is slab 5 of the stacked tensor, as stored (no permutation for qwen)
    const f = await loadGGUF(out);
    const stacked = await f.readTensorBytes('blk.1.ffn_down_exps.weight');
    const e5 = m.tensors.find((x) => x.name === 'model.layers.1.mlp.experts.5.down_proj.weight')!.values();
    const slab = new Uint16Array(stacked.slice(5 * 64 * 32 * 2, 6 * 64 * 32 * 2).buffer);
    expect(Array.from(slab.slice(0, 8), (b) => Math.fround(f16BitsToF32(b)))).toEqual(Array.from(e5.slice(0, 8), (v) => f16BitsToF32(f32ToF16Bits(bf16BitsToF32(f32ToBf16Bits(v))))));
  });

  test('gemma3 and phi3: their keys, norms + 1, embedding trimmed to the tokenizer, fused tensors, longrope factors', async () => {
    const g = syntheticModel({ seed: 9, arch: 'gemma3', layers: 6, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, ff: 128, tokenizerVocab: 500 });
    const gd = join(dir, 'gemma3');
    await writeSyntheticModel(gd, g);
    const gOut = join(dir, 'gemma3.gguf');
    await convert(gd, gOut, '--outtype', 'f32');
    const gf = await loadGGUF(gOut);
    const m = gf.metadata;
    expect(m['general.architecture']).toBe('gemma3');
    expect(m['gemma3.rope.freq_base']).toBe(100000);
    expect(m['gemma3.rope.freq_base_swa']).toBe(1000);
    expect(m['gemma3.rope.scaling.type']).toBe('linear');
    expect(m['gemma3.rope.scaling.factor']).toBe(2);
    expect(m['gemma3.attention.sliding_window']).toBe(4);
    expect(m['gemma3.attention.key_length']).toBe(16);
    expect(gf.metadataTypes['gemma3.attention.sliding_window']).toBe('u32');
    expect(gf.tensorInfos.some((t) => t.name === 'output.weight')).toBe(false);
    expect(gf.tensor('token_embd.weight').shape).toEqual([500, 64]);
    expect((m['tokenizer.ggml.tokens'] as string[]).length).toBe(500);
    for (const [hfName, name] of [['model.layers.2.post_feedforward_layernorm.weight', 'blk.2.post_ffw_norm.weight'], ['model.layers.0.self_attn.k_norm.weight', 'blk.0.attn_k_norm.weight']]) {
      const want = g.tensors.find((t) => t.name === hfName)!.values().map((v) => bf16BitsToF32(f32ToBf16Bits(v)) + 1);
      expect(new Float32Array((await gf.readTensorBytes(name)).slice().buffer)).toEqual(Float32Array.from(want));
    }
    // Gemma's SentencePiece tokenizer.model: no space prefix
    const gs = syntheticModel({ seed: 9, arch: 'gemma2', layers: 1, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, ff: 128, tokenizer: 'spm' });
    const gsd = join(dir, 'gemma2-spm');
    await writeSyntheticModel(gsd, gs);
    await convert(gsd, join(dir, 'gemma2-spm.gguf'), '--outtype', 'f16');
    const gsf = await loadGGUF(join(dir, 'gemma2-spm.gguf'));
    expect(gsf.metadata['tokenizer.ggml.model']).toBe('llama');
    expect(gsf.metadata['tokenizer.ggml.add_space_prefix']).toBe(false);
    expect(gsf.metadata['gemma2.attn_logit_softcapping']).toBe(50);
    expect(gsf.metadata['gemma2.final_logit_softcapping']).toBe(30);
    expect(gsf.tensorInfos.some((t) => t.name === 'output.weight')).toBe(false);
    const ph = syntheticModel({ seed: 9, arch: 'phi3', layers: 1, hidden: 64, heads: 4, kvHeads: 2, ff: 128, tokenizer: 'spm', maxPositions: 8192, ropeScaling: { type: 'longrope', short_factor: [1, 1, 1, 1, 2, 2, 2, 2], long_factor: [4, 4, 4, 4, 8, 8, 8, 8] } });
    const pd = join(dir, 'phi3');
    await writeSyntheticModel(pd, ph);
    const pOut = join(dir, 'phi3.gguf');
    await convert(pd, pOut, '--outtype', 'Q8_0');
    const pf = await loadGGUF(pOut);
    expect(pf.metadata['phi3.rope.scaling.original_context_length']).toBe(2048);
    expect(pf.metadata['phi3.rope.dimension_count']).toBe(16);
    expect(pf.metadata['phi3.attention.sliding_window']).toBe(0);
    expect(pf.metadata['phi3.rope.scaling.attn_factor']).toBeCloseTo(Math.sqrt(1 + Math.log(4) / Math.log(2048)), 6);
    expect(pf.tensor('blk.0.attn_qkv.weight').shape).toEqual([128, 64]);
    expect(pf.tensor('blk.0.ffn_up.weight').shape).toEqual([256, 64]);
    expect(new Float32Array((await pf.readTensorBytes('rope_factors_long.weight')).slice().buffer)).toEqual(Float32Array.from([4, 4, 4, 4, 8, 8, 8, 8]));
    expect(pf.tensor('rope_factors_short.weight').type.name).toBe('f32');
  });

  test.each(['f16', 'Q4_K_M', 'Q6_K'])('the CPU path writes the same bytes as the GPU (%s)', async (outtype) => {
    const gpu = join(dir, `gpu-${outtype}.gguf`);
    const cpu = join(dir, `cpu-${outtype}.gguf`);
    await convert(hf, gpu, '--outtype', outtype);
    await convert(hf, cpu, '--outtype', outtype, '--cpu');
    expect(Buffer.compare(await readFile(gpu), await readFile(cpu))).toBe(0);
  });

  test('rope scaling keys: yarn (qwen3), linear (gemma3 above), llama3 rope_freqs (smollm3)', async () => {
    const yarn = syntheticModel({ seed: 5, arch: 'qwen3', layers: 1, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, ff: 128, ropeScaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 4096, beta_fast: 32, beta_slow: 1 } });
    const d = join(dir, 'yarn');
    await writeSyntheticModel(d, yarn);
    await convert(d, join(d, 'y.gguf'), '--outtype', 'f16');
    const y = await loadGGUF(join(d, 'y.gguf'));
    expect(y.metadata['qwen3.rope.scaling.type']).toBe('yarn');
    expect(y.metadata['qwen3.rope.scaling.factor']).toBe(4);
    expect([y.metadata['qwen3.rope.scaling.original_context_length'], y.metadataTypes['qwen3.rope.scaling.original_context_length']]).toEqual([4096, 'u32']);
    expect([y.metadata['qwen3.rope.scaling.yarn_beta_fast'], y.metadataTypes['qwen3.rope.scaling.yarn_beta_fast']]).toEqual([32, 'f32']);
    expect(y.metadata['qwen3.rope.scaling.yarn_beta_slow']).toBe(1);
    const l3 = syntheticModel({ seed: 5, arch: 'smollm3', layers: 1, hidden: 64, heads: 4, kvHeads: 2, ff: 128, ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } });
    const d3 = join(dir, 'smollm3-llama3');
    await writeSyntheticModel(d3, l3);
    await convert(d3, join(d3, 's.gguf'), '--outtype', 'f16');
    const sm = await loadGGUF(join(d3, 's.gguf'));
    expect(sm.metadata['general.architecture']).toBe('smollm3');
    expect(sm.tensor('rope_freqs.weight').shape).toEqual([8]);
    expect(sm.metadata['smollm3.rope.dimension_count']).toBe(16);
  });

  test('a tokenizer.json-only SentencePiece BPE: a llama vocabulary scored by merge rank; no Prepend, no space prefix', async () => {
    const m = syntheticModel({ seed: 5, layers: 1, hidden: 64, heads: 4, kvHeads: 2, ff: 128, tokenizer: 'spm-json' });
    const d = join(dir, 'spm-json');
    await writeSyntheticModel(d, m);
    expect(existsSync(join(d, 'tokenizer.model'))).toBe(false);
    await convert(d, join(d, 'a.gguf'), '--outtype', 'f16');
    const a = await loadGGUF(join(d, 'a.gguf'));
    expect(a.metadata['tokenizer.ggml.model']).toBe('llama');
    expect('tokenizer.ggml.add_space_prefix' in a.metadata).toBe(false);
    const tokens = a.metadata['tokenizer.ggml.tokens'] as string[];
    const scores = a.metadata['tokenizer.ggml.scores'] as Float32Array;
    const types = a.metadata['tokenizer.ggml.token_type'] as Int32Array;
    // the first merge's piece scores 0 - 0, the next ones lower
    const merges = (m.tokenizer!.model as { merges: [string, string][] }).merges;
    expect(scores[tokens.indexOf(merges[0].join(''))]).toBe(-0);
    expect(scores[tokens.indexOf(merges[1].join(''))]).toBeLessThan(0);
    expect(types[tokens.indexOf('<0x41>')]).toBe(TOKEN_TYPE.BYTE);
    expect(types[1]).toBe(TOKEN_TYPE.CONTROL);
    expect(types[0]).toBe(TOKEN_TYPE.UNKNOWN);
    // Gemma 3's tokenizer.json replaces spaces but prepends nothing
    await patchJson(join(d, 'tokenizer.json'), (j) => ((j.normalizer as { normalizers: unknown[] }).normalizers.shift()));
    await convert(d, join(d, 'b.gguf'), '--outtype', 'f16');
    expect((await loadGGUF(join(d, 'b.gguf'))).metadata['tokenizer.ggml.add_space_prefix']).toBe(false);
  });

  test.each([
    ['qwen3moe, fused v5 experts', { seed: 3, arch: 'qwen3moe', layers: 1, hidden: 64, heads: 4, kvHeads: 2, ff: 128, experts: 4, expertFf: 64, fusedExperts: true }],
    ['gemma3', { seed: 3, arch: 'gemma3', layers: 1, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, ff: 128, tokenizerVocab: 500 }],
    ['phi3', { seed: 3, arch: 'phi3', layers: 1, hidden: 64, heads: 4, kvHeads: 2, ff: 128 }],
  ] as const)('%s: the CPU path writes the same bytes as the GPU (Q4_K_M)', async (name, options) => {
    const d = join(dir, `cpu-gpu-${name.replace(/\W+/g, '-')}`);
    await writeSyntheticModel(d, syntheticModel(options));
    const gpu = join(d, 'gpu.gguf');
    const cpu = join(d, 'cpu.gguf');
    await convert(d, gpu, '--outtype', 'Q4_K_M');
    await convert(d, cpu, '--outtype', 'Q4_K_M', '--cpu');
    expect(Buffer.compare(await readFile(gpu), await readFile(cpu))).toBe(0);
  });
});

// ---- folders convert does not understand -------------------------------------------------------

async function folder(name: string, edit: (d: string) => Promise<void> | void, m: SyntheticModel = model): Promise<string> {
  const d = join(dir, 'bad', name);
  await writeSyntheticModel(d, m);
  await edit(d);
  return d;
}

const patchJson = async (file: string, patch: (j: Record<string, unknown>) => void) => {
  const j = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  patch(j);
  writeFileSync(file, JSON.stringify(j));
};

const BAD: [string, (d: string) => Promise<void> | void, RegExp][] = [
  ['no config.json', (d) => unlink(join(d, 'config.json')), /is not a Hugging Face model folder: no config\.json; it holds model\.safetensors, tokenizer\.json/],
  [
    'an architecture it does not convert',
    (d) => patchJson(join(d, 'config.json'), (j) => ((j.architectures = ['GPTNeoXForCausalLM']), (j.model_type = 'gpt_neox'))),
    /config\.json: architecture GPTNeoXForCausalLM \(model_type gpt_neox\); wgarray converts LlamaForCausalLM, .*MixtralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM, SmolLM3ForCausalLM/,
  ],
  ['no head count', (d) => patchJson(join(d, 'config.json'), (j) => delete j.num_attention_heads), /config\.json: has no "num_attention_heads"/],
  [
    'heads that do not divide',
    (d) => patchJson(join(d, 'config.json'), (j) => (j.num_key_value_heads = 3)),
    /num_attention_heads 8 is not a multiple of num_key_value_heads 3/,
  ],
  [
    'shapes that do not match config.json',
    (d) => patchJson(join(d, 'config.json'), (j) => (j.intermediate_size = 1024)),
    /shape \[512, 256\] of model\.layers\.0\.mlp\.gate_proj\.weight does not match config\.json \(expected \[1024, 256\]/,
  ],
  [
    'a layer missing',
    (d) => patchJson(join(d, 'config.json'), (j) => (j.num_hidden_layers = 3)),
    // a config claiming more layers than the weights hold is refused before anything is sized by it
    /config\.json: num_hidden_layers is 3, but the weights hold 2 layers \(model\.layers\.0 to model\.layers\.1\)/,
  ],
  [
    'vocab_size unlike the embedding',
    (d) => patchJson(join(d, 'config.json'), (j) => (j.vocab_size = 600)),
    /vocab_size is 600, but model\.embed_tokens\.weight has 512 rows/,
  ],
  ['no tokenizer', (d) => unlink(join(d, 'tokenizer.json')), /has no tokenizer \(tokenizer\.json or tokenizer\.model\); it holds config\.json/],
  [
    'a tokenizer.model that is not SentencePiece',
    async (d) => {
      await unlink(join(d, 'tokenizer.json'));
      writeFileSync(join(d, 'tokenizer.model'), Buffer.from([0x0a, 0x40, 0x01]));
    },
    /tokenizer\.model at byte 2: not a SentencePiece model: a field of 64 bytes runs past the end/,
  ],
  [
    'a WordPiece tokenizer',
    (d) => patchJson(join(d, 'tokenizer.json'), (j) => ((j.model as Record<string, unknown>).type = 'WordPiece')),
    /tokenizer\.json: has a WordPiece tokenizer model; wgarray converts BPE tokenizers/,
  ],
  [
    'a pre-tokenizer it does not know',
    (d) => patchJson(join(d, 'tokenizer.json'), (j) => (((j.pre_tokenizer as { pretokenizers: { pattern: { Regex: string } }[] }).pretokenizers[0].pattern.Regex = '\\w+'))),
    /BPE pre-tokenizer not recognised: its check hash [0-9a-f]{64} is not in llama\.cpp's table .*pre-tokenizer \(\\w\+\) is none wgarray knows; name llama\.cpp's pre-tokenizer with --tokenizer-pre NAME/,
  ],
  [
    'PyTorch weights only',
    async (d) => {
      await unlink(join(d, 'model.safetensors'));
      writeFileSync(join(d, 'pytorch_model.bin'), 'x');
    },
    /has PyTorch weights \(pytorch_model\.bin\) but no \.safetensors/,
  ],
  [
    'an integer weight',
    async (d) => {
      await saveSafetensors(join(d, 'model.safetensors'), { 'model.embed_tokens.weight': { shape: [512, 256], dtype: 'int8', data: new Int8Array(512 * 256) } });
    },
    /tensor model\.embed_tokens\.weight is I8; wgarray converts F32, F16 and BF16 weights/,
  ],
  [
    'a tensor it cannot name',
    async (d) => {
      await saveSafetensors(join(d, 'model.safetensors'), { 'model.vision_tower.weight': { shape: [4], dtype: 'float32', data: new Float32Array(4) } });
    },
    /cannot map tensor model\.vision_tower\.weight to a GGUF tensor of llama/,
  ],
];

describe('folders it does not understand', () => {
  test.each(BAD)('%s', async (name, edit, message) => {
    const d = await folder(name.replace(/\W+/g, '-'), edit);
    const out = join(dir, 'bad', `${name.replace(/\W+/g, '-')}.gguf`);
    const r = await cli(['convert', d, '-o', out, '-q']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^wgarray: error: /);
    expect(r.stderr).toMatch(message);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(join(dir, 'bad')).filter((n) => n.startsWith('.wgarray-tmp')).length).toBe(0);
  });

  const qwen3 = syntheticModel({ seed: 5, arch: 'qwen3', layers: 1, hidden: 64, heads: 4, kvHeads: 2, headDim: 24, ff: 128 });
  const moe = syntheticModel({ seed: 5, arch: 'qwen3moe', layers: 2, hidden: 64, heads: 4, kvHeads: 2, ff: 128, experts: 4, expertFf: 32 });
  const without = (m: SyntheticModel, drop: (name: string) => boolean): SyntheticModel => ({ ...m, tensors: m.tensors.filter((t) => !drop(t.name)) });
  const reshaped = (m: SyntheticModel, name: string, shape: number[]): SyntheticModel => ({
    ...m,
    tensors: m.tensors.map((t) => {
      if (t.name !== name) return t;
      const values = () => new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(1);
      return { ...t, shape, values, bytes: () => new Uint8Array(Uint16Array.from(values(), f32ToBf16Bits).buffer) };
    }),
  });
  const ARCH_BAD: [string, SyntheticModel, (d: string) => Promise<void> | void, RegExp][] = [
    [
      'a missing expert',
      without(moe, (n) => n.startsWith('model.layers.1.mlp.experts.3.')),
      () => {},
      /is missing expert 3 of blk\.1\.ffn_(gate|up|down)_exps\.weight \(config\.json has 4 experts; model\.layers\.1\.mlp\.experts\.3\.(gate|up|down)_proj\.weight expected, shape \[(32, 64|64, 32)\]\)/,
    ],
    [
      'more experts in config.json than in the weights',
      moe,
      (d) => patchJson(join(d, 'config.json'), (j) => (j.num_experts = 6)),
      /is missing expert 4 of blk\.0\.ffn_(gate|up|down)_exps\.weight \(config\.json has 6 experts/,
    ],
    [
      'an expert of the wrong shape',
      reshaped(moe, 'model.layers.0.mlp.experts.2.up_proj.weight', [16, 64]),
      () => {},
      /model\.safetensors: model\.layers\.0\.mlp\.experts\.2\.up_proj\.weight: shape \[16, 64\] of model\.layers\.0\.mlp\.experts\.2\.up_proj\.weight does not match config\.json \(expected \[32, 64\] for expert 2 of blk\.0\.ffn_up_exps\.weight\)/,
    ],
    [
      'a wrong head_dim',
      qwen3,
      (d) => patchJson(join(d, 'config.json'), (j) => (j.head_dim = 16)),
      /model\.safetensors: model\.layers\.0\.self_attn\.\w+\.weight: shape \[\d+(, 64)?\] of model\.layers\.0\.self_attn\.\w+\.weight does not match config\.json \(expected \[(16|64|32)(, \d+)?\] for blk\.0\.attn_\w+\.weight\)/,
    ],
    [
      'a q/k norm of the wrong length',
      reshaped(qwen3, 'model.layers.0.self_attn.k_norm.weight', [23]),
      () => {},
      /model\.safetensors: model\.layers\.0\.self_attn\.k_norm\.weight: shape \[23\] of model\.layers\.0\.self_attn\.k_norm\.weight does not match config\.json \(expected \[24\] for blk\.0\.attn_k_norm\.weight\)/,
    ],
    [
      'a tokenizer larger than the embedding',
      qwen3,
      (d) =>
        patchJson(join(d, 'tokenizer.json'), (j) =>
          (j.added_tokens as unknown[]).push({ id: 600, content: '<|extra|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }),
        ),
      /tokenizer\.json: has token id 600, but config\.json's vocab_size is 512/,
    ],
  ];
  ARCH_BAD.push([
    'a Gemma 3 tokenizer larger than the embedding',
    syntheticModel({ seed: 5, arch: 'gemma3', layers: 1, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, ff: 128 }),
    (d) =>
      patchJson(join(d, 'tokenizer.json'), (j) => {
        for (let id = 512; id < 520; id++) (j.added_tokens as unknown[]).push({ id, content: `<extra${id}>`, special: true });
      }),
    /tokenizer\.json: has 520 tokens, but model\.embed_tokens\.weight has only 512 rows/,
  ]);
  test.each(ARCH_BAD)('%s: an error naming the file, the tensor and the shape expected; nothing written', async (name, m, edit, message) => {
    const d = await folder(name.replace(/\W+/g, '-'), edit, m);
    const out = join(dir, 'bad', `${name.replace(/\W+/g, '-')}.gguf`);
    const r = await cli(['convert', d, '-o', out, '-q']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(existsSync(out)).toBe(false);
  });

  test('--tokenizer-pre names the pre-tokenizer when it is not recognised', async () => {
    const d = await folder('custom-pre', (x) =>
      patchJson(join(x, 'tokenizer.json'), (j) => (((j.pre_tokenizer as { pretokenizers: { pattern: { Regex: string } }[] }).pretokenizers[0].pattern.Regex = '\\w+'))),
    );
    const out = join(dir, 'custom-pre.gguf');
    await convert(d, out, '--tokenizer-pre', 'gpt-2');
    expect((await loadGGUF(out)).metadata['tokenizer.ggml.pre']).toBe('gpt-2');
  });

  test('not a folder at all', async () => {
    const r = await cli(['convert', join(dir, 'nowhere'), '-o', join(dir, 'x.gguf')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nowhere: cannot read the model folder/);
  });
});
