// Real llama.cpp, for the tests that prove wgarray's GGUF files are real:
//
//   runLlama(files, { prompt, nTokens, forced })  loads each file with
//     node-llama-cpp's prebuilt llama.cpp (CPU), generates nTokens greedily,
//     and (with `forced`) reports llama.cpp's top-1 next token at every
//     position of that token sequence (teacher forcing). Runs in a child
//     process: llama.cpp aborts the process on some bad files rather than
//     throwing, and an abort must fail the test, not kill the runner.
//
//   llamaQuantize(in, out, ftype, params)  runs llama.cpp's own
//     llama_model_quantize (libllama from the same prebuilt binaries, through
//     python3's ctypes): the reference that `wgarray quantize` must match.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { oracleAvailable, projectRoot } from './ggml-quantize.js';

export interface LlamaRun {
  file: string;
  /** Tokens of the prompt (BOS first when the model adds one). */
  promptTokens: number[];
  /** Greedy continuation. */
  generated: number[];
  text: string;
  /** With `forced`: llama.cpp's most likely next token after each prefix forced[0..i]. */
  top1: number[];
  /** Probability llama.cpp gives its top-1 token at each forced position. */
  top1Prob: number[];
  /** Tokens in the file's vocabulary, as node-llama-cpp's own GGUF parser reads it. */
  nVocab: number;
  /** llama.cpp's tokenizer kind ('bpe', 'spm', ...). */
  vocabularyType: string;
  /** With `texts`: llama.cpp's tokens of each (no BOS). */
  textTokens: number[][];
}

export interface LlamaOptions {
  prompt: string;
  nTokens: number;
  /** A token sequence to evaluate with teacher forcing; top1[i] is the prediction after forced[0..i]. */
  forced?: number[];
  /** One such sequence per file (files with different vocabularies), instead of `forced`. */
  forcedPerFile?: number[][];
  /** Texts to tokenize (textTokens). */
  texts?: string[];
  timeoutMs?: number;
}

// The child: plain ESM JavaScript in a temporary .mjs file (node-llama-cpp's
// own binary check re-runs process.execArgv, which rules out `node -e`).
const CHILD = String.raw`
import { getLlama, LlamaLogLevel } from '@NODE_LLAMA_CPP@';
const job = JSON.parse(process.argv[2]);
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, progressLogs: false });
const out = [];
for (const [fileIndex, file] of job.files.entries()) {
  const forced = job.forcedPerFile ? job.forcedPerFile[fileIndex] : job.forced;
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: 256, threads: 1, batchSize: 256 });
  const seq = context.getSequence();
  const bos = model.tokens.bos;
  const promptTokens = [...(bos != null && model.fileInfo?.metadata?.tokenizer?.ggml?.add_bos_token !== false ? [bos] : []), ...model.tokenize(job.prompt)];
  const generated = [];
  for await (const t of seq.evaluate(promptTokens, { temperature: 0 })) {
    generated.push(t);
    if (generated.length >= job.nTokens) break;
  }
  const top1 = [];
  const top1Prob = [];
  if (forced && forced.length) {
    await seq.clearHistory();
    // forcedPerFile: greedy token and its probability only (big vocabularies: no sorted probability list per position)
    const next = job.forcedPerFile ? { token: true, confidence: true, options: { temperature: 0 } } : { probabilities: true };
    const items = forced.map((t) => [t, { generateNext: next }]);
    const res = await seq.controlledEvaluate(items);
    for (let i = 0; i < forced.length; i++) {
      const first = job.forcedPerFile ? (res[i]?.next?.token != null ? [res[i].next.token, res[i].next.confidence] : undefined) : res[i]?.next?.probabilities?.entries().next().value;
      top1.push(first ? first[0] : -1);
      top1Prob.push(first ? first[1] : 0);
    }
  }
  const textTokens = (job.texts ?? []).map((t) => [...model.tokenize(t)]);
  out.push({ file, promptTokens, generated, text: model.detokenize(generated), top1, top1Prob, textTokens, nVocab: model.fileInfo?.metadata?.tokenizer?.ggml?.tokens?.length ?? 0, vocabularyType: String(model.vocabularyType) });
  await context.dispose();
  await model.dispose();
}
await llama.dispose();
process.stdout.write('\n@@RESULT@@' + JSON.stringify(out) + '\n');
`;


/** Runs `files` through llama.cpp in one child process; rejects with llama.cpp's last words if it fails. */
let childScript: string | undefined;
function childScriptPath(): string {
  if (!childScript) {
    const entry = pathToFileURL(join(projectRoot(), 'node_modules', 'node-llama-cpp', 'dist', 'index.js')).href;
    const dir = mkdtempSync(join(tmpdir(), 'wgarray-llama-'));
    childScript = join(dir, 'child.mjs');
    writeFileSync(childScript, CHILD.replace('@NODE_LLAMA_CPP@', entry));
  }
  return childScript;
}

