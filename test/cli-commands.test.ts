// The `wgarray` command line in-process (runCli): quantize with its report
// (table and --report JSON), inspect (text and --json), the progress line,
// Ctrl-C (an aborted run leaves no file), usage errors and exit codes, and the
// demo.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EXIT, runCli } from '../src/cli/cli.js';
import { isDawnPoll, throttleDawnPolling } from '../src/runtime/dawn-polling.js';
import { syntheticModel, writeSyntheticModel } from '../src/convert/synthetic.js';
import { loadGGUF } from '../src/io/gguf/reader.js';
import { gguf } from '../src/io/gguf/metadata.js';
import { saveGGUF } from '../src/io/gguf/writer.js';
import { close, init } from '../src/runtime/device.js';
import type { Device } from '../src/runtime/device.js';
import { LLAMA_QUANT_PRESETS, missingFormats } from '../src/quant/presets.js';
import { sink } from './helpers/text-sink.js';
import { runCliCaptured } from './helpers/run-cli.js';

const UNMADE = LLAMA_QUANT_PRESETS.find((p) => missingFormats(p).length > 0);

let dir: string;
let device: Device;
let hf: string;
let f16: string;

function cli(args: string[], opts: { isTTY?: boolean; signal?: AbortSignal } = {}) {
  return runCliCaptured(args, { ...opts, device, columns: 200 });
}

beforeAll(async () => {
  device = await init();
  dir = mkdtempSync(join(tmpdir(), 'wgarray-cli-'));
  hf = join(dir, 'tiny');
  await writeSyntheticModel(hf, syntheticModel({ seed: 21, layers: 2, ff: 512 }));
  f16 = join(dir, 'tiny-f16.gguf');
  const r = await cli(['convert', hf, '-o', f16, '--outtype', 'f16', '-q']);
  expect(r.code).toBe(0);
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await close();
});

