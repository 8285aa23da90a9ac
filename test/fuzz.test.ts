// A seeded property-based fuzz test over what wgarray reads from files:
// mutated GGUF, safetensors and SentencePiece tokenizer.model files and mutated Hugging Face JSON
// (config.json, tokenizer.json, tokenizer_config.json). The property: every
// input ends in a result or in a WgArrayError — never another error, never a
// stack trace printed by the CLI — and memory stays bounded. Seeded, so a
// failure names the case that reproduces it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { runCli } from '../src/cli/cli.js';
import { planFromGGUF } from '../src/convert/from-gguf.js';
import { planFromHF, planFromSafetensors } from '../src/convert/from-hf.js';
import { encodeSentencePieceModel, parseSentencePieceModel } from '../src/convert/sentencepiece.js';
import { learnSentencePiece, syntheticModel, writeSyntheticModel } from '../src/convert/synthetic.js';
import { WgArrayError } from '../src/errors.js';
import { gguf } from '../src/io/gguf/metadata.js';
import { loadGGUF } from '../src/io/gguf/reader.js';
import { saveGGUF } from '../src/io/gguf/writer.js';
import { loadSafetensors } from '../src/io/safetensors/reader.js';
import { saveSafetensors } from '../src/io/safetensors/writer.js';
import { mulberry32 } from '../src/runtime/host-random.js';
import { quantPreset } from '../src/quant/presets.js';
import { loadLoraAdapter } from '../src/lora/index.js';
import { REPO } from './helpers/child.js';

const SEED = 0x5eed10;
const GGUF_CASES = 1500;
const SAFETENSORS_CASES = 800;
const JSON_CASES = 600;
const SPM_CASES = 600;
const LORA_CASES = 300;
/** Most the process's resident memory may grow over the whole run. */
const MEMORY_BOUND = 512 * 2 ** 20;

let dir: string;
let ggufBase: Uint8Array;
let stBase: Uint8Array;
let hf: string;
let hfFiles: Record<string, string>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wgarray-fuzz-'));
  const g = join(dir, 'base.gguf');
  await saveGGUF(
    g,
    {
      'blk.0.attn_q.weight': { shape: [4, 32], type: 'f32', data: new Float32Array(128).fill(0.25) },
      'blk.0.ffn_up.weight': { shape: [2, 32], type: 'f16', data: new Uint16Array(64).fill(0x3c00) },
      'output_norm.weight': { shape: [32], type: 'f32', data: new Float32Array(32).fill(1) },
    },
    {
      'general.architecture': 'llama',
      'general.name': 'fuzz',
      'llama.block_count': 1,
      'llama.attention.head_count': 2,
      'tokenizer.ggml.tokens': ['a', 'b', 'c'],
      'tokenizer.ggml.scores': gguf.array('f32', [0, -1, -2]),
      'x.nested': gguf.array('array', [gguf.array('u32', [1, 2]), gguf.array('u32', [])]),
      'x.flag': true,
    },
  );
  ggufBase = readFileSync(g);
  const s = join(dir, 'base.safetensors');
  await saveSafetensors(
    s,
    {
      'model.layers.0.mlp.up_proj.weight': { shape: [2, 8], dtype: 'float32', data: new Float32Array(16).fill(0.5) },
      'model.norm.weight': { shape: [8], dtype: 'float16', data: new Uint16Array(8).fill(0x3c00) },
    },
    { format: 'pt', 'general.name': 'fuzz' },
  );
  stBase = readFileSync(s);
  hf = join(dir, 'hf');
  await writeSyntheticModel(hf, syntheticModel({ seed: 3, layers: 1, hidden: 32, heads: 2, kvHeads: 1, ff: 64, vocab: 280, dtype: 'float16' }));
  hfFiles = {};
  for (const n of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) hfFiles[n] = readFileSync(join(hf, n), 'utf8');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);

const INTERESTING_U64 = [0n, 1n, 2n, 7n, 255n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];

