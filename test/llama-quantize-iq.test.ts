// The IQ presets (IQ1_S ... IQ3_M) and Q2_K_S against llama.cpp's own type
// choice and bytes, independent of which IQ formats wgarray implements:
//
// - Types, every preset, every tensor: llama_model_quantize (the prebuilt
//   libllama node-llama-cpp ships, through python3's ctypes) in dry-run mode
//   logs the type llama_tensor_get_type chose for each tensor; wgarray's
//   chooseTensorTypes must choose the same, on a dense llama with GQA 2, one
//   with GQA 4 and a tied embedding and rows of 288 (the fallbacks), an
//   8-expert and a 4-expert Qwen3-MoE, each with and without an importance
//   matrix (the rules that change with one). Where llama.cpp says the
//   quantization would require an imatrix, wgarray refuses to plan it without.
// - Bytes: for each of these presets whose every type is in the registry,
//   `wgarray quantize --imatrix` writes exactly llama_model_quantize's file,
//   tensor by tensor (the importance weights reach llama.cpp as
//   llama_model_quantize_params.imatrix, the llama_model_imatrix_data array
//   llama-quantize builds from its --imatrix file).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { close, init } from '../src/runtime/device.js';
import { syntheticModel, writeSyntheticModel, type SyntheticModel } from '../src/convert/synthetic.js';
import { modelShapeOf, planFromGGUF } from '../src/convert/from-gguf.js';
import { loadGGUF } from '../src/io/gguf/reader.js';
import { saveGGUF } from '../src/io/index.js';
import { loadImatrix } from '../src/io/imatrix.js';
import { mulberry32 } from '../src/runtime/host-random.js';
import { chooseTensorTypes, FTYPE, guessFtype, LLAMA_QUANT_PRESETS, llamaPreset, missingFormats, requiresImatrix, type QuantPreset } from '../src/quant/presets.js';
import { QUANT_FORMATS } from '../src/quant/registry.js';
import { ggmlType } from '../src/runtime/ggml-types.js';
import { REPO } from './helpers/child.js';
import { llamaQuantizeAvailable, llamaQuantizeReport, runLlama, typesFromLog, type QuantizeJob } from './helpers/llama.js';
import { runCliCaptured } from './helpers/run-cli.js';

const PRESETS: QuantPreset[] = LLAMA_QUANT_PRESETS.filter((p) => /^IQ[123]_/.test(p.name) || p.name === 'Q2_K_S');
/** The presets whose every type the registry implements: byte-checked against llama.cpp. */
const MADE = PRESETS.filter((p) => missingFormats(p).length === 0);

const device = await init();

const cli = (args: string[]) => runCliCaptured(args, { device });

const dir = mkdtempSync(join(tmpdir(), 'wgarray-iq-presets-'));

/** llama-imatrix's file for `gguf`: in_sum2 / counts per 2-D and 3-D weight (one row per expert), all but `skip`. */
async function writeImatrix(gguf: string, path: string, seed: number, skip: string[] = []): Promise<void> {
  const g = await loadGGUF(gguf);
  const rand = mulberry32(seed);
  const tensors: [string, { shape: number[]; dtype: 'float32'; data: Float32Array }][] = [];
  for (const t of g.tensorInfos) {
    if (t.shape.length < 2 || skip.includes(t.name)) continue;
    const n = t.shape[t.shape.length - 1];
    const experts = t.shape.length >= 3 ? t.shape[0] : 1;
    const count = 512 * 3;
    const sums = Float32Array.from({ length: n * experts }, (_, i) => count * Math.exp(4 * (rand() - 0.5)) * (i % 29 === 0 ? 50 : 1));
    tensors.push([`${t.name}.in_sum2`, { shape: [experts, n], dtype: 'float32', data: sums }]);
    tensors.push([`${t.name}.counts`, { shape: [experts, 1], dtype: 'float32', data: new Float32Array(experts).fill(count) }]);
  }
  await saveGGUF(path, tensors, {
    'general.type': 'imatrix',
    'imatrix.datasets': ['iq-calibration.txt'],
    'imatrix.chunk_count': 3,
    'imatrix.chunk_size': 512,
  } as never);
}

