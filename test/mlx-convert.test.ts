// MLX-LM quantized folders -> GGUF (`wgarray convert MLX_DIR`): exact repacks
// checked element by element, bit for bit, against an independent decoding of
// MLX's `scale * q + bias` (test/helpers/mlx-reference.ts) and of ggml's blocks;
// the tensors that cannot be repacked are requantized and reported so; bad
// folders name the module and both shapes; and llama.cpp runs the GGUF made from
// a 4-bit MLX model, predicting what the float64 reference forward pass predicts
// on MLX's dequantized weights.
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { bf16BitsToF32, close, f32ToBf16Bits, f16BitsToF32, init, loadGGUF, loadSafetensors, planFromHF, runPlan, type Device, type RunResult } from '../src/index.js';
import { permuteRows } from '../src/convert/architecture.js';
import { dequantizeHost } from '../src/quant/host.js';
import { encodeBpe } from '../src/convert/bpe.js';
import { syntheticModel, writeSyntheticModel, type SyntheticModel, type SyntheticTensor } from '../src/convert/synthetic.js';
import { argmax, margin, referenceGreedy, referenceLogits } from './helpers/hf-reference.js';
import { runLlama } from './helpers/llama.js';
import { writeMlxModel } from './helpers/mlx-model.js';
import { refAffineDequantize, refGgmlDequantize, refMxfp4Value, refUnpack } from './helpers/mlx-reference.js';

let dir: string;
let device: Device;

beforeAll(async () => {
  device = await init();
  dir = mkdtempSync(join(tmpdir(), 'wgarray-mlx-convert-'));
});
afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await close();
});

/** A copy of tensor `name` of `model` with its values changed by `f(row, values of the row)`. */
function edit(model: SyntheticModel, name: string, f: (row: number, x: Float32Array) => void): SyntheticModel {
  const tensors = model.tensors.map((t): SyntheticTensor => {
    if (t.name !== name) return t;
    const v = t.values().slice();
    const cols = t.shape[1];
    for (let r = 0; r < t.shape[0]; r++) f(r, v.subarray(r * cols, (r + 1) * cols));
    // kept in the model's bfloat16, so MLX's scales are bfloat16 too
    const bits = Uint16Array.from(v, f32ToBf16Bits);
    const rounded = Float32Array.from(bits, bf16BitsToF32);
    return { ...t, dtype: 'bfloat16', values: () => rounded, bytes: () => new Uint8Array(bits.buffer) };
  });
  return { ...model, tensors };
}

const toFloats = (bytes: Uint8Array, dtype: string): number[] => {
  const c = bytes.slice();
  if (dtype === 'float32') return Array.from(new Float32Array(c.buffer));
  const h = new Uint16Array(c.buffer);
  return Array.from(h, dtype === 'float16' ? f16BitsToF32 : bf16BitsToF32);
};

/** MLX's decoded values of module `m` of the folder, rows permuted by `perm` (what the GGUF tensor must hold). */
async function mlxValues(folder: string, m: string, bits: number, groupSize: number, mode: string, perm?: Int32Array): Promise<Float32Array> {
  const st = await loadSafetensors(join(folder, 'model.safetensors'));
  const wq = await st.readTensorBytes(`${m}.weight`);
  const info = st.tensor(`${m}.scales`);
  let x: Float32Array;
  if (mode === 'mxfp4') {
    const s = await st.readTensorBytes(`${m}.scales`);
    const codes = refUnpack(wq, s.length * 32, 4);
    x = Float32Array.from(codes, (c, i) => refMxfp4Value(c, s[i >> 5]));
  } else {
    const scales = toFloats(await st.readTensorBytes(`${m}.scales`), info.dtype);
    const biases = toFloats(await st.readTensorBytes(`${m}.biases`), info.dtype);
    x = refAffineDequantize(wq, scales, biases, groupSize, bits);
  }
  if (!perm) return x;
  const cols = x.length / perm.length;
  const out = new Float32Array(x.length);
  for (let j = 0; j < perm.length; j++) out.set(x.subarray(perm[j] * cols, (perm[j] + 1) * cols), j * cols);
  return out;
}