/** A binary mutation: byte flips, interesting u64s, truncation, insertion, duplication. */
function mutateBytes(base: Uint8Array, r: Rand, headerEnd: number): Uint8Array {
  let b = Uint8Array.from(base);
  const steps = 1 + int(r, 4);
  for (let s = 0; s < steps; s++) {
    // mostly inside the header, where the parser works
    const at = () => (r() < 0.85 ? int(r, Math.max(1, Math.min(b.length, headerEnd))) : int(r, Math.max(1, b.length)));
    switch (int(r, 6)) {
      case 0:
        b[at()] = int(r, 256);
        break;
      case 1: {
        const p = at();
        if (p + 8 <= b.length) new DataView(b.buffer).setBigUint64(p, INTERESTING_U64[int(r, INTERESTING_U64.length)], true);
        break;
      }
      case 2: {
        const p = at();
        if (p + 4 <= b.length) new DataView(b.buffer).setUint32(p, [0, 1, 8, 9, 12, 13, 30, 40, 0xffffffff][int(r, 9)], true);
        break;
      }
      case 3:
        b = b.slice(0, at());
        break;
      case 4: {
        const p = at();
        const extra = Uint8Array.from({ length: 1 + int(r, 16) }, () => int(r, 256));
        b = Uint8Array.from([...b.subarray(0, p), ...extra, ...b.subarray(p)]);
        break;
      }
      default: {
        const p = at();
        const len = int(r, 64);
        b = Uint8Array.from([...b.subarray(0, p), ...b.subarray(p, p + len), ...b.subarray(p)]);
      }
    }
  }
  return b;
}

/** Every JSON path of `root` (iteratively), as key lists. */
function paths(root: unknown): (string | number)[][] {
  const out: (string | number)[][] = [];
  const stack: { v: unknown; p: (string | number)[] }[] = [{ v: root, p: [] }];
  while (stack.length) {
    const { v, p } = stack.pop()!;
    if (p.length) out.push(p);
    if (Array.isArray(v)) v.forEach((x, i) => stack.push({ v: x, p: [...p, i] }));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) stack.push({ v: x, p: [...p, k] });
  }
  return out;
}

/** A hostile JSON value. */
function hostileValue(r: Rand): unknown {
  const nest = (depth: number, wrap: (x: unknown) => unknown) => {
    let v: unknown = { type: 'ByteLevel' };
    for (let i = 0; i < depth; i++) v = wrap(v);
    return v;
  };
  const choices: (() => unknown)[] = [
    () => null,
    () => true,
    () => -1,
    () => 0,
    () => 1.5,
    () => 2 ** 53,
    () => 1e308,
    () => -1e308,
    () => 2 ** 40,
    () => '',
    () => 'x',
    () => '\n\x1b[31m' + 'y'.repeat(int(r, 6000)),
    () => [],
    () => {},
    () => [null, null],
    () => [['a', 'b'], 5],
    () => ({ type: 'Sequence', pretokenizers: int(r, 3) ? 5 : [null] }),
    () => ({ type: 'TemplateProcessing', single: [null, { SpecialToken: 7 }] }),
    () => nest(1 + int(r, 300), (x) => ({ type: 'Sequence', pretokenizers: [x] })),
    () => nest(1 + int(r, 300), (x) => [x]),
    () => new Array(int(r, 20000)).fill(0),
    () => ({ content: 5 }),
  ];
  return choices[int(r, choices.length)]();
}

/** Sets (or deletes) the value at `path` in `root`. */
function setAt(root: Record<string, unknown>, path: (string | number)[], value: unknown, remove: boolean): void {
  let v: unknown = root;
  for (const k of path.slice(0, -1)) {
    if (!v || typeof v !== 'object') return; // an earlier edit of this case replaced the way there
    v = (v as Record<string | number, unknown>)[k];
  }
  if (!v || typeof v !== 'object') return;
  const last = path[path.length - 1];
  if (remove && !Array.isArray(v)) delete (v as Record<string | number, unknown>)[last];
  else (v as Record<string | number, unknown>)[last] = value;
}

/** Outcomes of the current test: inputs read whole, inputs refused with a WgArrayError. */
const outcome = { ok: 0, refused: 0 };

/** Runs `fn`; anything thrown must be a WgArrayError. Returns a description of a violation, or undefined. */
async function wgOnly(label: string, fn: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await fn();
    outcome.ok++;
  } catch (e) {
    if (!(e instanceof WgArrayError)) return `${label}: ${(e as Error)?.stack ?? String(e)}`;
    outcome.refused++;
  }
  return undefined;
}

/** The mutations must reach both ends: some inputs still read, most refused. */
function expectBothOutcomes(cases: number) {
  expect(outcome.ok).toBeGreaterThan(cases * 0.03);
  expect(outcome.refused).toBeGreaterThan(cases * 0.2);
  outcome.ok = outcome.refused = 0;
}

let peakRss = 0;
const sampleRss = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));

