// GGUF -> MLX-LM folder (`wgarray convert model.gguf --to mlx`): Q4_0 / Q4_1 / Q8_0
// GGUFs go to MLX and back to GGUF with the same tensors, byte for byte (and the same
// vocabulary); other types are quantized with MLX's affine rule, bit for bit what the
// independent model of MLX's CPU algorithm gives on the GGUF's values; shards past
// the size limit; the folder is complete or absent.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { f16BitsToF32, f32ToF16Bits, init, close, loadGGUF, loadSafetensors, planFromHF, runPlan, type Device } from '../src/index.js';
import { syntheticModel, writeSyntheticModel } from '../src/convert/synthetic.js';
import { permuteRows } from '../src/convert/architecture.js';
import { writeMlxFromGGUF } from '../src/convert/mlx/write.js';
import { dequantizeHost } from '../src/quant/host.js';
import { refAffineDequantize, refAffineQuantize, refMxfp4Value, refUnpack } from './helpers/mlx-reference.js';
import { runCliOk } from './helpers/run-cli.js';

let dir: string;
let device: Device;

const cli = (args: string[]) => runCliOk(args, { device });

beforeAll(async () => {
  device = await init();
  dir = mkdtempSync(join(tmpdir(), 'wgarray-mlx-export-'));
  await writeSyntheticModel(join(dir, 'hf'), syntheticModel({ seed: 3, layers: 2, ff: 256, vocab: 384 }));
  await cli(['convert', join(dir, 'hf'), '-o', join(dir, 'f32.gguf'), '--outtype', 'f32', '-q']);
}, 60_000);
afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await close();
});

describe('GGUF -> MLX -> GGUF keeps Q4_0, Q4_1 and Q8_0 tensors', () => {
  for (const type of ['Q4_0', 'Q4_1', 'Q8_0', 'MXFP4']) {
    test(type, async () => {
      const src = join(dir, `${type}.gguf`);
      await cli(['quantize', join(dir, 'f32.gguf'), src, type, '--pure', '-q']);
      const mlx = join(dir, `${type}-mlx`);
      const text = await cli(['convert', src, '--to', 'mlx', '-o', mlx, '-q']);
      expect(text).toMatch(/16 tensors mapped exactly, 0 requantized/);
      const config = JSON.parse(readFileSync(join(mlx, 'config.json'), 'utf8'));
      expect(config.quantization.mode).toBe('affine');
      expect(config.quantization['model.layers.0.self_attn.q_proj']).toEqual({ group_size: 32, bits: type === 'Q8_0' ? 8 : 4, ...(type === 'MXFP4' ? { mode: 'mxfp4' } : {}) });
      expect(existsSync(join(mlx, 'tokenizer.json')) && existsSync(join(mlx, 'tokenizer_config.json'))).toBe(true);
      // MLX's decoding of the folder (the independent reference) = ggml's decoding of the GGUF, bit for bit
      {
        const st = await loadSafetensors(join(mlx, 'model.safetensors'));
        const g = await loadGGUF(src);
        const m = 'model.layers.1.mlp.down_proj';
        const f16s = async (n: string) => Array.from(new Uint16Array((await st.readTensorBytes(n)).slice().buffer), f16BitsToF32);
        const wq = await st.readTensorBytes(`${m}.weight`);
        const e8m0 = type === 'MXFP4' ? await st.readTensorBytes(`${m}.scales`) : undefined;
        const mlxValues = e8m0
          ? Float32Array.from(refUnpack(wq, e8m0.length * 32, 4), (c, i) => refMxfp4Value(c, e8m0[i >> 5]))
          : refAffineDequantize(wq, await f16s(`${m}.scales`), await f16s(`${m}.biases`), 32, type === 'Q8_0' ? 8 : 4);
        const ggml = dequantizeHost(await g.readTensorBytes('blk.1.ffn_down.weight'), g.tensor('blk.1.ffn_down.weight').type, 'blk.1.ffn_down.weight');
        // Q4_0 decodes (q - 8) * d: -0 where d < 0 and q = 8, while MLX's d * q - 8d gives +0; every other value is bit for bit
        const noNegZero = (a: Float32Array) => Float32Array.from(a, (v) => (v === 0 ? 0 : v));
        const [x, y] = type === 'Q4_0' ? [noNegZero(mlxValues), noNegZero(ggml)] : [mlxValues, ggml];
        expect(Buffer.from(x.buffer).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength))).toBe(true);
      }
      const back = join(dir, `${type}-back.gguf`);
      await runPlan(await planFromHF(mlx, { device }), back, { device });
      const a = await loadGGUF(src);
      const b = await loadGGUF(back);
      expect(b.tensorInfos.map((t) => t.name).sort()).toEqual(a.tensorInfos.map((t) => t.name).sort());
      for (const t of a.tensorInfos) {
        expect(b.tensor(t.name).type.name, t.name).toBe(t.type.name);
        expect(Buffer.from(await b.readTensorBytes(t.name)).equals(Buffer.from(await a.readTensorBytes(t.name))), t.name).toBe(true);
      }
      for (const k of ['tokenizer.ggml.tokens', 'tokenizer.ggml.merges', 'tokenizer.ggml.pre', 'tokenizer.ggml.bos_token_id', 'llama.attention.head_count_kv', 'llama.rope.freq_base']) {
        expect(b.metadata[k], k).toEqual(a.metadata[k]);
      }
      expect(Array.from(b.metadata['tokenizer.ggml.token_type'] as Int32Array)).toEqual(Array.from(a.metadata['tokenizer.ggml.token_type'] as Int32Array));
    }, 60_000);
  }
});

