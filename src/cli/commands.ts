// `wgarray quantize` and `wgarray convert`: plan, run with progress, report.

import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { AbortError, ArgumentError, DeviceError, oneLine } from '../errors.js';
import { fileError, writeAtomically } from '../io/atomic.js';
import { refuseOverwritingInputs } from '../io/identity.js';
import { detectFormat } from '../io/load.js';
import { filterImatrix, loadImatrix, type Imatrix } from '../io/imatrix.js';
import { planFromGGUF } from '../convert/from-gguf.js';
import { unweightedTensors } from '../convert/imatrix-plan.js';
import { isInHFFolder, planFromHF, planFromSafetensors, resolveOuttype } from '../convert/from-hf.js';
import { runPlan, type ConversionPlan, type RunResult, type TensorTransform } from '../convert/pipeline.js';
import { FTYPE, parseTensorType, quantPreset, type TypeChoiceOptions } from '../quant/presets.js';
import type { Device } from '../runtime/device.js';
import { openBackend, type Backend } from './backend.js';
import { ProgressLine, type TextSink } from './progress.js';
import { buildReport, printProfile, printReport, type QualityReport } from './report.js';
import type { Model } from '../model/model.js';
import type { EvalResult } from '../model/eval.js';

export interface CommandIO {
  stdout: TextSink;
  stderr: TextSink;
  /** Draw the progress line (stderr is a terminal and --quiet is off). */
  progress: boolean;
  columns?: number;
  signal?: AbortSignal;
  /** A device to run on instead of opening (and closing) the default one. */
  device?: Device;
}

/** Options every writing command takes. */
export interface WriteOptionValues {
  /** Write NaN / ±Inf weights instead of refusing them. */
  'allow-nonfinite'?: boolean;
}

export interface TypeOptionValues {
  pure?: boolean;
  'output-tensor-type'?: string;
  'token-embedding-type'?: string;
  'leave-output-tensor'?: boolean;
  'tensor-type'?: string[];
  'allow-requantize'?: boolean;
}

/** llama-quantize's type options, parsed. */
export function typeChoiceOptions(v: TypeOptionValues): TypeChoiceOptions {
  const o: TypeChoiceOptions = {};
  if (v.pure) o.pure = true;
  if (v['leave-output-tensor']) o.leaveOutputTensor = true;
  if (v['allow-requantize']) o.allowRequantize = true;
  if (v['output-tensor-type']) o.outputTensorType = parseTensorType(v['output-tensor-type'], '--output-tensor-type');
  if (v['token-embedding-type']) o.tokenEmbeddingType = parseTensorType(v['token-embedding-type'], '--token-embedding-type');
  if (v['tensor-type']?.length) {
    o.tensorTypes = v['tensor-type'].map((spec) => {
      const eq = spec.lastIndexOf('=');
      if (eq <= 0 || eq === spec.length - 1) throw new ArgumentError(`--tensor-type '${spec}': expected PATTERN=TYPE, e.g. attn_v=q8_0`);
      // llama-quantize lower-cases the pattern
      return { pattern: spec.slice(0, eq).toLowerCase(), type: parseTensorType(spec.slice(eq + 1), `--tensor-type ${spec}`) };
    });
  }
  return o;
}

export interface RunCommandOptions {
  command: 'quantize' | 'convert' | 'demo';
  input: string;
  output: string;
  type: string;
  fileType: number;
  reportPath?: string;
  quiet?: boolean;
  transform?: TensorTransform;
  backend: Backend;
  plan: ConversionPlan;
  /** --profile: time each stage and print the table. */
  profile?: boolean;
  /** --no-report: skip the RMSE / SNR pass. */
  noReport?: boolean;
  allowNonFinite?: boolean;
}

