// `npm run bench -- quantize [--size RxC] [--runs N] [--cpu-rows N] [--types a,b] [--json] [--imatrix]`
// Quantization speed of every format: the WebGPU path (time to completion:
// dispatch + GPU work, measured with device.sync()) and the CPU reference path,
// in million elements/s and GB/s of float32 input. Median of --runs after a warm-up.
// --imatrix: instead, every format that uses importance weights, quantized with
// them: wgarray's WebGPU kernel where the format has one (on --size), its CPU
// path (quantizeHostWeighted, on --cpu-rows rows), and ggml_quantize_chunk(...,
// quant_weights) on one thread (bench/ggml.ts, on the same --cpu-rows rows), in one run.
import { parseArgs } from 'node:util';
import { array, close, init, QUANT_FORMATS, quantize, quantizeHost, quantizeHostWeighted } from '../src/index.js';
import { ggmlQuantizeSeconds } from './ggml.js';
import { machineDescription, median, printTable } from './machine.js';
import { seededNormals } from '../src/runtime/host-random.js';

interface Row {
  type: string;
  path: 'webgpu' | 'cpu';
  melem_per_s: number;
  gb_per_s: number;
  elements: number;
}

export default async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string', default: '4096x4096' },
      runs: { type: 'string', default: '5' },
      'cpu-rows': { type: 'string', default: '256' },
      types: { type: 'string' },
      json: { type: 'boolean', default: false },
      imatrix: { type: 'boolean', default: false },
    },
  });
  if (values.imatrix) return runImatrix(values);
  const [rows, cols] = values.size!.split('x').map(Number);
  const runs = Number(values.runs);
  const cpuRows = Math.min(rows, Number(values['cpu-rows']));
  // formats ggml quantizes only with an importance matrix are measured by --imatrix
  const types = values.types ? values.types.split(',') : ['f16', 'bf16', ...[...QUANT_FORMATS.values()].filter((f) => f.imatrix !== 'required').map((f) => f.type.name)];
  const device = await init();
  const host = seededNormals(rows * cols, 1, 0.02); // weights-like data
  const x = array(host, { shape: [rows, cols] });
  const results: Row[] = [];
  const log = values.json ? () => {} : (s: string) => process.stderr.write(s);
  for (const type of types) {
    log(`${type} `);
    // WebGPU: warm-up (pipeline build), then timed runs to completion.
    quantize(x, type).dispose();
    await device.sync();
    const gpuTimes: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      const q = quantize(x, type);
      await device.sync();
      gpuTimes.push(performance.now() - t0);
      q.dispose();
    }
    const n = rows * cols;
    const g = median(gpuTimes) / 1000;
    results.push({ type, path: 'webgpu', melem_per_s: n / g / 1e6, gb_per_s: (n * 4) / g / 1e9, elements: n });
    // CPU reference, on the first --cpu-rows rows (it is much slower).
    const part = host.subarray(0, cpuRows * cols);
    const cpuTimes: number[] = [];
    for (let r = 0; r < Math.max(1, Math.min(runs, 3)); r++) {
      const t0 = performance.now();
      quantizeHost(part, type);
      cpuTimes.push(performance.now() - t0);
    }
    const c = median(cpuTimes) / 1000;
    results.push({ type, path: 'cpu', melem_per_s: part.length / c / 1e6, gb_per_s: (part.length * 4) / c / 1e9, elements: part.length });
  }
  log('\n');
  x.dispose();
  if (values.json) {
    console.log(JSON.stringify(results.map(({ elements: _e, ...r }) => ({ ...r, melem_per_s: +r.melem_per_s.toFixed(2), gb_per_s: +r.gb_per_s.toFixed(3) }))));
  } else {
    console.log(`quantize: ${rows} x ${cols} float32 (CPU path on ${cpuRows} x ${cols}), median of ${runs} runs`);
    console.log(`machine: ${machineDescription(device)}`);
    const table: (string | number)[][] = [['type', 'webgpu Melem/s', 'webgpu GB/s', 'cpu Melem/s', 'cpu GB/s', 'gpu/cpu']];
    for (const type of types) {
      const gpu = results.find((r) => r.type === type && r.path === 'webgpu')!;
      const cpu = results.find((r) => r.type === type && r.path === 'cpu')!;
      table.push([
        type,
        gpu.melem_per_s.toFixed(1),
        gpu.gb_per_s.toFixed(2),
        cpu.melem_per_s.toFixed(1),
        cpu.gb_per_s.toFixed(3),
        `${(gpu.melem_per_s / cpu.melem_per_s).toFixed(1)}x`,
      ]);
    }
    printTable(table);
  }
  await close();
}

