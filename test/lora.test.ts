// LoRA fusion against a float64 CPU computation on a small model, for PEFT
// and MLX-LM adapter folders written here with the io layer's saveSafetensors:
// linear, embedding, fan-in-fan-out, stacked-expert and whole-tensor
// (modules_to_save / full fine-tune) entries, each scale convention (alpha/r,
// rsLoRA, rank/alpha patterns, MLX scale, MLX's older alpha), and adapters
// that do not fit their base.
//
// Bound per element, as in test/matmul.test.ts, with u the unit roundoff of
// the weight's dtype: |got - exact| <= ((r + 2) * 2^-24 + u) * (|W| + |scale| * sum_k |l_ik r_kj|).
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ArgumentError, array, DTypeError, FileError, FormatError, ShapeError, type WgArray } from '../src/index.js';
import { dir, setUpDeviceAndTempDir } from './helpers/files.js';
import { runCli } from '../src/cli/cli.js';
import { encodeBpe } from '../src/convert/bpe.js';
import { syntheticModel, writeSyntheticModel, type SyntheticModel } from '../src/convert/synthetic.js';
import { loadGGUF } from '../src/io/gguf/reader.js';
import { saveSafetensors } from '../src/io/safetensors/writer.js';
import { fuseLora, loadLoraAdapter } from '../src/lora/index.js';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../src/runtime/half.js';
import { argmax, margin, referenceGreedy, referenceLogits } from './helpers/hf-reference.js';
import { runLlama } from './helpers/llama.js';
import { sink } from './helpers/text-sink.js';

type FloatDType = 'float32' | 'float16' | 'bfloat16';
const UNIT: Record<FloatDType, number> = { float32: 2 ** -24, float16: 2 ** -11, bfloat16: 2 ** -8 };

setUpDeviceAndTempDir('wgarray-lora-');

/** A host tensor: its exact values (after rounding to dtype) and the bytes a file holds. */
interface HostT {
  shape: number[];
  dtype: FloatDType;
  exact: Float64Array;
  data: Float32Array | Uint16Array;
}

let seed = 1;
function tensor(shape: number[], dtype: FloatDType, amplitude = 1): HostT {
  const n = shape.reduce((x, y) => x * y, 1);
  const exact = new Float64Array(n);
  const data = dtype === 'float32' ? new Float32Array(n) : new Uint16Array(n);
  let s = (seed++ * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const x = amplitude * (s / 2 ** 31 - 1);
    if (dtype === 'float32') data[i] = x;
    else if (dtype === 'float16') data[i] = f32ToF16Bits(x);
    else data[i] = f32ToBf16Bits(x);
    exact[i] = dtype === 'float32' ? data[i] : dtype === 'float16' ? f16BitsToF32(data[i]) : bf16BitsToF32(data[i]);
  }
  return { shape, dtype, exact, data };
}

/** A 2-D (or stacked 3-D) matrix view of exact values for the reference, optionally transposed. */
interface Mat {
  batch: number;
  rows: number;
  cols: number;
  at(e: number, i: number, j: number): number;
}
function mat(t: HostT, transpose = false): Mat {
  const [batch, r, c] = t.shape.length === 3 ? t.shape : [1, ...t.shape];
  return transpose
    ? { batch, rows: c, cols: r, at: (e, i, j) => t.exact[e * r * c + j * c + i] }
    : { batch, rows: r, cols: c, at: (e, i, j) => t.exact[e * r * c + i * c + j] };
}

/** exact W + scale * L @ R and its error-bound magnitude. */
function fusedReference(w: HostT, l: Mat, r: Mat, scale: number): { value: Float64Array; mag: Float64Array } {
  const value = new Float64Array(w.exact.length);
  const mag = new Float64Array(w.exact.length);
  let o = 0;
  for (let e = 0; e < l.batch; e++) {
    for (let i = 0; i < l.rows; i++) {
      for (let j = 0; j < r.cols; j++, o++) {
        let sum = 0;
        let abs = 0;
        for (let k = 0; k < l.cols; k++) {
          const p = l.at(e, i, k) * r.at(e, k, j);
          sum += p;
          abs += Math.abs(p);
        }
        value[o] = w.exact[o] + scale * sum;
        mag[o] = Math.abs(w.exact[o]) + Math.abs(scale) * abs;
      }
    }
  }
  expect(o, 'reference product covers W').toBe(w.exact.length);
  return { value, mag };
}

