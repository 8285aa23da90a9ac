// `wgarray eval` / `wgarray imatrix` and their API (src/model/eval.ts,
// imatrix.ts) on small seeded models converted by `wgarray convert`:
//   - PPL equals the PPL computed from llama.cpp's own next-token
//     probabilities on the same chunks (node-llama-cpp), F32 and Q4_K_M;
//   - KLD of a model against itself is 0 (and same-top 100 %, RMS Δp 0);
//   - imatrix sums equal the float64 Hugging Face reference forward pass's
//     (test/helpers/hf-reference.ts collecting the matmul inputs);
//   - the imatrix file has llama-imatrix's layout, read by an independent
//     parser (@huggingface/gguf): keys, types, tensor names, shapes, order;
//     and llama.cpp's own imatrix loader (compiled from node-llama-cpp's
//     llama.cpp source) reads back the same entries, counts and sums;
//   - wgarray quantize --eval prints wgarray eval's summary of IN against OUT,
//     and refuses what eval would refuse before writing anything;
//   - bad input gets one-line typed errors.
import { gguf as hfParse, GGUFValueType } from '@huggingface/gguf';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO_CORPUS, syntheticModel, writeSyntheticModel } from '../src/convert/synthetic.js';
import { ArgumentError, FormatError, LimitError } from '../src/errors.js';
import { loadGGUF } from '../src/io/gguf/reader.js';
import { saveGGUF } from '../src/io/gguf/writer.js';
import { gguf } from '../src/io/gguf/metadata.js';
import { textChunks } from '../src/model/chunks.js';
import { evaluate, perplexity } from '../src/model/eval.js';
import { computeImatrix, saveImatrix } from '../src/model/imatrix.js';
import { loadModel, Model } from '../src/model/model.js';
import { close, init } from '../src/runtime/device.js';
import type { Device } from '../src/runtime/device.js';
import { referenceLogits } from './helpers/hf-reference.js';
import { llamaProbabilities } from './helpers/llama-model.js';
import { imatrixLoaderAvailable, readImatrixWithLlama } from './helpers/llama-imatrix-loader.js';
import { runCliCaptured } from './helpers/run-cli.js';

const CTX = 64;
const TEXT = DEMO_CORPUS.repeat(2);
/** |ln PPL_wgarray - ln PPL_llama.cpp| allowed: the mean |Δ log p| measured in model-forward.test.ts is 9e-5 (F32) and 4e-2 (Q4_K_M). */
const LN_PPL_TOL: Record<string, number> = { f32: 5e-4, Q4_K_M: 0.08 };

let dir: string;
let device: Device;
const model = syntheticModel({ seed: 21, layers: 2, hidden: 128, heads: 4, kvHeads: 2, ff: 256 });
const files: Record<string, string> = {};

const cli = (args: string[]) => runCliCaptured(args, { device });

beforeAll(async () => {
  device = await init();
  dir = mkdtempSync(join(tmpdir(), 'wgarray-eval-'));
  const hf = join(dir, 'hf');
  await writeSyntheticModel(hf, model);
  for (const t of ['f32', 'Q4_K_M']) {
    files[t] = join(dir, `${t}.gguf`);
    const r = await cli(['convert', hf, '-o', files[t], '--outtype', t, '--quiet']);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  writeFileSync(join(dir, 'text.txt'), TEXT);
}, 120_000);

afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await close();
});

