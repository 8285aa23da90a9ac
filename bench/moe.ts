// `npm run bench -- moe [--tokens 256] [--runs 3] [--dir DIR]`
//
// What the MoE layers' host-side routing costs (src/model/model.ts moe()): the
// router's logits [tokens, experts] are read back to the host every MoE layer,
// top-k is chosen there (routeTokens), and the experts' rows are gathered on
// the GPU from that choice. Per run of logits() over TOKENS prompt tokens on
// small seeded qwen3moe and Mixtral models (F16): the wall time, then, in a
// separate instrumented run, per router readback the time to drain the GPU
// work queued before it (device.sync), the readback itself (copy + map) and
// the host's routing; the readback and routing are what moving top-k and the
// gather onto the GPU would save (the drain is GPU work that runs either way,
// but on a real GPU it also leaves the GPU idle while the host routes).

import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runCli } from '../src/cli/cli.js';
import { DEMO_CORPUS, syntheticModel, writeSyntheticModel } from '../src/convert/synthetic.js';
import { loadModel, routeTokens } from '../src/model/model.js';
import { WgArray } from '../src/runtime/array.js';
import { close, init } from '../src/runtime/device.js';
import { machineDescription, median, printTable } from './machine.js';

export default async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { tokens: { type: 'string', default: '256' }, runs: { type: 'string', default: '3' }, dir: { type: 'string' } } });
  const nTokens = Number(values.tokens);
  const runs = Number(values.runs);
  const dir = values.dir ?? join(tmpdir(), 'wgarray-bench-moe');
  mkdirSync(dir, { recursive: true });
  const device = await init();
  console.log(`moe: router readbacks of logits() over ${nTokens} tokens, median of ${runs} runs after a warm-up, on ${machineDescription(device)}`);
  const shape = { layers: 2, hidden: 256, heads: 4, kvHeads: 2, vocab: 512, maxPositions: 4096 };
  const models = [
    { name: 'qwen3moe', model: syntheticModel({ seed: 24, arch: 'qwen3moe', ...shape, headDim: 64, ff: 256, experts: 8, expertFf: 256 }), experts: 8 },
    { name: 'mixtral', model: syntheticModel({ seed: 32, arch: 'mixtral', ...shape, ff: 256, experts: 4 }), experts: 4 },
  ];
  const rows: (string | number)[][] = [['model', 'layers x experts (k=2)', 'logits() ms', 'readbacks', 'drain ms', 'readback ms', 'routing ms', 'readback + routing / wall']];
  const data = WgArray.prototype.data;
  for (const m of models) {
    const hf = join(dir, m.name);
    if (!existsSync(join(hf, 'config.json'))) await writeSyntheticModel(hf, m.model);
    const file = join(dir, `${m.name}-f16.gguf`);
    if (!existsSync(file)) {
      const code = await runCli(['convert', hf, '-o', file, '--outtype', 'f16', '--quiet'], { device, isTTY: false });
      if (code !== 0) throw new Error(`convert ${m.name} failed`);
    }
    const model = await loadModel(file, { device });
    let text = DEMO_CORPUS;
    while (model.tokenize(text).length < nTokens) text += DEMO_CORPUS;
    const ids = [model.tokenizer.bos!, ...model.tokenize(text)].slice(0, nTokens);
    await model.logits(ids.slice(0, 32)); // shaders compiled
    const walls: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      await model.logits(ids);
      walls.push(performance.now() - t0);
    }
    // instrumented: every read-back of a [tokens, experts] array is a router's
    const drain: number[] = [];
    const readback: number[] = [];
    const routing: number[] = [];
    let calls = 0;
    WgArray.prototype.data = async function (this: WgArray) {
      if (this.shape.length !== 2 || this.shape[1] !== m.experts) return data.call(this);
      calls++;
      const t0 = performance.now();
      await device.sync();
      const t1 = performance.now();
      const v = await data.call(this);
      const t2 = performance.now();
      routeTokens(v as Float32Array, this.shape[0], m.experts, 2);
      drain.push(t1 - t0);
      readback.push(t2 - t1);
      routing.push(performance.now() - t2);
      return v;
    } as typeof data;
    try {
      for (let r = 0; r < runs; r++) await model.logits(ids);
    } finally {
      WgArray.prototype.data = data;
    }
    const per = calls / runs;
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / runs;
    const wall = median(walls);
    rows.push([m.name, `${shape.layers} x ${m.experts}`, wall.toFixed(0), per, sum(drain).toFixed(1), sum(readback).toFixed(1), sum(routing).toFixed(1), `${((100 * (sum(readback) + sum(routing))) / wall).toFixed(1)}%`]);
  }
  printTable(rows);
  await close();
}
