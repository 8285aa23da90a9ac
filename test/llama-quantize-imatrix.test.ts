// `wgarray quantize --imatrix` against llama.cpp: an F32 GGUF of a synthetic
// 8-layer llama (so the n_layer/8 rules pick layer 0) is quantized by
// `wgarray quantize ... --imatrix FILE` and by llama_model_quantize (the
// prebuilt libllama node-llama-cpp ships, through python3's ctypes) given the
// same importance weights as llama_model_quantize_params.imatrix (the
// llama_model_imatrix_data array llama-quantize builds from its --imatrix
// file); the two files must hold the same tensors, types and bytes. The
// imatrix is a GGUF in llama-imatrix's layout, with per-token sums and counts,
// and lacks one tensor (both sides then quantize it without weights).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { close, init } from '../src/runtime/device.js';
import { syntheticModel, writeSyntheticModel } from '../src/convert/synthetic.js';
import { loadGGUF } from '../src/io/gguf/reader.js';
import { saveGGUF } from '../src/io/index.js';
import { filterImatrix, loadImatrix } from '../src/io/imatrix.js';
import { quantPreset } from '../src/quant/presets.js';
import { llamaQuantize, llamaQuantizeAvailable, runLlama } from './helpers/llama.js';
import { runCliCaptured } from './helpers/run-cli.js';

const device = await init();

const cli = (args: string[]) => runCliCaptured(args, { device });

const dir = mkdtempSync(join(tmpdir(), 'wgarray-imatrix-quantize-'));
const hf = join(dir, 'hf');
await writeSyntheticModel(hf, syntheticModel({ seed: 5, layers: 8, hidden: 128, heads: 4, kvHeads: 1, ff: 256, vocab: 320 }));
const f32 = join(dir, 'model-f32.gguf');
{
  const r = await cli(['convert', hf, '-o', f32, '--outtype', 'f32', '--quiet']);
  if (r.code !== 0) throw new Error(r.stderr);
}
const model = await loadGGUF(f32);

// llama-imatrix's file: per 2-D weight, in_sum2 [1, row length] (sums of squared
// activations over `count` tokens) and counts [1, 1]; blk.0.attn_k.weight left out.
const imatrixPath = join(dir, 'imatrix.gguf');
{
  let s = 12345;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  const tensors: [string, { shape: number[]; dtype: 'float32'; data: Float32Array }][] = [];
  for (const t of model.tensorInfos) {
    if (t.shape.length < 2 || t.name === 'blk.0.attn_k.weight' || t.name === 'token_embd.weight') continue;
    const n = t.shape[t.shape.length - 1];
    const count = 512 * 7;
    const sums = Float32Array.from({ length: n }, (_, i) => count * Math.exp(3 * (rand() - 0.5)) * (i % 17 === 0 ? 40 : 1));
    tensors.push([`${t.name}.in_sum2`, { shape: [1, n], dtype: 'float32', data: sums }]);
    tensors.push([`${t.name}.counts`, { shape: [1, 1], dtype: 'float32', data: new Float32Array([count]) }]);
  }
  await saveGGUF(imatrixPath, tensors, {
    'general.type': 'imatrix',
    'imatrix.datasets': ['synthetic-calibration.txt'],
    'imatrix.chunk_count': 7,
    'imatrix.chunk_size': 512,
  } as never);
}

/** The weights llama-quantize would hand llama_model_quantize, as the oracle's JSON. */
async function weightsJson(name: string, filter: { include?: string[]; exclude?: string[] } = {}): Promise<string> {
  const im = filterImatrix(await loadImatrix(imatrixPath), filter);
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(Object.fromEntries([...im.entries].map(([k, v]) => [k, [...v]]))));
  return path;
}

interface Case {
  preset: string;
  args?: string[];
  filter?: { include?: string[]; exclude?: string[] };
}