describe('eval', () => {
  test('PPL equals the one from llama.cpp\'s own probabilities on the same chunks', async () => {
    const chunks = textChunks(await loadModel(files.f32, { device }), TEXT, { ctx: CTX, chunks: 3 });
    expect(chunks.length).toBe(3);
    const refs = await llamaProbabilities([files.f32, files.Q4_K_M], chunks);
    for (const [k, t] of ['f32', 'Q4_K_M'].entries()) {
      let nll = 0;
      let n = 0;
      for (const [c, chunk] of chunks.entries()) {
        for (let i = CTX / 2; i < CTX - 1; i++) {
          nll -= Math.log(refs[k][c][i][chunk[i + 1]]);
          n++;
        }
      }
      const ours = await perplexity(await loadModel(files[t], { device }), TEXT, { ctx: CTX, chunks: 3 });
      expect(ours.tokens).toBe(n);
      const diff = Math.abs(Math.log(ours.ppl) - nll / n);
      console.log(`${t}: PPL ${ours.ppl.toFixed(4)} (llama.cpp ${Math.exp(nll / n).toFixed(4)}), |Δ ln PPL| ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(LN_PPL_TOL[t]);
    }
  }, 120_000);

  test('KLD of a model against itself is 0; against its Q4_K_M it is not', async () => {
    const f32 = await loadModel(files.f32, { device });
    const self = await evaluate(f32, await loadModel(files.f32, { device }), TEXT, { ctx: CTX, chunks: 2 });
    expect(self.kldMean).toBe(0);
    expect(self.kld.max).toBe(0);
    expect(self.sameTop).toBe(1);
    expect(self.rmsDp).toBe(0);
    expect(self.pplRatio).toBe(1);
    expect(self.tokens).toBe(2 * (CTX / 2 - 1));
    const q = await evaluate(f32, await loadModel(files.Q4_K_M, { device }), TEXT, { ctx: CTX, chunks: 2 });
    expect(q.kldMean).toBeGreaterThan(0);
    expect(q.kld.min).toBeGreaterThanOrEqual(-1e-12);
    expect(q.kld.max).toBeGreaterThanOrEqual(q.kld.p99);
    expect(q.kld.median).toBeLessThanOrEqual(q.kld.p90);
    expect(q.rmsDp).toBeGreaterThan(0);
    console.log(`Q4_K_M vs F32: PPL ratio ${q.pplRatio.toFixed(4)}, mean KLD ${q.kldMean.toExponential(3)}, same top ${(100 * q.sameTop).toFixed(1)} %, RMS Δp ${(100 * q.rmsDp).toFixed(3)} %`);
  }, 60_000);

  test('wgarray eval prints llama-perplexity\'s statistics (and --json)', async () => {
    const r = await cli(['eval', files.f32, files.Q4_K_M, '-f', join(dir, 'text.txt'), '-c', String(CTX), '--chunks', '2', '--quiet']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const line of ['PPL(base)', 'PPL(Q)', 'Mean    KLD', 'Median  KLD', '99.0%   KLD', 'RMS Δp', 'Same top p']) expect(r.stdout).toContain(line);
    const j = await cli(['eval', files.f32, files.f32, '-f', join(dir, 'text.txt'), '-c', String(CTX), '--chunks', '2', '--json', '--quiet']);
    expect(JSON.parse(j.stdout).kldMean).toBe(0);
  }, 60_000);
});

describe('quantize --eval', () => {
  const evalArgs = ['-c', String(CTX), '--chunks', '2', '--quiet'];

  test('prints, after quantizing, what wgarray eval prints for the same two files', async () => {
    const out = join(dir, 'eval-Q4_K_M.gguf');
    const q = await cli(['quantize', files.f32, out, 'Q4_K_M', '--eval', join(dir, 'text.txt'), ...evalArgs]);
    expect(q.stderr).toBe('');
    expect(q.code).toBe(0);
    const e = await cli(['eval', files.f32, out, '-f', join(dir, 'text.txt'), ...evalArgs]);
    expect(e.code).toBe(0);
    expect(e.stdout).toContain('PPL(Q)/PPL(base)');
    expect(e.stdout).not.toContain('Mean    KLD: 0.000000'); // a real quantization, not a model against itself
    // the quantize summary, then eval's lines, number for number
    expect(q.stdout.endsWith(e.stdout)).toBe(true);
    const summary = q.stdout.slice(0, -e.stdout.length);
    expect(summary.startsWith(`${out}: `)).toBe(true);
    expect(summary).not.toContain('PPL');

    // --json: stdout is one JSON object, eval's figures as wgarray eval --json gives them
    const jsonOut = join(dir, 'eval-json-Q4_K_M.gguf');
    const qj = await cli(['quantize', files.f32, jsonOut, 'Q4_K_M', '--eval', join(dir, 'text.txt'), ...evalArgs, '--json']);
    expect([qj.code, qj.stderr]).toEqual([0, '']);
    const ej = await cli(['eval', files.f32, jsonOut, '-f', join(dir, 'text.txt'), ...evalArgs, '--json']);
    const parsed = JSON.parse(qj.stdout) as { output: string; type: string; bits_per_weight: number; eval: unknown };
    expect([parsed.output, parsed.type]).toEqual([jsonOut, 'Q4_K_M']);
    expect(parsed.bits_per_weight).toBeGreaterThan(4);
    expect(parsed.eval).toEqual(JSON.parse(ej.stdout));
    const refused = await cli(['quantize', files.f32, join(dir, 'json-no-eval.gguf'), 'Q4_K_M', '--json']);
    expect([refused.code, refused.stderr]).toEqual([1, 'wgarray: error: --json prints the --eval figures as JSON: pass --eval TEXT too (the per-tensor figures go to a file with --report)\n']);
  }, 60_000);

  test('refused before anything is written: a non-GGUF input, an unknown architecture, a short or missing text, --cpu', async () => {
    const short = join(dir, 'short.txt');
    writeFileSync(short, 'Too short.');
    const f = await loadGGUF(files.f32);
    const bert = join(dir, 'eval-bert.gguf');
    const tensors = await f.loadAll();
    await saveGGUF(bert, tensors, { ...f.typedMetadata, 'general.architecture': gguf.string('bert') }, { strictKeyTypes: false });
    for (const a of Object.values(tensors)) a.dispose();
    const cases: [string[], RegExp][] = [
      [['quantize', join(dir, 'hf'), '%OUT', 'Q4_K_M', '--eval', join(dir, 'text.txt')], /--eval needs a GGUF input/],
      [['quantize', bert, '%OUT', 'Q4_K_M', '--eval', join(dir, 'text.txt')], /general\.architecture is "bert"; the forward pass runs/],
      [['quantize', files.f32, '%OUT', 'Q4_K_M', '--eval', short, '-c', String(CTX)], /the text has \d+ tokens; a context of 64 needs at least 128 \(two contexts\)/],
      [['quantize', files.f32, '%OUT', 'Q4_K_M', '--eval', join(dir, 'missing.txt')], /missing\.txt.*cannot read the text file/],
      [['quantize', files.f32, '%OUT', 'Q4_K_M', '--eval', join(dir, 'text.txt'), '-c', '4096'], /longer than the model's context length/],
      [['quantize', files.f32, '%OUT', 'Q4_K_M', '--eval', join(dir, 'text.txt'), '--cpu'], /--eval runs the model on the GPU/],
      [['quantize', files.f32, '%OUT', 'Q4_K_M', '--chunks', '2'], /pass --eval TEXT too/],
    ];
    for (const [i, [args, message]] of cases.entries()) {
      const out = join(dir, `eval-refused-${i}.gguf`);
      const r = await cli(args.map((x) => (x === '%OUT' ? out : x)));
      expect([i, r.code]).toEqual([i, 1]);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
      expect(existsSync(out)).toBe(false);
    }
  }, 60_000);
});

describe('imatrix', () => {
  test('sums equal the float64 reference; the file has llama-imatrix\'s layout', async () => {
    const m = await loadModel(files.f32, { device });
    const result = await computeImatrix(m, TEXT, { ctx: CTX, chunks: 2 });
    const chunks = textChunks(m, TEXT, { ctx: CTX, chunks: 2 });
    const ref = new Map<string, Float64Array>();
    for (const chunk of chunks) {
      referenceLogits(model, chunk, (weights, x) => {
        for (const w of weights) {
          let s = ref.get(w);
          if (!s) ref.set(w, (s = new Float64Array(x.length)));
          for (let j = 0; j < x.length; j++) s[j] += x[j] * x[j];
        }
      });
    }
    expect([...result.entries.keys()].sort()).toEqual([...ref.keys()].sort());
    expect(result.entries.size).toBe(2 * 7);
    let worst = 0;
    for (const [name, e] of result.entries) {
      expect(e.counts).toEqual([2 * CTX]);
      const r = ref.get(name)!;
      for (let j = 0; j < r.length; j++) worst = Math.max(worst, Math.abs(e.sums[j] - r[j]) / r[j]);
    }
    console.log(`imatrix: largest relative difference from the float64 reference ${worst.toExponential(2)}`);
    // float32 activations through two layers and float32 row sums (measured 8.6e-7 relative; a 1e-4 scaling error fails)
    expect(worst).toBeLessThan(1e-5);

    const out = join(dir, 'imatrix.gguf');
    await saveImatrix(out, result, ['calib.txt']);
    const { typedMetadata: meta, tensorInfos } = await hfParse(out, { allowLocalFile: true, typedMetadata: true });
    const t = (k: string) => [meta[k as keyof typeof meta]?.type, meta[k as keyof typeof meta]?.value];
    expect(t('general.type')).toEqual([GGUFValueType.STRING, 'imatrix']);
    expect(t('imatrix.chunk_count')).toEqual([GGUFValueType.UINT32, 2]);
    expect(t('imatrix.chunk_size')).toEqual([GGUFValueType.UINT32, CTX]);
    expect(t('imatrix.datasets')).toEqual([GGUFValueType.ARRAY, ['calib.txt']]);
    const names = [...result.entries.keys()].sort();
    expect(tensorInfos.map((i) => i.name)).toEqual(names.flatMap((n) => [`${n}.in_sum2`, `${n}.counts`]));
    for (const info of tensorInfos) {
      expect(info.dtype).toBe(0); // F32
      const cols = result.entries.get(info.name.replace(/\.(in_sum2|counts)$/, ''))!.sums.length;
      expect(info.shape.map(Number)).toEqual(info.name.endsWith('.counts') ? [1] : [cols]);
    }
    const back = await loadGGUF(out);
    const counts = new Float32Array((await back.readTensorBytes('blk.0.attn_q.weight.counts')).slice().buffer);
    expect([...counts]).toEqual([2 * CTX]);

    // llama.cpp's own reader (common_imatrix_load, what llama-quantize --imatrix calls) reads it back
    if (imatrixLoaderAvailable()) {
      const l = readImatrixWithLlama(out);
      expect(l.legacy).toBe(0);
      expect([l.chunk_count, l.chunk_size, l.datasets]).toEqual([2, CTX, ['calib.txt']]);
      expect(Object.keys(l.entries)).toEqual(names);
      for (const n of names) {
        expect(l.entries[n].counts).toEqual([2 * CTX]);
        // printed with 9 significant digits: exact for float32
        expect(l.entries[n].sums.map(Math.fround)).toEqual([...Float32Array.from(result.entries.get(n)!.sums)]);
      }
    }
  }, 180_000);

  test('wgarray imatrix writes the file and prints the running perplexity', async () => {
    const out = join(dir, 'cli-imatrix.gguf');
    const r = await cli(['imatrix', files.Q4_K_M, '-f', join(dir, 'text.txt'), '-o', out, '-c', String(CTX), '--chunks', '2']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^\[1\]\d+\.\d{4},.*\[2\]\d+\.\d{4},\nFinal estimate: PPL = \d+\.\d{4}\n$/s);
    expect(r.stdout).toContain('14 entries over 2 chunks of 64 tokens');
    // and wgarray quantize --imatrix reads it: every blk.* matrix quantized with its weights
    const q = await cli(['quantize', files.f32, join(dir, 'cli-imatrix-Q4_K_M.gguf'), 'Q4_K_M', '--imatrix', out, '--report', join(dir, 'cli-imatrix.json'), '--quiet']);
    expect(q.stderr).toBe('');
    expect(q.code).toBe(0);
    const report = JSON.parse(readFileSync(join(dir, 'cli-imatrix.json'), 'utf8')) as { tensors: { name: string; to: string; imatrix?: boolean }[] };
    const matrices = report.tensors.filter((t) => /^blk\.\d+\.(attn_[qkv]|attn_output|ffn_(gate|up|down))\.weight$/.test(t.name));
    expect(matrices).toHaveLength(14);
    // each one with its weights, except where the mix chose a type that ignores them (Q8_0 fallbacks of this narrow model)
    for (const t of matrices) expect([t.name, t.imatrix ?? false]).toEqual([t.name, t.to !== 'q8_0']);
    expect(matrices.filter((t) => t.imatrix).length).toBeGreaterThan(10);
  }, 60_000);
});

describe('bad input: one-line typed errors', () => {
  test('text shorter than two contexts, context longer than the model\'s', async () => {
    const m = await loadModel(files.f32, { device });
    expect(() => textChunks(m, 'Too short.', { ctx: CTX })).toThrow(ArgumentError);
    expect(() => textChunks(m, 'Too short.', { ctx: CTX })).toThrow(/the text has \d+ tokens; a context of 64 needs at least 128 \(two contexts\)/);
    expect(() => textChunks(m, TEXT, { ctx: m.config.contextLength + 1 })).toThrow(/longer than the model's context length/);
    const r = await cli(['eval', files.f32, files.f32, '-f', join(dir, 'text.txt'), '-c', '4096']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('mismatched vocabularies', async () => {
    const other = syntheticModel({ seed: 22, layers: 1, hidden: 64, heads: 2, kvHeads: 1, ff: 128, vocab: 400 });
    const hf = join(dir, 'hf-other');
    await writeSyntheticModel(hf, other);
    const out = join(dir, 'other.gguf');
    expect((await cli(['convert', hf, '-o', out, '--outtype', 'f32', '--quiet'])).code).toBe(0);
    await expect(evaluate(await loadModel(files.f32, { device }), await loadModel(out, { device }), TEXT, { ctx: CTX })).rejects.toThrow(/vocabularies differ: .* has 512 tokens, .* has 400/);
  }, 60_000);

  test('an architecture the forward pass does not know', async () => {
    const f = await loadGGUF(files.f32);
    const out = join(dir, 'unknown-arch.gguf');
    const tensors = await f.loadAll();
    await saveGGUF(out, tensors, { ...f.typedMetadata, 'general.architecture': gguf.string('bert') }, { strictKeyTypes: false });
    for (const a of Object.values(tensors)) a.dispose();
    await expect(loadModel(out, { device })).rejects.toThrow(FormatError);
    await expect(loadModel(out, { device })).rejects.toThrow(/general\.architecture is "bert"; the forward pass runs llama, mistral, qwen2/);
  });

  test('a model too big for the GPU: a LimitError with the numbers', async () => {
    const f = await loadGGUF(files.f32);
    const small = Object.create(device, { limits: { value: { ...device.limits, maxBufferSize: 100_000 } } }) as Device;
    expect(() => new Model(f, small)).toThrow(LimitError);
    expect(() => new Model(f, small)).toThrow(/tensor '[\w.]+' takes \d+ bytes on the GPU, more than this device's largest buffer \(100000 bytes\)/);
  });
});