/** The weights llama-quantize hands llama_model_quantize, as the oracle's JSON. */
async function weightsJson(imatrix: string): Promise<string> {
  const im = await loadImatrix(imatrix);
  const path = `${imatrix}.json`;
  writeFileSync(path, JSON.stringify(Object.fromEntries([...im.entries].map(([k, v]) => [k, [...v]]))));
  return path;
}

interface Fixture {
  name: string;
  hf: string;
  gguf: string;
  imatrix: string;
  json: string;
}

async function fixture(name: string, model: SyntheticModel, seed: number): Promise<Fixture> {
  const hf = join(dir, name);
  await writeSyntheticModel(hf, model);
  const gguf = join(dir, `${name}-f32.gguf`);
  const r = await cli(['convert', hf, '-o', gguf, '--outtype', 'f32', '--quiet', '--cpu']);
  if (r.code !== 0) throw new Error(r.stderr);
  const imatrix = join(dir, `${name}-imatrix.gguf`);
  await writeImatrix(gguf, imatrix, seed);
  return { name, hf, gguf, imatrix, json: await weightsJson(imatrix) };
}

// 8 layers, so that the n/8 and 7n/8 layer rules pick layers
const FIXTURES: Fixture[] = [
  await fixture('llama GQA 2', syntheticModel({ seed: 71, layers: 8, hidden: 256, heads: 4, kvHeads: 2, ff: 256, vocab: 320 }), 1),
  await fixture('llama GQA 4, tied, rows of 288', syntheticModel({ seed: 73, layers: 8, hidden: 256, heads: 4, kvHeads: 1, ff: 288, vocab: 320, tied: true }), 2),
  await fixture('qwen3moe 8 experts', syntheticModel({ seed: 79, arch: 'qwen3moe', layers: 8, hidden: 256, heads: 4, kvHeads: 2, headDim: 64, ff: 256, experts: 8, expertFf: 64, vocab: 320 }), 3),
  await fixture('qwen3moe 4 experts', syntheticModel({ seed: 83, arch: 'qwen3moe', layers: 2, hidden: 256, heads: 4, kvHeads: 4, headDim: 64, ff: 256, experts: 4, expertFf: 32, vocab: 320 }), 4),
];
// the byte test's model: rows of 256 where the IQ types go, small otherwise (ggml's IQ1/IQ2 searches are slow)
const TINY = await fixture('tiny llama', syntheticModel({ seed: 89, layers: 1, hidden: 256, heads: 1, kvHeads: 1, headDim: 32, ff: 32, vocab: 320 }), 5);

const ORACLE = llamaQuantizeAvailable();
const tag = (s: string) => s.replace(/[^\w]+/g, '_');

