// Issue 10: what an adversarial run broke, each case as a small generated
// fixture. Every case ends in one `wgarray: error:` line (a WgArrayError naming
// the file, the key / field / tensor and what was expected) or a correct
// result, with the source and any old output intact.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { firstNonFinite } from '../src/convert/finite.js';
import { runPlan, type ConversionPlan } from '../src/convert/pipeline.js';
import { Metadata } from '../src/convert/metadata.js';
import { syntheticModel, writeSyntheticModel, type SyntheticModel } from '../src/convert/synthetic.js';
import { LimitError } from '../src/errors.js';
import { writeAtomically } from '../src/io/atomic.js';
import { gguf } from '../src/io/gguf/metadata.js';
import { loadGGUF } from '../src/io/gguf/reader.js';
import { saveGGUF } from '../src/io/gguf/writer.js';
import { loadSafetensors } from '../src/io/safetensors/reader.js';
import { saveSafetensors } from '../src/io/safetensors/writer.js';
import { ggmlType } from '../src/runtime/ggml-types.js';
import { close, init } from '../src/runtime/device.js';
import type { Device } from '../src/runtime/device.js';
import { REPO, runChild } from './helpers/child.js';
import { runCliCaptured } from './helpers/run-cli.js';

let dir: string;
let device: Device;
let model: SyntheticModel;
let hf: string;

const cli = (args: string[], dev: Device | undefined = device) => runCliCaptured(args, { device: dev });

/** One clean error line: the prefix, no stack trace, no second line, no terminal escape. */
function expectOneErrorLine(stderr: string, message: RegExp) {
  expect(stderr).toMatch(/^wgarray: error: /);
  expect(stderr).not.toMatch(/internal error|\n\s+at /);
  expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(stderr).not.toMatch(/\x1b/);
  expect(stderr).toMatch(message);
}

const tempsIn = (d: string) => readdirSync(d).filter((n) => n.startsWith('.wgarray-tmp-'));

/** A copy of the tiny Hugging Face folder with `patch` applied to one of its JSON files. */
let copies = 0;
async function patchedFolder(file: string, patch: (j: Record<string, unknown>) => void): Promise<string> {
  const d = join(dir, `hf-${copies++}`);
  mkdirSync(d);
  for (const n of readdirSync(hf)) writeFileSync(join(d, n), readFileSync(join(hf, n)));
  const j = JSON.parse(await readFile(join(d, file), 'utf8')) as Record<string, unknown>;
  patch(j);
  writeFileSync(join(d, file), JSON.stringify(j));
  return d;
}

beforeAll(async () => {
  device = await init();
  dir = mkdtempSync(join(tmpdir(), 'wgarray-reliability-'));
  model = syntheticModel({ seed: 10, layers: 1, hidden: 64, heads: 4, kvHeads: 2, ff: 128, vocab: 300, dtype: 'float16' });
  hf = join(dir, 'tiny');
  await writeSyntheticModel(hf, model);
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await close();
});

