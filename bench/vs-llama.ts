// `npm run bench -- e2e --vs-llama [--types Q4_K_M,Q6_K,Q8_0] [--runs 1] [--dir DIR] [--keep] [--baseline CHECKOUT]`
//
// `wgarray quantize` against llama.cpp's own `llama_model_quantize`
// (node-llama-cpp's prebuilt libllama through python3's ctypes, as the tests'
// oracle calls it, with every core of this machine) on the same ~180M-parameter
// F16 GGUF, in the same run, interleaved: whole-process wall time of each, the
// ratio, whether the two files hold the same tensors (names, types, bytes;
// the metadata's order differs), and wgarray's per-stage
// profile (--profile) of its last run per type. --baseline CHECKOUT also runs
// another built wgarray checkout's CLI (its dist/src/cli/cli.js) in the same
// interleaving: before/after figures for a change. Each side's process CPU time
// (wgarray's includes lavapipe's threads) is printed too: on this 2-core
// machine with lavapipe, CPU / 2 bounds what any overlap of stages can reach,
// and it moves less with other jobs' load than wall time does.

import { cpus } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { loadGGUF } from '../src/io/gguf/reader.js';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { syntheticModel, writeSyntheticModel } from '../src/convert/synthetic.js';
import { quantPreset } from '../src/quant/presets.js';
import { close, init } from '../src/runtime/device.js';
import type { ProfileSummary } from '../src/runtime/profile.js';
import { profileRows } from '../src/cli/report.js';
import { table } from '../src/cli/format.js';
import { llamaQuantize, llamaQuantizeAvailable } from '../test/helpers/llama.js';
import { machineDescription, median, printTable } from './machine.js';
import { runChild } from './cli-child.js';

const MB = 2 ** 20;

/**
 * CPU time (user + system, ms) of this process's finished and waited-for children, from
 * /proc/self/stat (cutime + cstime, in clock ticks of 10 ms); undefined off Linux.
 */
function childrenCpuMs(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // fields after the command name in parentheses: state is field 3, cutime 16, cstime 17
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) * 10;
  } catch {
    return undefined;
  }
}

/** ~180M parameters: n_embd 2048, n_ff 5632, 3 layers, a vocabulary of 11008. */
const SHAPE = { hidden: 2048, heads: 16, kvHeads: 4, ff: 5632, vocab: 11008, layers: 3 };

/** Whether two GGUF files hold the same tensors: names, types and data bytes. */
async function sameTensors(a: string, b: string): Promise<boolean> {
  const [x, y] = [await loadGGUF(a), await loadGGUF(b)];
  const names = (f: typeof x) => f.tensorInfos.map((t) => `${t.name}:${t.type.name}`).sort();
  if (names(x).join() !== names(y).join()) return false;
  for (const t of x.tensorInfos) {
    if (Buffer.compare(Buffer.from(await x.readTensorBytes(t.name)), Buffer.from(await y.readTensorBytes(t.name))) !== 0) return false;
  }
  return true;
}