/** llama.cpp's type per tensor for every fixture x preset x (with, without imatrix), from its dry run. */
const llamaTypes = new Map<string, { types: Map<string, string>; requiresImatrix: boolean }>();
const key = (f: Fixture, p: QuantPreset, withImatrix: boolean) => `${f.name} ${p.name} ${withImatrix ? 'imatrix' : 'plain'}`;
// An imatrix without two tensors that need no weights (the token embedding, a row-32 fallback):
// llama.cpp quantizes them without ("did not find weights for ..."), and so must wgarray.
// Checked on Q2_K_S and IQ3_S (no IQ1/IQ2 grid set-up: the behaviour does not depend on the format).
const PARTIAL_SKIP = ['token_embd.weight', 'blk.0.attn_output.weight'];
const PARTIAL_CASES = MADE.filter((p) => p.name === 'Q2_K_S' || p.name === 'IQ3_S');
const partialImatrix = join(dir, 'tiny-partial.gguf');
await writeImatrix(TINY.gguf, partialImatrix, 5, PARTIAL_SKIP);
// Per preset that has one, an imatrix without the first tensor whose type needs weights: llama.cpp refuses
// ("Missing importance matrix for tensor ... in a very low-bit quantization"), and so must wgarray.
const tinyInfos = (await loadGGUF(TINY.gguf)).tensorInfos.map((t) => ({ name: t.name, shape: t.shape, type: t.type }));
const tinyModel = modelShapeOf(await loadGGUF(TINY.gguf));
const needsWeights = new Map<string, string>();
for (const p of PRESETS) {
  const c = chooseTensorTypes(tinyInfos, p, tinyModel, { hasImatrix: true }).find((x) => x.to !== x.from && requiresImatrix(x.name, x.to, p.ftype));
  if (!c) continue; // IQ3_S, IQ3_M: IQ3_S blocks need no weights
  needsWeights.set(p.name, c.name);
  await writeImatrix(TINY.gguf, join(dir, `tiny-without-${p.name}.gguf`), 5, [c.name]);
}
const MISSING_CASES = MADE.filter((p) => needsWeights.has(p.name));
const missingOutcomes = new Map<string, { ok: boolean; log: string }>();

// llama.cpp's side, in one process (each IQ1/IQ2 grid is set up once): the dry runs of every
// fixture x preset x (with, without imatrix); for the presets wgarray makes, real quantization
// with the imatrix, with the partial one, and without a needed tensor.
if (ORACLE) {
  const jobs: { key: string; job: QuantizeJob }[] = FIXTURES.flatMap((f) =>
    PRESETS.flatMap((p) =>
      [false, true].map((withImatrix) => ({
        key: key(f, p, withImatrix),
        job: { inp: f.gguf, out: join(dir, 'dry-run.gguf'), ftype: p.ftype, params: { dryRun: true, ...(withImatrix ? { imatrixJson: f.json } : {}) } },
      })),
    ),
  );
  for (const p of MADE) jobs.push({ key: `ref ${p.name}`, job: { inp: TINY.gguf, out: join(dir, `ref-${p.name}.gguf`), ftype: p.ftype, params: { imatrixJson: TINY.json } } });
  const partialJson = await weightsJson(partialImatrix);
  for (const p of PARTIAL_CASES) jobs.push({ key: `partial ${p.name}`, job: { inp: TINY.gguf, out: join(dir, `ref-partial-${p.name}.gguf`), ftype: p.ftype, params: { imatrixJson: partialJson } } });
  for (const p of MISSING_CASES) {
    const json = await weightsJson(join(dir, `tiny-without-${p.name}.gguf`));
    jobs.push({ key: `missing ${p.name}`, job: { inp: TINY.gguf, out: join(dir, `ref-missing-${p.name}.gguf`), ftype: p.ftype, params: { imatrixJson: json } } });
  }
  const outcomes = await llamaQuantizeReport(jobs.map((j) => j.job));
  for (const [i, o] of outcomes.entries()) {
    const k = jobs[i].key;
    if (k.startsWith('missing ')) {
      missingOutcomes.set(k.slice('missing '.length), o);
      continue;
    }
    if (!o.ok) throw new Error(`llama_model_quantize failed for ${k}:\n${o.log.slice(-2000)}`);
    if (!k.startsWith('ref ') && !k.startsWith('partial ')) llamaTypes.set(k, { types: typesFromLog(o.log), requiresImatrix: /will require an imatrix/.test(o.log) });
  }
}

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await close();
});