describe('1. tokenizer.json of unexpected shapes: one error line naming the file and field', () => {
  const deep = (n: number) => '{"type":"Sequence","pretokenizers":['.repeat(n) + '{"type":"ByteLevel"}' + ']}'.repeat(n);
  test.each<[string, (j: Record<string, unknown>) => void, RegExp]>([
    ['model.merges holding a non-pair', (j) => ((j.model as Record<string, unknown>).merges = [['a', 'b'], 5]), /tokenizer\.json: model\.merges\[1\] is 5; expected a merge/],
    ['added_tokens that is an object', (j) => (j.added_tokens = { id: 1 }), /tokenizer\.json: added_tokens is an object; expected a list/],
    ['a Sequence whose pretokenizers is a number', (j) => (j.pre_tokenizer = { type: 'Sequence', pretokenizers: 5 }), /tokenizer\.json: pre_tokenizer\.pretokenizers is 5; expected a list/],
    ['TemplateProcessing with single [null, null]', (j) => (j.post_processor = { type: 'TemplateProcessing', single: [null, null] }), /tokenizer\.json: post_processor\.single\[0\] is null; expected an object/],
    ['a pre-tokenizer step without a type', (j) => (j.pre_tokenizer = { type: 'Sequence', pretokenizers: [{}] }), /pre_tokenizer\.pretokenizers\[0\]\.type is missing; expected a string naming the step/],
    ['a vocabulary id that is not an integer', (j) => ((j.model as Record<string, Record<string, unknown>>).vocab.a = 1.5), /model\.vocab\['a'\] is 1\.5; expected a token id/],
  ])('%s', async (_, patch, message) => {
    const d = await patchedFolder('tokenizer.json', patch);
    const out = join(dir, 'never.gguf');
    const r = await cli(['convert', d, '-o', out, '-q']);
    expect(r.code).toBe(1);
    expectOneErrorLine(r.stderr, message);
    expect(existsSync(out)).toBe(false);
  });

  test('a pre-tokenizer nested 20,000 levels deep', async () => {
    const d = await patchedFolder('tokenizer.json', () => {});
    const text = readFileSync(join(d, 'tokenizer.json'), 'utf8').replace(/"pre_tokenizer":\{/, `"pre_tokenizer":${deep(20000)},"unused":{`);
    writeFileSync(join(d, 'tokenizer.json'), text);
    const r = await cli(['convert', d, '-o', join(dir, 'never.gguf'), '-q']);
    expect(r.code).toBe(1);
    expectOneErrorLine(r.stderr, /tokenizer\.json: pre_tokenizer(\.pretokenizers\[0\])+ nests more than 64 levels deep/);
  });
});

describe('2. config.json hyperparameters typed and range-checked', () => {
  test.each<[string, (j: Record<string, unknown>) => void, RegExp]>([
    ['num_hidden_layers = 2^53', (j) => (j.num_hidden_layers = 2 ** 53), /config\.json: num_hidden_layers is 9007199254740992; expected an integer from 1 to 2147483647/],
    ['num_hidden_layers = 1e308', (j) => (j.num_hidden_layers = 1e308), /config\.json: num_hidden_layers is 1e\+308; expected an integer/],
    ['max_position_embeddings = 2^40 (out of u32)', (j) => (j.max_position_embeddings = 2 ** 40), /config\.json: max_position_embeddings is 1099511627776; expected an integer from 0 to 2147483647/],
    ['a negative rope_theta', (j) => (j.rope_theta = -10000), /config\.json: rope_theta is -10000; expected a finite number > 0/],
    ['rms_norm_eps as a string', (j) => (j.rms_norm_eps = '1e-5'), /config\.json: rms_norm_eps is the string '1e-5'; expected a finite number/],
    ['an architecture that is an object', (j) => (j.architectures = [{}]), /config\.json: architectures\[0\] is an object; expected an architecture name/],
    ['llama3 rope with high_freq_factor <= low_freq_factor', (j) => (j.rope_scaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 4, high_freq_factor: 4 }), /rope_scaling\.high_freq_factor is 4; expected a number above low_freq_factor/],
    ['more layers than the weights hold', (j) => (j.num_hidden_layers = 1000), /num_hidden_layers is 1000, but the weights hold 1 layer/],
  ])('%s', async (_, patch, message) => {
    const d = await patchedFolder('config.json', patch);
    const r = await cli(['convert', d, '-o', join(dir, 'never.gguf'), '-q']);
    expect(r.code).toBe(1);
    expectOneErrorLine(r.stderr, message);
  });
});

/** The tiny model with a NaN (or ±Inf) in one tensor. */
async function modelWithBadValue(tensorName: string, value: number): Promise<string> {
  const d = join(dir, `nan-${copies++}`);
  const tensors = model.tensors.map((t) => {
    if (t.name !== tensorName) return t;
    return {
      ...t,
      bytes: () => {
        const b = t.bytes().slice();
        const v = new DataView(b.buffer);
        // f16 NaN / Inf bit patterns
        v.setUint16(2 * 5, Number.isNaN(value) ? 0x7e00 : value > 0 ? 0x7c00 : 0xfc00, true);
        return b;
      },
    };
  });
  await writeSyntheticModel(d, { ...model, tensors });
  return d;
}

