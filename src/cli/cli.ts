// The `wgarray` command line: argument parsing (node:util parseArgs), help,
// dispatch, and turning errors into one-line messages and exit codes.
// src/cli/main.ts is the executable; tests call runCli() in-process.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AbortError, ArgumentError, oneLine, WgArrayError } from '../errors.js';
import { quantPresets } from '../quant/presets.js';
import { convertCommand, quantizeCommand, type CommandIO } from './commands.js';
import { inspect } from './inspect.js';
import type { Device } from '../runtime/device.js';
import type { TextSink } from './progress.js';

export const EXIT = { OK: 0, ERROR: 1, USAGE: 2, INTERRUPTED: 130 } as const;

const TYPE_OPTIONS = {
  pure: { type: 'boolean' },
  'output-tensor-type': { type: 'string' },
  'token-embedding-type': { type: 'string' },
  'leave-output-tensor': { type: 'boolean' },
  'tensor-type': { type: 'string', multiple: true },
  'allow-requantize': { type: 'boolean' },
  'allow-nonfinite': { type: 'boolean' },
} as const;

const IMATRIX_OPTIONS = {
  imatrix: { type: 'string' },
  'include-weights': { type: 'string', multiple: true },
  'exclude-weights': { type: 'string', multiple: true },
} as const;