describe.skipIf(!ORACLE)('IQ presets: wgarray chooses llama_model_quantize\'s type for every tensor (needs python3 and the prebuilt libllama)', () => {
  for (const f of FIXTURES) {
    test(f.name, async () => {
      const g = await loadGGUF(f.gguf);
      const model = modelShapeOf(g);
      const infos = g.tensorInfos.map((t) => ({ name: t.name, shape: t.shape, type: t.type }));
      const diffs: string[] = [];
      let compared = 0;
      for (const p of PRESETS) {
        for (const withImatrix of [false, true]) {
          const ref = llamaTypes.get(key(f, p, withImatrix))!;
          expect(ref.types.size, `${p.name}: llama.cpp's log names every tensor`).toBe(infos.length);
          const ours = chooseTensorTypes(infos, p, model, { hasImatrix: withImatrix });
          for (const c of ours) {
            compared++;
            if (ref.types.get(c.name) !== c.to.name) diffs.push(`${p.name}${withImatrix ? ' --imatrix' : ''} ${c.name}: ours ${c.to.name}, llama.cpp ${ref.types.get(c.name)}`);
          }
          // the plan of a preset wgarray makes goes through planFromGGUF (the imatrix sets has_imatrix)
          if (missingFormats(p).length === 0) {
            if (withImatrix) {
              const plan = await planFromGGUF(f.gguf, p, { imatrix: await loadImatrix(f.imatrix) });
              for (const t of plan.tensors) if (ref.types.get(t.name) !== t.to.name) diffs.push(`${p.name} planFromGGUF --imatrix ${t.name}: ${t.to.name}, llama.cpp ${ref.types.get(t.name)}`);
            } else if (ref.requiresImatrix) {
              await expect(planFromGGUF(f.gguf, p), `${p.name} without an imatrix`).rejects.toThrow(new RegExp(`${p.name} requires an importance matrix`));
            } else {
              await expect(planFromGGUF(f.gguf, p)).resolves.toBeDefined();
            }
          }
        }
      }
      expect(diffs).toEqual([]);
      expect(compared).toBe(PRESETS.length * 2 * infos.length);
    }, 60_000);
  }

  test('the fixtures take the rules that differ: imatrix, GQA, experts, fallbacks', () => {
    const t = (f: number, p: string, im: boolean, name: string) => llamaTypes.get(key(FIXTURES[f], PRESETS.find((x) => x.name === p)!, im))!.types.get(name);
    // IQ3_XXS: attn_v IQ3_S without an imatrix, IQ3_XXS with one (GQA < 4), Q4_K with GQA 4
    expect([t(0, 'IQ3_XXS', false, 'blk.3.attn_v.weight'), t(0, 'IQ3_XXS', true, 'blk.3.attn_v.weight'), t(1, 'IQ3_XXS', true, 'blk.3.attn_v.weight')]).toEqual(['iq3_s', 'iq3_xxs', 'q4_K']);
    // IQ3_XXS ffn_down without an imatrix: Q4_K in the first n/8 layers, Q3_K after
    expect([t(0, 'IQ3_XXS', false, 'blk.0.ffn_down.weight'), t(0, 'IQ3_XXS', false, 'blk.1.ffn_down.weight'), t(0, 'IQ3_XXS', true, 'blk.1.ffn_down.weight')]).toEqual(['q4_K', 'q3_K', 'iq3_xxs']);
    // IQ2_M: 8 experts give attn_output Q5_K; IQ1_M's attn_v is Q4_K with 4+ experts, Q2_K dense with GQA 2
    expect([t(2, 'IQ2_M', true, 'blk.0.attn_output.weight'), t(3, 'IQ1_M', true, 'blk.0.attn_v.weight'), t(0, 'IQ1_M', true, 'blk.0.attn_v.weight')]).toEqual(['q5_K', 'q4_K', 'q2_K']);
    // rows of 288: IQ2_XXS falls back to IQ4_NL (Q4_0 for the first layer's Q2_K)
    expect([t(1, 'IQ2_XXS', true, 'blk.0.ffn_down.weight'), t(1, 'IQ2_XXS', true, 'blk.5.ffn_down.weight')]).toEqual(['q4_0', 'iq4_nl']);
    // IQ3_XS: gate and up of the middle layers to IQ3_XXS (layer read from the name with experts)
    expect([t(2, 'IQ3_XS', true, 'blk.0.ffn_gate_exps.weight'), t(2, 'IQ3_XS', true, 'blk.3.ffn_gate_exps.weight')]).toEqual(['iq3_s', 'iq3_xxs']);
  });

  test(`wgarray quantize --imatrix = llama_model_quantize, byte for byte, for the presets wgarray makes (${MADE.map((p) => p.name).join(' ') || 'none'})`, async () => {
    // eslint-disable-next-line no-console
    console.log(`IQ presets byte-checked against llama_model_quantize: ${MADE.map((p) => p.name).join(' ') || 'none'}; not made yet: ${PRESETS.filter((p) => !MADE.includes(p)).map((p) => `${p.name} (${missingFormats(p).map((t) => t.name).join('/')})`).join(' ')}`);
    expect(MADE.length).toBeGreaterThan(0);
    for (const p of MADE) {
      const ours = join(dir, `ours-${p.name}.gguf`);
      const r = await cli(['quantize', TINY.gguf, ours, p.name, '--imatrix', TINY.imatrix, '--cpu', '--quiet']);
      expect(r.code, r.stderr).toBe(0);
      const a = await loadGGUF(ours);
      const b = await loadGGUF(join(dir, `ref-${p.name}.gguf`));
      expect(a.tensorInfos.map((t) => [t.name, t.type.name]).sort(), p.name).toEqual(b.tensorInfos.map((t) => [t.name, t.type.name]).sort());
      for (const t of b.tensorInfos) {
        const [x, y] = [await a.readTensorBytes(t.name), await b.readTensorBytes(t.name)];
        expect(Buffer.compare(Buffer.from(x), Buffer.from(y)), `${p.name} ${t.name} (${t.type.name}) bytes`).toBe(0);
      }
      expect(a.metadata['general.file_type']).toBe(p.ftype);
      expect(a.metadata['general.file_type']).toBe(b.metadata['general.file_type']);
    }
  }, 120_000);

  test(`llama.cpp loads and runs wgarray's file of each preset it makes (${MADE.map((p) => p.name).join(' ')}; one process)`, async () => {
    const runs = await runLlama(MADE.map((p) => join(dir, `ours-${p.name}.gguf`)), { prompt: 'ab', nTokens: 3 });
    for (const [i, run] of runs.entries()) {
      expect(run.generated.length, MADE[i].name).toBe(3);
      expect(run.nVocab).toBe(320);
    }
  }, 120_000);
});