/** Runs a plan into `output` with the progress line, prints and (with reportPath) saves the report. */
export async function executePlan(o: RunCommandOptions, io: CommandIO): Promise<{ report: QualityReport; result: RunResult }> {
  const progress = new ProgressLine(io.stderr, io.progress && !o.quiet, o.command === 'convert' ? 'converting' : 'quantizing', io.columns);
  let result: RunResult;
  try {
    result = await runPlan(o.plan, o.output, {
      device: o.backend.device,
      transform: o.transform,
      signal: io.signal,
      profile: o.profile,
      quality: !o.noReport,
      allowNonFinite: o.allowNonFinite,
      onProgress: (p) => progress.update(p, p.tensorsDone === p.tensorCount && p.bytesWritten === p.totalBytes),
    });
  } finally {
    progress.done();
  }
  const report = buildReport(o.command, o.input, o.plan.description, o.type, o.fileType, o.backend.label, result);
  printReport(report, io.stdout, o.quiet);
  if (report.profile) printProfile(report.profile, result.timings.totalMs, io.stdout);
  if (o.reportPath) {
    // atomically, like the model: a failure leaves the old report whole. The model is
    // already in place by now, and stays: say so, and do not fail the run for the report.
    const text = new TextEncoder().encode(JSON.stringify(report, null, 2) + '\n');
    try {
      await writeAtomically(o.reportPath, (f) => f.write(text), { signal: io.signal });
    } catch (e) {
      const err = fileError(o.reportPath, e, 'cannot write the report');
      io.stderr.write(`wgarray: warning: the report ${o.reportPath} was not written (${oneLine(err.message)}); the model ${o.output} was written and is complete\n`);
    }
  }
  return { report, result };
}

export interface QuantizeArgs extends TypeOptionValues, WriteOptionValues {
  imatrix?: string;
  'include-weights'?: string[];
  'exclude-weights'?: string[];
  input: string;
  output: string;
  type: string;
  report?: string;
  quiet?: boolean;
  cpu?: boolean;
  'tokenizer-pre'?: string;
  profile?: boolean;
  'no-report'?: boolean;
  /** --eval TEXT: after quantizing, `wgarray eval IN OUT -f TEXT`'s summary (with -c / --chunks). */
  eval?: string;
  ctx?: string;
  chunks?: string;
  /** With --eval: stdout holds one JSON object (the output's size and quality summary, and eval's figures) instead of the tables. */
  json?: boolean;
}

/** The files a command writes, for refuseOverwritingInputs. */
function outputsOf(output: string, report: string | undefined): { path: string; what: string }[] {
  return report === undefined ? [{ path: output, what: 'the output' }] : [{ path: output, what: 'the output' }, { path: report, what: 'the --report file' }];
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (e) {
    throw fileError(path, e, 'cannot read the input');
  }
}