describe('3. NaN / Inf are refused wherever they would be written', () => {
  test.each([
    ['auto', 'model.layers.0.mlp.up_proj.weight', 'blk.0.ffn_up.weight'],
    ['f32', 'model.layers.0.mlp.up_proj.weight', 'blk.0.ffn_up.weight'],
    ['bf16', 'model.layers.0.self_attn.q_proj.weight', 'blk.0.attn_q.weight'],
    ['Q8_0', 'model.norm.weight', 'output_norm.weight'],
  ])('convert --outtype %s with a NaN in %s', async (outtype, hfName, ggufName) => {
    const d = await modelWithBadValue(hfName, NaN);
    const out = join(dir, `nan-${outtype}.gguf`);
    const r = await cli(['convert', d, '-o', out, '--outtype', outtype, '-q']);
    expect(r.code).toBe(1);
    expectOneErrorLine(r.stderr, new RegExp(`tensor '${ggufName.replaceAll('.', '\\.')}' \\(\\[[0-9, ]+\\], f16\\) holds a NaN value at element 5 \\[(0, )?5\\]`));
    expect(existsSync(out)).toBe(false);
    expect(tempsIn(dir)).toEqual([]);
    // --allow-nonfinite: the rare user who wants the copy gets it
    const ok = await cli(['convert', d, '-o', out, '--outtype', outtype, '-q', '--allow-nonfinite']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
  });

  test('values a --lora transform makes are counted too', async () => {
    const adapter = join(dir, 'nan-lora');
    mkdirSync(adapter);
    writeFileSync(join(adapter, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 2, target_modules: ['up_proj'] }));
    const b = new Float32Array(128 * 2).fill(0.01);
    b[2 * 7] = Infinity; // row 7 of B: the fused row 7 becomes infinite
    await saveSafetensors(join(adapter, 'adapter_model.safetensors'), {
      'base_model.model.model.layers.0.mlp.up_proj.lora_A.weight': { shape: [2, 64], dtype: 'float32', data: new Float32Array(2 * 64).fill(0.01) },
      'base_model.model.model.layers.0.mlp.up_proj.lora_B.weight': { shape: [128, 2], dtype: 'float32', data: b },
    });
    const out = join(dir, 'nan-lora.gguf');
    const r = await cli(['convert', hf, '-o', out, '--outtype', 'f32', '--lora', adapter, '-q']);
    expect(r.code).toBe(1);
    expectOneErrorLine(r.stderr, /tensor 'blk\.0\.ffn_up\.weight' \(\[128, 64\], f16\) holds a \+Inf value at element 448 \[7, 0\]/);
    expect(existsSync(out)).toBe(false);
  });

  test('the CPU path refuses too', async () => {
    const d = await modelWithBadValue('model.norm.weight', -Infinity);
    const r = await cli(['convert', d, '-o', join(dir, 'cpu-nan.gguf'), '--outtype', 'f32', '--cpu', '-q'], undefined);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tensor 'output_norm\.weight' \(\[64\], f16\) holds a -Inf value at element 5 \[5\]/);
  });

  test.each(['F32', 'COPY', 'F16', 'Q8_0'])('quantize %s of a GGUF holding NaN', async (type) => {
    const src = join(dir, `nan-src-${type}.gguf`);
    const data = new Float32Array(64 * 32).fill(0.5);
    data[70] = NaN;
    await saveGGUF(src, { 'blk.0.ffn_up.weight': { shape: [64, 32], type: 'f32', data }, 'output_norm.weight': { shape: [32], type: 'f32', data: new Float32Array(32) } }, { 'general.architecture': 'llama' });
    const out = join(dir, `nan-out-${type}.gguf`);
    for (const dev of [device, undefined]) {
      const r = await cli(['quantize', src, out, type, '-q', ...(dev ? [] : ['--cpu'])], dev);
      expect(r.code).toBe(1);
      expectOneErrorLine(r.stderr, /tensor 'blk\.0\.ffn_up\.weight' \(\[64, 32\], f32\) holds a NaN value at element 70 \[2, 6\]/);
      expect(existsSync(out)).toBe(false);
    }
  });

  test('a generated tensor (rope_freqs) holding NaN is refused by the pipeline', async () => {
    const values = new Float32Array([1, 0.5, NaN, 0.25]);
    const bytes = new Uint8Array(values.buffer);
    const plan: ConversionPlan = {
      description: 'generated',
      metadata: new Metadata(),
      model: { arch: 'llama', nLayer: 0, nHead: 0, nHeadKv: 0, nExpert: 0 },
      tensors: [
        {
          name: 'rope_freqs.weight',
          shape: [4],
          from: ggmlType('f32'),
          to: ggmlType('f32'),
          sourceName: 'rope_freqs.weight',
          source: { label: 'rope_freqs.weight (llama3 rope scaling)', shape: [4], type: ggmlType('f32'), load: async () => { throw new Error('unused'); }, read: async () => bytes },
        },
      ],
    };
    const out = join(dir, 'rope.gguf');
    for (const dev of [device, undefined]) {
      await expect(runPlan(plan, out, { device: dev })).rejects.toThrow(/rope_freqs\.weight \(llama3 rope scaling\): tensor 'rope_freqs\.weight' \(\[4\], f32\) holds a NaN value at element 2 \[2\]/);
    }
    expect(existsSync(out)).toBe(false);
    await runPlan(plan, out, { allowNonFinite: true });
    expect(existsSync(out)).toBe(true);
  });

  test('firstNonFinite: every float format and a block scale', () => {
    const f16 = new Uint8Array(8);
    new DataView(f16.buffer).setUint16(6, 0x7c01, true);
    expect(firstNonFinite(f16, ggmlType('f16'))).toBe(3);
    const bf16 = new Uint8Array(8);
    new DataView(bf16.buffer).setUint16(2, 0xff80, true);
    expect(firstNonFinite(bf16, ggmlType('bf16'))).toBe(1);
    expect(firstNonFinite(new Uint8Array(new Float32Array([1, 2, 3]).buffer), ggmlType('f32'))).toBe(-1);
    // q8_0 block: f16 scale then 32 int8; an infinite scale makes every value non-finite
    const q8 = new Uint8Array(34 * 2);
    new DataView(q8.buffer).setUint16(34, 0x7c00, true);
    q8[36] = 1;
    expect(firstNonFinite(q8, ggmlType('q8_0'))).toBe(32);
  });
});

