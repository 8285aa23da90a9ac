// `npm run bench -- save [--size 1g] [--format gguf,safetensors] [--runs 2] [--dir DIR] [--chunk 64m] [--json]`
// Saving a GPU array to a file: MB/s from the call to the fsynced rename, and
// the peak resident memory above the process's baseline while saving (the
// array itself lives in GPU memory, which on lavapipe is this process's RAM;
// the baseline is taken after it exists). For reference, the same file
// system's speed for the same bytes written from host memory (disk alone).
import { readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { close, full, init, saveGGUF, saveSafetensors } from '../src/index.js';
import { writeAtomically } from '../src/io/atomic.js';
import { machineDescription, median, printTable } from './machine.js';

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)i?b?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size '${s}' (examples: 1g, 256m, 4096k)`);
  const unit = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * unit);
}

/** Peak RSS tracking: Linux's VmHWM (reset through clear_refs) where available, plus sampling every 10 ms. */
class PeakRss {
  private sampled = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly hwm = process.platform === 'linux';
  start(): void {
    if (this.hwm) {
      try {
        writeFileSync('/proc/self/clear_refs', '5');
      } catch {
        // not permitted: sampling only
      }
    }
    this.sampled = process.memoryUsage.rss();
    this.timer = setInterval(() => {
      this.sampled = Math.max(this.sampled, process.memoryUsage.rss());
    }, 10);
  }
  stop(): number {
    clearInterval(this.timer);
    let peak = Math.max(this.sampled, process.memoryUsage.rss());
    if (this.hwm) {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    }
    return peak;
  }
}

const MB = 1e6;
const MiB = 2 ** 20;

export default async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string', default: '1g' },
      format: { type: 'string', default: 'gguf,safetensors' },
      runs: { type: 'string', default: '2' },
      dir: { type: 'string', default: tmpdir() },
      chunk: { type: 'string', default: '64m' },
      json: { type: 'boolean', default: false },
    },
  });
  const bytes = parseSize(values.size!);
  const runs = Math.max(1, Number(values.runs));
  const chunkBytes = parseSize(values.chunk!);
  const formats = values.format!.split(',');
  const device = await init();
  const cols = 4096;
  const rows = Math.max(1, Math.round(bytes / 4 / cols));
  const nbytes = rows * cols * 4;
  const x = full([rows, cols], 1.5, { dtype: 'float32' });
  await device.sync();
  const path = (ext: string) => join(values.dir!, `wgarray-bench-save-${process.pid}.${ext}`);
  const results: Record<string, number | string>[] = [];

  const measure = async (label: string, save: () => Promise<unknown>, file: string) => {
    const seconds: number[] = [];
    const peaks: number[] = [];
    for (let r = 0; r < runs; r++) {
      await new Promise((res) => setTimeout(res, 50));
      const baseline = process.memoryUsage.rss();
      const peak = new PeakRss();
      peak.start();
      const t0 = performance.now();
      await save();
      seconds.push((performance.now() - t0) / 1000);
      peaks.push(peak.stop() - baseline);
      await rm(file, { force: true });
    }
    const s = median(seconds);
    results.push({
      what: label,
      bytes: nbytes,
      seconds: Number(s.toFixed(3)),
      mb_per_s: Math.round(nbytes / s / MB),
      peak_rss_above_baseline_mib: Math.round(Math.max(...peaks) / MiB),
    });
  };

  for (const format of formats) {
    if (format === 'gguf') {
      const file = path('gguf');
      await measure('saveGGUF (GPU -> file)', () => saveGGUF(file, { x }, { 'general.architecture': 'bench' }, { chunkBytes }), file);
    } else if (format === 'safetensors') {
      const file = path('safetensors');
      await measure('saveSafetensors (GPU -> file)', () => saveSafetensors(file, { x }, undefined, { chunkBytes }), file);
    } else throw new Error(`unknown format '${format}' (gguf, safetensors)`);
  }
  // Disk alone: the same number of bytes from one reused host chunk, through the same atomic writer.
  {
    const file = path('bin');
    const chunk = new Uint8Array(Math.min(chunkBytes, nbytes)).fill(1);
    await measure('host bytes -> file (disk alone)', () =>
      writeAtomically(file, async (f) => {
        for (let at = 0; at < nbytes; at += chunk.length) await f.write(chunk.subarray(0, Math.min(chunk.length, nbytes - at)));
      }), file);
  }
  x.dispose();
  await close();

  if (values.json) {
    console.log(JSON.stringify({ machine: machineDescription(device), chunkBytes, results }, null, 2));
    return;
  }
  console.log(`save: ${(nbytes / 2 ** 30).toFixed(2)} GiB float32 [${rows}, ${cols}], ${runs} run(s), median; chunk ${chunkBytes / MiB} MiB; to ${values.dir}`);
  console.log(machineDescription(device));
  printTable([
    ['what', 'seconds', 'MB/s', 'peak RSS above baseline (MiB)'],
    ...results.map((r) => [r.what, r.seconds, r.mb_per_s, r.peak_rss_above_baseline_mib]),
  ]);
}