interface Expected {
  /** exact fused values and the bound's magnitude, or the replacement's values. */
  value: Float64Array;
  mag: Float64Array;
  rank: number;
}

interface Fixture {
  base: Record<string, HostT>;
  config: Record<string, unknown>;
  file: 'adapter_model.safetensors' | 'adapters.safetensors';
  tensors: Record<string, HostT>;
  expected: Record<string, Expected>;
}

const replaced = (t: HostT, like: HostT): Expected => ({
  // The base's dtype is kept: the replacement's value, rounded to it.
  value: Float64Array.from(t.exact, (x) => (like.dtype === 'float32' ? Math.fround(x) : like.dtype === 'float16' ? f16BitsToF32(f32ToF16Bits(x)) : bf16BitsToF32(f32ToBf16Bits(x)))),
  mag: new Float64Array(t.exact.length),
  rank: 0,
});

const P = 'base_model.model.';

const fixtures: Record<string, () => Fixture> = {
  'PEFT: linear modules, alpha / r': () => {
    const q = tensor([24, 16], 'bfloat16');
    const v = tensor([8, 16], 'float32');
    const qa = tensor([4, 16], 'float32', 0.5);
    const qb = tensor([24, 4], 'float32', 0.5);
    const va = tensor([4, 16], 'float32', 0.5);
    const vb = tensor([8, 4], 'float32', 0.5);
    const scale = 8 / 4;
    return {
      base: { 'model.layers.0.self_attn.q_proj.weight': q, 'model.layers.0.self_attn.v_proj.weight': v, 'model.norm.weight': tensor([16], 'float32') },
      config: { peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] },
      file: 'adapter_model.safetensors',
      tensors: {
        [`${P}model.layers.0.self_attn.q_proj.lora_A.weight`]: qa,
        [`${P}model.layers.0.self_attn.q_proj.lora_B.weight`]: qb,
        [`${P}model.layers.0.self_attn.v_proj.lora_A.weight`]: va,
        [`${P}model.layers.0.self_attn.v_proj.lora_B.weight`]: vb,
      },
      expected: {
        'model.layers.0.self_attn.q_proj.weight': { ...fusedReference(q, mat(qb), mat(qa), scale), rank: 4 },
        'model.layers.0.self_attn.v_proj.weight': { ...fusedReference(v, mat(vb), mat(va), scale), rank: 4 },
      },
    };
  },
  'PEFT: rsLoRA, rank and alpha patterns, embedding, modules_to_save, bfloat16 factors': () => {
    const q = tensor([16, 16], 'float16');
    const k = tensor([8, 16], 'bfloat16');
    const emb = tensor([40, 16], 'float16');
    const head = tensor([40, 16], 'float16');
    const newHead = tensor([40, 16], 'float32');
    const qa = tensor([8, 16], 'bfloat16', 0.25);
    const qb = tensor([16, 8], 'bfloat16', 0.25);
    const ka = tensor([2, 16], 'bfloat16', 0.25);
    const kb = tensor([8, 2], 'bfloat16', 0.25);
    const ea = tensor([4, 40], 'float32', 0.25);
    const eb = tensor([16, 4], 'float32', 0.25);
    // q: r 8 (config), alpha 16 (config); k: r 2 from rank_pattern, alpha 3 from alpha_pattern; embed: r 4 from pattern.
    return {
      base: {
        'model.embed_tokens.weight': emb,
        'model.layers.0.self_attn.q_proj.weight': q,
        'model.layers.0.self_attn.k_proj.weight': k,
        'lm_head.weight': head,
      },
      config: {
        peft_type: 'LORA',
        r: 8,
        lora_alpha: 16,
        use_rslora: true,
        rank_pattern: { 'self_attn.k_proj': 2, embed_tokens: 4 },
        alpha_pattern: { 'layers.0.self_attn.k_proj': 3 },
        modules_to_save: ['lm_head'],
      },
      file: 'adapter_model.safetensors',
      tensors: {
        [`${P}model.embed_tokens.lora_embedding_A`]: ea,
        [`${P}model.embed_tokens.lora_embedding_B`]: eb,
        [`${P}model.layers.0.self_attn.q_proj.lora_A.weight`]: qa,
        [`${P}model.layers.0.self_attn.q_proj.lora_B.weight`]: qb,
        [`${P}model.layers.0.self_attn.k_proj.lora_A.weight`]: ka,
        [`${P}model.layers.0.self_attn.k_proj.lora_B.weight`]: kb,
        [`${P}lm_head.weight`]: newHead,
      },
      expected: {
        'model.embed_tokens.weight': { ...fusedReference(emb, mat(ea, true), mat(eb, true), 16 / Math.sqrt(4)), rank: 4 },
        'model.layers.0.self_attn.q_proj.weight': { ...fusedReference(q, mat(qb), mat(qa), 16 / Math.sqrt(8)), rank: 8 },
        'model.layers.0.self_attn.k_proj.weight': { ...fusedReference(k, mat(kb), mat(ka), 3 / Math.sqrt(2)), rank: 2 },
        'lm_head.weight': replaced(newHead, head),
      },
    };
  },
  'PEFT: fan_in_fan_out (GPT-2 Conv1D weights stored [in, out])': () => {
    const w = tensor([16, 48], 'float32');
    const a = tensor([4, 16], 'float32', 0.5);
    const b = tensor([48, 4], 'float32', 0.5);
    return {
      base: { 'transformer.h.0.attn.c_attn.weight': w },
      config: { peft_type: 'LORA', r: 4, lora_alpha: 4, fan_in_fan_out: true },
      file: 'adapter_model.safetensors',
      tensors: { [`${P}transformer.h.0.attn.c_attn.lora_A.weight`]: a, [`${P}transformer.h.0.attn.c_attn.lora_B.weight`]: b },
      expected: { 'transformer.h.0.attn.c_attn.weight': { ...fusedReference(w, mat(a, true), mat(b, true), 1), rank: 4 } },
    };
  },
  'MLX-LM: linear (square and not) and embedding, transposed factors, scale': () => {
    const q = tensor([16, 16], 'bfloat16');
    const down = tensor([16, 40], 'bfloat16');
    const emb = tensor([50, 16], 'bfloat16');
    const qa = tensor([16, 4], 'float32', 0.1);
    const qb = tensor([4, 16], 'float32', 0.1);
    const da = tensor([40, 4], 'float32', 0.1);
    const db = tensor([4, 16], 'float32', 0.1);
    const ea = tensor([50, 4], 'float32', 0.1);
    const eb = tensor([4, 16], 'float32', 0.1);
    return {
      base: { 'model.layers.0.self_attn.q_proj.weight': q, 'model.layers.0.mlp.down_proj.weight': down, 'model.embed_tokens.weight': emb },
      config: { fine_tune_type: 'lora', num_layers: 1, lora_parameters: { rank: 4, scale: 12.5, dropout: 0, keys: ['self_attn.q_proj', 'mlp.down_proj'] } },
      file: 'adapters.safetensors',
      tensors: {
        'model.layers.0.self_attn.q_proj.lora_a': qa,
        'model.layers.0.self_attn.q_proj.lora_b': qb,
        'model.layers.0.mlp.down_proj.lora_a': da,
        'model.layers.0.mlp.down_proj.lora_b': db,
        'model.embed_tokens.lora_a': ea,
        'model.embed_tokens.lora_b': eb,
      },
      expected: {
        'model.layers.0.self_attn.q_proj.weight': { ...fusedReference(q, mat(qb, true), mat(qa, true), 12.5), rank: 4 },
        'model.layers.0.mlp.down_proj.weight': { ...fusedReference(down, mat(db, true), mat(da, true), 12.5), rank: 4 },
        'model.embed_tokens.weight': { ...fusedReference(emb, mat(ea), mat(eb), 12.5), rank: 4 },
      },
    };
  },
  'MLX-LM: the older config with alpha (scale * alpha / rank)': () => {
    const v = tensor([8, 24], 'float16');
    const a = tensor([24, 2], 'float32', 0.1);
    const b = tensor([2, 8], 'float32', 0.1);
    return {
      base: { 'model.layers.3.self_attn.v_proj.weight': v },
      config: { lora_layers: 1, lora_parameters: { rank: 2, alpha: 16, scale: 10, dropout: 0 } },
      file: 'adapters.safetensors',
      tensors: { 'model.layers.3.self_attn.v_proj.lora_a': a, 'model.layers.3.self_attn.v_proj.lora_b': b },
      expected: { 'model.layers.3.self_attn.v_proj.weight': { ...fusedReference(v, mat(b, true), mat(a, true), (10 * 16) / 2), rank: 2 } },
    };
  },
  'MLX-LM: stacked experts (batched product), default scale 20': () => {
    const w = tensor([3, 12, 16], 'bfloat16');
    const a = tensor([3, 4, 16], 'float32', 0.2);
    const b = tensor([3, 12, 4], 'float32', 0.2);
    return {
      base: { 'model.layers.0.mlp.switch_mlp.up_proj.weight': w },
      config: { fine_tune_type: 'lora', lora_parameters: { rank: 4 } },
      file: 'adapters.safetensors',
      tensors: { 'model.layers.0.mlp.switch_mlp.up_proj.lora_a': a, 'model.layers.0.mlp.switch_mlp.up_proj.lora_b': b },
      expected: { 'model.layers.0.mlp.switch_mlp.up_proj.weight': { ...fusedReference(w, mat(b), mat(a), 20), rank: 4 } },
    };
  },
  'MLX-LM: full fine-tune replaces whole tensors': () => {
    const w = tensor([8, 8], 'bfloat16');
    const nw = tensor([8, 8], 'float32');
    return {
      base: { 'model.layers.0.mlp.gate_proj.weight': w, 'model.norm.weight': tensor([8], 'float32') },
      config: { fine_tune_type: 'full', lora_parameters: {} },
      file: 'adapters.safetensors',
      tensors: { 'model.layers.0.mlp.gate_proj.weight': nw },
      expected: { 'model.layers.0.mlp.gate_proj.weight': replaced(nw, w) },
    };
  },
};

