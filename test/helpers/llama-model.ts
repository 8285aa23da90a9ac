// llama.cpp's own view of a GGUF, for the tests of the forward pass and the
// tokenizer (src/model/): node-llama-cpp 3.21.1's prebuilt libllama (CPU) in a
// child process (llama.cpp aborts the process on some bad input, and an abort
// must fail the test, not kill the runner).
//
//   llamaTokenize(files, texts, specialTexts)  model.tokenize(text) for each
//     text and file: llama_tokenize with add_special = false.
//   llamaProbabilities(file, sequences)  the next-token distribution at every
//     position (controlledEvaluate with probabilities, greedy sampler: the
//     softmax of the raw logits over the whole vocabulary).

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO } from './child.js';

const CHILD = String.raw`
import { getLlama, LlamaLogLevel } from '@NODE_LLAMA_CPP@';
const job = JSON.parse(await new Promise((res) => { let s = ''; process.stdin.on('data', (d) => (s += d)); process.stdin.on('end', () => res(s)); }));
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, progressLogs: false });
const out = { tokens: [], probs: [] };
for (const file of job.files) {
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  out.tokens.push([...(job.texts ?? []).map((t) => model.tokenize(t, false)), ...(job.specialTexts ?? []).map((t) => model.tokenize(t, true))]);
  const probs = [];
  for (const seq of job.sequences ?? []) {
    const context = await model.createContext({ contextSize: Math.max(256, seq.length), batchSize: Math.max(256, seq.length), threads: 2 });
    const items = seq.map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 0 } } }]);
    const res = await context.getSequence().controlledEvaluate(items);
    const n = Number(model.fileInfo.tensorInfo.find((t) => t.name === 'token_embd.weight').dimensions[1]);
    probs.push(res.map((r) => {
      const dense = new Array(n).fill(0);
      for (const [tok, p] of r.next.probabilities) dense[tok] = p;
      return dense;
    }));
    await context.dispose();
  }
  out.probs.push(probs);
  await model.dispose();
}
await llama.dispose();
process.stdout.write('\n@@RESULT@@' + JSON.stringify(out) + '\n');
`;

let script: string | undefined;
function childScript(): string {
  if (!script) {
    const entry = pathToFileURL(join(REPO, 'node_modules', 'node-llama-cpp', 'dist', 'index.js')).href;
    script = join(mkdtempSync(join(tmpdir(), 'wgarray-llama-model-')), 'child.mjs');
    writeFileSync(script, CHILD.replace('@NODE_LLAMA_CPP@', entry));
  }
  return script;
}

function runJob<T>(job: object, what: string, timeoutMs = 120_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [childScript()], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const at = stdout.lastIndexOf('@@RESULT@@');
      if (code === 0 && at >= 0) resolve(JSON.parse(stdout.slice(at + 10)) as T);
      else reject(new Error(`llama.cpp failed on ${what} (exit ${code ?? signal}):\n${(stderr + stdout).trim().split('\n').slice(-15).join('\n')}`));
    });
    child.stdin.end(JSON.stringify(job));
  });
}

/**
 * llama.cpp's next-token probabilities (softmax of its logits, float32) after
 * every prefix of each sequence: probs[file][seq][i][token], files loaded in one process, sequences evaluated from
 * position 0 in a fresh context (F16 KV cache, node-llama-cpp's defaults).
 */
export async function llamaProbabilities(files: string[], sequences: number[][]): Promise<number[][][][]> {
  const r = await runJob<{ probs: number[][][][] }>({ files, sequences }, files.join(', '), 240_000);
  return r.probs;
}

/**
 * llama.cpp's tokens (node-llama-cpp model.tokenize: no BOS) for each file:
 * the plain texts, then the specialTexts with control tokens parsed; all files in one process.
 */
export async function llamaTokenize(files: string[], texts: string[], specialTexts: string[] = []): Promise<number[][][]> {
  const r = await runJob<{ tokens: number[][][] }>({ files, texts, specialTexts }, files.join(', '));
  return r.tokens;
}
