// Without a WebGPU adapter the CLI does the work on the CPU (src/quant/host.ts)
// after a one-line notice, and writes the same bytes the GPU writes.
// WGARRAY_ADAPTER names an adapter that does not exist, so Dawn finds none.
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { syntheticModel, writeSyntheticModel } from '../src/convert/synthetic.js';
import { closeDevice } from '../src/runtime/device.js';
import { runCliCaptured } from './helpers/run-cli.js';

let dir: string;
let hf: string;

const cli = (args: string[]) => runCliCaptured(args);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wgarray-fallback-'));
  hf = join(dir, 'tiny');
  await writeSyntheticModel(hf, syntheticModel({ seed: 4, layers: 1, ff: 256, vocab: 320, tied: true }));
});

afterAll(async () => {
  delete process.env.WGARRAY_ADAPTER;
  await closeDevice();
  rmSync(dir, { recursive: true, force: true });
});

test('no adapter: a one-line notice, the CPU path, the same bytes as the GPU', async () => {
  process.env.WGARRAY_ADAPTER = 'no-such-gpu';
  const cpu = await cli(['convert', hf, '-o', join(dir, 'cpu.gguf'), '--outtype', 'Q4_K_M', '-q']);
  expect(cpu.code).toBe(0);
  const notice = cpu.stderr.split('\n').filter((l) => l.startsWith('wgarray:'));
  expect(notice).toEqual([expect.stringMatching(/^wgarray: no WebGPU adapter .*no-such-gpu.*; using the CPU path, which is slower$/)]);
  expect(cpu.stdout).toMatch(/ on the CPU \(no WebGPU adapter\)\n/);
  const cpuQ = await cli(['quantize', join(dir, 'cpu.gguf'), join(dir, 'cpu-q8.gguf'), 'Q8_0', '--allow-requantize', '-q']);
  expect(cpuQ.code).toBe(0);

  delete process.env.WGARRAY_ADAPTER;
  const gpu = await cli(['convert', hf, '-o', join(dir, 'gpu.gguf'), '--outtype', 'Q4_K_M', '-q']);
  expect(gpu.code).toBe(0);
  expect(gpu.stderr).not.toMatch(/CPU path/);
  expect(gpu.stdout).not.toMatch(/on the CPU/);
  const gpuQ = await cli(['quantize', join(dir, 'gpu.gguf'), join(dir, 'gpu-q8.gguf'), 'Q8_0', '--allow-requantize', '-q']);
  expect(gpuQ.code).toBe(0);

  expect(Buffer.compare(await readFile(join(dir, 'cpu.gguf')), await readFile(join(dir, 'gpu.gguf')))).toBe(0);
  expect(Buffer.compare(await readFile(join(dir, 'cpu-q8.gguf')), await readFile(join(dir, 'gpu-q8.gguf')))).toBe(0);
});