export function runLlama(files: string[], options: LlamaOptions): Promise<LlamaRun[]> {
  const job = JSON.stringify({ files, prompt: options.prompt, nTokens: options.nTokens, forced: options.forced, forcedPerFile: options.forcedPerFile, texts: options.texts });
  const script = childScriptPath();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, job], {
      cwd: projectRoot(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const at = stdout.lastIndexOf('@@RESULT@@');
      if (code === 0 && at >= 0) {
        resolve(JSON.parse(stdout.slice(at + 10)) as LlamaRun[]);
        return;
      }
      const tail = (stderr + stdout).trim().split('\n').slice(-15).join('\n');
      reject(new Error(`llama.cpp failed on ${files.join(', ')} (exit ${code ?? signal}):\n${tail}`));
    });
  });
}

/** Fraction of positions where two runs' top-1 next tokens agree. */
export function top1Agreement(a: LlamaRun, b: LlamaRun): number {
  const n = Math.min(a.top1.length, b.top1.length);
  if (n === 0) return 0;
  let same = 0;
  for (let i = 0; i < n; i++) if (a.top1[i] === b.top1[i]) same++;
  return same / n;
}

// ---- llama.cpp's quantizer, through python3 + ctypes -------------------------------------------

/** Where node-llama-cpp's prebuilt libllama for this platform lives, if it does. */
export function libllamaPath(): string | undefined {
  const plat = `${process.platform}-${process.arch}`;
  const bins = join(projectRoot(), 'node_modules', '@node-llama-cpp', plat, 'bins', plat);
  if (!existsSync(bins)) return undefined;
  const lib = readdirSync(bins).find((f) => /^libllama(\.v[\d.]+)?\.(so|dylib)$/.test(f));
  return lib ? join(bins, lib) : undefined;
}

export interface QuantizeParams {
  pure?: boolean;
  leaveOutputTensor?: boolean;
  /** ggml type ids (GGML_TYPE_COUNT when unset). */
  outputTensorType?: number;
  tokenEmbeddingType?: number;
  /** --tensor-type: [pattern, ggml type id]. */
  tensorTypes?: [string, number][];
  allowRequantize?: boolean;
  onlyCopy?: boolean;
  /**
   * Importance weights: a JSON file { tensor name: [float32 weights] }, passed
   * as llama_model_quantize_params.imatrix (llama_model_imatrix_data entries),
   * the array llama-quantize builds from its --imatrix file.
   */
  imatrixJson?: string;
  /** Threads (default 2). */
  nthread?: number;
  /** dry_run: choose every tensor's type and log it, quantize and write nothing. */
  dryRun?: boolean;
}