describe.skipIf(!ORACLE)('a tensor without importance weights, as llama_model_quantize (needs python3 and the prebuilt libllama)', () => {
  test(`a type that needs them: refused, naming the tensor (${MISSING_CASES.map((p) => p.name).join(' ')})`, async () => {
    expect(MISSING_CASES.length).toBeGreaterThan(0);
    for (const p of MISSING_CASES) {
      const name = needsWeights.get(p.name)!;
      const ref = missingOutcomes.get(p.name)!;
      expect(ref.ok, `llama.cpp refuses ${p.name} without ${name}`).toBe(false);
      expect(ref.log).toContain(`Missing importance matrix for tensor ${name} in a very low-bit quantization`);
      const out = join(dir, `missing-${p.name}.gguf`);
      const r = await cli(['quantize', TINY.gguf, out, p.name, '--imatrix', join(dir, `tiny-without-${p.name}.gguf`), '--cpu', '--quiet']);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`^wgarray: error: .*tiny-without-${p.name}\\.gguf: missing importance matrix for tensor ${name.replace(/\./g, '\\.')} in a very low-bit quantization`));
      expect(existsSync(out)).toBe(false);
    }
  }, 60_000);

  test('a type that does not: quantized without them, with a note, byte for byte as llama.cpp', async () => {
    expect(PARTIAL_CASES.length).toBeGreaterThan(0);
    for (const p of PARTIAL_CASES) {
      const out = join(dir, `partial-${p.name}.gguf`);
      const report = join(dir, `partial-${p.name}.json`);
      const r = await cli(['quantize', TINY.gguf, out, p.name, '--imatrix', partialImatrix, '--cpu', '--report', report]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`wgarray: note: ${partialImatrix} has no importance weights for ${PARTIAL_SKIP.length} quantized tensor(s), which are quantized without them, as llama-quantize does: ${PARTIAL_SKIP.join(', ')}`);
      const a = await loadGGUF(out);
      const b = await loadGGUF(join(dir, `ref-partial-${p.name}.gguf`));
      for (const t of b.tensorInfos) {
        const [x, y] = [await a.readTensorBytes(t.name), await b.readTensorBytes(t.name)];
        expect(Buffer.compare(Buffer.from(x), Buffer.from(y)), `${p.name} ${t.name} (${t.type.name}) bytes`).toBe(0);
      }
      // the report says, per tensor, whether the importance matrix was used
      const used = Object.fromEntries(JSON.parse(readFileSync(report, 'utf8')).tensors.map((t: { name: string; imatrix: boolean }) => [t.name, t.imatrix]));
      for (const n of PARTIAL_SKIP) expect(used[n], n).toBe(false);
      expect(used['blk.0.attn_q.weight']).toBe(true);
      expect(r.stdout).toMatch(/blk\.0\.attn_q\.weight .* yes/);
      expect(r.stdout).toMatch(/token_embd\.weight .* no/);
    }
  }, 60_000);
});

