// `wgarray quantize` against llama.cpp's own quantizer: the same F32 GGUF is
// quantized by `wgarray quantize` and by llama_model_quantize (the prebuilt
// libllama node-llama-cpp ships, called through python3's ctypes), and the two
// files must hold the same tensors with the same types and the same bytes,
// and the same general.file_type. The model has 6 layers (so the k-quant mixes
// pick different layers) and an ffn_down row of 288 (so K-quants fall back).
// Every preset runs: a block format missing from src/quant/registry.ts fails
// its cases (as wgarray would fail the user), it does not skip them.
//
// Also: quantizing the GGUF that `convert --outtype f32` made gives, tensor by
// tensor, exactly the bytes that `convert --outtype TYPE` gives by quantizing
// the Hugging Face arrays directly.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { close, init } from '../src/runtime/device.js';
import { syntheticModel, writeSyntheticModel } from '../src/convert/synthetic.js';
import { loadGGUF } from '../src/io/gguf/reader.js';
import { ggmlType } from '../src/runtime/ggml-types.js';
import { quantPreset } from '../src/quant/presets.js';
import { llamaQuantize, llamaQuantizeAvailable, type QuantizeParams } from './helpers/llama.js';
import { runCliOk } from './helpers/run-cli.js';

interface Case {
  preset: string;
  args?: string[];
  params?: QuantizeParams;
}

const PRESETS = [
  'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q2_K', 'Q3_K_S', 'Q3_K_M', 'Q3_K_L', 'Q4_K_S', 'Q4_K_M',
  'Q5_K_S', 'Q5_K_M', 'Q6_K', 'IQ4_NL', 'IQ4_XS', 'TQ1_0', 'TQ2_0', 'MXFP4_MOE', 'F16', 'BF16', 'F32', 'COPY',
];

const CASES: Case[] = [
  ...PRESETS.map((preset) => ({ preset })),
  { preset: 'Q4_K_M', args: ['--pure'], params: { pure: true } },
  { preset: 'Q4_K_M', args: ['--leave-output-tensor'], params: { leaveOutputTensor: true } },
  {
    preset: 'Q5_K_M',
    args: ['--output-tensor-type', 'q8_0', '--token-embedding-type', 'Q4_0'],
    params: { outputTensorType: ggmlType('q8_0').id, tokenEmbeddingType: ggmlType('q4_0').id },
  },
  {
    preset: 'Q4_K_M',
    args: ['--tensor-type', 'attn_v=q8_0', '--tensor-type', 'blk\\.[0-3]\\.ffn_up=q5_k'],
    params: { tensorTypes: [['attn_v', ggmlType('q8_0').id], ['blk\\.[0-3]\\.ffn_up', ggmlType('q5_K').id]] },
  },
];

// One device for every command: pipelines compile once.
const device = await init();

async function cli(args: string[]): Promise<void> {
  await runCliOk([...args, '--quiet'], { device });
}

// The F32 model and llama.cpp's files are made while the tests are collected, in one go.
const dir = mkdtempSync(join(tmpdir(), 'wgarray-llama-quantize-'));
const hf = join(dir, 'hf');
await writeSyntheticModel(hf, syntheticModel({ seed: 3, layers: 6, ff: 288, vocab: 320 }));
const f32 = join(dir, 'model-f32.gguf');
await cli(['convert', hf, '-o', f32, '--outtype', 'f32']);
const f32File = await loadGGUF(f32);
const ORACLE = llamaQuantizeAvailable();

/**
 * The other architectures (every preset on the 8-expert Qwen3-MoE, the mixes
 * that differ by architecture or expert count on the others): their own type rules (the
 * n_expert == 8 bumps of attn_v / attn_k / attn_output, ffn_*_exps counted by
 * layer name, 3-D expert tensors quantized expert by expert, MXFP4 on the
 * experts only, per-head q/k norms never quantized). Rows of 256 (K-quants
 * apply) and of 128 (they fall back).
 */
