// The pipelined quantize/convert run (src/convert/pipeline.ts): the same bytes
// as the strictly serial run, atomic on abort and on a full disk mid-pipeline,
// the tensors in flight within the memory bound, and the per-stage profile.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { AbortError, FileError } from '../src/errors.js';
import { Metadata } from '../src/convert/metadata.js';
import { runPlan, type ConversionPlan, type PlannedTensor } from '../src/convert/pipeline.js';
import { fromBytes } from '../src/ops/creation.js';
import { getDevice } from '../src/runtime/device.js';
import { f32ToF16Bits } from '../src/runtime/half.js';
import { ggmlBytes, ggmlType } from '../src/runtime/ggml-types.js';
import { seededNormals } from '../src/runtime/host-random.js';
import { saveGGUF } from '../src/io/gguf/writer.js';
import { loadGGUF } from '../src/io/gguf/reader.js';
import { runCli } from '../src/cli/cli.js';
import { dir, file, setUpDeviceAndTempDir } from './helpers/files.js';

setUpDeviceAndTempDir('wgarray-pipeline-');

const temps = async (d: string) => (await readdir(d)).filter((n) => n.startsWith('.wgarray-tmp-'));

interface PlanHooks {
  /** Called when tensor i's source is loaded onto the GPU (or read). */
  onLoad?: (i: number) => void;
}

/** `count` small F16 tensors of varied shapes, quantized to a rotation of types (one copied as stored, two q/k-permuted). */
function smallPlan(count: number, hooks: PlanHooks = {}): ConversionPlan {
  const f16 = ggmlType('f16');
  const targets = ['q4_K', 'q8_0', 'q6_K', 'f16', 'q4_0', 'f32', 'q5_K', 'bf16'].map((t) => ggmlType(t));
  const tensors: PlannedTensor[] = [];
  for (let i = 0; i < count; i++) {
    const rows = 8 + (i % 5) * 4;
    const cols = 256 * (1 + (i % 3));
    const values = seededNormals(rows * cols, 1000 + i, 0.05);
    const bits = Uint16Array.from(values, f32ToF16Bits);
    const bytes = new Uint8Array(bits.buffer);
    const name = `blk.${i}.weight`;
    tensors.push({
      name,
      shape: [rows, cols],
      from: f16,
      to: targets[i % targets.length],
      sourceName: name,
      ...(i % 7 === 3 ? { permuteHeads: 2 } : {}),
      source: {
        label: `memory: ${name}`,
        shape: [rows, cols],
        type: f16,
        load: async (device) => {
          hooks.onLoad?.(i);
          return fromBytes(bytes, [rows, cols], 'float16', device, name);
        },
        read: async () => {
          hooks.onLoad?.(i);
          return bytes.slice();
        },
      },
    });
  }
  const metadata = new Metadata().string('general.architecture', 'llama').u32('general.file_type', 15);
  return { description: 'test plan', metadata, tensors, model: { arch: 'llama', nLayer: count, nHead: 2, nHeadKv: 2, nExpert: 0 } };
}