describe('4. writing over an input is refused (device + inode after symlinks)', () => {
  let src: string;
  let srcBytes: Buffer;
  beforeAll(async () => {
    src = join(dir, 'in.gguf');
    await saveGGUF(src, { 'blk.0.ffn_up.weight': { shape: [32, 64], type: 'f32', data: new Float32Array(32 * 64).fill(1) } }, { 'general.architecture': 'llama' });
    srcBytes = readFileSync(src);
  });

  test('the output is a symlink to the input', async () => {
    const link = join(dir, 'link.gguf');
    symlinkSync(src, link);
    const r = await cli(['quantize', src, link, 'Q8_0', '-q']);
    expect(r.code).toBe(1);
    expectOneErrorLine(r.stderr, /the output .*link\.gguf \(it resolves to .*in\.gguf\) is the input file .*in\.gguf: writing it would destroy the input/);
    expect(readFileSync(src).equals(srcBytes)).toBe(true);
  });

  test('the output is in a symlinked folder, and a hard link', async () => {
    const folderLink = join(dir, 'same-folder');
    symlinkSync(dir, folderLink);
    const r = await cli(['quantize', src, join(folderLink, 'in.gguf'), 'Q8_0', '-q']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is the input file/);
    const hard = join(dir, 'hard.gguf');
    execFileSync('ln', [src, hard]);
    const h = await cli(['quantize', src, hard, 'Q8_0', '-q']);
    expect(h.code).toBe(1);
    expect(h.stderr).toMatch(/hard\.gguf is the input file/);
    expect(readFileSync(src).equals(srcBytes)).toBe(true);
  });

  test('a file of an input folder, and --report over the input', async () => {
    const link = join(dir, 'weights-link.safetensors');
    symlinkSync(join(hf, 'model.safetensors'), link);
    const before = readFileSync(join(hf, 'model.safetensors'));
    const r = await cli(['convert', hf, '-o', link, '-q']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is the input file .*tiny\/model\.safetensors/);
    // a .safetensors file of a Hugging Face folder is read with its folder: its config.json is an input too
    const cfg = readFileSync(join(hf, 'config.json'));
    const sib = await cli(['quantize', join(hf, 'model.safetensors'), join(hf, 'config.json'), 'Q8_0', '-q']);
    expect(sib.code).toBe(1);
    expect(sib.stderr).toMatch(/the output .*config\.json is the input file .*tiny\/config\.json/);
    expect(readFileSync(join(hf, 'config.json')).equals(cfg)).toBe(true);
    const rep = await cli(['quantize', src, join(dir, 'rep-out.gguf'), 'Q8_0', '-q', '--report', src]);
    expect(rep.code).toBe(1);
    expect(rep.stderr).toMatch(/the --report file .*in\.gguf is the input file/);
    expect(readFileSync(join(hf, 'model.safetensors')).equals(before)).toBe(true);
    expect(readFileSync(src).equals(srcBytes)).toBe(true);
  });
});

