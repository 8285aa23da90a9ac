// `npm run bench -- e2e [--size 1g] [--type Q4_K_M] [--arch llama|qwen3moe] [--dir DIR] [--keep] [--cpu] [--mlx [--requantize TYPE]]`
// `npm run bench -- e2e --vs-llama [--types Q4_K_M,Q6_K,Q8_0] [--runs N]`: see vs-llama.ts
//
// --mlx (llama only): the same model MLX-quantized first (affine 4-bit, group
// 64, by wgarray's MLX quantize, written as an MLX-LM folder), then `wgarray
// convert MLX_DIR` (read + exact repack to Q4_1 + write) timed the same way.
//
// The main job end to end: a generated llama-architecture (or, with --arch
// qwen3moe, an 8-expert Qwen3-MoE: its largest tensors are the stacked 3-D
// expert tensors) Hugging Face folder
// of ~SIZE of bf16 weights is converted and quantized by the real CLI
// (`wgarray convert DIR --outtype TYPE`) in a child process, and this prints
// its wall time, its peak resident memory (the child's own maxRSS: on lavapipe
// the GPU's buffers live in that process), the budget of 2 x the largest
// tensor + 300 MB, and the run split into read / quantize / write (from the
// CLI's --report).

import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { syntheticModel, writeSyntheticModel } from '../src/convert/synthetic.js';
import { init, close } from '../src/runtime/device.js';
import { writeMlxSynthetic } from '../src/convert/mlx/synthetic.js';
import { machineDescription, printTable } from './machine.js';
import { runChild } from './cli-child.js';
import { profileRows } from '../src/cli/report.js';
import { table } from '../src/cli/format.js';
import type { ProfileSummary } from '../src/runtime/profile.js';

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)i?b?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size '${s}' (examples: 1g, 256m)`);
  const unit = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * unit);
}

const MB = 2 ** 20;

/** A llama shape whose bf16 weights come to about `bytes`. */
function shapeFor(bytes: number) {
  const big = bytes >= 512 * MB;
  const hidden = big ? 2048 : 1024;
  const heads = big ? 16 : 8;
  const kvHeads = 4;
  const ff = big ? 5632 : 2816;
  const vocab = big ? 32000 : 16000;
  const headDim = hidden / heads;
  const perLayer = 2 * hidden * hidden + 2 * kvHeads * headDim * hidden + 3 * ff * hidden + 2 * hidden;
  const fixed = 2 * vocab * hidden + hidden;
  const layers = Math.max(1, Math.round((bytes / 2 - fixed) / perLayer));
  return { hidden, heads, kvHeads, ff, vocab, layers };
}

/** A Qwen3-MoE shape (8 experts, 2 used) whose bf16 weights come to about `bytes`. */
function moeShapeFor(bytes: number) {
  const hidden = 1024;
  const heads = 8;
  const kvHeads = 4;
  const experts = 8;
  const expertFf = bytes >= 512 * MB ? 2816 : 1408;
  const vocab = 16000;
  const headDim = hidden / heads;
  const perLayer = 2 * hidden * hidden + 2 * kvHeads * headDim * hidden + experts * 3 * expertFf * hidden + experts * hidden + 2 * hidden + 2 * headDim;
  const fixed = 2 * vocab * hidden + hidden;
  const layers = Math.max(1, Math.round((bytes / 2 - fixed) / perLayer));
  return { arch: 'qwen3moe' as const, hidden, heads, kvHeads, ff: expertFf, experts, expertFf, vocab, layers };
}

export default async function run(argv: string[]): Promise<void> {
  if (argv.includes('--vs-llama')) {
    const { vsLlama } = await import('./vs-llama.js');
    return vsLlama(argv, tmpdir());
  }
  const { values } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string', default: '1g' },
      type: { type: 'string', default: 'Q4_K_M' },
      dir: { type: 'string' },
      keep: { type: 'boolean', default: false },
      cpu: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      arch: { type: 'string', default: 'llama' },
      mlx: { type: 'boolean', default: false },
      // with --mlx: convert with --outtype TYPE instead (dequantize + requantize, the route without repacking)
      requantize: { type: 'string' },
    },
  });
  const target = parseSize(values.size!);
  const dir = values.dir ?? join(tmpdir(), 'wgarray-bench-e2e');
  if (values.arch !== 'llama' && values.arch !== 'qwen3moe') throw new Error(`--arch ${values.arch}: llama or qwen3moe`);
  const moe = values.arch === 'qwen3moe' ? moeShapeFor(target) : undefined;
  const shape = moe ?? shapeFor(target);
  const model = syntheticModel({ seed: 42, ...shape, tokenizerVocab: 512, maxPositions: 4096 });
  // an MLX-LM folder of a MoE model would hold its experts stacked (switch_mlp), which the synthetic MLX writer does not make
  if (values.mlx && moe) throw new Error('--mlx: llama only (the MLX folder writer makes no stacked switch_mlp experts)');
  const base = `${values.arch}-${values.size}${values.mlx ? '-mlx4' : ''}`;
  const hf = join(dir, base);
  const out = join(dir, values.mlx ? `${base}.gguf` : `${base}-${values.type}.gguf`);
  const reportPath = join(dir, 'report.json');

  const device = values.cpu ? undefined : await init().catch(() => undefined);
  console.log(
    values.mlx
      ? `e2e: wgarray convert of an MLX-LM 4-bit (group 64) folder (exact repack) on ${machineDescription(device)}`
      : `e2e: wgarray convert + ${values.type} on ${machineDescription(device)}`,
  );
  if (values.mlx && !existsSync(join(hf, 'config.json'))) {
    if (!device) throw new Error('--mlx makes its MLX folder with the GPU quantize: it needs a WebGPU device');
    const g0 = performance.now();
    await writeMlxSynthetic(hf, model, 4, 64);
    console.log(`generated the MLX-LM folder in ${((performance.now() - g0) / 1000).toFixed(1)} s (${hf})`);
  }
  await close();

  const weightBytes = model.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1) * 2, 0);
  // the largest output tensor: a stacked expert tensor is n_expert source matrices
  const stacked = moe ? moe.experts * moe.expertFf * moe.hidden * 2 : 0;
  const largest = Math.max(stacked, model.tensors.reduce((m, t) => Math.max(m, t.shape.reduce((a, b) => a * b, 1) * 2), 0));
  console.log(
    `model: ${values.arch}${moe ? ` (${moe.experts} experts of ffn ${moe.expertFf})` : ''}, ${shape.layers} layers, hidden ${shape.hidden}, ffn ${shape.ff}, ${shape.heads}/${shape.kvHeads} heads, vocab ${shape.vocab}: ` +
      `${(model.parameterCount / 1e6).toFixed(0)} M parameters, ${(weightBytes / MB).toFixed(0)} MiB of bf16; largest tensor ${(largest / MB).toFixed(0)} MiB`,
  );
  if (!existsSync(join(hf, 'config.json'))) {
    const g0 = performance.now();
    await writeSyntheticModel(hf, model, { maxShardBytes: 512 * MB });
    console.log(`generated the Hugging Face folder in ${((performance.now() - g0) / 1000).toFixed(1)} s (${hf})`);
  } else console.log(`reusing ${hf}`);

  const args = values.mlx
    ? ['convert', hf, '-o', out, '--report', reportPath, '--quiet', '--profile', ...(values.requantize ? ['--outtype', values.requantize] : [])]
    : ['convert', hf, '-o', out, '--outtype', values.type!, '--report', reportPath, '--quiet', '--profile'];
  if (values.cpu) args.push('--cpu');
  const r = await runChild(args);
  if (r.code !== 0) throw new Error(`wgarray ${args.join(' ')} exited ${r.code}:\n${r.stderr.slice(-4000)}`);
  const report = JSON.parse(await readFile(reportPath, 'utf8')) as {
    file_bytes: number;
    bits_per_weight: number;
    device: string;
    timings_ms: { total: number; read: number; compute: number; write: number };
    summary: { mean_snr_db: number | null };
    profile: ProfileSummary;
  };
  const budget = 2 * largest + 300 * MB;
  const t = report.timings_ms;
  console.log(`process wall time ${(r.wallMs / 1000).toFixed(1)} s (pipeline ${(t.total / 1000).toFixed(1)} s; measured with other jobs on the machine unless it was idle)`);
  if (values.mlx && !values.requantize) console.log('MLX folder: the read stage includes the exact repack (packed words -> ggml blocks); repacked tensors are not quantized again');
  console.log(table(profileRows(report.profile, t.total), ['l', 'r', 'r', 'r', 'r']));
  console.log(
    `output: ${(report.file_bytes / MB).toFixed(0)} MiB, ${report.bits_per_weight.toFixed(2)} bits per weight, mean SNR ${report.summary.mean_snr_db?.toFixed(1) ?? 'n/a (lossless)'} dB, on ${report.device}`,
  );
  console.log(
    `peak RSS: ${(r.maxRssBytes / MB).toFixed(0)} MiB; budget 2 x largest tensor + 300 MiB = ${(budget / MB).toFixed(0)} MiB: ` +
      `${r.maxRssBytes <= budget ? 'within' : 'OVER'}`,
  );
  if (values.json) {
    console.log(JSON.stringify({ shape, weightBytes, largest, peakRss: r.maxRssBytes, budget, wallMs: r.wallMs, timings: t, fileBytes: report.file_bytes }));
  }
  if (!values.keep) await rm(dir, { recursive: true, force: true });
}