async function writeAdapter(name: string, config: Record<string, unknown>, file: string, tensors: Record<string, HostT>): Promise<string> {
  const folder = join(dir, name.replace(/[^a-z0-9]+/gi, '-'));
  const { mkdir } = await import('node:fs/promises');
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, 'adapter_config.json'), JSON.stringify(config));
  await saveSafetensors(
    join(folder, file),
    Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, { shape: t.shape, dtype: t.dtype, data: t.data }])),
  );
  return folder;
}

function upload(base: Record<string, HostT>): Map<string, WgArray> {
  return new Map(Object.entries(base).map(([n, t]) => [n, array(t.data, { shape: t.shape, dtype: t.dtype, name: n })]));
}

describe('fuseLora', () => {
  test.each(Object.keys(fixtures))('%s', async (name) => {
    const f = fixtures[name]();
    const folder = await writeAdapter(name, f.config, f.file, f.tensors);
    const base = upload(f.base);
    const adapter = await loadLoraAdapter(folder);
    expect(adapter.format).toBe(f.file === 'adapters.safetensors' ? 'mlx' : 'peft');
    expect(adapter.targets()).toEqual(Object.keys(f.expected).sort());
    const fused = await fuseLora(base, adapter);
    expect([...fused.keys()]).toEqual([...base.keys()]);
    for (const [tname, w] of base) {
      const out = fused.get(tname)!;
      const want = f.expected[tname];
      if (!want) {
        // untouched tensors come back as the same arrays
        expect(out).toBe(w);
        continue;
      }
      expect(out).not.toBe(w);
      expect(out.shape).toEqual(w.shape);
      expect(out.dtype).toBe(w.dtype);
      const got = await out.toFloat32();
      const u = UNIT[w.dtype as FloatDType];
      let bad = -1;
      for (let i = 0; i < got.length; i++) {
        const bound = ((want.rank + 2) * 2 ** -24 + u) * Math.max(want.mag[i], Math.abs(want.value[i])) + 1e-30;
        if (!(Math.abs(got[i] - want.value[i]) <= bound)) {
          bad = i;
          break;
        }
      }
      expect(bad, `${tname}[${bad}]: got ${got[bad]}, want ${want.value[bad]}`).toBe(-1);
      // And the base tensor is left as it was.
      const before = await w.toFloat32();
      expect(before[0]).toBe(Math.fround(f.base[tname].exact[0]));
      out.dispose();
    }
    for (const w of base.values()) w.dispose();
  });
});