/** Runs the built CLI; `killWith` is sent once a temporary file of `out` exists. */
function runCliProcess(args: string[], watchDir: string, killWith: NodeJS.Signals): Promise<{ code: number | null; stderr: string; sawTemp: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO, 'dist/src/cli/main.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    let sawTemp = false;
    const poll = setInterval(() => {
      if (!sawTemp && tempsIn(watchDir).length) {
        sawTemp = true;
        child.kill(killWith);
      }
    }, 5);
    child.on('close', (code) => {
      clearInterval(poll);
      resolve({ code, stderr, sawTemp });
    });
  });
}

describe('5. SIGTERM and SIGHUP abort like Ctrl-C; stale temporaries go at the next start', () => {
  let big: string;
  beforeAll(async () => {
    big = join(dir, 'big.gguf');
    // large enough that the CPU quantization is still writing when the signal comes
    const n = 2048 * 2048;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.sin(i);
    await saveGGUF(big, { 'blk.0.ffn_up.weight': { shape: [2048, 2048], type: 'f32', data }, 'blk.0.ffn_down.weight': { shape: [2048, 2048], type: 'f32', data } }, { 'general.architecture': 'llama' });
  });

  test.each([
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)('%s: exit %i, no temporary file, no output', async (signal, exit) => {
    const outDir = join(dir, `sig-${signal}`);
    mkdirSync(outDir);
    const out = join(outDir, 'out.gguf');
    const r = await runCliProcess(['quantize', big, out, 'Q4_K_M', '--cpu', '-q'], outDir, signal);
    expect(r.sawTemp, r.stderr).toBe(true);
    expect(r.code, r.stderr).toBe(exit);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(readdirSync(outDir)).toEqual([]);
  }, 60_000);

  test('a killed writer\'s temporary file is removed when the next save of that target starts', async () => {
    const target = join(dir, 'stale-target.gguf');
    const stale = join(dir, '.wgarray-tmp-999999999-abcdef012345-stale-target.gguf');
    writeFileSync(stale, 'left by a SIGKILL');
    await expect(
      writeAtomically(target, async () => {
        expect(existsSync(stale)).toBe(false);
        throw new Error('this save fails too');
      }),
    ).rejects.toThrow(/this save fails too/);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(target)).toBe(false);
  });
});

/** GGUF v3 bytes with one metadata key holding `inner` empty arrays (array<array<u32>>). */
function nestedEmptyArrays(inner: number): Uint8Array {
  const key = Buffer.from('x.nested');
  const head = 4 + 4 + 8 + 8 + 8 + key.length + 4 + 4 + 8;
  const buf = Buffer.alloc(head + inner * 12);
  let p = 0;
  buf.write('GGUF', p); p += 4;
  buf.writeUInt32LE(3, p); p += 4;
  buf.writeBigUInt64LE(0n, p); p += 8; // tensors
  buf.writeBigUInt64LE(1n, p); p += 8; // kv
  buf.writeBigUInt64LE(BigInt(key.length), p); p += 8;
  key.copy(buf, p); p += key.length;
  buf.writeUInt32LE(9, p); p += 4; // array
  buf.writeUInt32LE(9, p); p += 4; // of arrays
  buf.writeBigUInt64LE(BigInt(inner), p); p += 8;
  for (let i = 0; i < inner; i++) {
    buf.writeUInt32LE(4, p); p += 4; // u32
    buf.writeBigUInt64LE(0n, p); p += 8;
  }
  return buf;
}