const CASES: Case[] = [
  // Q5_0 and Q4_0 also write Q5_1 / Q4_1 (their first ffn_down layer with an imatrix), Q3_K_M also Q5_K
  ...['Q2_K_S', 'Q2_K', 'Q3_K_M', 'Q4_0', 'Q4_1', 'Q5_0', 'Q4_K_M', 'Q6_K', 'IQ4_NL', 'IQ4_XS'].map((preset) => ({ preset })),
  { preset: 'Q4_K_M', args: ['--exclude-weights', 'ffn_down'], filter: { exclude: ['ffn_down'] } },
  { preset: 'Q3_K_S', args: ['--include-weights', 'attn', '--include-weights', 'output'], filter: { include: ['attn', 'output'] } },
];
const tag = (c: Case) => `${c.preset}${(c.args ?? []).join('').replace(/[^\w]+/g, '_')}`;

const ORACLE = llamaQuantizeAvailable();
if (ORACLE) {
  const jobs = [];
  for (const c of CASES) {
    jobs.push({ inp: f32, out: join(dir, `ref-${tag(c)}.gguf`), ftype: quantPreset(c.preset).ftype, params: { imatrixJson: await weightsJson(tag(c), c.filter) } });
  }
  await llamaQuantize(jobs);
}

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await close();
});

describe.skipIf(!ORACLE)('wgarray quantize --imatrix = llama_model_quantize with the same imatrix (needs python3 and the prebuilt libllama)', () => {
  for (const c of CASES) {
    test(`${c.preset} ${(c.args ?? []).join(' ')}`, async () => {
      const ours = join(dir, `ours-${tag(c)}.gguf`);
      const r = await cli(['quantize', f32, ours, c.preset, '--imatrix', imatrixPath, ...(c.args ?? []), '--quiet']);
      expect(r.code, r.stderr).toBe(0);
      const a = await loadGGUF(ours);
      const b = await loadGGUF(join(dir, `ref-${tag(c)}.gguf`));
      const typesA = Object.fromEntries(a.tensorInfos.map((t) => [t.name, t.type.name]));
      const typesB = Object.fromEntries(b.tensorInfos.map((t) => [t.name, t.type.name]));
      expect(typesA).toEqual(typesB);
      // the rules that change with an imatrix are exercised (Q4_0/Q5_0's first ffn_down layer)
      if (c.preset === 'Q5_0') expect(typesA['blk.0.ffn_down.weight']).toBe('q5_1');
      if (c.preset === 'Q4_0') expect(typesA['blk.0.ffn_down.weight']).toBe('q4_1');
      for (const t of b.tensorInfos) {
        const [x, y] = [await a.readTensorBytes(t.name), await b.readTensorBytes(t.name)];
        expect(Buffer.compare(Buffer.from(x), Buffer.from(y)), `${t.name} (${t.type.name}) bytes`).toBe(0);
      }
      expect(a.metadata['general.file_type']).toBe(b.metadata['general.file_type']);
    }, 60_000);
  }

  test('llama.cpp loads and runs the new preset\'s output (Q2_K_S)', async () => {
    const [run] = await runLlama([join(dir, 'ours-Q2_K_S.gguf')], { prompt: 'ab', nTokens: 4 });
    expect(run.generated.length).toBe(4);
    expect(run.nVocab).toBe(320);
  }, 60_000);

  test('without weights the bytes differ (the test sees whether they are used)', async () => {
    const plain = join(dir, 'plain-Q4_K_M.gguf');
    expect((await cli(['quantize', f32, plain, 'Q4_K_M', '--quiet'])).code).toBe(0);
    const a = await loadGGUF(plain);
    const b = await loadGGUF(join(dir, 'ref-Q4_K_M.gguf'));
    const x = await a.readTensorBytes('blk.1.attn_q.weight');
    const y = await b.readTensorBytes('blk.1.attn_q.weight');
    expect(Buffer.compare(Buffer.from(x), Buffer.from(y))).not.toBe(0);
  });
});