describe('quantize', () => {
  test('prints the per-tensor report and saves it as JSON', async () => {
    const out = join(dir, 'q4km.gguf');
    const report = join(dir, 'q4km.json');
    const r = await cli(['quantize', f16, out, 'q4_k_m', '--report', report]);
    expect(r.code).toBe(EXIT.OK);
    expect(r.stdout).toMatch(/tensor\s+shape\s+type\s+size\s+RMSE\s+SNR dB/);
    expect(r.stdout).toMatch(/blk\.1\.attn_v\.weight\s+\[64, 256\]\s+f16 -> q6_K\s+\S+ KiB\s+\S+\s+\d+\.\d\s+Q4_K_M mix/);
    expect(r.stdout).toMatch(/output_norm\.weight\s+\[256\]\s+f32\s+1\.00 KiB\s+-\s+exact/);
    expect(r.stdout).toMatch(/21 tensors, 1\.38 M parameters, .* bits per weight\), Q4_K_M/);
    expect(r.stdout).toMatch(/quality: 16 tensors rounded; SNR mean \d+\.\d dB, worst \d+\.\d dB \(.+\)/);
    expect(r.stdout).toMatch(/time: .* \(read .*, quantize .*, write .*\) on /);
    const json = JSON.parse(await readFile(report, 'utf8'));
    expect(json).toMatchObject({ command: 'quantize', type: 'Q4_K_M', file_type: 15, backend: 'gpu', parameters: 1377536 });
    const byName = Object.fromEntries((json.tensors as { name: string; to: string; snrDb: number | null }[]).map((t) => [t.name, t]));
    expect(byName['output.weight']).toMatchObject({ from: 'f16', to: 'q6_K', lossy: true, note: 'output tensor' });
    expect(byName['output.weight'].snrDb).toBeGreaterThan(25);
    expect(byName['blk.0.ffn_norm.weight']).toMatchObject({ to: 'f32', lossy: false, rmse: 0, snrDb: null });
    // the file holds what the report says
    const f = await loadGGUF(out);
    for (const t of f.tensorInfos) expect(t.type.name, t.name).toBe(byName[t.name].to);
    expect(f.metadata['general.file_type']).toBe(15);
    expect(f.metadata['general.quantization_version']).toBe(2);
    expect(f.metadata['tokenizer.ggml.pre']).toBe('llama-bpe');
  });

  test('--quiet prints the summary only', async () => {
    const r = await cli(['quantize', f16, join(dir, 'quiet.gguf'), 'Q8_0', '--quiet']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/RMSE/);
    expect(r.stdout).toMatch(/Q8_0\n/);
    expect(r.stderr).toBe('');
  });

  test('a Hugging Face folder and a .safetensors file in one are inputs too', async () => {
    const a = join(dir, 'from-dir.gguf');
    const b = join(dir, 'from-file.gguf');
    expect((await cli(['quantize', hf, a, 'Q6_K', '-q'])).code).toBe(0);
    expect((await cli(['quantize', join(hf, 'model.safetensors'), b, 'Q6_K', '-q'])).code).toBe(0);
    expect(Buffer.compare(await readFile(a), await readFile(b))).toBe(0);
  });

  test('requantizing needs --allow-requantize', async () => {
    const q8 = join(dir, 'quiet.gguf');
    const r = await cli(['quantize', q8, join(dir, 'requant.gguf'), 'Q4_0']);
    expect(r.code).toBe(EXIT.ERROR);
    expect(r.stderr).toMatch(/tensor 'output\.weight' is already quantized \(q8_0\); .*--allow-requantize/);
    const ok = await cli(['quantize', q8, join(dir, 'requant.gguf'), 'Q4_0', '--allow-requantize', '-q']);
    expect(ok.code).toBe(0);
  });

  test('a shard of a split GGUF is refused, naming the shard', async () => {
    const shard = join(dir, 'model-00001-of-00002.gguf');
    await saveGGUF(shard, { 'blk.0.ffn_up.weight': { shape: [32, 256], type: 'f32', data: new Float32Array(32 * 256) } }, {
      'general.architecture': 'llama',
      'split.no': gguf.u16(0),
      'split.count': gguf.u16(2),
      'split.tensors.count': gguf.i32(2),
    });
    const r = await cli(['quantize', shard, join(dir, 'merged.gguf'), 'Q8_0']);
    expect(r.code).toBe(EXIT.ERROR);
    expect(r.stderr).toMatch(/model-00001-of-00002\.gguf: is shard 1 of 2 of a split model; merge the shards first/);
  });

  test.each([
    // a NaN / Inf in the source is named with its first element (finite.ts), whatever the output type
    ['a NaN weight', NaN, 'Q4_0', /holds a NaN value at element 300 \[1, 44\]; refusing to write NaN\/Inf weights/],
    ['an infinite weight', -Infinity, 'Q4_K_M', /holds a -Inf value at element 300 \[1, 44\]; refusing/],
    ['a weight beyond float16', 1e6, 'F16', /decodes to 1 NaN or infinite value\(s\) as f16: its source holds NaN\/Inf or values beyond f16's range/],
  ])('%s is refused, naming the tensor, and no file is written (as llama-quantize)', async (_, bad, type, message) => {
    const data = new Float32Array(64 * 256).map((_, i) => Math.sin(i) / 50);
    data[300] = bad;
    const src = join(dir, `bad-${type}.gguf`);
    await saveGGUF(src, { 'blk.0.ffn_up.weight': { shape: [64, 256], type: 'f32', data } }, { 'general.architecture': 'llama' });
    const out = join(dir, `bad-${type}-out.gguf`);
    const r = await cli(['quantize', src, out, type, '--pure']);
    expect(r.code).toBe(EXIT.ERROR);
    expect(r.stderr).toMatch(/tensor 'blk\.0\.ffn_up\.weight' \(\[64, 256\], f32\)/);
    expect(r.stderr).toMatch(message);
    expect(existsSync(out)).toBe(false);
  });

  test('the progress line: on a terminal, not otherwise', async () => {
    const tty = await cli(['quantize', f16, join(dir, 'p1.gguf'), 'Q8_0'], { isTTY: true });
    expect(tty.stderr).toMatch(/\rquantizing [█░]+ +\d+%  \d+\/21 tensors  .*\/s  ETA /);
    expect(tty.stderr.endsWith('\r\x1b[K')).toBe(true);
    const pipe = await cli(['quantize', f16, join(dir, 'p2.gguf'), 'Q8_0']);
    expect(pipe.stderr).toBe('');
    const quiet = await cli(['quantize', f16, join(dir, 'p3.gguf'), 'Q8_0', '-q'], { isTTY: true });
    expect(quiet.stderr).toBe('');
  });

  test('Ctrl-C stops the run and leaves no output file', async () => {
    const out = join(dir, 'aborted.gguf');
    const controller = new AbortController();
    const stdout = sink();
    let seen = 0;
    const stderr = {
      write: (s: string) => {
        // abort once the progress line shows a tensor written
        if (s.includes('tensors') && ++seen === 2) controller.abort(new Error('interrupted (Ctrl-C)'));
      },
    };
    const code = await runCli(['quantize', f16, out, 'Q4_K_M'], { stdout, stderr, isTTY: true, device, signal: controller.signal, columns: 200 });
    expect(seen).toBeGreaterThanOrEqual(2);
    expect(code).toBe(EXIT.INTERRUPTED);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes('aborted') || n.startsWith('.wgarray-tmp'))).toEqual([]);
  });
});