describe('6. GGUF parser memory bounded by the file size', () => {
  test('a header of 300,000 empty nested arrays (3.6 MB) is a LimitError, not gigabytes', async () => {
    const path = join(dir, 'nested.gguf');
    writeFileSync(path, nestedEmptyArrays(300_000));
    const before = process.memoryUsage().rss;
    const e = await loadGGUF(path).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(LimitError);
    expect((e as Error).message).toMatch(/nested\.gguf at byte \d+: metadata 'x\.nested'\[\d+\] takes the header's metadata past 78 MiB of memory/);
    // the refusal comes before the parser holds what it counted: well under the file's 4x + 64 MiB
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 2 ** 20);
    const r = await cli(['inspect', path]);
    expect(r.code).toBe(1);
    expectOneErrorLine(r.stderr, /takes the header's metadata past/);
  });

  test('a small nested header still loads, and empty strings are cheap', async () => {
    const path = join(dir, 'nested-small.gguf');
    writeFileSync(path, nestedEmptyArrays(1000));
    const f = await loadGGUF(path);
    expect(f.metadataTypes['x.nested']).toBe('array<array<u32>>');
    const strings = join(dir, 'strings.gguf');
    await saveGGUF(strings, {}, { 'x.strings': gguf.array('string', new Array(200_000).fill('')) });
    expect(((await loadGGUF(strings)).metadata['x.strings'] as string[]).length).toBe(200_000);
  });
});

describe('7. --report is written atomically; a failed report leaves the model written', () => {
  test('the report target is a folder: exit 0, a warning, the model complete', async () => {
    const src = join(dir, 'rep-src.gguf');
    await saveGGUF(src, { 'blk.0.ffn_up.weight': { shape: [32, 64], type: 'f32', data: new Float32Array(32 * 64).fill(1) } }, { 'general.architecture': 'llama' });
    const out = join(dir, 'rep-model.gguf');
    const folder = join(dir, 'a-folder');
    mkdirSync(folder);
    const r = await cli(['quantize', src, out, 'Q8_0', '-q', '--report', folder]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^wgarray: warning: the report .*a-folder was not written \(.*it is a folder\); the model .*rep-model\.gguf was written and is complete\n$/);
    expect((await loadGGUF(out)).tensorInfos.map((t) => t.type.name)).toEqual(['q8_0']);
    const report = join(dir, 'report.json');
    writeFileSync(report, '{"old": true}');
    const ok = await cli(['quantize', src, out, 'Q8_0', '-q', '--report', report]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(readFileSync(report, 'utf8')).summary.tensors).toBe(1);
    expect(tempsIn(dir)).toEqual([]);
  });
});

/** GGUF bytes with one f32 tensor named `name` (written by hand: the writer refuses bad names). */
function ggufWithTensorNames(names: string[], keys: string[] = []): Uint8Array {
  const parts: Buffer[] = [];
  const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
  const u64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
  const str = (s: string) => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s)]);
  parts.push(Buffer.from('GGUF'), u32(3), u64(names.length), u64(keys.length));
  for (const k of keys) parts.push(str(k), u32(4), u32(1));
  names.forEach((n, i) => parts.push(str(n), u32(1), u64(4), u32(0), u64(i * 32)));
  let header = Buffer.concat(parts);
  header = Buffer.concat([header, Buffer.alloc((32 - (header.length % 32)) % 32)]);
  return Buffer.concat([header, Buffer.alloc(32 * names.length)]);
}