const ARCH_MODELS = [
  {
    name: 'qwen3moe, 8 experts',
    model: syntheticModel({ seed: 41, arch: 'qwen3moe', layers: 2, hidden: 256, heads: 4, kvHeads: 1, headDim: 64, ff: 512, experts: 8, expertFf: 64, vocab: 320 }),
    presets: PRESETS,
  },
  {
    name: 'mixtral, 8 experts',
    model: syntheticModel({ seed: 43, arch: 'mixtral', layers: 2, hidden: 256, heads: 4, kvHeads: 2, ff: 64, experts: 8, vocab: 320 }),
    presets: ['Q2_K', 'Q3_K_M', 'Q4_K_S', 'Q4_K_M', 'IQ4_XS', 'MXFP4_MOE'],
  },
  {
    name: 'qwen3',
    model: syntheticModel({ seed: 47, arch: 'qwen3', layers: 3, hidden: 256, heads: 4, kvHeads: 2, headDim: 64, ff: 384, vocab: 320, tied: true }),
    presets: ['Q3_K_M', 'Q4_K_M', 'Q6_K'],
  },
  {
    name: 'smollm3',
    model: syntheticModel({ seed: 53, arch: 'smollm3', layers: 4, hidden: 128, heads: 4, kvHeads: 1, ff: 256, vocab: 320 }),
    presets: ['Q2_K', 'Q4_K_M'],
  },
  {
    name: 'gemma3 (tied, trimmed embedding)',
    model: syntheticModel({ seed: 59, arch: 'gemma3', layers: 6, hidden: 256, heads: 4, kvHeads: 2, headDim: 64, ff: 256, vocab: 320, tokenizerVocab: 300 }),
    presets: ['Q3_K_M', 'Q4_K_M'],
  },
  {
    name: 'phi3 (fused attn_qkv counted as attn_v)',
    model: syntheticModel({ seed: 61, arch: 'phi3', layers: 3, hidden: 256, heads: 4, kvHeads: 4, ff: 256, vocab: 320 }),
    presets: ['Q3_K_M', 'Q4_K_M', 'Q5_K_M'],
  },
];
const archFiles = new Map<string, string>();
for (const [i, m] of ARCH_MODELS.entries()) {
  const d = join(dir, `arch${i}`);
  await writeSyntheticModel(d, m.model);
  const file = join(dir, `arch${i}-f32.gguf`);
  await cli(['convert', d, '-o', file, '--outtype', 'f32']);
  archFiles.set(m.name, file);
}
if (ORACLE) {
  await llamaQuantize(
    [...archFiles.values()].flatMap((file, i) =>
      ARCH_MODELS[i].presets.map((preset) => ({
        inp: file,
        out: join(dir, `ref-arch${i}-${preset}.gguf`),
        ftype: quantPreset(preset).ftype,
        params: { onlyCopy: preset === 'COPY' },
      })),
    ),
  );
}

function tagOf(c: Case): string {
  return `${c.preset}${(c.args ?? []).join('').replace(/[^\w]+/g, '_')}`;
}

// llama.cpp's files for every case, made in one go.
if (ORACLE) {
  await llamaQuantize(
    CASES.map((c) => ({
      inp: f32,
      out: join(dir, `ref-${tagOf(c)}.gguf`),
      ftype: quantPreset(c.preset).ftype,
      params: { ...c.params, onlyCopy: c.preset === 'COPY' },
    })),
  );
}

function caseName(c: Case): string {
  const args = c.args?.length ? ` ${c.args.join(' ')}` : '';
  return `${c.preset}${args}`;
}

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await close();
});

