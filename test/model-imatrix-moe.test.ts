// The importance matrix of a mixture-of-experts model (src/model/imatrix.ts
// with the MoE forward pass): a seeded qwen3moe (8 experts, 2 used) converted
// by `wgarray convert`.
//   - Per expert of every 3-D ffn_{gate,up,down}_exps weight, the sums of x^2
//     over the tokens routed to it and their count equal the float64 Hugging
//     Face reference's (test/helpers/hf-reference.ts, routing in float64);
//     the router ffn_gate_inp is a dense entry.
//   - The file has llama-imatrix's layout for them (in_sum2 ne [columns,
//     experts], counts ne [1, experts]: its save_imatrix), read by an
//     independent parser (@huggingface/gguf), and llama.cpp's own imatrix
//     loader reads back the same counts and sums.
//   - `wgarray quantize --imatrix` takes it: every expert tensor quantized with its weights.
//   - Bad input (expert counts that do not fit, an unknown rope scaling, experts
//     without expert_count): one-line FormatErrors naming the file.
import { gguf as hfParse } from '@huggingface/gguf';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { DEMO_CORPUS, syntheticModel, writeSyntheticModel } from '../src/convert/synthetic.js';
import { FormatError } from '../src/errors.js';
import { gguf } from '../src/io/gguf/metadata.js';
import { loadGGUF } from '../src/io/gguf/reader.js';
import { saveGGUF } from '../src/io/gguf/writer.js';
import { textChunks } from '../src/model/chunks.js';
import { computeImatrix, saveImatrix } from '../src/model/imatrix.js';
import { loadModel } from '../src/model/model.js';
import { close, init } from '../src/runtime/device.js';
import type { Device } from '../src/runtime/device.js';
import { referenceLogits } from './helpers/hf-reference.js';
import { imatrixLoaderAvailable, readImatrixWithLlama } from './helpers/llama-imatrix-loader.js';
import { runCliCaptured } from './helpers/run-cli.js';

const CTX = 64;
const EXPERTS = 8;
const TEXT = DEMO_CORPUS.repeat(2);
const model = syntheticModel({ seed: 23, arch: 'qwen3moe', layers: 2, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, ff: 128, experts: EXPERTS, expertFf: 32 });

let dir: string;
let device: Device;
let file: string;

const cli = (args: string[]) => runCliCaptured(args, { device });

beforeAll(async () => {
  device = await init();
  dir = mkdtempSync(join(tmpdir(), 'wgarray-imatrix-moe-'));
  await writeSyntheticModel(join(dir, 'hf'), model);
  file = join(dir, 'f32.gguf');
  const r = await cli(['convert', join(dir, 'hf'), '-o', file, '--outtype', 'f32', '--quiet']);
  if (r.code !== 0) throw new Error(r.stderr);
  writeFileSync(join(dir, 'text.txt'), TEXT);
}, 120_000);

afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await close();
});