describe('--imatrix with a Hugging Face input (the imatrix names GGUF tensors, found after the name mapping)', () => {
  test('quantize HF_DIR and convert --outtype give the bytes of quantizing its F32 GGUF with the same imatrix', async () => {
    const viaGguf = join(dir, 'hf-route-gguf.gguf');
    expect((await cli(['quantize', TINY.gguf, viaGguf, 'Q2_K_S', '--imatrix', TINY.imatrix, '--cpu', '--quiet'])).code).toBe(0);
    const viaQuantize = join(dir, 'hf-route-quantize.gguf');
    const q = await cli(['quantize', TINY.hf, viaQuantize, 'Q2_K_S', '--imatrix', TINY.imatrix, '--cpu', '--quiet']);
    expect(q.code, q.stderr).toBe(0);
    const viaConvert = join(dir, 'hf-route-convert.gguf');
    const c = await cli(['convert', TINY.hf, '-o', viaConvert, '--outtype', 'Q2_K_S', '--imatrix', TINY.imatrix, '--cpu', '--quiet']);
    expect(c.code, c.stderr).toBe(0);
    const a = await loadGGUF(viaGguf);
    const entries = (await loadImatrix(TINY.imatrix)).entries.size;
    for (const file of [viaQuantize, viaConvert]) {
      const b = await loadGGUF(file);
      expect(b.tensorInfos.map((t) => [t.name, t.type.name]).sort()).toEqual(a.tensorInfos.map((t) => [t.name, t.type.name]).sort());
      for (const t of a.tensorInfos) {
        const [x, y] = [await a.readTensorBytes(t.name), await b.readTensorBytes(t.name)];
        expect(Buffer.compare(Buffer.from(x), Buffer.from(y)), `${file} ${t.name} (${t.type.name}) bytes`).toBe(0);
      }
      expect(b.metadata['quantize.imatrix.file']).toBe(TINY.imatrix);
      expect(b.metadata['quantize.imatrix.dataset']).toBe('iq-calibration.txt');
      expect(b.metadata['quantize.imatrix.entries_count']).toBe(entries);
      expect(b.metadata['quantize.imatrix.chunks_count']).toBe(3);
      for (const k of ['entries_count', 'chunks_count']) expect(b.metadataTypes[`quantize.imatrix.${k}`]).toBe('u32');
    }
    // the weights are used: without them the bytes differ
    const plain = join(dir, 'hf-route-plain.gguf');
    expect((await cli(['quantize', TINY.hf, plain, 'Q2_K', '--cpu', '--quiet'])).code).toBe(0);
    const withW = join(dir, 'hf-route-q2k.gguf');
    expect((await cli(['quantize', TINY.hf, withW, 'Q2_K', '--imatrix', TINY.imatrix, '--cpu', '--quiet'])).code).toBe(0);
    const [x, y] = [await (await loadGGUF(plain)).readTensorBytes('blk.0.attn_q.weight'), await (await loadGGUF(withW)).readTensorBytes('blk.0.attn_q.weight')];
    expect(Buffer.compare(Buffer.from(x), Buffer.from(y))).not.toBe(0);
  }, 60_000);

  test('refusals: Q2_K_S from a Hugging Face folder without an imatrix, --imatrix with a non-preset --outtype', async () => {
    const r1 = await cli(['convert', TINY.hf, '-o', join(dir, 'r1.gguf'), '--outtype', 'Q2_K_S', '--cpu']);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/^wgarray: error: Q2_K_S requires an importance matrix: pass --imatrix FILE .*tensor 'blk\.0\.attn_k\.weight' would be q2_K/); // the first in llama.cpp's order (layer, then name)
    const r2 = await cli(['convert', TINY.hf, '-o', join(dir, 'r2.gguf'), '--outtype', 'f16', '--imatrix', TINY.imatrix, '--cpu']);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/--imatrix weights a quantization preset .*not --outtype f16/);
    for (const f of ['r1', 'r2']) expect(existsSync(join(dir, `${f}.gguf`))).toBe(false);
  });
});