describe('other types are quantized with MLX affine rule', () => {
  test('a Q6_K GGUF to 3-bit group 32: bit for bit the MLX CPU algorithm on the decoded (float16) values, rows back in Hugging Face order', async () => {
    const src = join(dir, 'q6k.gguf');
    await cli(['quantize', join(dir, 'f32.gguf'), src, 'Q6_K', '--pure', '-q']);
    const mlx = join(dir, 'q6k-mlx');
    const text = await cli(['convert', src, '--to', 'mlx', '-o', mlx, '--q-bits', '3', '--q-group-size', '32']);
    expect(text).toMatch(/model\.layers\.0\.self_attn\.q_proj\.weight\s+q6_K\s+3-bit g32 requantized, RMSE/);
    const g = await loadGGUF(src);
    const st = await loadSafetensors(join(mlx, 'model.safetensors'));
    for (const [gguf, hf, heads] of [['blk.0.attn_q.weight', 'model.layers.0.self_attn.q_proj', 8], ['blk.1.ffn_down.weight', 'model.layers.1.mlp.down_proj', 0]] as const) {
      const info = g.tensor(gguf);
      let x = dequantizeHost(await g.readTensorBytes(gguf), info.type, gguf);
      if (heads) {
        const perm = permuteRows(info.shape[0], heads);
        const cols = info.shape[1];
        const hfRows = new Float32Array(x.length);
        for (let j = 0; j < perm.length; j++) hfRows.set(x.subarray(j * cols, (j + 1) * cols), perm[j] * cols);
        x = hfRows;
      }
      const half = Float32Array.from(x, (v) => f16BitsToF32(f32ToF16Bits(v)));
      const ref = refAffineQuantize(half, 32, 3);
      expect(Buffer.from(await st.readTensorBytes(`${hf}.weight`)).equals(Buffer.from(ref.bytes)), hf).toBe(true);
      expect(st.tensor(`${hf}.scales`).dtype).toBe('float16');
      const scales = new Uint16Array((await st.readTensorBytes(`${hf}.scales`)).slice().buffer);
      expect(Array.from(scales)).toEqual(ref.scales.map(f32ToF16Bits));
    }
    // the CPU path writes the same bytes
    const cpu = join(dir, 'q6k-mlx-cpu');
    await writeMlxFromGGUF(src, cpu, { bits: 3, groupSize: 32 });
    expect(readFileSync(join(cpu, 'model.safetensors')).equals(readFileSync(join(mlx, 'model.safetensors')))).toBe(true);
  }, 60_000);

  test('shards past the size limit, readable back; an existing output folder is refused', async () => {
    const out = join(dir, 'sharded');
    const res = await writeMlxFromGGUF(join(dir, 'f32.gguf'), out, { device, maxShardBytes: 200_000 });
    expect(res.files.filter((f) => /model-\d+-of-\d+\.safetensors$/.test(f)).length).toBeGreaterThan(1);
    expect(existsSync(join(out, 'model.safetensors.index.json'))).toBe(true);
    const plan = await planFromHF(out, { device });
    expect(plan.tensors.length).toBeGreaterThan(10);
    await expect(writeMlxFromGGUF(join(dir, 'f32.gguf'), out, { device })).rejects.toThrow(/output folder exists/);
  }, 60_000);
});