const COMMON = {
  report: { type: 'string' },
  'no-report': { type: 'boolean' },
  profile: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  cpu: { type: 'boolean' },
  'tokenizer-pre': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const presetList = () =>
  quantPresets().map((p) => p.name).join(' ') + ' (Q3_K = Q3_K_M, Q4_K = Q4_K_M, Q5_K = Q5_K_M, MXFP4 = MXFP4_MOE; case-insensitive)';

// the preset list is resolved when help is shown: computing it runs the type choice over probe models (~0.1 s at start-up)
const PRESETS_MARK = '\u0000presets\u0000';
const helpText = (topic: string): string | undefined => HELP[topic]?.split(PRESETS_MARK).join(presetList());

const HELP: Record<string, string> = {
  main: `wgarray: quantize and convert models to GGUF on the GPU (WebGPU)

usage: wgarray <command> [options]

commands:
  quantize IN OUT TYPE        re-type a GGUF / safetensors / Hugging Face folder as llama-quantize does (--eval TEXT: then eval)
  convert DIR -o OUT.gguf     a Hugging Face or MLX-LM folder to GGUF (--outtype f16, Q4_K_M, ...); GGUF -> MLX with --to mlx
  inspect FILE                metadata and tensor table of a GGUF or safetensors file (--json)
  demo                        build a small llama from a seed, convert + quantize it to Q4_K_M, report
  imatrix MODEL -f TEXT       llama-imatrix's importance matrix of a GGUF model over a text (GPU)
  eval BASE QUANT -f TEXT     PPL, KL divergence, same-top %, RMS Δp of QUANT against BASE (GPU)

wgarray <command> --help shows a command's options. Environment: WGARRAY_BACKEND (vulkan, metal, ...),
WGARRAY_ADAPTER (adapter name) choose the GPU; without a WebGPU adapter the CPU does the work.`,
  quantize: `usage: wgarray quantize IN OUT TYPE [options]

IN is a GGUF file, a .safetensors file, or a Hugging Face model folder. TYPE is a llama-quantize preset:
  ${PRESETS_MARK}
Per tensor, types follow llama.cpp's rules (k-quant mixes, output.weight to Q6_K, fallbacks for rows that
do not split into whole blocks). Writes general.file_type and general.quantization_version = 2; other
metadata passes through. The file appears only when complete; Ctrl-C leaves nothing behind.

options:
  --pure                        every quantizable tensor gets TYPE (no k-quant mixes)
  --output-tensor-type T        type of output.weight (a ggml type: q8_0, f16, ...)
  --token-embedding-type T      type of token_embd.weight
  --leave-output-tensor         keep output.weight as it is
  --tensor-type PATTERN=T       tensors whose name matches the regex get T (repeatable; first match wins)
  --allow-requantize            allow quantizing tensors that are already quantized
  --imatrix FILE                importance matrix (llama-imatrix's GGUF or legacy .dat): weighted quantization,
                                as llama-quantize --imatrix; its entries name GGUF tensors (a Hugging Face input
                                finds them after the name mapping). IQ1_*, IQ2_*, IQ3_XXS(+IQ3_XS) and Q2_K_S need one
  --include-weights NAME        use importance weights only for tensors whose name contains NAME (repeatable)
  --exclude-weights NAME        use none for tensors whose name contains NAME (repeatable; not with --include-weights)
  --allow-nonfinite             write NaN / Inf weights instead of refusing them (refused by default)
  --report FILE                 save the quality report (per tensor type, RMSE, SNR) as JSON
  --no-report                   skip the RMSE / SNR pass (one GPU pass per tensor fewer; the table shows no errors)
  --profile                     time each stage (read, upload, quantize, stats, readback, write) and print a table
  --tokenizer-pre NAME          tokenizer.ggml.pre for a Hugging Face input (default: by check hash)
  --eval TEXT                   then run IN and OUT on the GPU over TEXT and print what wgarray eval IN OUT -f TEXT
                                prints (PPL, KLD, same top, RMS Δp); a GGUF IN of an architecture the forward pass
                                runs, TEXT of at least two chunks, both checked before quantizing
  -c, --ctx N                   --eval tokens per chunk (default 512)
  --chunks N                    --eval uses at most N chunks
  --json                        with --eval: stdout holds one JSON object (file size, quality summary, and
                                eval's figures as wgarray eval --json prints them) instead of the tables
  --cpu                         use the CPU path even where a GPU exists (not with --eval)
  -q, --quiet                   no progress line, no per-tensor table`,
  convert: `usage: wgarray convert HF_DIR [-o OUT.gguf] [--outtype TYPE] [options]

HF_DIR holds config.json (LlamaForCausalLM, MistralForCausalLM or Qwen2ForCausalLM), model.safetensors
(or shards with model.safetensors.index.json), tokenizer_config.json, and tokenizer.json (byte-level BPE:
Llama 3, Qwen2, Mistral Nemo) or tokenizer.model (SentencePiece: Llama 2, Mistral 7B).
--outtype: auto (the weights' own 16-bit type, default) | f32 | f16 | bf16 | q8_0, as convert_hf_to_gguf.py,
or any quantize TYPE (Q4_K_M, Q6_K, ...), which quantizes as llama-quantize would the f32 conversion.

options:
  -o, --output FILE             output path (default: <folder name>-<OUTTYPE>.gguf)
  --outtype TYPE                see above
  --name NAME                   general.name (default: the folder's name)
  --report FILE                 save the quality report as JSON
  --no-report                   skip the RMSE / SNR pass (one GPU pass per tensor fewer; the table shows no errors)
  --profile                     time each stage (read, upload, quantize, stats, readback, write) and print a table
  --tokenizer-pre NAME          tokenizer.ggml.pre (default: by convert_hf_to_gguf's check hash)
  --lora ADAPTER_DIR            fuse a LoRA adapter first (PEFT: adapter_config.json + adapter_model.safetensors;
                                MLX-LM: adapter_config.json + adapters.safetensors): W + scale * B @ A on the GPU
  --lora-scale X                multiply the adapter's scale by X (default 1)
  --pure, --output-tensor-type, --token-embedding-type, --leave-output-tensor, --tensor-type,
  --imatrix FILE, --include-weights, --exclude-weights
                                as for quantize (with a quantization TYPE)
  --allow-nonfinite             write NaN / Inf weights instead of refusing them (refused by default)
  --cpu                         use the CPU path
  -q, --quiet                   no progress line, no per-tensor table

An MLX-LM quantized folder (config.json "quantization") converts too: with --outtype auto its packed
modules are repacked exactly where ggml has the same grid (affine 4-bit -> Q4_0/Q4_1, 5-bit -> Q5_1,
8-bit with bias -128*scale -> Q8_0, mxfp4 -> MXFP4), the others dequantized and quantized to Q8_0.

usage: wgarray convert MODEL.gguf --to mlx [-o DIR] [--q-bits 4] [--q-group-size 64]
  writes an MLX-LM folder: Q4_0/Q4_1/Q8_0 mapped exactly, other weights quantized with MLX's affine
  rule (--q-bits 2/3/4/5/6/8, --q-group-size 32/64/128).`,
  inspect: `usage: wgarray inspect FILE [--json [--full]]

Prints a GGUF's (or safetensors file's) metadata, long arrays summarised, and its tensor table
(name, shape, type, bytes). --json prints the same as JSON; arrays over 64 items are summarised as
{count, head} unless --full.`,
  demo: `usage: wgarray demo [--out DIR] [--type TYPE] [--cpu] [-q]

Builds a small llama model from a fixed seed (4 layers, byte-level BPE vocabulary of 512 tokens),
writes it as a Hugging Face folder, converts and quantizes it (default Q4_K_M), reads the result back
and prints the quality report and timings. Files go to DIR (default: <tmp>/wgarray-demo).`,
};

HELP.imatrix = `usage: wgarray imatrix MODEL.gguf -f TEXT [-o imatrix.gguf] [-c 512] [--chunks N]

Runs MODEL (any architecture convert writes, any weight type) on the GPU over TEXT cut into chunks of -c
tokens, and writes llama-imatrix's importance matrix (per blk.* weight: the per-column sum of squared
inputs and the row count; per expert for MoE expert weights) in llama-imatrix's GGUF format, which
llama-quantize --imatrix reads. Prints the running
perplexity per chunk on stderr, as llama-imatrix does.

options:
  -f, --file TEXT               calibration text (at least two chunks of tokens)
  -o, --output FILE             output path (default imatrix.gguf)
  -c, --ctx N                   tokens per chunk (default 512)
  --chunks N                    use at most N chunks
  -q, --quiet                   no progress`;

HELP.eval = `usage: wgarray eval BASE.gguf QUANT.gguf -f TEXT [-c 512] [--chunks N] [--json]

Runs both models on the GPU over the same chunks of TEXT and reports, as llama-perplexity
--kl-divergence does (second half of each chunk scored): PPL of each and their ratio, KL divergence of
QUANT from BASE (mean, percentiles), Δp of the correct token (mean, RMS) and how often the top token
is the same. No logits file is written.

options:
  -f, --file TEXT               evaluation text (at least two chunks of tokens)
  -c, --ctx N                   tokens per chunk (default 512)
  --chunks N                    use at most N chunks
  --json                        the figures as JSON on stdout
  -q, --quiet                   no progress`;

function version(): string {
  try {
    let dir = dirname(fileURLToPath(import.meta.url));
    for (let i = 0; i < 5; i++) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'wgarray') return pkg.version ?? '?';
      } catch {
        // not here
      }
      dir = dirname(dir);
    }
  } catch {
    // unknown
  }
  return '?';
}

