import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'vitest';
import { runCli } from '../src/cli/cli.js';
import { DEMO_CORPUS, syntheticModel, writeSyntheticModel } from '../src/convert/synthetic.js';
import { loadModel } from '../src/model/model.js';
import { init } from '../src/runtime/device.js';
import { llamaProbabilities } from './helpers/llama-model.js';
import { referenceLogits } from './helpers/hf-reference.js';
const sink = () => ({ write: () => {} });
function lsm(row: ArrayLike<number>): Float64Array { let m = -Infinity; for (let i = 0; i < row.length; i++) m = Math.max(m, row[i]); let s = 0; for (let i = 0; i < row.length; i++) s += Math.exp(row[i] - m); const l = Math.log(s) + m; return Float64Array.from(row as ArrayLike<number>, (v) => v - l); }
test('probe', async () => {
  const device = await init();
  const dir = mkdtempSync(join(tmpdir(), 'probe-'));
  for (const [name, m] of [['gemma2', syntheticModel({ seed: 37, arch: 'gemma2', layers: 2, hidden: 64, heads: 4, kvHeads: 2, ff: 128, headDim: 16 })], ['gemma3', syntheticModel({ seed: 59, arch: 'gemma3', layers: 6, hidden: 64, heads: 4, kvHeads: 2, ff: 128, headDim: 16 })], ['qwen3', syntheticModel({ seed: 17, arch: 'qwen3', layers: 2, hidden: 64, heads: 4, kvHeads: 2, ff: 128, headDim: 24 })]] as const) {
    await writeSyntheticModel(join(dir, name), m);
    const f = join(dir, name + '.gguf');
    await runCli(['convert', join(dir, name), '-o', f, '--outtype', 'f32', '--quiet'], { stdout: sink(), stderr: sink(), isTTY: false, device });
    const model = await loadModel(f, { device });
    const ids = [model.tokenizer.bos!, ...model.tokenize(DEMO_CORPUS.slice(0, 700))].slice(0, 150);
    const [ours] = await model.logits(ids);
    const [[ref]] = await llamaProbabilities([f], [ids]);
    const hf = referenceLogits(m, ids);
    const V = model.config.vocab;
    let dOL = 0, dOH = 0, dLH = 0;
    for (let i = 0; i < ids.length; i++) {
      const o = lsm(ours.subarray(i * V, (i + 1) * V)); const h = lsm(hf[i]);
      for (let j = 0; j < V; j++) { const p = ref[i][j]; if (p < 1e-30) continue; const l = Math.log(p);
        dOL = Math.max(dOL, Math.abs(o[j] - l)); dOH = Math.max(dOH, Math.abs(o[j] - h[j])); dLH = Math.max(dLH, Math.abs(l - h[j])); }
    }
    console.log(`${name}: ours-llama ${dOL.toExponential(2)} ours-f64 ${dOH.toExponential(2)} llama-f64 ${dLH.toExponential(2)}`);
  }
}, 300000);
