// `npm run bench -- forward [--tokens 256] [--runs 3] [--dir DIR] [--profile] [--generic] [--float-kquant]`
// (--profile: GPU time per pipeline of one more run; --generic: also the
// dequantize + generic-matmul path the direct kernel replaced, same run;
// --float-kquant: also K-quant weights on float32 activations, the path the
// Q8_K integer kernel replaced, same run)
//
// Prompt processing speed of the forward pass (src/model/): a 4-layer,
// 1024-wide llama (8/4 heads, ffn 2816, vocab 16000) made from a seed,
// converted to F16 and Q4_K_M by `wgarray convert`, then TOKENS prompt tokens
// run through wgarray's logits() and, side by side in the same run, through
// llama.cpp (node-llama-cpp 3.21.1, CPU, all cores) in a child process.
// Both compute the last position's logits only (wgarray: lastOnly), and both
// read the weights from the file on every run (wgarray loads one layer at a
// time; llama.cpp's context is created anew, its weights stay mapped).

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { runCli } from '../src/cli/cli.js';
import { DEMO_CORPUS, syntheticModel, writeSyntheticModel } from '../src/convert/synthetic.js';
import { setQ8Linear } from '../src/kernels/matmul-linear.js';
import { setDirectLinear } from '../src/model/linear.js';
import { loadModel } from '../src/model/model.js';
import { close, init, type Device } from '../src/runtime/device.js';
import type { Stage } from '../src/runtime/profile.js';
import { machineDescription, median, printTable } from './machine.js';

const LLAMA_CHILD = String.raw`
import { getLlama, LlamaLogLevel } from '@NODE_LLAMA_CPP@';
const job = JSON.parse(process.argv[2]);
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, progressLogs: false });
const model = await llama.loadModel({ modelPath: job.file, gpuLayers: 0 });
const times = [];
for (let r = 0; r < job.runs + 1; r++) {
  const context = await model.createContext({ contextSize: Math.max(512, job.tokens.length + 1), batchSize: job.tokens.length, threads: job.threads });
  const seq = context.getSequence();
  const t0 = performance.now();
  await seq.evaluateWithoutGeneratingNewTokens(job.tokens);
  if (r > 0) times.push(performance.now() - t0);
  await context.dispose();
}
await model.dispose();
await llama.dispose();
process.stdout.write('\n@@' + JSON.stringify(times) + '\n');
`;

function llamaTimes(file: string, tokens: number[], runs: number): Promise<number[]> {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const entry = pathToFileURL(join(root, 'node_modules', 'node-llama-cpp', 'dist', 'index.js')).href;
  const script = join(tmpdir(), `wgarray-bench-forward-${process.pid}.mjs`);
  writeFileSync(script, LLAMA_CHILD.replace('@NODE_LLAMA_CPP@', entry));
  const job = JSON.stringify({ file, tokens, runs, threads: cpus().length });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, job], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      const at = out.lastIndexOf('@@');
      if (code !== 0 || at < 0) reject(new Error(`llama.cpp child failed (${code}):\n${err.slice(-2000)}`));
      else resolve(JSON.parse(out.slice(at + 2)) as number[]);
    });
  });
}