// llama_model_quantize_params of the bundled llama.cpp (include/llama.h).
const PY = String.raw`
import ctypes, json, sys
jobs = json.loads(sys.argv[1])
lib = ctypes.CDLL(jobs[0]['lib'])
class P(ctypes.Structure):
    _fields_ = [('nthread', ctypes.c_int32), ('ftype', ctypes.c_int), ('output_tensor_type', ctypes.c_int),
                ('token_embedding_type', ctypes.c_int), ('allow_requantize', ctypes.c_bool),
                ('quantize_output_tensor', ctypes.c_bool), ('only_copy', ctypes.c_bool), ('pure', ctypes.c_bool),
                ('keep_split', ctypes.c_bool), ('dry_run', ctypes.c_bool), ('imatrix', ctypes.c_void_p),
                ('kv_overrides', ctypes.c_void_p), ('tt_overrides', ctypes.c_void_p), ('prune_layers', ctypes.c_void_p),
                ('max_buf_size', ctypes.c_size_t)]
class TT(ctypes.Structure):
    _fields_ = [('pattern', ctypes.c_char_p), ('type', ctypes.c_int)]
class IM(ctypes.Structure):
    _fields_ = [('name', ctypes.c_char_p), ('data', ctypes.POINTER(ctypes.c_float)), ('size', ctypes.c_size_t)]
lib.llama_model_quantize_default_params.restype = P
lib.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(P)]
lib.llama_model_quantize.restype = ctypes.c_uint32
lib.llama_backend_init()
report = jobs[0].get('report')
log = []
if report:
    # llama.cpp's log goes to a buffer, returned per job with its outcome
    LOGCB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
    log_cb = LOGCB(lambda level, text, ud: log.append(text.decode('utf-8', 'replace')))
    lib.llama_log_set(log_cb, None)
results = []
for job in jobs:
    p = lib.llama_model_quantize_default_params()
    type_count = p.output_tensor_type  # GGML_TYPE_COUNT: 'unset'
    p.nthread = job['params'].get('nthread') or 2
    p.ftype = job['ftype']
    o = job['params']
    if o.get('pure'): p.pure = True
    if o.get('leaveOutputTensor'): p.quantize_output_tensor = False
    if o.get('allowRequantize'): p.allow_requantize = True
    if o.get('onlyCopy'): p.only_copy = True
    if o.get('dryRun'): p.dry_run = True
    if o.get('outputTensorType') is not None: p.output_tensor_type = o['outputTensorType']
    if o.get('tokenEmbeddingType') is not None: p.token_embedding_type = o['tokenEmbeddingType']
    tts = o.get('tensorTypes') or []
    keep = None
    if tts:
        keep = (TT * (len(tts) + 1))()
        for i, (pat, t) in enumerate(tts):
            keep[i].pattern = pat.encode()
            keep[i].type = t
        keep[len(tts)].pattern = None
        keep[len(tts)].type = type_count
        p.tt_overrides = ctypes.cast(keep, ctypes.c_void_p)
    im_keep = None
    if o.get('imatrixJson'):
        entries = json.load(open(o['imatrixJson']))
        im_keep = (IM * (len(entries) + 1))()
        bufs = []
        for i, (name, values) in enumerate(entries.items()):
            buf = (ctypes.c_float * len(values))(*values)
            bufs.append(buf)
            im_keep[i].name = name.encode()
            im_keep[i].data = ctypes.cast(buf, ctypes.POINTER(ctypes.c_float))
            im_keep[i].size = len(values)
        im_keep[len(entries)].name = None
        p.imatrix = ctypes.cast(im_keep, ctypes.c_void_p)
    del log[:]
    rc = lib.llama_model_quantize(job['inp'].encode(), job['out'].encode(), ctypes.byref(p))
    if report:
        results.append({'ok': rc == 0, 'log': ''.join(log)})
    elif rc != 0:
        print('llama_model_quantize failed for', job['out'], file=sys.stderr)
        sys.exit(rc)
if report:
    print(json.dumps(results))
`;

export interface QuantizeJob {
  inp: string;
  out: string;
  /** llama_ftype. */
  ftype: number;
  params?: QuantizeParams;
}

/** Whether llamaQuantize can run here (python3 with ctypes, and the prebuilt libllama). */
export function llamaQuantizeAvailable(): boolean {
  return oracleAvailable('libllama', libllamaPath());
}

/** llama.cpp's llama_model_quantize for each job, in one python3 process (libllama loads once). */
export function llamaQuantize(jobs: QuantizeJob[]): Promise<void> {
  return runQuantizeJobs(jobs, false).then(() => undefined);
}

export interface QuantizeOutcome {
  /** llama_model_quantize returned 0. */
  ok: boolean;
  /** What llama.cpp logged during the call. */
  log: string;
}

/** llama_model_quantize for each job, as llamaQuantize, but each job's outcome and log are returned, and a failed job does not stop the rest. */
export async function llamaQuantizeReport(jobs: QuantizeJob[]): Promise<QuantizeOutcome[]> {
  // the results are the last line of stdout
  const out = (await runQuantizeJobs(jobs, true)).trim().split('\n');
  return JSON.parse(out[out.length - 1]) as QuantizeOutcome[];
}

/**
 * The type llama_model_quantize chose for each tensor, read from its log
 * ("[  3/ 75] blk.0.attn_k.weight - [256, 64, 1, 1], type = f32, size = ... MiB -> ... MiB (q4_K)";
 * a tensor that keeps its type has no "-> ... (type)").
 */
export function typesFromLog(log: string): Map<string, string> {
  const types = new Map<string, string>();
  const re = /\[\s*\d+\/\s*\d+\]\s+(\S+)\s+- \[[^\]]*\], type =\s*(\S+), size =\s*[\d.]+ MiB(?: ->\s*[\d.]+ MiB \((\w+)\))?/g;
  for (const m of log.matchAll(re)) types.set(m[1], m[3] ?? m[2]);
  return types;
}

function runQuantizeJobs(jobs: QuantizeJob[], report: boolean): Promise<string> {
  const lib = libllamaPath();
  const payload = JSON.stringify(jobs.map((j) => ({ lib, report, inp: j.inp, out: j.out, ftype: j.ftype, params: j.params ?? {} })));
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', PY, payload], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let log = '';
    child.stdout.on('data', (d) => {
      out += d;
      log += d;
    });
    child.stderr.on('data', (d) => (log += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`llama_model_quantize failed (exit ${code}):\n${log.trim().split('\n').slice(-15).join('\n')}`));
    });
  });
}