/** --imatrix: weighted quantization, wgarray's CPU path against ggml's one thread, same rows and weights. */
async function runImatrix(values: { size?: string; runs?: string; 'cpu-rows'?: string; types?: string; json?: boolean }): Promise<void> {
  const [rows, cols] = values.size!.split('x').map(Number);
  const runs = Math.max(1, Math.min(Number(values.runs), 3));
  const n = Math.min(rows, Number(values['cpu-rows'])) * cols;
  const formats = [...QUANT_FORMATS.values()].filter((f) => f.imatrix !== 'ignored' && (!values.types || values.types.split(',').includes(f.type.name)));
  const device = await init();
  const x = seededNormals(n, 1, 0.02);
  // importance weights like llama-imatrix's: mean squared activations, log-normal across columns
  const w = seededNormals(cols, 2, 1).map((v) => Math.exp(v));
  const rowsOut: (string | number)[][] = [['type', 'webgpu Melem/s', 'wgarray cpu Melem/s', 'ggml 1 thread Melem/s', 'webgpu/ggml', 'cpu/ggml']];
  const json: object[] = [];
  const full = seededNormals(rows * cols, 1, 0.02);
  const xa = array(full, { shape: [rows, cols] });
  for (const f of formats) {
    if (!values.json) process.stderr.write(`${f.type.name} `);
    let gpu = NaN;
    if (f.weightedKernel) {
      quantize(xa, f.type, { imatrix: w }).dispose(); // warm-up: pipeline build
      await device.sync();
      const gt: number[] = [];
      for (let r = 0; r < Number(values.runs); r++) {
        const t0 = performance.now();
        const q = quantize(xa, f.type, { imatrix: w });
        await device.sync();
        gt.push(performance.now() - t0);
        q.dispose();
      }
      gpu = (rows * cols) / (median(gt) / 1000) / 1e6;
    }
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      quantizeHostWeighted(x, f.type, cols, w);
      times.push(performance.now() - t0);
    }
    const ours = n / (median(times) / 1000) / 1e6;
    const g = ggmlQuantizeSeconds(f.type.id, x, cols, runs, w);
    const theirs = g === undefined ? NaN : n / g / 1e6;
    const ratio = (a: number) => (Number.isNaN(a) || Number.isNaN(theirs) ? '-' : `${(a / theirs).toFixed(2)}x`);
    rowsOut.push([
      f.type.name,
      Number.isNaN(gpu) ? 'no kernel' : gpu.toFixed(1),
      ours.toFixed(1),
      Number.isNaN(theirs) ? 'n/a' : theirs.toFixed(1),
      ratio(gpu),
      ratio(ours),
    ]);
    json.push({ type: f.type.name, webgpu_melem_per_s: +gpu.toFixed(2), wgarray_cpu_melem_per_s: +ours.toFixed(2), ggml_melem_per_s: +theirs.toFixed(2) });
  }
  xa.dispose();
  if (values.json) console.log(JSON.stringify(json));
  else {
    process.stderr.write('\n');
    console.log(
      `quantize with an importance matrix: webgpu on ${rows} x ${cols} float32 (median of ${values.runs} runs after a warm-up); ` +
        `wgarray's CPU path and ggml_quantize_chunk (one thread) on ${n / cols} x ${cols} (median of ${runs})`,
    );
    console.log(`machine: ${machineDescription(device)}`);
    printTable(rowsOut);
  }
  await close();
}