describe('dawn polling', () => {
  test("dawn.node's poll callback is the only kind throttleDawnPolling delays", async () => {
    // catch the callback dawn.node schedules while a mapAsync is pending
    const seen: unknown[] = [];
    const was = throttleDawnPolling(false);
    const immediate = globalThis.setImmediate;
    globalThis.setImmediate = ((cb: () => void) => (seen.push(cb), immediate(cb))) as typeof setImmediate;
    try {
      const b = device.createBuffer(16, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'poll probe');
      await b.mapAsync(GPUMapMode.READ);
      b.destroy();
    } finally {
      globalThis.setImmediate = immediate;
      throttleDawnPolling(was);
    }
    expect(seen.some((f) => isDawnPoll(f))).toBe(true);
    let resolve!: (v: unknown) => void;
    void new Promise((r) => (resolve = r));
    for (const f of [resolve, () => {}, function named() {}, Math.max, (() => {}).bind(null), setImmediate]) expect(isDawnPoll(f)).toBe(false);
  });
});

describe('inspect', () => {
  test('metadata and tensor table', async () => {
    const r = await cli(['inspect', join(dir, 'q4km.gguf')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/GGUF v3, 21 tensors, \d+ metadata keys/);
    expect(r.stdout).toMatch(/llama\.attention\.head_count_kv\s+u32\s+2\n/);
    expect(r.stdout).toMatch(/llama\.attention\.layer_norm_rms_epsilon\s+f32\s+0\.00001\n/);
    expect(r.stdout).toMatch(/tokenizer\.ggml\.tokens\s+array<string>\s+\["Ā", "ā", "Ă", "ă", "Ą", "ą", "Ć", "ć", …\]/);
    expect(r.stdout).toMatch(/tokenizer\.ggml\.token_type\s+array<i32>\s+\[1, 1, 1, 1, 1, 1, 1, 1, …\]/);
    expect(r.stdout).toMatch(/tokenizer\.chat_template\s+string\s+".{50,}…" \(\d+ chars\)/);
    expect(r.stdout).toMatch(/\s+\d+\s+blk\.1\.ffn_down\.weight\s+\[256, 512\]\s+q6_K\s+105 KiB/);
    expect(r.stdout).toMatch(/1\.38 M parameters, .* of tensor data \(\d\.\d\d bits per weight\)/);
  });

  test('--json, arrays summarised unless --full', async () => {
    const r = await cli(['inspect', join(dir, 'q4km.gguf'), '--json']);
    const doc = JSON.parse(r.stdout);
    expect(doc.format).toBe('gguf');
    expect(doc.metadata['general.file_type']).toEqual({ type: 'u32', value: 15 });
    expect(doc.metadata['tokenizer.ggml.tokens'].type).toBe('array<string>');
    expect(doc.metadata['tokenizer.ggml.tokens'].value.count).toBe(512);
    expect(doc.metadata['tokenizer.ggml.tokens'].value.head).toHaveLength(16);
    expect(doc.tensors.find((t: { name: string }) => t.name === 'blk.0.attn_k.weight')).toMatchObject({ shape: [64, 256], ne: [256, 64], type: 'q4_K' });
    const full = JSON.parse((await cli(['inspect', join(dir, 'q4km.gguf'), '--json', '--full'])).stdout);
    expect(full.metadata['tokenizer.ggml.tokens'].value).toHaveLength(512);
  });

  test('safetensors too', async () => {
    const r = await cli(['inspect', join(hf, 'model.safetensors')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/safetensors, 21 tensors in 1 file/);
    expect(r.stdout).toMatch(/model\.layers\.1\.mlp\.down_proj\.weight\s+\[256, 512\]\s+BF16\s+256 KiB/);
  });

  test('a file that is neither', async () => {
    const r = await cli(['inspect', join(hf, 'config.json')]);
    expect(r.code).toBe(EXIT.ERROR);
  });
});

describe('usage', () => {
  test.each([
    [[], EXIT.USAGE, /commands:/, 'stdout'],
    [['--help'], EXIT.OK, /commands:/, 'stdout'],
    [['quantize', '--help'], EXIT.OK, /--tensor-type PATTERN=T/, 'stdout'],
    [['convert', '--help'], EXIT.OK, /--outtype: auto/, 'stdout'],
    [['--version'], EXIT.OK, /^wgarray \d+\.\d+\.\d+/, 'stdout'],
    [['frobnicate'], EXIT.USAGE, /unknown command 'frobnicate'/, 'stderr'],
    [['quantize', 'a.gguf', 'b.gguf'], EXIT.USAGE, /quantize takes IN OUT TYPE \(3 arguments\), got 'a\.gguf' 'b\.gguf'/, 'stderr'],
    [['quantize', 'a', 'b', 'Q4_0', '--frob'], EXIT.USAGE, /Unknown option '--frob'/, 'stderr'],
    [['quantize', 'a', 'b', 'Q9_K'], EXIT.ERROR, /unknown quantization type 'Q9_K'; known: Q4_0/, 'stderr'],
    // a llama-quantize preset whose blocks are not all in the registry, while there is one
    ...(UNMADE ? [[['quantize', 'a', 'b', UNMADE.name], EXIT.ERROR, new RegExp(`${UNMADE.name} is not supported: its [A-Z0-9_/]+ blocks are not implemented`), 'stderr']] : []),
    [['quantize', 'a', 'b', 'Q4_0', '--tensor-type', 'attn_v'], EXIT.ERROR, /--tensor-type 'attn_v': expected PATTERN=TYPE/, 'stderr'],
    [['quantize', 'a', 'b', 'Q4_0', '--output-tensor-type', 'q9'], EXIT.ERROR, /--output-tensor-type: unknown ggml type 'q9'/, 'stderr'],
    [['quantize', 'x.gguf', 'x.gguf', 'Q4_0'], EXIT.ERROR, /the output x\.gguf is the input/, 'stderr'],
    [['convert', 'x', '--outtype', 'f16', '--pure'], EXIT.ERROR, /apply to quantization presets/, 'stderr'],
    [['demo', '--seed', '1.5'], EXIT.ERROR, /--seed 1\.5: expected a non-negative integer/, 'stderr'],
  ] as [string[], number, RegExp, 'stdout' | 'stderr'][])('wgarray %j', async (args, code, message, stream) => {
    const r = await cli(args);
    expect(r.code).toBe(code);
    expect(r[stream]).toMatch(message);
  });

  test('a missing input names the file', async () => {
    const r = await cli(['quantize', join(dir, 'missing.gguf'), join(dir, 'o.gguf'), 'Q4_0']);
    expect(r.code).toBe(EXIT.ERROR);
    expect(r.stderr).toMatch(/missing\.gguf: /);
  });
});

describe('demo', () => {
  test('builds, converts, quantizes, reads back, and says what to run next', async () => {
    const out = join(dir, 'demo');
    const r = await cli(['demo', '--out', out, '-q']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/a 4-layer llama \(hidden 256, 8 heads, 2 kv heads, vocab 512, 3\.28 M parameters, bf16\) from seed 1234/);
    expect(r.stdout).toMatch(/tiny-llama-Q4_K_M\.gguf: 39 tensors, 3\.28 M parameters, .* Q4_K_M/);
    expect(r.stdout).toMatch(/read back .*tiny-llama-Q4_K_M\.gguf: GGUF v3, 39 tensors \(.*q4_K.*\), llama, tokenizer gpt2\/llama-bpe/);
    expect(r.stdout).toMatch(/npx wgarray convert path\/to\/model -o model-Q4_K_M\.gguf --outtype Q4_K_M/);
    expect(existsSync(join(out, 'tiny-llama', 'config.json'))).toBe(true);
  });
});