export async function vsLlama(argv: string[], tmp: string): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'vs-llama': { type: 'boolean' },
      types: { type: 'string', default: 'Q4_K_M,Q6_K,Q8_0' },
      runs: { type: 'string', default: '1' },
      dir: { type: 'string' },
      keep: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      baseline: { type: 'string' },
    },
  });
  const baselineCli = values.baseline ? join(values.baseline, 'dist', 'src', 'cli', 'cli.js') : undefined;
  if (baselineCli && !existsSync(baselineCli)) throw new Error(`--baseline: ${baselineCli} does not exist (build that checkout first)`);
  if (!llamaQuantizeAvailable()) throw new Error('--vs-llama needs python3 and node-llama-cpp\'s prebuilt libllama for this platform');
  const types = values.types!.split(',').map((t) => quantPreset(t.trim()));
  const runs = Math.max(1, Number(values.runs));
  const threads = cpus().length;
  const dir = values.dir ?? join(tmp, 'wgarray-bench-vs-llama');
  await mkdir(dir, { recursive: true });

  const model = syntheticModel({ seed: 7, ...SHAPE, tokenizerVocab: 512, maxPositions: 4096 });
  const hf = join(dir, 'hf');
  const f16 = join(dir, 'model-f16.gguf');
  console.log(
    `model: llama, ${SHAPE.layers} layers, n_embd ${SHAPE.hidden}, n_ff ${SHAPE.ff}, vocab ${SHAPE.vocab}: ${(model.parameterCount / 1e6).toFixed(0)} M parameters, F16 GGUF`,
  );
  if (!existsSync(f16)) {
    if (!existsSync(join(hf, 'config.json'))) await writeSyntheticModel(hf, model, { maxShardBytes: 512 * MB });
    const c = await runChild(['convert', hf, '-o', f16, '--outtype', 'f16', '--quiet']);
    if (c.code !== 0) throw new Error(`wgarray convert to F16 failed:\n${c.stderr.slice(-3000)}`);
    await rm(hf, { recursive: true, force: true });
  }

  // (the GPU is opened here only to name it, after the model is written: the children do the work)
  const device = await init().catch(() => undefined);
  console.log(`e2e --vs-llama: wgarray quantize vs llama_model_quantize (${threads} threads) on ${machineDescription(device)}`);
  await close();

  const rows: (string | number)[][] = [
    // wgarray CPU s: its process's CPU time (lavapipe's threads included); cores busy = CPU / wall, at most
    // the machine's cores: where it is near that, overlapping stages can gain no more on this machine
    // llama.cpp CPU s: its process's (python3 + libllama) CPU time, from the children's CPU counters
    ['type', 'wgarray s', 'llama.cpp s', 'llama.cpp / wgarray', 'same tensors', 'wgarray CPU s', 'cores busy', 'llama.cpp CPU s', ...(baselineCli ? ['baseline s', 'baseline / wgarray'] : [])],
  ];
  const profiles: [string, ProfileSummary, number][] = [];
  const json: { type: string; wgarray_s: number; llama_s: number; ratio: number; same_tensors: boolean; gpu_ms: number; total_ms: number; wgarray_cpu_s: number }[] = [];
  for (const preset of types) {
    const wg: number[] = [];
    const wgCpu: number[] = [];
    const ll: number[] = [];
    const llCpu: number[] = [];
    const base: number[] = [];
    let identical = true;
    const ours = join(dir, `wgarray-${preset.name}.gguf`);
    const theirs = join(dir, `llama-${preset.name}.gguf`);
    const report = join(dir, `report-${preset.name}.json`);
    for (let r = 0; r < runs; r++) {
      // interleaved, the order alternating between runs
      const order = baselineCli
        ? (['wgarray', 'baseline', 'llama'] as const).map((_, k, a) => a[(k + r) % 3])
        : r % 2 === 0 ? (['wgarray', 'llama'] as const) : (['llama', 'wgarray'] as const);
      for (const who of order) {
        if (who === 'wgarray') {
          const c = await runChild(['quantize', f16, ours, preset.name, '--quiet', '--profile', '--report', report]);
          if (c.code !== 0) throw new Error(`wgarray quantize ${preset.name} failed:\n${c.stderr.slice(-3000)}`);
          wg.push(c.wallMs);
          wgCpu.push(c.cpuMs);
        } else if (who === 'baseline') {
          const c = await runChild(['quantize', f16, join(dir, 'baseline.gguf'), preset.name, '--quiet'], baselineCli);
          if (c.code !== 0) throw new Error(`baseline quantize ${preset.name} failed:\n${c.stderr.slice(-3000)}`);
          base.push(c.wallMs);
          await rm(join(dir, 'baseline.gguf'), { force: true });
        } else {
          const t0 = performance.now();
          const cpu0 = childrenCpuMs();
          await llamaQuantize([{ inp: f16, out: theirs, ftype: preset.ftype, params: { nthread: threads } }]);
          ll.push(performance.now() - t0);
          const cpu1 = childrenCpuMs();
          if (cpu0 !== undefined && cpu1 !== undefined) llCpu.push(cpu1 - cpu0);
        }
      }
      identical &&= await sameTensors(ours, theirs);
    }
    const rep = JSON.parse(await readFile(report, 'utf8')) as { profile: ProfileSummary; timings_ms: { total: number } };
    profiles.push([preset.name, rep.profile, rep.timings_ms.total]);
    const w = median(wg);
    const l = median(ll);
    const gpuMs = (rep.profile.stages.quantize.gpuMs ?? rep.profile.stages.quantize.wallMs) + (rep.profile.stages.stats.gpuMs ?? rep.profile.stages.stats.wallMs);
    const cpu = median(wgCpu);
    json.push({ type: preset.name, wgarray_s: w / 1000, llama_s: l / 1000, ratio: l / w, same_tensors: identical, gpu_ms: gpuMs, total_ms: rep.timings_ms.total, wgarray_cpu_s: cpu / 1000 });
    const b = base.length ? median(base) : 0;
    rows.push([
      preset.name,
      (w / 1000).toFixed(2),
      (l / 1000).toFixed(2),
      `${(l / w).toFixed(2)}x`,
      identical ? 'yes' : 'NO',
      (cpu / 1000).toFixed(2),
      (cpu / w).toFixed(2),
      llCpu.length ? (median(llCpu) / 1000).toFixed(2) : '-',
      ...(baselineCli ? [(b / 1000).toFixed(2), `${(b / w).toFixed(2)}x`] : []),
    ]);
    await rm(ours, { force: true });
    await rm(theirs, { force: true });
  }
  console.log(`whole-process wall time, median of ${runs} interleaved run(s) each; measured with other jobs on the machine unless it was idle`);
  printTable(rows);
  for (const [name, p, total] of profiles) {
    console.log(`\nwgarray quantize ${name}: per-stage profile of its last run`);
    console.log(table(profileRows(p, total), ['l', 'r', 'r', 'r', 'r']));
  }
  if (values.json) console.log(JSON.stringify({ vs_llama: json }));
  if (!values.keep) await rm(dir, { recursive: true, force: true });
}