describe('a SentencePiece (llama) vocabulary', () => {
  test('is written as tokenizer.model and reads back to the same tokenizer.ggml keys and tensors', async () => {
    const hf = join(dir, 'hf-spm');
    await writeSyntheticModel(hf, syntheticModel({ seed: 13, layers: 1, ff: 256, tokenizer: 'spm' }));
    const src = join(dir, 'spm-q8.gguf');
    await cli(['convert', hf, '-o', src, '--outtype', 'q8_0', '-q']);
    const mlx = join(dir, 'spm-mlx');
    await cli(['convert', src, '--to', 'mlx', '-o', mlx, '-q']);
    expect(existsSync(join(mlx, 'tokenizer.model'))).toBe(true);
    const back = join(dir, 'spm-back.gguf');
    await runPlan(await planFromHF(mlx, { device }), back, { device });
    const a = await loadGGUF(src);
    const b = await loadGGUF(back);
    for (const k of Object.keys(a.metadata).filter((k) => k.startsWith('tokenizer.'))) {
      const [x, y] = [a.metadata[k], b.metadata[k]];
      expect(ArrayBuffer.isView(x) ? Array.from(x as Float32Array) : x, k).toEqual(ArrayBuffer.isView(y) ? Array.from(y as Float32Array) : y);
    }
    for (const t of a.tensorInfos) expect(Buffer.from(await b.readTensorBytes(t.name)).equals(Buffer.from(await a.readTensorBytes(t.name))), t.name).toBe(true);
  }, 60_000);
});

describe('a mixture of experts', () => {
  test('qwen3moe: the stacked ffn_*_exps tensors are written as MLX-LM switch_mlp tensors and read back to the same GGUF tensors', async () => {
    const hf = join(dir, 'moe-hf');
    await writeSyntheticModel(hf, syntheticModel({ seed: 5, arch: 'qwen3moe', layers: 2, hidden: 64, heads: 4, kvHeads: 2, ff: 128, experts: 4, expertFf: 64 }));
    const src = join(dir, 'moe-f16.gguf');
    await cli(['convert', hf, '-o', src, '--outtype', 'f16', '-q']);
    const mlx = join(dir, 'moe-mlx');
    await writeMlxFromGGUF(src, mlx, { device });
    const config = JSON.parse(readFileSync(join(mlx, 'config.json'), 'utf8'));
    expect([config.architectures[0], config.model_type, config.num_experts, config.num_experts_per_tok, config.moe_intermediate_size]).toEqual(['Qwen3MoeForCausalLM', 'qwen3_moe', 4, 2, 64]);
    const st = await loadSafetensors(join(mlx, 'model.safetensors'));
    expect(st.tensor('model.layers.1.mlp.switch_mlp.down_proj.weight').shape).toEqual([4, 64, 64]);
    const back = join(dir, 'moe-back.gguf');
    await runPlan(await planFromHF(mlx, { device }), back, { device });
    const a = await loadGGUF(src);
    const b = await loadGGUF(back);
    for (const name of ['blk.0.ffn_gate_exps.weight', 'blk.1.ffn_up_exps.weight', 'blk.1.ffn_down_exps.weight']) {
      expect(b.tensor(name).type.name).toBe('f16');
      expect(Buffer.compare(await a.readTensorBytes(name), await b.readTensorBytes(name)), name).toBe(0);
    }
  }, 60_000);
});