/** wgarray quantize IN OUT TYPE: IN a GGUF, a .safetensors file, or a Hugging Face folder. */
export async function quantizeCommand(a: QuantizeArgs, io: CommandIO): Promise<QualityReport> {
  const preset = quantPreset(a.type);
  const options = typeChoiceOptions(a);
  // read and checked before anything is planned or written
  const imatrix = await imatrixOption(a);
  if (resolve(a.input) === resolve(a.output)) throw new ArgumentError(`the output ${a.output} is the input; write to another file`);
  // a file of a Hugging Face folder (or a shard index) is read with the rest of its folder
  const readsFolder = !(await isDirectory(a.input)) && (isInHFFolder(a.input) || a.input.endsWith('.json'));
  await refuseOverwritingInputs(readsFolder ? [a.input, dirname(resolve(a.input))] : [a.input], outputsOf(a.output, a.report));
  if (a.eval === undefined && (a.ctx !== undefined || a.chunks !== undefined)) throw new ArgumentError('-c and --chunks size the --eval chunks: pass --eval TEXT too');
  if (a.eval === undefined && a.json) throw new ArgumentError('--json prints the --eval figures as JSON: pass --eval TEXT too (the per-tensor figures go to a file with --report)');
  if (a.eval !== undefined) {
    if (a.cpu) throw new ArgumentError('--eval runs the model on the GPU; it cannot be combined with --cpu');
    if ((await isDirectory(a.input)) || (await detectFormat(a.input)) !== 'gguf') {
      throw new ArgumentError(`--eval needs a GGUF input, which the forward pass reads (convert ${a.input} to GGUF first, or quantize it and run wgarray eval on the two GGUFs)`);
    }
  }
  const backend = await openBackend({ cpu: a.cpu, stderr: io.stderr, device: io.device });
  try {
    // --eval: text, architecture, memory and two contexts checked before anything is written
    let evalBase: { base: Model; text: string } | undefined;
    if (a.eval !== undefined) {
      if (!backend.device) throw new DeviceError('NO_ADAPTER', '--eval runs the model on the GPU, and no WebGPU adapter was found (quantize without --eval, then run wgarray eval where there is one)');
      const { prepareEval } = await import('./model-commands.js');
      evalBase = await prepareEval(a.input, { text: a.eval, ctx: a.ctx, chunks: a.chunks, quiet: a.quiet }, backend.device);
    }
    let plan: ConversionPlan;
    if (await isDirectory(a.input)) {
      if (preset.defaultType === null) throw new ArgumentError('COPY keeps a GGUF\'s tensor types; a Hugging Face folder has none to keep (use convert)');
      plan = await planFromHF(a.input, { ...options, device: backend.device, outtype: preset.name, tokenizerPre: a['tokenizer-pre'], imatrix });
    } else {
      const format = await detectFormat(a.input);
      if (format === 'gguf') plan = await planFromGGUF(a.input, preset, { ...options, device: backend.device, imatrix });
      else if (format === 'safetensors') {
        if (isInHFFolder(a.input) && preset.defaultType !== null) {
          plan = await planFromHF(resolve(a.input, '..'), { ...options, device: backend.device, outtype: preset.name, tokenizerPre: a['tokenizer-pre'], imatrix });
        } else plan = await planFromSafetensors(a.input, preset, { ...options, device: backend.device, imatrix });
      } else throw new ArgumentError(`${a.input}: not a GGUF file, a safetensors file or a Hugging Face model folder`);
    }
    if (imatrix) imatrixNotice(plan, imatrix, a.quiet, io);
    const fileType = Number(plan.metadata.get('general.file_type')?.value ?? preset.ftype);
    // --json: stdout holds the JSON alone (no table)
    const quiet = { ...io, stdout: { write: () => {} } };
    const { report } = await executePlan(
      { command: 'quantize', input: a.input, output: a.output, type: preset.name, fileType, reportPath: a.report, quiet: a.quiet, backend, plan, profile: a.profile, noReport: a['no-report'], allowNonFinite: a['allow-nonfinite'] },
      a.json ? quiet : io,
    );
    if (evalBase) {
      // the model is in place and complete by now, and stays: as for --report, a
      // failure here is a warning and the run still succeeds
      let figures: EvalResult | null = null;
      try {
        // the model code loads only when --eval asks for it (start-up time of every other run)
        const [{ loadModel }, { runEval }] = await Promise.all([import('../model/model.js'), import('./model-commands.js')]);
        const quant = await loadModel(a.output, { device: backend.device });
        figures = await runEval(evalBase.base, quant, evalBase.text, { ctx: a.ctx, chunks: a.chunks, quiet: a.quiet }, a.json ? quiet : io);
      } catch (e) {
        if (e instanceof AbortError || io.signal?.aborted) throw e;
        io.stderr.write(`wgarray: warning: the evaluation (--eval ${a.eval}) failed (${oneLine((e as Error)?.message ?? String(e))}); the model ${a.output} was written and is complete\n`);
      }
      if (a.json) {
        const { input, output, type, file_type, parameters, file_bytes, bits_per_weight, summary } = report;
        io.stdout.write(JSON.stringify({ input, output, type, file_type, parameters, file_bytes, bits_per_weight, summary, eval: figures }, null, 2) + '\n');
      }
    }
    return report;
  } finally {
    await backend.close();
  }
}

/** --imatrix FILE filtered by --include-weights / --exclude-weights, read and checked (undefined without --imatrix). */
async function imatrixOption(a: { imatrix?: string; 'include-weights'?: string[]; 'exclude-weights'?: string[] }): Promise<Imatrix | undefined> {
  if ((a['include-weights']?.length || a['exclude-weights']?.length) && a.imatrix === undefined) {
    throw new ArgumentError('--include-weights and --exclude-weights select importance-matrix entries: pass --imatrix FILE too');
  }
  if (a.imatrix === undefined) return undefined;
  return filterImatrix(await loadImatrix(a.imatrix), { include: a['include-weights'], exclude: a['exclude-weights'] });
}

/**
 * llama-quantize's "did not find weights for X" (a line per tensor there): the
 * tensors quantized without importance weights because the imatrix has none
 * for them, in one line.
 */
function imatrixNotice(plan: ConversionPlan, imatrix: Imatrix, quiet: boolean | undefined, io: CommandIO): void {
  const names = unweightedTensors(plan.tensors);
  if (quiet || names.length === 0) return;
  const shown = names.slice(0, 4).join(', ') + (names.length > 4 ? `, ... (${names.length - 4} more)` : '');
  io.stderr.write(`wgarray: note: ${imatrix.file} has no importance weights for ${names.length} quantized tensor(s), which are quantized without them, as llama-quantize does: ${shown}\n`);
}