export interface CliOptions {
  stdout?: TextSink;
  stderr?: TextSink;
  /** Whether stderr is a terminal (progress line). Default: process.stderr.isTTY. */
  isTTY?: boolean;
  columns?: number;
  signal?: AbortSignal;
  /** Run on this device instead of opening the default one (and leave it open). */
  device?: Device;
}

class UsageError extends Error {}

function parse<T extends ParseArgsConfig['options']>(args: string[], options: T, command: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message.replace(/^.*?: /, '')}\n\n${helpText(command)}`);
  }
}

function positionals(p: string[], n: number, command: string, names: string): void {
  if (p.length !== n) {
    throw new UsageError(`${command} takes ${names} (${n} argument${n === 1 ? '' : 's'}), got ${p.length ? p.map((x) => `'${x}'`).join(' ') : 'none'}\n\n${helpText(command)}`);
  }
}

/** Runs the command line `argv` (without node and the script); resolves to the exit code. */
export async function runCli(argv: string[], options: CliOptions = {}): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const isTTY = options.isTTY ?? Boolean(process.stderr.isTTY);
  const io = (quiet?: boolean): CommandIO => ({
    stdout,
    stderr,
    progress: isTTY && !quiet,
    columns: options.columns ?? process.stderr.columns ?? 100,
    signal: options.signal,
    device: options.device,
  });
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case 'help':
      case '--help':
      case '-h': {
        const topic = rest[0];
        stdout.write((topic && helpText(topic)) || helpText('main')!);
        stdout.write('\n');
        return command === undefined ? EXIT.USAGE : EXIT.OK;
      }
      case '--version':
      case '-v':
        stdout.write(`wgarray ${version()}\n`);
        return EXIT.OK;
      case 'quantize': {
        const { values, positionals: p } = parse(
          rest,
          { ...TYPE_OPTIONS, ...IMATRIX_OPTIONS, ...COMMON, eval: { type: 'string' }, json: { type: 'boolean' }, ctx: { type: 'string', short: 'c' }, chunks: { type: 'string' } },
          'quantize',
        );
        if (values.help) return help(stdout, 'quantize');
        positionals(p, 3, 'quantize', 'IN OUT TYPE');
        await quantizeCommand({ ...values, input: p[0], output: p[1], type: p[2] }, io(values.quiet));
        return EXIT.OK;
      }
      case 'convert': {
        const { values, positionals: p } = parse(
          rest,
          {
            ...TYPE_OPTIONS,
            ...IMATRIX_OPTIONS,
            ...COMMON,
            output: { type: 'string', short: 'o' },
            outtype: { type: 'string' },
            name: { type: 'string' },
            lora: { type: 'string' },
            'lora-scale': { type: 'string' },
            to: { type: 'string' },
            'q-bits': { type: 'string' },
            'q-group-size': { type: 'string' },
          },
          'convert',
        );
        if (values.help) return help(stdout, 'convert');
        positionals(p, 1, 'convert', 'HF_DIR');
        if (values.to !== undefined && values.to.toLowerCase() !== 'gguf') {
          if (values.to.toLowerCase() !== 'mlx') throw new ArgumentError(`--to ${values.to}: expected mlx (or gguf, the default)`);
          // commands other than quantize/convert/inspect load their modules when run (start-up time)
          const { toMlxCommand } = await import('./to-mlx.js');
          await toMlxCommand({ ...values, input: p[0] }, io(values.quiet));
          return EXIT.OK;
        }
        if (values['q-bits'] !== undefined || values['q-group-size'] !== undefined) throw new ArgumentError('--q-bits and --q-group-size apply to --to mlx');
        await convertCommand({ ...values, input: p[0] }, io(values.quiet));
        return EXIT.OK;
      }
      case 'inspect': {
        const { values, positionals: p } = parse(
          rest,
          { json: { type: 'boolean' }, full: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
          'inspect',
        );
        if (values.help) return help(stdout, 'inspect');
        positionals(p, 1, 'inspect', 'FILE');
        await inspect(p[0], { json: values.json, full: values.full }, stdout);
        return EXIT.OK;
      }
      case 'demo': {
        const { values, positionals: p } = parse(
          rest,
          {
            out: { type: 'string' },
            type: { type: 'string' },
            seed: { type: 'string' },
            quiet: { type: 'boolean', short: 'q' },
            cpu: { type: 'boolean' },
            help: { type: 'boolean', short: 'h' },
          },
          'demo',
        );
        if (values.help) return help(stdout, 'demo');
        positionals(p, 0, 'demo', 'no arguments');
        let seed: number | undefined;
        if (values.seed !== undefined) {
          seed = Number(values.seed);
          if (!Number.isSafeInteger(seed) || seed < 0) throw new ArgumentError(`--seed ${values.seed}: expected a non-negative integer`);
        }
        const { demoCommand } = await import('./demo.js');
        await demoCommand({ out: values.out, type: values.type, quiet: values.quiet, cpu: values.cpu, seed }, io(values.quiet));
        return EXIT.OK;
      }
      case 'imatrix':
      case 'eval': {
        const { values, positionals: p } = parse(
          rest,
          {
            file: { type: 'string', short: 'f' },
            output: { type: 'string', short: 'o' },
            ctx: { type: 'string', short: 'c' },
            chunks: { type: 'string' },
            json: { type: 'boolean' },
            quiet: { type: 'boolean', short: 'q' },
            help: { type: 'boolean', short: 'h' },
          },
          command,
        );
        if (values.help) return help(stdout, command);
        if (!values.file) throw new UsageError(`${command} needs the text: -f FILE\n\n${helpText(command)}`);
        if (command === 'imatrix') {
          positionals(p, 1, 'imatrix', 'MODEL');
          const { imatrixCommand } = await import('./model-commands.js');
          await imatrixCommand({ ...values, text: values.file, model: p[0] }, io(values.quiet));
        } else {
          positionals(p, 2, 'eval', 'BASE QUANT');
          const { evalCommand } = await import('./model-commands.js');
          await evalCommand({ ...values, text: values.file, base: p[0], quant: p[1] }, io(values.quiet));
        }
        return EXIT.OK;
      }
      default:
        throw new UsageError(`unknown command '${command}'\n\n${helpText('main')}`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      stderr.write(`wgarray: ${e.message}\n`);
      return EXIT.USAGE;
    }
    if (e instanceof AbortError || options.signal?.aborted) {
      stderr.write(`wgarray: interrupted; ${e instanceof WgArrayError ? oneLine(e.message) : 'stopped'}\n`);
      return EXIT.INTERRUPTED;
    }
    if (e instanceof WgArrayError) {
      stderr.write(`wgarray: error: ${oneLine(e.message)}\n`);
      return EXIT.ERROR;
    }
    stderr.write(`wgarray: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    return EXIT.ERROR;
  }
}

function help(out: TextSink, command: string): number {
  out.write(helpText(command) + '\n');
  return EXIT.OK;
}