describe('8. names from files are escaped and cut; empty names and keys are refused at read', () => {
  test('a duplicated tensor name with a newline and an ANSI escape', async () => {
    const path = join(dir, 'escape.gguf');
    const name = 'a\n\x1b[31mred';
    writeFileSync(path, ggufWithTensorNames([name, name]));
    const r = await cli(['inspect', path]);
    expect(r.code).toBe(1);
    expectOneErrorLine(r.stderr, /tensor 'a\\n\\x1b\[31mred' appears twice/);
  });

  test('inspect shows names from the file with control characters escaped', async () => {
    const path = join(dir, 'escape-ok.gguf');
    writeFileSync(path, ggufWithTensorNames(['t\x1b[2Jx'], ['k\x1b]0;title\x07']));
    const r = await cli(['inspect', path]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    expect(r.stdout).toContain('t\\x1b[2Jx');
    expect(r.stdout).toContain('k\\x1b]0;title\\x07');
  });

  test('a 5,000-byte duplicated key makes a short line', async () => {
    const path = join(dir, 'long-key.gguf');
    const key = 'k'.repeat(5000);
    writeFileSync(path, ggufWithTensorNames([], [key, key]));
    const r = await cli(['inspect', path]);
    expect(r.code).toBe(1);
    expectOneErrorLine(r.stderr, /metadata key 'k{96}'… \(5000 characters\) appears twice/);
    expect(r.stderr.length).toBeLessThan(400);
  });

  test('empty tensor names and keys are refused by the readers', async () => {
    const a = join(dir, 'empty-name.gguf');
    writeFileSync(a, ggufWithTensorNames(['']));
    await expect(loadGGUF(a)).rejects.toThrow(/tensor #0 has an empty name/);
    const b = join(dir, 'empty-key.gguf');
    writeFileSync(b, ggufWithTensorNames([], ['']));
    await expect(loadGGUF(b)).rejects.toThrow(/metadata key #0 is empty/);
    const st = join(dir, 'empty.safetensors');
    const header = Buffer.from(JSON.stringify({ '': { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeFileSync(st, Buffer.concat([len, header, Buffer.alloc(4)]));
    await expect(loadSafetensors(st)).rejects.toThrow(/a tensor has an empty name/);
  });

  test('a standard key of the wrong type in a GGUF input names the file and key, not an API call', async () => {
    const src = join(dir, 'bad-key-type.gguf');
    await saveGGUF(src, { 'blk.0.ffn_up.weight': { shape: [32, 64], type: 'f32', data: new Float32Array(32 * 64) } }, { 'general.architecture': 'llama', 'tokenizer.ggml.tokens': gguf.array('u32', [1, 2]) }, { strictKeyTypes: false });
    const r = await cli(['quantize', src, join(dir, 'bad-key-out.gguf'), 'Q8_0', '-q']);
    expect(r.code).toBe(1);
    expectOneErrorLine(r.stderr, /bad-key-type\.gguf: metadata 'tokenizer\.ggml\.tokens' is array<u32>, but llama\.cpp reads it as array<string>/);
    expect(r.stderr).not.toMatch(/gguf\.array\(/);
  });

  test('a safetensors __metadata__ string under a numeric standard key names the file and key', async () => {
    const src = join(dir, 'meta.safetensors');
    await saveSafetensors(src, { 'blk.0.ffn_up.weight': { shape: [32, 64], dtype: 'float32', data: new Float32Array(32 * 64) } }, { 'llama.block_count': 'abc' });
    const r = await cli(['quantize', src, join(dir, 'meta-out.gguf'), 'Q8_0', '-q']);
    expect(r.code).toBe(1);
    expectOneErrorLine(r.stderr, /meta\.safetensors: __metadata__ 'llama\.block_count' is the string 'abc', but llama\.cpp reads 'llama\.block_count' as u32/);
    expect(r.stderr).not.toMatch(/gguf\.u32\(/);
  });

  test('the report names the type --outtype auto picked, not AUTO', async () => {
    const r = await cli(['convert', hf, '-o', join(dir, 'auto.gguf')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/AUTO/);
    expect(r.stdout).toMatch(/F16/);
  });
});

describe('9. inputs that are not regular files are refused, not waited on', () => {
  test('a FIFO as a GGUF input, as inspect input, and as config.json', async () => {
    const fifo = join(dir, 'pipe.gguf');
    execFileSync('mkfifo', [fifo]);
    const q = await cli(['quantize', fifo, join(dir, 'fifo-out.gguf'), 'Q8_0', '-q']);
    expect(q.code).toBe(1);
    expectOneErrorLine(q.stderr, /pipe\.gguf: expected a file, found a FIFO \(named pipe\)/);
    const i = await cli(['inspect', fifo]);
    expectOneErrorLine(i.stderr, /expected a file, found a FIFO/);
    const d = await patchedFolder('config.json', () => {});
    rmSync(join(d, 'config.json'));
    execFileSync('mkfifo', [join(d, 'config.json')]);
    const c = await cli(['convert', d, '-o', join(dir, 'fifo-convert.gguf'), '-q']);
    expectOneErrorLine(c.stderr, /config\.json: expected a file, found a FIFO/);
  });
});

describe('10. async entry points open the default device on first use', () => {
  test('loadGGUF(...).loadAll() without init()', async () => {
    const path = join(dir, 'lazy.gguf');
    await saveGGUF(path, { w: { shape: [4], type: 'f32', data: new Float32Array([1, 2, 3, 4]) } });
    const r = await runChild(`
      try { WG.zeros([2]); } catch (e) { console.log('sync', e.code); }
      const f = await WG.loadGGUF(${JSON.stringify(path)});
      const all = await f.loadAll();
      console.log(JSON.stringify(Array.from(await all.w.data())));
      await WG.close();
    `);
    expect(r.stderr).not.toMatch(/DEVICE_CLOSED|\n\s+at /);
    // a synchronous op before any device keeps the clear error; the async load opens one
    expect(r.stdout).toMatch(/^sync DEVICE_CLOSED\n\[1,2,3,4\]/);
  }, 60_000);
});
