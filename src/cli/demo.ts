// `wgarray demo` (and `npm start`): the main job on an embedded default. A
// small llama model is made from a fixed seed (real architecture, byte-level
// BPE vocabulary), written as a Hugging Face folder, converted and quantized
// to Q4_K_M, read back and checked; then the report, the timings, and the
// command to run on your own model.

import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { planFromHF } from '../convert/from-hf.js';
import { syntheticModel, writeSyntheticModel } from '../convert/synthetic.js';
import { FormatError } from '../errors.js';
import { loadGGUF } from '../io/gguf/reader.js';
import { quantPreset } from '../quant/presets.js';
import { openBackend } from './backend.js';
import { executePlan, type CommandIO } from './commands.js';
import { formatBytes, formatDuration } from './format.js';
import type { QualityReport } from './report.js';

export interface DemoArgs {
  /** Folder for the demo's files (default: <tmp>/wgarray-demo). */
  out?: string;
  type?: string;
  quiet?: boolean;
  cpu?: boolean;
  seed?: number;
}

export async function demoCommand(a: DemoArgs, io: CommandIO): Promise<QualityReport> {
  const say = (s: string) => io.stdout.write(s + '\n');
  const dir = resolve(a.out ?? join(tmpdir(), 'wgarray-demo'));
  const preset = quantPreset(a.type ?? 'Q4_K_M');
  const hfDir = join(dir, 'tiny-llama');
  const output = join(dir, `tiny-llama-${preset.name}.gguf`);

  const t0 = performance.now();
  const model = syntheticModel({ seed: a.seed ?? 1234 });
  await rm(hfDir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeSyntheticModel(hfDir, model, { signal: io.signal });
  const tBuild = performance.now() - t0;
  const c = model.config;
  say(
    `wgarray demo: a ${String(c.num_hidden_layers)}-layer llama (hidden ${String(c.hidden_size)}, ${String(c.num_attention_heads)} heads, ` +
      `${String(c.num_key_value_heads)} kv heads, vocab ${String(c.vocab_size)}, ${(model.parameterCount / 1e6).toFixed(2)} M parameters, bf16) ` +
      `from seed ${a.seed ?? 1234}`,
  );
  say(`  Hugging Face folder: ${hfDir} (${formatDuration(tBuild)})`);

  const backend = await openBackend({ cpu: a.cpu, stderr: io.stderr, device: io.device });
  let report: QualityReport;
  try {
    const plan = await planFromHF(hfDir, { device: backend.device, outtype: preset.name });
    say(`  converting and quantizing to ${preset.name} on ${backend.label}\n`);
    ({ report } = await executePlan(
      { command: 'demo', input: hfDir, output, type: preset.name, fileType: preset.ftype, quiet: a.quiet, backend, plan },
      io,
    ));
  } finally {
    await backend.close();
  }

  // Read the result back: every tensor where the plan put it, with the type the report gives.
  const r0 = performance.now();
  const f = await loadGGUF(output);
  const want = new Map(report.tensors.map((t) => [t.name, t.to]));
  for (const t of f.tensorInfos) {
    if (want.get(t.name) !== t.type.name) throw new FormatError(output, undefined, `read back tensor ${t.name} as ${t.type.name}, expected ${want.get(t.name)}`);
  }
  if (f.tensorInfos.length !== want.size) throw new FormatError(output, undefined, `read back ${f.tensorInfos.length} tensors, expected ${want.size}`);
  const counts = new Map<string, number>();
  for (const t of f.tensorInfos) counts.set(t.type.name, (counts.get(t.type.name) ?? 0) + 1);
  const mix = [...counts].map(([t, n]) => `${n} ${t}`).join(', ');
  const tRead = performance.now() - r0;
  say(
    `\nread back ${output}: GGUF v${f.version}, ${f.tensorInfos.length} tensors (${mix}), ` +
      `${String(f.metadata['general.architecture'])}, tokenizer ${String(f.metadata['tokenizer.ggml.model'])}/${String(f.metadata['tokenizer.ggml.pre'])}, ` +
      `${formatBytes(f.fileSize)} (${formatDuration(tRead)})`,
  );
  say(`timings: build ${formatDuration(tBuild)}, convert + quantize ${formatDuration(report.timings_ms.total)}, read back ${formatDuration(tRead)}`);
  say('\nOn your own model (a Hugging Face folder: config.json, *.safetensors, tokenizer.json or tokenizer.model):');
  say(`  npx wgarray convert path/to/model -o model-${preset.name}.gguf --outtype ${preset.name}`);
  say('or, from a GGUF you already have:');
  say(`  npx wgarray quantize model-f16.gguf model-${preset.name}.gguf ${preset.name}`);
  say(`Try the demo's file in llama.cpp:  llama-cli -m ${output} -p "The quick brown fox" -n 16`);
  return report;
}