test(`${GGUF_CASES} mutated GGUF files: loadGGUF, readTensorBytes, planFromGGUF end in a result or a WgArrayError`, async () => {
  const r = mulberry32(SEED);
  const start = process.memoryUsage().rss;
  const headerEnd = ggufBase.length - 4 * 128 - 2 * 64 - 4 * 32;
  const failures: string[] = [];
  const path = join(dir, 'case.gguf');
  for (let i = 0; i < GGUF_CASES && failures.length < 5; i++) {
    writeFileSync(path, mutateBytes(ggufBase, r, headerEnd));
    const bad = await wgOnly(`gguf case ${i} (seed ${SEED})`, async () => {
      const f = await loadGGUF(path);
      for (const t of f.tensorInfos) await f.readTensorBytes(t.name);
      const plan = await planFromGGUF(path, quantPreset('Q8_0'));
      await saveGGUF(join(dir, 'plan-meta.gguf'), {}, plan.metadata.entries);
    });
    if (bad) failures.push(bad);
    if (i % 50 === 0) sampleRss();
  }
  expect(failures).toEqual([]);
  expect(peakRss - start).toBeLessThan(MEMORY_BOUND);
  expectBothOutcomes(GGUF_CASES);
}, 60_000);

test(`${SAFETENSORS_CASES} mutated safetensors files: loadSafetensors, readTensorBytes, planFromSafetensors end in a result or a WgArrayError`, async () => {
  const r = mulberry32(SEED + 1);
  const start = process.memoryUsage().rss;
  const headerEnd = 8 + Number(new DataView(stBase.buffer, stBase.byteOffset).getBigUint64(0, true));
  const failures: string[] = [];
  const path = join(dir, 'case.safetensors');
  const jsonChars = '{}[]":,0123456789-.eE abcdfnrtuFIBU\\';
  for (let i = 0; i < SAFETENSORS_CASES && failures.length < 5; i++) {
    let b: Uint8Array;
    if (r() < 0.6) {
      // edits inside the JSON header, with JSON's own characters
      b = Uint8Array.from(stBase);
      for (let k = 1 + int(r, 3); k > 0; k--) b[8 + int(r, headerEnd - 8)] = jsonChars.charCodeAt(int(r, jsonChars.length));
    } else b = mutateBytes(stBase, r, headerEnd);
    writeFileSync(path, b);
    const bad = await wgOnly(`safetensors case ${i} (seed ${SEED + 1})`, async () => {
      const f = await loadSafetensors(path);
      for (const t of f.tensorInfos) await f.readTensorBytes(t.name);
      const plan = await planFromSafetensors(path, quantPreset('Q8_0'));
      await saveGGUF(join(dir, 'st-meta.gguf'), {}, plan.metadata.entries);
    });
    if (bad) failures.push(bad);
    if (i % 50 === 0) sampleRss();
  }
  expect(failures).toEqual([]);
  expect(peakRss - start).toBeLessThan(MEMORY_BOUND);
  expectBothOutcomes(SAFETENSORS_CASES);
}, 60_000);

test(`${JSON_CASES} mutated config.json / tokenizer.json / tokenizer_config.json: the plan and its metadata end in a result or a WgArrayError`, async () => {
  const r = mulberry32(SEED + 2);
  const start = process.memoryUsage().rss;
  const failures: string[] = [];
  const files = Object.keys(hfFiles);
  const parsed = Object.fromEntries(files.map((n) => [n, JSON.parse(hfFiles[n]) as Record<string, unknown>]));
  const allPaths = Object.fromEntries(files.map((n) => [n, paths(parsed[n])]));
  const caseDir = join(dir, 'hf-case');
  mkdirSync(caseDir);
  for (const n of readdirSync(hf)) writeFileSync(join(caseDir, n), readFileSync(join(hf, n)));
  for (let i = 0; i < JSON_CASES && failures.length < 5; i++) {
    const file = files[int(r, files.length)];
    const j = JSON.parse(hfFiles[file]) as Record<string, unknown>;
    const ps = allPaths[file];
    for (let k = 1 + int(r, 2); k > 0; k--) setAt(j, ps[int(r, ps.length)], hostileValue(r), r() < 0.2);
    for (const n of files) writeFileSync(join(caseDir, n), n === file ? JSON.stringify(j) : hfFiles[n]);
    const bad = await wgOnly(`json case ${i}: ${file} (seed ${SEED + 2})`, async () => {
      const plan = await planFromHF(caseDir, { outtype: 'f16' });
      await saveGGUF(join(dir, 'hf-meta.gguf'), {}, plan.metadata.entries);
    });
    if (bad) failures.push(bad);
    if (i % 50 === 0) sampleRss();
  }
  expect(failures).toEqual([]);
  expect(peakRss - start).toBeLessThan(MEMORY_BOUND);
  expectBothOutcomes(JSON_CASES);
}, 60_000);