describe('pipelined run', () => {
  test('writes the same bytes and report as the serial run, with tensors overlapping', async () => {
    const device = await getDevice();
    const serial = await runPlan(smallPlan(48), file('serial.gguf'), { device, lookahead: 0 });
    const piped = await runPlan(smallPlan(48), file('piped.gguf'), { device });
    expect(serial.inFlight.peakTensors).toBe(1);
    expect(piped.inFlight.peakTensors).toBeGreaterThan(1);
    const a = await readFile(file('serial.gguf'));
    const b = await readFile(file('piped.gguf'));
    expect(b.length).toBe(a.length);
    expect(b.equals(a)).toBe(true);
    expect(piped.tensors.map((t) => t.name)).toEqual(serial.tensors.map((t) => t.name));
    expect(piped.tensors).toEqual(serial.tensors);
    // and the CPU path writes those bytes too (its own serial-or-not pipeline)
    const cpu = await runPlan(smallPlan(48), file('cpu.gguf'), {});
    expect((await readFile(file('cpu.gguf'))).equals(a)).toBe(true);
    expect(cpu.inFlight.peakTensors).toBeGreaterThan(1);
  });

  test('the tensors in flight stay within the memory bound', async () => {
    const device = await getDevice();
    const plan = smallPlan(80);
    // above the largest tensor's working set (source, its upload and staging copies, a permuted
    // copy, an f32 output and its host copy: 8x the f16 source at most), below all 80 at once
    const largest = Math.max(...plan.tensors.map((t) => 2 * t.shape[0] * t.shape[1]));
    const limit = 12 * largest;
    // independently of the pipeline's own count: tensors loaded and not yet written
    let loaded = 0;
    let written = 0;
    let worstAhead = 0;
    const counted = smallPlan(80, {
      onLoad: () => {
        loaded++;
        worstAhead = Math.max(worstAhead, loaded - written);
      },
    });
    const r = await runPlan(counted, file('bounded.gguf'), {
      device,
      lookahead: 1000,
      maxInFlightBytes: limit,
      onProgress: (p) => (written = p.tensorsDone),
    });
    expect(r.inFlight.limitBytes).toBe(limit);
    expect(r.inFlight.peakBytes).toBeLessThanOrEqual(limit);
    expect(r.inFlight.peakTensors).toBeGreaterThan(1);
    // each tensor holds at least its output bytes until written: this many at most fit
    const smallestHeld = Math.min(...counted.tensors.map((t) => ggmlBytes(t.to, t.shape[0] * t.shape[1])));
    expect(worstAhead).toBeLessThanOrEqual(Math.floor(limit / smallestHeld) + 1);
    expect(worstAhead).toBeLessThan(80);
    expect(loaded).toBe(80);
    // the default bound, under twice the largest source tensor's working set
    const d = await runPlan(smallPlan(8), file('default.gguf'), { device });
    const largestSource = Math.max(...smallPlan(8).tensors.map((t) => 2 * t.shape[0] * t.shape[1]));
    expect(d.inFlight.peakBytes).toBeLessThanOrEqual(d.inFlight.limitBytes);
    expect(d.inFlight.limitBytes).toBeLessThan(2 * (2 * largestSource + 4 * 2 * largestSource));
  });

  test('an abort mid-pipeline leaves the old file untouched and no temporary file', async () => {
    const device = await getDevice();
    const target = file('abort.gguf');
    await writeFile(target, 'old contents');
    const controller = new AbortController();
    const plan = smallPlan(40, { onLoad: (i) => i === 12 && controller.abort() });
    const err = await runPlan(plan, target, { device, signal: controller.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect(await readFile(target, 'utf8')).toBe('old contents');
    expect(await temps(dir)).toEqual([]);
    // the device is still usable
    await runPlan(smallPlan(3), file('after-abort.gguf'), { device });
  });

  test('a full disk mid-pipeline: FileError, old file untouched, no temporary file', async ({ skip }) => {
    const mnt = await mkdtemp(join(tmpdir(), 'wgarray-tmpfs-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'pipe' });
    } catch (e) {
      await rm(mnt, { recursive: true, force: true });
      return skip(`mounting a tmpfs needs root or CAP_SYS_ADMIN, which this run lacks: ${(e as Error).message.split('\n')[0]}`);
    }
    try {
      const device = await getDevice();
      const target = join(mnt, 'model.gguf');
      await writeFile(target, 'old model');
      // ~2.2 MiB of output on a 1 MiB file system
      const err = await runPlan(smallPlan(180), target, { device }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FileError);
      expect((err as Error).message).toMatch(/the disk is full \(ENOSPC\)/);
      expect(await readFile(target, 'utf8')).toBe('old model');
      expect(await readdir(mnt)).toEqual(['model.gguf']);
    } finally {
      execFileSync('umount', [mnt]);
      await rm(mnt, { recursive: true, force: true });
    }
  });

  test('an error in one tensor mid-pipeline is reported by name and leaves nothing behind', async () => {
    const device = await getDevice();
    const plan = smallPlan(30);
    const bad = plan.tensors[17];
    bad.source.load = async () => {
      throw new Error(`cannot read ${bad.name}`);
    };
    const target = file('failing.gguf');
    await expect(runPlan(plan, target, { device })).rejects.toThrow(/cannot read blk\.17\.weight/);
    await expect(readFile(target)).rejects.toThrow(/ENOENT/);
    expect(await temps(dir)).toEqual([]);
  });
});

/** smallPlan's tensors stored in an F16 GGUF file, loaded from there as `wgarray quantize` loads them. */
async function filePlan(count: number): Promise<ConversionPlan> {
  const device = await getDevice();
  const plan = smallPlan(count);
  const path = file(`source-${count}.gguf`);
  await saveGGUF(path, await Promise.all(plan.tensors.map(async (t) => [t.name, { shape: t.shape, type: 'f16', data: await t.source.read() }] as const)));
  const f = await loadGGUF(path, { device });
  for (const t of plan.tensors) {
    t.source.load = () => f.arrays[t.name]();
    t.source.read = () => f.readTensorBytes(t.name);
  }
  return plan;
}

describe('profile', () => {
  test('every stage is measured; GPU stages by timestamp queries where the adapter has them', async () => {
    const device = await getDevice();
    const r = await runPlan(await filePlan(16), file('profiled.gguf'), { device, profile: true });
    const p = r.profile!;
    expect(p.gpuTimestamps).toBe(device.features.timestampQuery);
    const sourceBytes = smallPlan(16).tensors.reduce((n, t) => n + 2 * t.shape[0] * t.shape[1], 0);
    // copies as stored are read on the host, the rest uploaded: every source byte is read once
    expect(p.stages.read.bytes).toBe(sourceBytes);
    expect(p.stages.upload.bytes).toBeGreaterThan(0);
    expect(p.stages.write.bytes).toBe(r.tensors.reduce((n, t) => n + t.bytes, 0));
    for (const s of ['quantize', 'stats'] as const) {
      expect(p.stages[s].count).toBeGreaterThan(0);
      if (p.gpuTimestamps) expect(p.stages[s].gpuMs).toBeGreaterThan(0);
    }
    // profiling does not change the bytes
    await runPlan(await filePlan(16), file('unprofiled.gguf'), { device });
    expect((await readFile(file('profiled.gguf'))).equals(await readFile(file('unprofiled.gguf')))).toBe(true);
    // without the quality pass, no stats pass and no error figures
    const q = await runPlan(await filePlan(16), file('no-report.gguf'), { device, profile: true, quality: false });
    expect(q.profile!.stages.stats.count).toBe(0);
    expect(q.tensors.filter((t) => t.lossy).every((t) => Number.isNaN(t.rmse))).toBe(true);
    expect((await readFile(file('no-report.gguf'))).equals(await readFile(file('unprofiled.gguf')))).toBe(true);
  });
});

describe('command line', () => {
  test('--profile prints the stage table; --no-report skips the error figures and writes the same file', async () => {
    const device = await getDevice();
    await filePlan(12);
    const src = file('source-12.gguf');
    const run = async (out: string, flags: string[]) => {
      let text = '';
      const stdout = { write: (s: string) => void (text += s) };
      const code = await runCli(['quantize', src, file(out), 'Q8_0', '--pure', ...flags], { stdout, stderr: stdout, isTTY: false, device, columns: 200 });
      return { code, text };
    };
    const a = await run('cli-profile.gguf', ['--profile']);
    expect(a.code).toBe(0);
    for (const stage of ['read', 'upload', 'quantize', 'stats', 'readback', 'write', 'total / slowest stage']) {
      expect(a.text).toMatch(new RegExp(`^${stage.replace(/[/]/g, '\\/')}\\s+\\d`, 'm'));
    }
    expect(a.text).toMatch(/quality: \d+ tensors rounded/);
    const b = await run('cli-no-report.gguf', ['--no-report']);
    expect(b.code).toBe(0);
    expect(b.text).toMatch(/quality: not measured \(--no-report\)/);
    expect(b.text).not.toMatch(/^stage /m);
    expect((await readFile(file('cli-no-report.gguf'))).equals(await readFile(file('cli-profile.gguf')))).toBe(true);
  });
});