export default async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      tokens: { type: 'string', default: '256' },
      runs: { type: 'string', default: '3' },
      dir: { type: 'string' },
      profile: { type: 'boolean', default: false },
      generic: { type: 'boolean', default: false },
      'float-kquant': { type: 'boolean', default: false },
    },
  });
  const nTokens = Number(values.tokens);
  const runs = Number(values.runs);
  const dir = values.dir ?? join(tmpdir(), 'wgarray-bench-forward');
  mkdirSync(dir, { recursive: true });
  const device = await init();
  console.log(`forward: prompt tokens/s, ${nTokens} tokens, median of ${runs} runs after a warm-up, on ${machineDescription(device)}`);
  const shape = { layers: 4, hidden: 1024, heads: 8, kvHeads: 4, ff: 2816, vocab: 16000 };
  console.log(`model: llama, ${shape.layers} layers, hidden ${shape.hidden}, ffn ${shape.ff}, ${shape.heads}/${shape.kvHeads} heads, vocab ${shape.vocab}`);
  const hf = join(dir, 'hf');
  if (!existsSync(join(hf, 'config.json'))) await writeSyntheticModel(hf, syntheticModel({ seed: 42, ...shape, tokenizerVocab: 512, maxPositions: 4096 }));
  const rows: (string | number)[][] = [
    ['type', 'wgarray tok/s', ...(values.generic ? ['generic matmul tok/s'] : []), ...(values['float-kquant'] ? ['float K-quant tok/s'] : []), 'llama.cpp tok/s', 'wgarray / llama.cpp'],
  ];
  for (const type of ['f16', 'Q4_K_M']) {
    const file = join(dir, `forward-${type}.gguf`);
    if (!existsSync(file)) {
      const code = await runCli(['convert', hf, '-o', file, '--outtype', type, '--quiet'], { device, isTTY: false });
      if (code !== 0) throw new Error(`convert ${type} failed`);
    }
    const model = await loadModel(file, { device });
    let text = DEMO_CORPUS;
    while (model.tokenize(text).length < nTokens) text += DEMO_CORPUS;
    const ids = [model.tokenizer.bos!, ...model.tokenize(text)].slice(0, nTokens);
    await model.logits(ids.slice(0, 32), { lastOnly: true }); // shaders compiled
    // wall times; and this process's CPU time per run (lavapipe's threads included), less sensitive to other jobs on the machine
    const cpuMs: Record<string, number[]> = {};
    const timeRuns = async (label = 'q8'): Promise<number[]> => {
      const times: number[] = [];
      for (let r = 0; r < runs; r++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await model.logits(ids, { lastOnly: true });
        times.push(performance.now() - t0);
        const c = process.cpuUsage(c0);
        (cpuMs[label] ??= []).push((c.user + c.system) / 1000);
      }
      return times;
    };
    const ours = await timeRuns();
    // --generic: the path the direct kernel replaced (dequantize to float32, generic tiled matmul), same run
    let generic: number[] = [];
    if (values.generic) {
      setDirectLinear(false);
      try {
        await model.logits(ids.slice(0, 32), { lastOnly: true });
        generic = await timeRuns();
      } finally {
        setDirectLinear(true);
      }
    }
    // --float-kquant: K-quant weights decoded to float32 against float32 activations (no Q8_K rounding), same run
    let floatK: number[] = [];
    if (values['float-kquant']) {
      setQ8Linear(false);
      try {
        await model.logits(ids.slice(0, 32), { lastOnly: true });
        floatK = await timeRuns('float');
      } finally {
        setQ8Linear(true);
      }
    }
    if (values.profile) await profileRun(device, () => model.logits(ids, { lastOnly: true }));
    if (values.profile && values['float-kquant'] && type !== 'f16') {
      console.log('(the same, K-quant weights on float32 activations)');
      setQ8Linear(false);
      try {
        await profileRun(device, () => model.logits(ids, { lastOnly: true }));
      } finally {
        setQ8Linear(true);
      }
    }
    const theirs = await llamaTimes(file, ids, runs);
    const a = (nTokens * 1000) / median(ours);
    const b = (nTokens * 1000) / median(theirs);
    const g = values.generic ? [((nTokens * 1000) / median(generic)).toFixed(1)] : [];
    const f = values['float-kquant'] ? [((nTokens * 1000) / median(floatK)).toFixed(1)] : [];
    rows.push([type, a.toFixed(1), ...g, ...f, b.toFixed(1), `${(a / b).toFixed(3)}x`]);
    console.log(`${type}: wgarray CPU ms per run (median): ${Object.entries(cpuMs).map(([k, v]) => `${k === 'q8' ? 'as shipped' : 'float K-quant'} ${median(v).toFixed(0)}`).join(', ')}`);
  }
  printTable(rows);
  console.log(`peak RSS of this process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  await close();
}

/**
 * --profile: one more run with every compute pass timed by GPU timestamp
 * queries (lavapipe offers them), summed per pipeline; printed as a table.
 */
async function profileRun(device: Device, run: () => Promise<unknown>): Promise<void> {
  const dispatch = device.dispatch.bind(device);
  device.dispatch = (pipe, groups, size) => device.gpuStage(pipe.label as Stage, () => dispatch(pipe, groups, size));
  const profile = device.startProfile();
  const t0 = performance.now();
  try {
    await run();
  } finally {
    device.dispatch = dispatch;
  }
  const wall = performance.now() - t0;
  await device.stopProfile();
  const rows: (string | number)[][] = [['pipeline', 'passes', 'GPU ms', 'share of wall']];
  for (const { label, ms, passes } of profile.gpuByLabel().sort((a, b) => b.ms - a.ms)) {
    rows.push([label, passes, ms.toFixed(0), `${((100 * ms) / wall).toFixed(1)}%`]);
  }
  rows.push(['(wall, all)', '', wall.toFixed(0), '100%']);
  printTable(rows);
}