describe('--imatrix on the command line', () => {
  test('writes quantize.imatrix.* as llama-quantize does and reports which tensors used it', async () => {
    const out = join(dir, 'meta.gguf');
    const report = join(dir, 'meta.json');
    const r = await cli(['quantize', f32, out, 'Q4_K_S', '--imatrix', imatrixPath, '--report', report]);
    expect(r.code, r.stderr).toBe(0);
    const g = await loadGGUF(out);
    expect(g.metadata['quantize.imatrix.file']).toBe(imatrixPath);
    expect(g.metadata['quantize.imatrix.dataset']).toBe('synthetic-calibration.txt');
    const entries = (await loadImatrix(imatrixPath)).entries.size;
    expect(g.metadata['quantize.imatrix.entries_count']).toBe(entries);
    expect(g.metadata['quantize.imatrix.chunks_count']).toBe(7);
    for (const k of ['entries_count', 'chunks_count']) expect(g.metadataTypes[`quantize.imatrix.${k}`]).toBe('u32');
    expect(r.stdout).toMatch(/imatrix/);
    const json = JSON.parse((await import('node:fs')).readFileSync(report, 'utf8'));
    const used = json.tensors.filter((t: { imatrix: boolean }) => t.imatrix).length;
    expect(used).toBeGreaterThan(entries / 2);
    expect(r.stdout).toContain(`importance matrix: ${used} of ${json.tensors.length} tensors quantized with its weights`);
    const byName = Object.fromEntries(json.tensors.map((t: { name: string; imatrix: boolean }) => [t.name, t.imatrix]));
    expect(byName['blk.1.attn_q.weight']).toBe(true);
    expect(byName['blk.0.attn_k.weight']).toBe(false); // not in the imatrix
    expect(byName['blk.0.attn_norm.weight']).toBe(false); // not quantized
  });

  test('refusals: Q2_K_S without an imatrix, a tensor of the wrong size, a broken file, both filters', async () => {
    const r1 = await cli(['quantize', f32, join(dir, 'x.gguf'), 'Q2_K_S']);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/requires an importance matrix: pass --imatrix FILE/);

    const wrong = join(dir, 'wrong.gguf');
    await saveGGUF(
      wrong,
      [
        ['blk.2.ffn_up.weight.in_sum2', { shape: [1, 7], dtype: 'float32', data: new Float32Array(7).fill(1) }],
        ['blk.2.ffn_up.weight.counts', { shape: [1, 1], dtype: 'float32', data: new Float32Array([1]) }],
      ],
      { 'general.type': 'imatrix', 'imatrix.datasets': ['x'], 'imatrix.chunk_count': 1, 'imatrix.chunk_size': 1 } as never,
    );
    const r2 = await cli(['quantize', f32, join(dir, 'y.gguf'), 'Q4_K_M', '--imatrix', wrong]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/wrong\.gguf: tensor 'blk\.2\.ffn_up\.weight': the importance matrix has 7 weights, expected 128/);

    const broken = join(dir, 'broken.dat');
    writeFileSync(broken, new Uint8Array([1, 0, 0, 0, 200, 0, 0, 0, 65]));
    const r3 = await cli(['quantize', f32, join(dir, 'z.gguf'), 'Q4_K_M', '--imatrix', broken]);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toMatch(/broken\.dat at byte 4: entry 0: name length 200/);

    const r4 = await cli(['quantize', f32, join(dir, 'w.gguf'), 'Q4_K_M', '--imatrix', imatrixPath, '--include-weights', 'a', '--exclude-weights', 'b']);
    expect(r4.code).toBe(1);
    expect(r4.stderr).toMatch(/cannot be used together/);
    const { existsSync } = await import('node:fs');
    for (const f of ['x', 'y', 'z', 'w']) expect(existsSync(join(dir, `${f}.gguf`))).toBe(false);
  });
});