describe('IQ presets on the command line', () => {
  test('the README\'s preset and format tables state the presets\' ftypes, main types and imatrix needs, and the formats\' sizes', () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const rows = new Map([...readme.matchAll(/^\s*\| ((?:IQ[123]_\w+)) \| (\d+) \| (\w+) \| [^|]+ \| (yes|no) \|$/gm)].map((m) => [m[1], m.slice(2)]));
    expect([...rows.keys()].sort()).toEqual(PRESETS.filter((p) => p.name !== 'Q2_K_S').map((p) => p.name).sort());
    // a dense GQA 2 model of 8 layers, as llama.cpp would plan it without an imatrix
    const f32 = ggmlType('f32');
    const probe = ['token_embd', 'output', ...[0, 1, 2, 3, 4, 5, 6, 7].flatMap((l) => ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'].map((n) => `blk.${l}.${n}`))].map((n) => ({ name: `${n}.weight`, shape: [256, 256], type: f32 }));
    const model = { arch: 'llama', nLayer: 8, nHead: 8, nHeadKv: 4, nExpert: 0 };
    for (const [name, [ftype, main, needs]] of rows) {
      const p = PRESETS.find((x) => x.name === name)!;
      expect([Number(ftype), main.toLowerCase()], name).toEqual([p.ftype, p.defaultType!.name]);
      const needed = chooseTensorTypes(probe, p, model).some((c) => requiresImatrix(c.name, c.to, p.ftype));
      expect(needs, name).toBe(needed ? 'yes' : 'no');
    }
    const formats = new Map([...readme.matchAll(/^\s*\| (IQ[123]_\w+) \| ([\d.]+) \| (\d+) \/ 256 \| ([^|]+) \|$/gm)].map((m) => [m[1].toLowerCase(), m.slice(2)]));
    expect(formats.size).toBe(7);
    for (const [name, [bpw, bytes, use]] of formats) {
      const t = ggmlType(name);
      expect([Number(bpw), Number(bytes)], name).toEqual([(t.typeSize * 8) / t.blockSize, t.typeSize]);
      expect(use.startsWith('required'), name).toBe(requiresImatrix('blk.0.attn_q.weight', t, FTYPE.MOSTLY_Q4_K_M));
      // a format's own descriptor, once it is in the registry: where ggml asserts, 'required'
      const f = QUANT_FORMATS.get(name);
      if (f && use.includes('ggml asserts')) expect(f.imatrix, name).toBe('required');
    }
  });

  test('llama.cpp\'s ftype numbers and default types (llama.h, llama_ftype_get_default_type); names and numbers both select', () => {
    const want: [string, number, string][] = [
      ['IQ2_XXS', 19, 'iq2_xxs'], ['IQ2_XS', 20, 'iq2_xs'], ['Q2_K_S', 21, 'q2_K'], ['IQ3_XS', 22, 'iq3_s'], ['IQ3_XXS', 23, 'iq3_xxs'],
      ['IQ1_S', 24, 'iq1_s'], ['IQ3_S', 26, 'iq3_s'], ['IQ3_M', 27, 'iq3_s'], ['IQ2_S', 28, 'iq2_xs'], ['IQ2_M', 29, 'iq2_s'], ['IQ1_M', 31, 'iq1_m'],
    ];
    for (const [name, ftype, type] of want) {
      expect([llamaPreset(name.toLowerCase())?.ftype, llamaPreset(name)?.defaultType?.name], name).toEqual([ftype, type]);
      expect(llamaPreset(String(ftype))?.name).toBe(name);
    }
    expect(PRESETS.map((p) => p.name).sort()).toEqual(want.map((w) => w[0]).sort());
  });

  test('a file without general.file_type: llama.cpp\'s guess from its most common type (the IQ types included)', () => {
    const T = (n: string) => ggmlType(n);
    expect(guessFtype([T('iq3_s'), T('iq3_s'), T('f32')])).toBe(FTYPE.MOSTLY_IQ3_S);
    expect(guessFtype([T('iq2_s'), T('q4_K'), T('iq2_s')])).toBe(FTYPE.MOSTLY_IQ2_S);
    expect(guessFtype([T('iq1_m')])).toBe(FTYPE.MOSTLY_IQ1_M);
    expect(guessFtype([T('q3_K')])).toBe(FTYPE.MOSTLY_Q3_K_M);
    // a tie goes to the type that reached the count first, in layer-then-name order
    const names = ['blk.1.b.weight', 'blk.0.a.weight', 'blk.0.b.weight', 'blk.1.a.weight'];
    expect(guessFtype([T('q4_K'), T('q4_K'), T('f32'), T('f32')], names)).toBe(FTYPE.ALL_F32);
    expect(guessFtype([T('f32'), T('f32'), T('q4_K'), T('q4_K')], names)).toBe(FTYPE.MOSTLY_Q4_K_M);
  });

  test('every format whose ggml quantizer requires weights is one llama-quantize refuses to make without them', () => {
    for (const f of QUANT_FORMATS.values()) {
      if (f.imatrix === 'required') expect(requiresImatrix('blk.0.ffn_up.weight', f.type, FTYPE.MOSTLY_Q4_K_M), f.type.name).toBe(true);
    }
  });

  test('a preset is made exactly when the registry implements every type it can choose; otherwise the error names the missing ones', async () => {
    for (const p of PRESETS) {
      const out = join(dir, `cli-${tag(p.name)}.gguf`);
      const r = await cli(['quantize', TINY.gguf, out, p.name, '--imatrix', TINY.imatrix, '--cpu', '--quiet', '--no-report']);
      const missing = missingFormats(p);
      if (missing.length) {
        expect(r.code, p.name).toBe(1);
        expect(r.stderr).toContain(`quantization type ${p.name} is not supported: its ${missing.map((t) => t.name.toUpperCase()).join('/')} blocks are not implemented`);
        expect(existsSync(out)).toBe(false);
      } else {
        expect(r.code, `${p.name}: ${r.stderr}`).toBe(0);
      }
    }
  }, 120_000);
});