test('per-expert sums and counts equal the float64 reference; llama-imatrix\'s layout, read back by llama.cpp and wgarray quantize', async () => {
  const m = await loadModel(file, { device });
  const result = await computeImatrix(m, TEXT, { ctx: CTX, chunks: 2 });
  const ref = new Map<string, { sums: Float64Array; counts: number[] }>();
  for (const chunk of textChunks(m, TEXT, { ctx: CTX, chunks: 2 })) {
    referenceLogits(model, chunk, (weights, x, expert) => {
      const slots = expert === undefined ? 1 : EXPERTS;
      const slot = expert ?? 0;
      for (const w of weights) {
        let e = ref.get(w);
        if (!e) ref.set(w, (e = { sums: new Float64Array(x.length * slots), counts: new Array<number>(slots).fill(0) }));
        for (let j = 0; j < x.length; j++) e.sums[slot * x.length + j] += x[j] * x[j];
        e.counts[slot]++;
      }
    });
  }
  const names = [...result.entries.keys()].sort();
  expect(names).toEqual([...ref.keys()].sort());
  // per layer: attn_q/k/v, attn_output, ffn_gate_inp, ffn_gate/up/down_exps
  expect(names).toHaveLength(2 * 8);
  let worst = 0;
  for (const [name, e] of result.entries) {
    const r = ref.get(name)!;
    // the same routing: each expert's count of tokens
    expect([name, e.counts]).toEqual([name, r.counts]);
    for (let j = 0; j < r.sums.length; j++) if (r.sums[j] > 0) worst = Math.max(worst, Math.abs(e.sums[j] - r.sums[j]) / r.sums[j]);
  }
  const down = result.entries.get('blk.0.ffn_down_exps.weight')!;
  expect(down.counts).toHaveLength(EXPERTS);
  // every token goes to 2 experts
  expect(down.counts.reduce((a, b) => a + b, 0)).toBe(2 * 2 * CTX);
  console.log(`MoE imatrix: largest relative difference from the float64 reference ${worst.toExponential(2)}; blk.0 tokens per expert ${down.counts.join(' ')}`);
  expect(worst).toBeLessThan(1e-5);

  const out = join(dir, 'imatrix.gguf');
  await saveImatrix(out, result, ['calib.txt']);
  const { tensorInfos } = await hfParse(out, { allowLocalFile: true });
  expect(tensorInfos.map((i) => i.name)).toEqual(names.flatMap((n) => [`${n}.in_sum2`, `${n}.counts`]));
  for (const info of tensorInfos) {
    const name = info.name.replace(/\.(in_sum2|counts)$/, '');
    const e = result.entries.get(name)!;
    const experts = /_exps\.weight$/.test(name) ? EXPERTS : 1;
    expect(e.counts).toHaveLength(experts);
    const cols = e.sums.length / experts;
    // ggml ne order, trailing 1s dropped as ggml_n_dims does
    const ne = info.name.endsWith('.counts') ? (experts > 1 ? [1, experts] : [1]) : experts > 1 ? [cols, experts] : [cols];
    expect([info.name, info.shape.map(Number)]).toEqual([info.name, ne]);
  }

  if (imatrixLoaderAvailable()) {
    const l = readImatrixWithLlama(out);
    expect([l.chunk_count, l.chunk_size]).toEqual([2, CTX]);
    for (const n of names) {
      expect([n, l.entries[n].counts]).toEqual([n, result.entries.get(n)!.counts]);
      expect(l.entries[n].sums.map(Math.fround)).toEqual([...Float32Array.from(result.entries.get(n)!.sums)]);
    }
  }

  // wgarray quantize --imatrix: the expert tensors quantized with their per-expert weights
  const q = await cli(['quantize', file, join(dir, 'q.gguf'), 'Q4_K_M', '--imatrix', out, '--report', join(dir, 'q.json'), '--quiet']);
  expect(q.stderr).toBe('');
  expect(q.code).toBe(0);
  const report = JSON.parse(readFileSync(join(dir, 'q.json'), 'utf8')) as { tensors: { name: string; to: string; imatrix?: boolean }[] };
  const experts = report.tensors.filter((t) => /_exps\.weight$/.test(t.name));
  expect(experts).toHaveLength(2 * 3);
  for (const t of experts) expect([t.name, t.imatrix ?? false]).toEqual([t.name, t.to !== 'q8_0']);
  expect(experts.filter((t) => t.imatrix).length).toBeGreaterThan(0);
}, 180_000);

test('bad input: one-line typed errors for a GGUF whose experts or rope the forward pass cannot run', async () => {
  const f = await loadGGUF(file);
  const tensors = await f.loadAll();
  const cases: [Record<string, ReturnType<typeof gguf.u32>>, RegExp][] = [
    [{ 'qwen3moe.expert_used_count': gguf.u32(9) }, /qwen3moe\.expert_used_count is 9; expected 1 to qwen3moe\.expert_count \(8\)/],
    [{ 'qwen3moe.rope.scaling.type': gguf.string('su-yarn') }, /qwen3moe\.rope\.scaling\.type is "su-yarn"; the forward pass does none, linear, yarn and longrope/],
  ];
  try {
    for (const [i, [meta, message]] of cases.entries()) {
      const bad = join(dir, `bad-${i}.gguf`);
      await saveGGUF(bad, tensors, { ...f.typedMetadata, ...meta }, { strictKeyTypes: false });
      const err = await loadModel(bad, { device }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(FormatError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).toContain(bad);
    }
    // experts without expert_count: refused when the layer is loaded, naming the tensor
    const noCount = join(dir, 'bad-no-count.gguf');
    const meta = { ...f.typedMetadata };
    delete meta['qwen3moe.expert_count'];
    delete meta['qwen3moe.expert_used_count'];
    await saveGGUF(noCount, tensors, meta, { strictKeyTypes: false });
    const m = await loadModel(noCount, { device });
    await expect(m.logits([1, 2, 3])).rejects.toThrow(/tensor 'blk\.0\.ffn_gate_inp\.weight' routes to experts but qwen3moe\.expert_count is missing/);
  } finally {
    for (const a of Object.values(tensors)) a.dispose();
  }
}, 60_000);