describe.skipIf(!ORACLE)('wgarray quantize = llama_model_quantize, tensor by tensor (needs python3 and the prebuilt libllama)', () => {
  for (const c of CASES) {
  test(caseName(c), async () => {
    const ours = join(dir, `ours-${tagOf(c)}.gguf`);
    const ref = join(dir, `ref-${tagOf(c)}.gguf`);
    await cli(['quantize', f32, ours, c.preset, ...(c.args ?? [])]);
    const a = await loadGGUF(ours);
    const b = await loadGGUF(ref);
    expect(a.tensorInfos.map((t) => t.name).sort()).toEqual(b.tensorInfos.map((t) => t.name).sort());
    const typesA = Object.fromEntries(a.tensorInfos.map((t) => [t.name, t.type.name]));
    const typesB = Object.fromEntries(b.tensorInfos.map((t) => [t.name, t.type.name]));
    expect(typesA).toEqual(typesB);
    for (const t of b.tensorInfos) {
      const [x, y] = [await a.readTensorBytes(t.name), await b.readTensorBytes(t.name)];
      expect(Buffer.compare(Buffer.from(x), Buffer.from(y)), `${t.name} (${t.type.name}) bytes`).toBe(0);
    }
    expect(a.metadata['general.file_type']).toBe(b.metadata['general.file_type']);
    expect(a.metadata['general.quantization_version']).toBe(2);
    expect(a.metadataTypes['general.file_type']).toBe('u32');
    // everything else passes through
    for (const k of Object.keys(b.metadata)) {
      if (k.startsWith('general.file_type') || k === 'general.quantization_version') continue;
      expect(a.metadataTypes[k], k).toBe(b.metadataTypes[k]);
    }
  }, 60_000);
  }
});

/** Asserts two GGUF files hold the same tensors, types and bytes, and the same general.file_type. */
async function expectSameTensors(ours: string, ref: string): Promise<void> {
  const a = await loadGGUF(ours);
  const b = await loadGGUF(ref);
  expect(a.tensorInfos.map((t) => [t.name, t.type.name, t.shape.join('x')]).sort()).toEqual(b.tensorInfos.map((t) => [t.name, t.type.name, t.shape.join('x')]).sort());
  for (const t of b.tensorInfos) {
    const [x, y] = [await a.readTensorBytes(t.name), await b.readTensorBytes(t.name)];
    expect(Buffer.compare(Buffer.from(x), Buffer.from(y)), `${t.name} (${t.type.name}) bytes`).toBe(0);
  }
  expect(a.metadata['general.file_type']).toBe(b.metadata['general.file_type']);
}

describe.skipIf(!ORACLE).each(ARCH_MODELS.map((m, i) => ({ ...m, i })))('$name: wgarray quantize = llama_model_quantize', ({ name, i, presets }) => {
  test.each(presets)('%s', async (preset) => {
    const ours = join(dir, `ours-arch${i}-${preset}.gguf`);
    await cli(['quantize', archFiles.get(name)!, ours, preset]);
    await expectSameTensors(ours, join(dir, `ref-arch${i}-${preset}.gguf`));
  }, 60_000);
});

describe('quantize(convert f32) = convert straight to the type', () => {
  for (const preset of ['Q8_0', 'Q4_K_M', 'Q6_K', 'Q4_0', 'IQ4_XS'])
  test(caseName({ preset }), async () => {
    const viaF32 = join(dir, `via-f32-${preset}.gguf`);
    const direct = join(dir, `direct-${preset}.gguf`);
    await cli(['quantize', f32, viaF32, preset]);
    await cli(['convert', hf, '-o', direct, '--outtype', preset]);
    const a = await loadGGUF(viaF32);
    const b = await loadGGUF(direct);
    expect(a.tensorInfos.map((t) => [t.name, t.type.name])).toEqual(b.tensorInfos.map((t) => [t.name, t.type.name]));
    for (const t of a.tensorInfos) {
      const [x, y] = [await a.readTensorBytes(t.name), await b.readTensorBytes(t.name)];
      expect(Buffer.compare(Buffer.from(x), Buffer.from(y)), t.name).toBe(0);
    }
  }, 60_000);
});