describe('adapters that do not fit', () => {
  const peft = (tensors: Record<string, HostT>, config: Record<string, unknown> = { peft_type: 'LORA', r: 4, lora_alpha: 8 }) =>
    ({ config, tensors, file: 'adapter_model.safetensors' }) as const;
  const qa = () => tensor([4, 16], 'float32');
  const qb = () => tensor([24, 4], 'float32');
  const base = () => ({ 'model.layers.0.self_attn.q_proj.weight': tensor([24, 16], 'float32') });

  const cases: { name: string; adapter: () => { config: Record<string, unknown>; tensors: Record<string, HostT>; file: string }; base?: () => Record<string, HostT>; error: unknown; message: RegExp; at: 'load' | 'fuse' }[] = [
    {
      name: 'a module the base lacks',
      adapter: () => peft({ [`${P}model.layers.1.self_attn.q_proj.lora_A.weight`]: qa(), [`${P}model.layers.1.self_attn.q_proj.lora_B.weight`]: qb() }),
      error: ArgumentError,
      message: /module 'model\.layers\.1\.self_attn\.q_proj' targets 'model\.layers\.1\.self_attn\.q_proj\.weight', which the base model does not have/,
      at: 'fuse',
    },
    {
      name: 'a delta whose shape differs from the base tensor',
      adapter: () => peft({ [`${P}model.layers.0.self_attn.q_proj.lora_A.weight`]: tensor([4, 17], 'float32'), [`${P}model.layers.0.self_attn.q_proj.lora_B.weight`]: qb() }),
      error: ShapeError,
      message: /module 'model\.layers\.0\.self_attn\.q_proj' gives a delta of shape \[24, 17\].*\[4, 17\].*\[24, 4\].*has shape \[24, 16\]/,
      at: 'fuse',
    },
    {
      name: 'factors whose ranks differ',
      adapter: () => peft({ [`${P}model.layers.0.self_attn.q_proj.lora_A.weight`]: qa(), [`${P}model.layers.0.self_attn.q_proj.lora_B.weight`]: tensor([24, 3], 'float32') }),
      error: FormatError,
      message: /the factors' ranks differ: .* rank 4, .* rank 3/,
      at: 'load',
    },
    {
      name: 'a config rank the tensors do not have',
      adapter: () => peft({ [`${P}model.layers.0.self_attn.q_proj.lora_A.weight`]: qa(), [`${P}model.layers.0.self_attn.q_proj.lora_B.weight`]: qb() }, { peft_type: 'LORA', r: 8 }),
      error: FormatError,
      message: /adapter_config\.json: module 'model\.layers\.0\.self_attn\.q_proj': the config gives rank 8, but its factors have rank 4/,
      at: 'load',
    },
    {
      name: 'a factor without its pair',
      adapter: () => peft({ [`${P}model.layers.0.self_attn.q_proj.lora_A.weight`]: qa() }),
      error: FormatError,
      message: /module 'model\.layers\.0\.self_attn\.q_proj' has '.*lora_A\.weight' but not its B factor/,
      at: 'load',
    },
    {
      name: 'a DoRA adapter',
      adapter: () => peft({ [`${P}model.layers.0.self_attn.q_proj.lora_A.weight`]: qa(), [`${P}model.layers.0.self_attn.q_proj.lora_B.weight`]: qb() }, { peft_type: 'LORA', r: 4, use_dora: true }),
      error: FormatError,
      message: /DoRA/,
      at: 'load',
    },
    {
      name: 'an MLX-LM DoRA magnitude tensor',
      adapter: () => ({ config: { lora_parameters: { rank: 4 } }, tensors: { 'model.layers.0.self_attn.q_proj.m': tensor([24], 'float32') }, file: 'adapters.safetensors' }),
      error: FormatError,
      message: /'model\.layers\.0\.self_attn\.q_proj\.m' is a DoRA magnitude vector/,
      at: 'load',
    },
    {
      name: 'a non-LoRA PEFT type',
      adapter: () => peft({ [`${P}x.lora_A.weight`]: qa() }, { peft_type: 'IA3' }),
      error: FormatError,
      message: /peft_type is "IA3"/,
      at: 'load',
    },
  ];

  test.each(cases)('$name', async (c) => {
    const a = c.adapter();
    const folder = await writeAdapter(`bad ${c.name}`, a.config, a.file, a.tensors);
    if (c.at === 'load') {
      const err = await loadLoraAdapter(folder).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(c.error);
      expect((err as Error).message).toMatch(c.message);
      return;
    }
    const arrays = upload((c.base ?? base)());
    const err = await fuseLora(arrays, folder).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(c.error);
    expect((err as Error).message).toMatch(c.message);
    for (const w of arrays.values()) w.dispose();
  });

  test('an integer adapter tensor is a DTypeError naming it', async () => {
    const folder = join(dir, 'int-factor');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4 }));
    await saveSafetensors(join(folder, 'adapter_model.safetensors'), {
      [`${P}m.lora_A.weight`]: { shape: [4, 2], dtype: 'int32', data: new Int32Array(8) },
    });
    await expect(loadLoraAdapter(folder)).rejects.toThrow(DTypeError);
    await expect(loadLoraAdapter(folder)).rejects.toThrow(/'base_model\.model\.m\.lora_A\.weight' is int32/);
  });

  test('a folder without adapter_config.json, or with only a pickle, is a FileError', async () => {
    const { mkdir } = await import('node:fs/promises');
    const empty = join(dir, 'empty');
    await mkdir(empty, { recursive: true });
    await expect(loadLoraAdapter(empty)).rejects.toThrow(FileError);
    await expect(loadLoraAdapter(join(dir, 'no-such-folder'))).rejects.toThrow(FileError);
    const pickle = join(dir, 'pickle');
    await mkdir(pickle, { recursive: true });
    await writeFile(join(pickle, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8 }));
    await writeFile(join(pickle, 'adapter_model.bin'), 'not really');
    await expect(loadLoraAdapter(pickle)).rejects.toThrow(/only adapter_model\.bin \(a pickle\) is there/);
  });

  test("an adapter trained on the bare transformer (no 'model.' prefix) is matched to the checkpoint's names", async () => {
    const w = tensor([24, 16], 'float32');
    const a = tensor([4, 16], 'float32');
    const b = tensor([24, 4], 'float32');
    const folder = await writeAdapter('bare', { peft_type: 'LORA', r: 4, lora_alpha: 4 }, 'adapter_model.safetensors', {
      [`${P}layers.0.self_attn.q_proj.lora_A.weight`]: a,
      [`${P}layers.0.self_attn.q_proj.lora_B.weight`]: b,
    });
    const arrays = upload({ 'model.layers.0.self_attn.q_proj.weight': w });
    const adapter = await loadLoraAdapter(folder);
    const fused = await fuseLora(arrays, adapter);
    expect(adapter.targets()).toEqual(['model.layers.0.self_attn.q_proj.weight']);
    expect(adapter.notes.join()).toMatch(/added 'model\.'/);
    const want = fusedReference(w, mat(b), mat(a), 1);
    const got = await fused.get('model.layers.0.self_attn.q_proj.weight')!.toFloat32();
    for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want.value[i])).toBeLessThanOrEqual(6 * 2 ** -24 * want.mag[i] + 1e-30);
  });

  test('strength multiplies and scale replaces the config scale', async () => {
    const f = fixtures['PEFT: linear modules, alpha / r']();
    const folder = await writeAdapter('strength', f.config, f.file, f.tensors);
    const a = await loadLoraAdapter(folder, { strength: 0.5 });
    expect([...a.modules.values()].map((m) => m.scale)).toEqual([1, 1]);
    const b = await loadLoraAdapter(folder, { scale: 3, strength: 2 });
    expect([...b.modules.values()].map((m) => m.scale)).toEqual([6, 6]);
  });
});