test(`${SPM_CASES} mutated SentencePiece tokenizer.model files: parsed or a WgArrayError`, async () => {
  const r = mulberry32(SEED + 4);
  const base = encodeSentencePieceModel(learnSentencePiece('the quick brown fox jumps over the lazy dog. '.repeat(4), 300));
  const failures: string[] = [];
  for (let i = 0; i < SPM_CASES && failures.length < 5; i++) {
    const bytes = mutateBytes(base, r, base.length);
    const bad = await wgOnly(`spm case ${i} (seed ${SEED + 4})`, async () => parseSentencePieceModel(bytes, 'tokenizer.model'));
    if (bad) failures.push(bad);
  }
  expect(failures).toEqual([]);
  expectBothOutcomes(SPM_CASES);
});

test(`${LORA_CASES} mutated adapter_config.json files (--lora): an adapter or a WgArrayError`, async () => {
  const r = mulberry32(SEED + 5);
  const folder = join(dir, 'lora');
  mkdirSync(folder);
  await saveSafetensors(join(folder, 'adapter_model.safetensors'), {
    'base_model.model.model.layers.0.mlp.up_proj.lora_A.weight': { shape: [2, 8], dtype: 'float32', data: new Float32Array(16) },
    'base_model.model.model.layers.0.mlp.up_proj.lora_B.weight': { shape: [8, 2], dtype: 'float32', data: new Float32Array(16) },
  });
  const base = { peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['up_proj'], use_rslora: false, rank_pattern: {}, alpha_pattern: {}, fan_in_fan_out: false, use_dora: false, layers_to_transform: null, modules_to_save: null };
  const keys = [...Object.keys(base), 'lora_parameters', 'fine_tune_type', 'scale', 'rank', 'keys', 'num_layers'];
  const failures: string[] = [];
  for (let i = 0; i < LORA_CASES && failures.length < 5; i++) {
    const config: Record<string, unknown> = { ...base };
    for (let k = 1 + int(r, 2); k > 0; k--) config[keys[int(r, keys.length)]] = hostileValue(r);
    writeFileSync(join(folder, 'adapter_config.json'), JSON.stringify(config));
    const bad = await wgOnly(`lora case ${i} (seed ${SEED + 5})`, () => loadLoraAdapter(folder));
    if (bad) failures.push(bad);
  }
  expect(failures).toEqual([]);
  expectBothOutcomes(LORA_CASES);
});

test('the CLI on mutated inputs: exit 0 or one `wgarray: error:` line, never a stack trace', async () => {
  const r = mulberry32(SEED + 3);
  const headerEnd = ggufBase.length - 4 * 128 - 2 * 64 - 4 * 32;
  const failures: string[] = [];
  // in-process, the whole command (GPU or CPU), on a few cases of each kind
  for (let i = 0; i < 24; i++) {
    const path = join(dir, `cli-${i}.gguf`);
    writeFileSync(path, mutateBytes(ggufBase, r, headerEnd));
    for (const args of [['inspect', path], ['quantize', path, join(dir, `cli-${i}-out.gguf`), 'Q8_0', '-q', '--cpu']]) {
      let err = '';
      const code = await runCli(args, { stdout: { write: () => {} }, stderr: { write: (s: string) => (err += s) }, isTTY: false });
      if (code !== 0 && !/^wgarray: error: [^\n]*\n$/.test(err)) failures.push(`${args.join(' ')} -> ${code}: ${err}`);
    }
  }
  // and the built executable, whose stderr is what a user sees
  for (let i = 0; i < 3; i++) {
    const path = join(dir, `spawn-${i}.gguf`);
    writeFileSync(path, mutateBytes(ggufBase, r, headerEnd));
    const p = spawnSync(process.execPath, [join(REPO, 'dist/src/cli/main.js'), 'inspect', path], { encoding: 'utf8', timeout: 30_000 });
    if (/\n\s+at |internal error/.test(p.stderr) || (p.status !== 0 && !/^wgarray: error: [^\n]*\n$/.test(p.stderr))) failures.push(`spawned inspect ${i} -> ${p.status}: ${p.stderr}`);
  }
  expect(failures).toEqual([]);
}, 60_000);