function sameBits(a: Float32Array, b: Float32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

async function convert(folder: string, out: string, outtype = 'auto'): Promise<RunResult> {
  const plan = await planFromHF(folder, { device, outtype });
  return runPlan(plan, out, { device });
}

const HF_TO_GGUF: Record<string, string> = {
  'model.embed_tokens': 'token_embd',
  'lm_head': 'output',
  'model.layers.0.self_attn.q_proj': 'blk.0.attn_q',
  'model.layers.0.self_attn.k_proj': 'blk.0.attn_k',
  'model.layers.0.self_attn.v_proj': 'blk.0.attn_v',
  'model.layers.0.self_attn.o_proj': 'blk.0.attn_output',
  'model.layers.0.mlp.gate_proj': 'blk.0.ffn_gate',
  'model.layers.0.mlp.up_proj': 'blk.0.ffn_up',
  'model.layers.0.mlp.down_proj': 'blk.0.ffn_down',
};

describe('exact repacks', () => {
  const base = syntheticModel({ seed: 21, layers: 1, ff: 256, vocab: 320 });
  // zero-range rows (every group constant), rows whose larger end is negative / positive (both signs of the scale)
  const special = edit(base, 'model.layers.0.mlp.up_proj.weight', (r, x) => {
    if (r % 4 === 0) x.fill(r % 8 === 0 ? 0.03125 : -0.0625);
    if (r % 4 === 1) x.forEach((v, i) => (x[i] = Math.abs(v) - 0.05));
    if (r % 4 === 2) x.forEach((v, i) => (x[i] = 0.05 - Math.abs(v)));
  });
  const cases = [
    { name: 'affine 4-bit group 32 -> Q4_1', bits: 4, groupSize: 32, mode: 'affine', type: 'q4_1' as const },
    { name: 'affine 4-bit group 64 -> Q4_1', bits: 4, groupSize: 64, mode: 'affine', type: 'q4_1' as const },
    { name: 'affine 4-bit group 128 -> Q4_1', bits: 4, groupSize: 128, mode: 'affine', type: 'q4_1' as const },
    { name: 'affine 5-bit group 64 -> Q5_1', bits: 5, groupSize: 64, mode: 'affine', type: 'q5_1' as const },
    { name: 'mxfp4 -> MXFP4', bits: 4, groupSize: 32, mode: 'mxfp4', type: 'mxfp4' as const },
    { name: 'qwen2 (tied embeddings, q/k/v biases): affine 4-bit group 64 -> Q4_1', bits: 4, groupSize: 64, mode: 'affine', type: 'q4_1' as const, qwen2: true },
  ];
  const qwen2 = syntheticModel({ seed: 22, arch: 'qwen2', layers: 1, ff: 256, vocab: 320, heads: 4, kvHeads: 2, tied: true });
  for (const c of cases) {
    test(c.name, async () => {
      const folder = join(dir, `exact-${c.bits}-${c.groupSize}-${c.mode}${c.qwen2 ? '-qwen2' : ''}`);
      const model = c.qwen2 ? qwen2 : special;
      await writeMlxModel(folder, model, { bits: c.bits, groupSize: c.groupSize, mode: c.mode as 'affine' });
      const out = `${folder}.gguf`;
      const res = await convert(folder, out);
      const g = await loadGGUF(out);
      const cfg = model.config as Record<string, number | string>;
      for (const [m, ggufName] of Object.entries(HF_TO_GGUF)) {
        const name = `${ggufName}.weight`;
        if (c.qwen2 && ggufName === 'output') {
          expect(g.tensorInfos.some((t) => t.name === name), 'tied: no output.weight').toBe(false);
          continue;
        }
        const rep = res.tensors.find((t) => t.name === name)!;
        expect(rep.to, name).toBe(c.type);
        expect(rep.note, name).toMatch(/repacked exactly/);
        expect(rep.lossy, name).toBe(false);
        // llama permutes q/k rows for llama.cpp's rope; qwen2 does not
        const heads = c.qwen2 ? 0 : ggufName === 'blk.0.attn_q' ? (cfg.num_attention_heads as number) : ggufName === 'blk.0.attn_k' ? (cfg.num_key_value_heads as number) : 0;
        const info = g.tensor(name);
        const perm = heads ? permuteRows(info.shape[0], heads) : undefined;
        const want = await mlxValues(folder, m, c.bits, c.groupSize, c.mode, perm);
        const blocks = await g.readTensorBytes(name);
        const got = refGgmlDequantize(c.type, blocks, f16BitsToF32);
        // the test's ggml decoder agrees with wgarray's ggml-golden-tested one
        expect(sameBits(got, dequantizeHost(blocks, info.type, name)), `${name}: test decoder vs dequantizeHost`).toBe(-1);
        // MXFP4: MLX decodes code 8 as -0, ggml as +0 (kvalues_mxfp4 holds int 0); every other value bit for bit
        const zeroSignFree = (a: Float32Array) => (c.type === 'mxfp4' ? Float32Array.from(a, (v) => (v === 0 ? 0 : v)) : a);
        expect(sameBits(zeroSignFree(got), zeroSignFree(want)), `${name}: first element that differs`).toBe(-1);
      }
      if (c.groupSize === 64) {
        // the CPU path (no GPU) repacks the same bytes
        const cpuOut = `${folder}-cpu.gguf`;
        await runPlan(await planFromHF(folder, {}), cpuOut, {});
        const h = await loadGGUF(cpuOut);
        for (const t of g.tensorInfos) expect(Buffer.from(await h.readTensorBytes(t.name)).equals(Buffer.from(await g.readTensorBytes(t.name))), t.name).toBe(true);
      }
    }, 60_000);
  }

  test('bfloat16 scales beyond float16 (range and precision) and 3/8-bit modules are requantized, with the RMSE against MLX values', async () => {
    const m1 = edit(base, 'model.layers.0.mlp.down_proj.weight', (_r, x) => x.forEach((v, i) => (x[i] = v * 1e7))); // biases past 65504
    const m2 = edit(m1, 'model.layers.0.mlp.gate_proj.weight', (_r, x) => x.forEach((v, i) => (x[i] = v * 1e-4))); // scales below float16's normals
    const folder = join(dir, 'inexact');
    await writeMlxModel(folder, m2, {
      bits: 4,
      groupSize: 64,
      overrides: { 'model.layers.0.self_attn.v_proj': { bits: 3, group_size: 64 }, 'model.layers.0.self_attn.o_proj': { bits: 8, group_size: 32 } },
    });
    const res = await convert(folder, `${folder}.gguf`);
    const by = new Map(res.tensors.map((t) => [t.name, t]));
    for (const n of ['blk.0.ffn_down.weight', 'blk.0.ffn_gate.weight', 'blk.0.attn_v.weight', 'blk.0.attn_output.weight']) {
      const t = by.get(n)!;
      expect(t.note, n).toMatch(/dequantized, requantized/);
      expect(t.from, n).toBe('f32');
      expect(t.to, n).toBe('q8_0');
      expect(t.lossy, n).toBe(true);
      expect(t.rmse, n).toBeGreaterThan(0);
    }
    expect(by.get('blk.0.ffn_down.weight')!.note).toMatch(/not exactly a float16/);
    expect(by.get('blk.0.attn_v.weight')!.note).toMatch(/3-bit has no ggml block/);
    // the in-range bfloat16 scales of the other modules repack exactly
    expect(by.get('blk.0.ffn_up.weight')!.to).toBe('q4_1');
    expect(by.get('blk.0.attn_q.weight')!.note).toMatch(/repacked exactly/);
    // the requantized tensor's RMSE is measured against MLX's values: recompute it from the file
    const g = await loadGGUF(`${folder}.gguf`);
    const want = await mlxValues(folder, 'model.layers.0.mlp.gate_proj', 4, 64, 'affine');
    const deq = await (await import('../src/index.js')).dequantize((await g.arrays['blk.0.ffn_gate.weight']()) as never);
    const got = (await deq.data()) as Float32Array;
    let se = 0;
    for (let i = 0; i < got.length; i++) se += (got[i] - want[i]) ** 2;
    expect(by.get('blk.0.ffn_gate.weight')!.rmse).toBeCloseTo(Math.sqrt(se / got.length), 10);
    deq.dispose();

    // --outtype f32 decodes every module: the GGUF holds MLX's values, bit for bit
    const f32Res = await convert(folder, `${folder}-f32.gguf`, 'f32');
    const up = f32Res.tensors.find((t) => t.name === 'blk.0.ffn_up.weight')!;
    expect(up.to).toBe('f32');
    expect(up.note).toBe('MLX affine 4-bit g64: dequantized (--outtype f32)');
    const h = await loadGGUF(`${folder}-f32.gguf`);
    const upValues = await mlxValues(folder, 'model.layers.0.mlp.up_proj', 4, 64, 'affine');
    expect(sameBits(new Float32Array((await h.readTensorBytes('blk.0.ffn_up.weight')).slice().buffer), upValues)).toBe(-1);
  }, 60_000);
});

describe('bad MLX folders name the module and both shapes', () => {
  let folder: string;
  beforeAll(async () => {
    folder = join(dir, 'bad');
    await writeMlxModel(folder, syntheticModel({ seed: 5, layers: 1, ff: 256, vocab: 320 }), { bits: 4, groupSize: 64 });
  });
  const withConfig = async (f: (q: Record<string, unknown>) => void) => {
    const path = join(folder, 'config.json');
    const original = await readFile(path, 'utf8');
    const c = JSON.parse(original);
    f(c.quantization);
    c.quantization_config = c.quantization;
    await writeFile(path, JSON.stringify(c));
    try {
      await planFromHF(folder, { device });
      return undefined;
    } catch (e) {
      return e as Error;
    } finally {
      await writeFile(path, original);
    }
  };
  test('wrong packed width for the stated bits', async () => {
    const e = await withConfig((q) => (q.bits = 8));
    expect(e?.message).toMatch(/module model\.embed_tokens: packed weight of shape \[320, 32\] does not match scales of shape \[320, 4\] for affine quantization with 8 bits and group size 64/);
  });
  test('a per-module override that does not fit', async () => {
    const e = await withConfig((q) => (q['model.layers.0.mlp.down_proj'] = { bits: 4, group_size: 32 }));
    expect(e?.message).toMatch(/module model\.layers\.0\.mlp\.down_proj: packed weight of shape \[256, 32\] does not match scales of shape \[256, 4\]/);
  });
  test('an unknown mode', async () => {
    const e = await withConfig((q) => (q.mode = 'nvfp8'));
    expect(e?.message).toMatch(/unknown quantization mode 'nvfp8'/);
  });
  test('missing biases', async () => {
    const other = join(dir, 'bad-nobias');
    const model = syntheticModel({ seed: 5, layers: 1, ff: 256, vocab: 320 });
    await writeMlxModel(other, model, { bits: 4, groupSize: 64 });
    const st = await loadSafetensors(join(other, 'model.safetensors'));
    const { saveSafetensors } = await import('../src/index.js');
    const keep = await Promise.all(
      st.tensorInfos.filter((t) => t.name !== 'model.layers.0.mlp.up_proj.biases').map(async (t) => [t.name, { shape: t.shape, dtype: t.dtype, data: await st.readTensorBytes(t.name) }] as const),
    );
    await rm(join(other, 'model.safetensors'));
    await saveSafetensors(join(other, 'model.safetensors'), keep.map(([n, t]) => [n, { shape: t.shape, dtype: t.dtype, produce: () => t.data }]) as never);
    await expect(planFromHF(other, { device })).rejects.toThrow(
      /module model\.layers\.0\.mlp\.up_proj: packed weight of shape \[256, 32\] and scales of shape \[256, 4\] but no model\.layers\.0\.mlp\.up_proj\.biases/,
    );
  });
});

describe('llama.cpp runs the GGUF of an MLX 4-bit model', () => {
  test('and predicts what the float64 reference predicts on MLX dequantized weights', async () => {
    const model = syntheticModel({ seed: 7, layers: 2, ff: 512 });
    const folder = join(dir, 'mlx4');
    const dequantized = await writeMlxModel(folder, model, { bits: 4, groupSize: 64 });
    const out = join(dir, 'mlx4.gguf');
    const res = await convert(folder, out);
    expect(res.tensors.filter((t) => t.shape.length === 2).every((t) => t.to === 'q4_1' && !t.lossy)).toBe(true);
    expect((await loadGGUF(out)).metadata['general.file_type']).toBe(3); // LLAMA_FTYPE_MOSTLY_Q4_1
    const bos = model.config.bos_token_id as number;
    const prompt = [bos, ...encodeBpe(model.bpe, 'The quick brown fox jumps over the lazy dog. What is the capital of France?')];
    const forced = [...prompt, ...referenceGreedy(dequantized, prompt, 8)];
    const [run] = await runLlama([out], { prompt: 'The quick brown fox jumps over the lazy dog. What is the capital of France?', nTokens: 8, forced });
    expect(run.promptTokens).toEqual(prompt);
    const logits = referenceLogits(dequantized, forced);
    // llama.cpp multiplies Q4_1 weights by activations rounded to Q8_1: positions whose top-2 margin is clear must agree
    let judged = 0;
    let agree = 0;
    for (let i = 0; i < forced.length; i++) {
      if (margin(logits[i]) < 0.5) continue;
      judged++;
      if (run.top1[i] === argmax(logits[i])) agree++;
    }
    expect(judged).toBeGreaterThan(forced.length * 0.5);
    expect(agree).toBe(judged);
  }, 180_000);
});

describe('stacked switch_mlp experts (3-D packed modules)', () => {
  test('are read with their batch dimension and repack exactly', async () => {
    const { array, quantize, saveSafetensors } = await import('../src/index.js');
    const { mlxModules, readMlxQuantization } = await import('../src/convert/mlx/read.js');
    const { seededNormals } = await import('../src/runtime/host-random.js');
    const x = seededNormals(4 * 32 * 128, 9, 0.02);
    const w = array(Uint16Array.from(x, f32ToBf16Bits), { shape: [4, 32, 128], dtype: 'bfloat16' });
    const q = quantize(w, { mode: 'affine', groupSize: 64, bits: 4 });
    const name = 'model.layers.0.mlp.switch_mlp.gate_proj';
    const path = join(dir, 'experts.safetensors');
    await saveSafetensors(path, { [`${name}.weight`]: q.wq, [`${name}.scales`]: q.scales, [`${name}.biases`]: q.biases! });
    const st = await loadSafetensors(path);
    const mods = mlxModules(st, readMlxQuantization({ quantization: { group_size: 64, bits: 4 } }, 'config.json')!, device);
    const m = mods.byWeight.get(`${name}.weight`)!;
    expect(m.shape).toEqual([4, 32, 128]);
    expect([...mods.companions].sort()).toEqual([`${name}.biases`, `${name}.scales`]);
    await m.decide();
    expect(m.exact?.name).toBe('q4_1');
    const blocks = await m.source({ repack: true }).read();
    const scales = toFloats(await st.readTensorBytes(`${name}.scales`), 'bfloat16');
    const biases = toFloats(await st.readTensorBytes(`${name}.biases`), 'bfloat16');
    const want = refAffineDequantize(await st.readTensorBytes(`${name}.weight`), scales, biases, 64, 4);
    expect(sameBits(refGgmlDequantize('q4_1', blocks, f16BitsToF32), want)).toBe(-1);
    for (const a of [w, q.wq, q.scales, q.biases!]) a.dispose();
  });
  /** `model` as mlx_lm's sanitize leaves a MoE: each layer's experts stacked into one 3-D `<moe>.switch_mlp.<gate|up|down>_proj.weight`. */
  function switchMlp(model: SyntheticModel): SyntheticModel {
    const PROJ: Record<string, string> = { gate_proj: 'gate_proj', up_proj: 'up_proj', down_proj: 'down_proj', w1: 'gate_proj', w3: 'up_proj', w2: 'down_proj' };
    const stacks = new Map<string, SyntheticTensor[]>();
    const tensors: SyntheticTensor[] = [];
    for (const t of model.tensors) {
      const m = /^(.*)\.experts\.(\d+)\.(\w+)\.weight$/.exec(t.name);
      if (!m) {
        tensors.push(t);
        continue;
      }
      const name = `${m[1]}.switch_mlp.${PROJ[m[3]]}.weight`;
      if (!stacks.has(name)) stacks.set(name, []);
      stacks.get(name)![Number(m[2])] = t;
    }
    for (const [name, list] of stacks) {
      const concat = <T extends Uint8Array | Float32Array>(parts: T[], make: (n: number) => T): T => {
        const out = make(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const p of parts) (out.set(p, at), (at += p.length));
        return out;
      };
      tensors.push({
        name,
        shape: [list.length, ...list[0].shape],
        dtype: list[0].dtype,
        values: () => concat(list.map((t) => t.values()), (n) => new Float32Array(n)),
        bytes: () => concat(list.map((t) => t.bytes()), (n) => new Uint8Array(n)),
      });
    }
    return { ...model, tensors };
  }

  test.each([
    ['qwen3moe', 'mlp'],
    ['mixtral', 'block_sparse_moe'],
  ] as const)('%s: MLX-LM float switch_mlp tensors map through the table to the same GGUF as per-expert tensors', async (arch, moe) => {
    const m = syntheticModel({ seed: 4, arch, layers: 2, hidden: 64, heads: 4, kvHeads: 2, ff: 64, experts: 4, expertFf: 64 });
    const perExpert = join(dir, `${arch}-experts`);
    const stacked = join(dir, `${arch}-switch`);
    await writeSyntheticModel(perExpert, m);
    const sw = switchMlp(m);
    expect(sw.tensors.some((t) => t.name === `model.layers.1.${moe}.switch_mlp.down_proj.weight`)).toBe(true);
    await writeSyntheticModel(stacked, sw);
    await convert(perExpert, join(dir, `${arch}-experts.gguf`), 'f16');
    await convert(stacked, join(dir, `${arch}-switch.gguf`), 'f16');
    const a = await loadGGUF(join(dir, `${arch}-experts.gguf`));
    const b = await loadGGUF(join(dir, `${arch}-switch.gguf`));
    expect(b.tensorInfos.map((t) => [t.name, t.type.name, t.shape])).toEqual(a.tensorInfos.map((t) => [t.name, t.type.name, t.shape]));
    for (const t of a.tensorInfos) expect(Buffer.compare(await a.readTensorBytes(t.name), await b.readTensorBytes(t.name)), t.name).toBe(0);
  });

  test('qwen3moe: MLX 4-bit switch_mlp experts repack exactly into the stacked Q4_1 ffn_*_exps', async () => {
    const { array, quantize, saveSafetensors } = await import('../src/index.js');
    const m = switchMlp(syntheticModel({ seed: 6, arch: 'qwen3moe', layers: 1, hidden: 64, heads: 4, kvHeads: 2, ff: 128, experts: 4, expertFf: 64 }));
    const folder = join(dir, 'qwen3moe-mlx4');
    const quantization = { group_size: 64, bits: 4 };
    await writeSyntheticModel(folder, { ...m, config: { ...m.config, quantization, quantization_config: quantization }, tensors: [] });
    const arrays: Record<string, import('../src/index.js').WgArray> = {};
    for (const t of m.tensors) {
      const raw = t.bytes().slice();
      const w = t.dtype === 'float32' ? array(new Float32Array(raw.buffer), { shape: t.shape }) : array(new Uint16Array(raw.buffer), { shape: t.shape, dtype: t.dtype });
      if (!t.name.includes('.switch_mlp.')) {
        arrays[t.name] = w;
        continue;
      }
      const q = quantize(w, { mode: 'affine', groupSize: 64, bits: 4 });
      const module = t.name.replace(/\.weight$/, '');
      Object.assign(arrays, { [`${module}.weight`]: q.wq, [`${module}.scales`]: q.scales, [`${module}.biases`]: q.biases! });
      w.dispose();
    }
    await saveSafetensors(join(folder, 'model.safetensors'), arrays);
    for (const a of Object.values(arrays)) a.dispose();
    const out = join(dir, 'qwen3moe-mlx4.gguf');
    await convert(folder, out);
    const g = await loadGGUF(out);
    for (const [proj, exps] of [['gate_proj', 'ffn_gate_exps'], ['up_proj', 'ffn_up_exps'], ['down_proj', 'ffn_down_exps']]) {
      const t = g.tensor(`blk.0.${exps}.weight`);
      expect(t.type.name).toBe('q4_1');
      expect(t.shape).toEqual([4, 64, 64]);
      const want = await mlxValues(folder, `model.layers.0.mlp.switch_mlp.${proj}`, 4, 64, 'affine');
      expect(sameBits(refGgmlDequantize('q4_1', await g.readTensorBytes(t.name), f16BitsToF32), want)).toBe(-1);
    }
  });
});