export interface ConvertArgs extends TypeOptionValues, WriteOptionValues {
  imatrix?: string;
  'include-weights'?: string[];
  'exclude-weights'?: string[];
  input: string;
  output?: string;
  outtype?: string;
  report?: string;
  quiet?: boolean;
  cpu?: boolean;
  profile?: boolean;
  'no-report'?: boolean;
  name?: string;
  'tokenizer-pre'?: string;
  /** A LoRA adapter folder to fuse into the weights. */
  lora?: string;
  'lora-scale'?: string;
}

/** --lora: reads the adapter and checks it against the plan before anything is written. */
async function loraStep(a: ConvertArgs, plan: ConversionPlan, io: CommandIO): Promise<TensorTransform> {
  const strength = a['lora-scale'] === undefined ? 1 : Number(a['lora-scale']);
  if (!Number.isFinite(strength)) throw new ArgumentError(`--lora-scale '${a['lora-scale']}': expected a number`);
  const { loadLoraAdapter, loraTransform } = await import('../lora/index.js');
  const adapter = await loadLoraAdapter(a.lora!, { strength });
  const step = loraTransform(adapter, plan, a.input);
  if (!a.quiet) {
    const kind = adapter.format === 'peft' ? 'PEFT' : 'MLX-LM';
    const scales = [...new Set([...adapter.modules.values()].map((m) => +m.scale.toPrecision(6)))].join(', ');
    io.stderr.write(
      `LoRA: ${a.lora} (${kind}): ${adapter.modules.size} modules fused` +
        (adapter.replacements.size ? `, ${adapter.replacements.size} tensors replaced` : '') +
        (scales ? `, scale ${scales}` : '') +
        (adapter.notes.length ? `; ${adapter.notes.join('; ')}` : '') +
        '\n',
    );
  }
  return step;
}

/** wgarray convert HF_DIR -o OUT.gguf [--outtype ...]. */
export async function convertCommand(a: ConvertArgs, io: CommandIO, transform?: TensorTransform): Promise<QualityReport> {
  const outtype = a.outtype ?? 'auto';
  const resolved = resolveOuttype(outtype);
  const options = typeChoiceOptions(a);
  if ('convert' in resolved && (options.pure || options.tensorTypes || options.outputTensorType || options.tokenEmbeddingType || options.leaveOutputTensor)) {
    throw new ArgumentError(`--pure, --tensor-type, --output-tensor-type, --token-embedding-type and --leave-output-tensor apply to quantization presets (e.g. --outtype Q4_K_M), not to --outtype ${outtype}`);
  }
  if (a.imatrix !== undefined && 'convert' in resolved) {
    throw new ArgumentError(`--imatrix weights a quantization preset (e.g. --outtype Q4_K_M or IQ2_M), not --outtype ${outtype}`);
  }
  const imatrix = await imatrixOption(a);
  const output = a.output ?? `${basename(resolve(a.input))}-${outtype.toUpperCase()}.gguf`;
  await refuseOverwritingInputs(a.lora === undefined ? [a.input] : [a.input, a.lora], outputsOf(output, a.report));
  const backend = await openBackend({ cpu: a.cpu, stderr: io.stderr, device: io.device });
  try {
    const plan = await planFromHF(a.input, {
      ...options,
      device: backend.device,
      outtype,
      tokenizerPre: a['tokenizer-pre'],
      name: a.name,
      imatrix,
    });
    if (imatrix) imatrixNotice(plan, imatrix, a.quiet, io);
    const fileType = Number(plan.metadata.get('general.file_type')?.value);
    // --outtype auto is the weights' own 16-bit type: report that type, not 'AUTO'
    const type =
      'preset' in resolved ? resolved.preset.name : resolved.convert === 'auto' ? (fileType === FTYPE.MOSTLY_BF16 ? 'BF16' : 'F16') : outtype.toUpperCase();
    if (a.lora !== undefined) {
      if (transform) throw new ArgumentError('--lora cannot be combined with another tensor transform');
      if (!backend.device) throw new ArgumentError('--lora fuses the adapter on the GPU, and this run has no WebGPU device (--cpu, or none was found)');
      transform = await loraStep(a, plan, io);
    }
    const { report } = await executePlan(
      { command: 'convert', input: a.input, output, type, fileType, reportPath: a.report, quiet: a.quiet, backend, plan, transform, profile: a.profile, noReport: a['no-report'], allowNonFinite: a['allow-nonfinite'] },
      io,
    );
    return report;
  } finally {
    await backend.close();
  }
}