// ---- end to end: `wgarray convert --lora`, then llama.cpp -------------------------------------

async function convert(args: string[]): Promise<void> {
  const stdout = sink();
  const stderr = sink();
  const code = await runCli(['convert', ...args, '--quiet'], { stdout, stderr, isTTY: false });
  if (code !== 0) throw new Error(`wgarray convert ${args.join(' ')} failed (${code}): ${stderr.text}`);
}

/** Uniform values in [-amp, amp) from a seed, as float32. */
function uniform(n: number, s0: number, amp: number): Float32Array {
  const out = new Float32Array(n);
  let s = s0 >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = amp * (s / 2 ** 31 - 1);
  }
  return out;
}

function transpose2(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = x[i * cols + j];
  return out;
}

describe('wgarray convert --lora', () => {
  test(
    'PEFT and MLX-LM adapters: the GGUF equals the conversion of the CPU-fused model, and llama.cpp predicts what the fused model predicts',
    async () => {
      const model = syntheticModel({ seed: 21, layers: 2, ff: 512 });
      const rank = 8;
      const scale = 2; // PEFT: lora_alpha 16 / r 8; MLX-LM: scale 2
      const peftTensors: Record<string, HostT> = {};
      const mlxTensors: Record<string, HostT> = {};
      const host = (shape: number[], data: Float32Array): HostT => ({ shape, dtype: 'float32', data, exact: Float64Array.from(data) });
      const fusedValues = new Map<string, Float32Array>();
      let s = 99;
      for (const t of model.tensors) {
        const m = /^(.*)\.weight$/.exec(t.name);
        if (!m || t.shape.length !== 2) continue;
        const module = m[1];
        const [out, inp] = t.shape;
        const embedding = module === 'model.embed_tokens';
        // PEFT factors: linear A [r, in], B [out, r]; embedding A [r, V], B [D, r] with delta (B @ A)^T.
        const [aRows, aCols, bRows] = embedding ? [rank, out, inp] : [rank, inp, out];
        const A = uniform(aRows * aCols, s++, 1.5 / Math.sqrt(aCols));
        const B = uniform(bRows * rank, s++, 1.5 / Math.sqrt(rank));
        const w = t.values();
        const wRounded = new Float64Array(w.length);
        const stored = t.bytes();
        const bits = new Uint16Array(stored.buffer, stored.byteOffset, stored.byteLength / 2);
        for (let i = 0; i < w.length; i++) wRounded[i] = bf16BitsToF32(bits[i]);
        const fused = new Float32Array(w.length);
        for (let i = 0; i < out; i++) {
          for (let j = 0; j < inp; j++) {
            let d = 0;
            // linear: sum_k B[i,k] A[k,j]; embedding: sum_k A[k,i] B[j,k]
            for (let k = 0; k < rank; k++) d += embedding ? A[k * out + i] * B[j * rank + k] : B[i * rank + k] * A[k * inp + j];
            fused[i * inp + j] = wRounded[i * inp + j] + scale * d;
          }
        }
        fusedValues.set(t.name, fused);
        if (embedding) {
          peftTensors[`${P}${module}.lora_embedding_A`] = host([rank, out], A);
          peftTensors[`${P}${module}.lora_embedding_B`] = host([inp, rank], B);
          // MLX-LM embedding: a [V, r] @ b [r, D]
          mlxTensors[`${module}.lora_a`] = host([out, rank], transpose2(A, rank, out));
          mlxTensors[`${module}.lora_b`] = host([rank, inp], transpose2(B, inp, rank));
        } else {
          peftTensors[`${P}${module}.lora_A.weight`] = host([rank, inp], A);
          peftTensors[`${P}${module}.lora_B.weight`] = host([out, rank], B);
          // MLX-LM linear: a [in, r], b [r, out]
          mlxTensors[`${module}.lora_a`] = host([inp, rank], transpose2(A, rank, inp));
          mlxTensors[`${module}.lora_b`] = host([rank, out], transpose2(B, out, rank));
        }
      }
      const fusedModel: SyntheticModel = {
        ...model,
        tensors: model.tensors.map((t) => {
          const f = fusedValues.get(t.name);
          if (!f) return t;
          return { name: t.name, shape: t.shape, dtype: 'float32', values: () => f, bytes: () => new Uint8Array(f.buffer.slice(0)) };
        }),
      };

      const baseDir = join(dir, 'e2e-base');
      const fusedDir = join(dir, 'e2e-fused');
      await writeSyntheticModel(baseDir, model);
      await writeSyntheticModel(fusedDir, fusedModel);
      const peftDir = await writeAdapter('e2e peft', { peft_type: 'LORA', r: rank, lora_alpha: 16, target_modules: 'all-linear' }, 'adapter_model.safetensors', peftTensors);
      const mlxDir = await writeAdapter('e2e mlx', { fine_tune_type: 'lora', num_layers: 2, lora_parameters: { rank, scale } }, 'adapters.safetensors', mlxTensors);

      const viaPeft = join(dir, 'peft.gguf');
      const viaMlx = join(dir, 'mlx.gguf');
      const prefused = join(dir, 'prefused.gguf');
      await convert([baseDir, '-o', viaPeft, '--outtype', 'f32', '--lora', peftDir]);
      await convert([baseDir, '-o', viaMlx, '--outtype', 'f32', '--lora', mlxDir]);
      await convert([fusedDir, '-o', prefused, '--outtype', 'f32']);

      // Tensor by tensor (q/k permuted, renamed): within float32 rounding of the CPU-fused values.
      const want = await loadGGUF(prefused);
      for (const path of [viaPeft, viaMlx]) {
        const got = await loadGGUF(path);
        expect(got.tensorInfos.map((t) => t.name)).toEqual(want.tensorInfos.map((t) => t.name));
        for (const t of want.tensorInfos) {
          const a = await got.readTensorBytes(t.name);
          const b = await want.readTensorBytes(t.name);
          const x = new Float32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
          const y = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
          let worst = 0;
          for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / (1 + Math.abs(y[i])));
          expect(worst, `${path}: ${t.name}`).toBeLessThan(2e-6);
        }
      }

      // The adapter matters: the fused model's logits are far from the base's.
      const bos = model.config.bos_token_id as number;
      const prompt = [bos, ...encodeBpe(model.bpe, 'The model is then saved as a single file.')];
      const forced = [...prompt, ...referenceGreedy(fusedModel, prompt, 6)];
      const fusedLogits = referenceLogits(fusedModel, forced);
      const baseLogits = referenceLogits(model, forced);
      let moved = 0;
      for (let i = 0; i < forced.length; i++) moved = Math.max(moved, ...fusedLogits[i].map((v, j) => Math.abs(v - baseLogits[i][j])));
      expect(moved).toBeGreaterThan(1);

      // llama.cpp loads the fused GGUF and predicts what the fused Hugging Face model predicts.
      const [run] = await runLlama([viaPeft], { prompt: 'The model is then saved as a single file.', nTokens: 4, forced });
      let judged = 0;
      for (let i = 0; i < forced.length; i++) {
        if (margin(fusedLogits[i]) < 0.05) continue;
        judged++;
        expect(run.top1[i], `position ${i}`).toBe(argmax(fusedLogits[i]));
      }
      expect(judged).toBeGreaterThan(forced.length * 0.8);

      // An adapter for a module the model lacks: a typed error naming it, and no output file.
      const badDir = await writeAdapter('e2e bad', { peft_type: 'LORA', r: rank, lora_alpha: 16 }, 'adapter_model.safetensors', {
        [`${P}model.layers.5.self_attn.q_proj.lora_A.weight`]: peftTensors[`${P}model.layers.0.self_attn.q_proj.lora_A.weight`],
        [`${P}model.layers.5.self_attn.q_proj.lora_B.weight`]: peftTensors[`${P}model.layers.0.self_attn.q_proj.lora_B.weight`],
      });
      const stderr = sink();
      const bad = join(dir, 'bad.gguf');
      const code = await runCli(['convert', baseDir, '-o', bad, '--lora', badDir], { stdout: sink(), stderr, isTTY: false });
      expect(code).not.toBe(0);
      expect(stderr.text).toMatch(/module 'model\.layers\.5\.self_attn\.q_proj' targets 'model\.layers\.5\.self_attn\.q_proj\.weight', which .*e2e-base does not have/);
      expect(existsSync(bad)).toBe(false);
    },
    240_000,
  );
});
