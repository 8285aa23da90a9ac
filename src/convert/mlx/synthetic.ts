// An MLX-LM quantized folder made from a synthetic model (src/convert/synthetic.ts),
// as `mlx_lm.convert -q` writes one: every 2-D `*.weight` whose rows split into
// groups quantized with MLX's rule (wgarray's GPU quantize), as uint32 `*.weight`,
// `*.scales` and `*.biases` in the model's dtype; config.json with `quantization`
// and `quantization_config`. For the tests and `npm run bench -- e2e --mlx`.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { array } from '../../ops/creation.js';
import { saveSafetensors } from '../../io/safetensors/writer.js';
import { mlxAffineDequantizeGpu, mlxAffineQuantizeGpu, mlxMxfp4DequantizeGpu, mlxMxfp4QuantizeGpu } from '../../kernels/mlx-quantize.js';
import { writeSyntheticModel, type SyntheticModel, type SyntheticTensor } from '../synthetic.js';
import type { WgArray } from '../../runtime/array.js';

export interface MlxSyntheticOptions {
  bits: number;
  groupSize: number;
  mode?: 'affine' | 'mxfp4';
  /** Per-module overrides (config.json's quantization[module] = { bits, group_size }). */
  overrides?: Record<string, { bits: number; group_size: number }>;
  /** Keep MLX's dequantized values (float32) in the returned model (tests); default false. */
  keepDequantized?: boolean;
  maxShardBytes?: number;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Writes `model` MLX-quantized into `dir` (tensors produced one module at a time);
 * returns the model whose quantized tensors hold MLX's dequantized values when
 * keepDequantized is set, else the model as given.
 */
export async function writeMlxSynthetic(dir: string, model: SyntheticModel, o: MlxSyntheticOptions | number, groupSizeArg?: number): Promise<SyntheticModel> {
  const opts: MlxSyntheticOptions = typeof o === 'number' ? { bits: o, groupSize: groupSizeArg ?? 64 } : o;
  // tokenizer files and a float config first; the weights and config are replaced below
  await writeSyntheticModel(dir, { ...model, tensors: [] });
  const tensors: SyntheticTensor[] = [];
  const entries: [string, { shape: number[]; dtype: string; produce: () => Promise<Uint8Array> }][] = [];
  for (const t of model.tensors) {
    const module = t.name.replace(/\.weight$/, '');
    const override = opts.overrides?.[module];
    const bits = override?.bits ?? opts.bits;
    const groupSize = override?.group_size ?? opts.groupSize;
    const mode = opts.mode ?? 'affine';
    if (!(t.shape.length === 2 && t.name.endsWith('.weight') && t.shape[1] % groupSize === 0)) {
      entries.push([t.name, { shape: t.shape, dtype: t.dtype, produce: async () => t.bytes() }]);
      tensors.push(t);
      continue;
    }
    let pending: Promise<Uint8Array[]> | undefined;
    const holder: { values?: Float32Array } = {};
    const compute = (): Promise<Uint8Array[]> =>
      (pending ??= (async () => {
        const raw = t.bytes();
        const src: WgArray =
          t.dtype === 'float32' ? array(new Float32Array(raw.slice().buffer), { shape: t.shape }) : array(new Uint16Array(raw.slice().buffer), { shape: t.shape, dtype: t.dtype });
        const q = mode === 'mxfp4' ? mlxMxfp4QuantizeGpu(src) : mlxAffineQuantizeGpu(src, groupSize, bits);
        src.dispose();
        const parts = [bytesOf((await q.wq.data()) as Uint32Array), bytesOf((await q.scales.data()) as ArrayBufferView)];
        if ('biases' in q) parts.push(bytesOf((await q.biases.data()) as ArrayBufferView));
        if (opts.keepDequantized) {
          const back = 'biases' in q ? mlxAffineDequantizeGpu(q.wq, q.scales, q.biases, groupSize, bits) : mlxMxfp4DequantizeGpu(q.wq, q.scales);
          holder.values = (await back.data()) as Float32Array;
          back.dispose();
        }
        q.wq.dispose();
        q.scales.dispose();
        if ('biases' in q) q.biases.dispose();
        return parts;
      })());
    const rows = t.shape[0];
    const groups = t.shape[1] / groupSize;
    const scaleDtype = mode === 'mxfp4' ? 'uint8' : t.dtype;
    entries.push([`${module}.weight`, { shape: [rows, (t.shape[1] * bits) / 32], dtype: 'uint32', produce: async () => (await compute())[0] }]);
    entries.push([`${module}.scales`, { shape: [rows, groups], dtype: scaleDtype, produce: async () => (await compute())[1] }]);
    if (mode === 'affine') {
      entries.push([`${module}.biases`, { shape: [rows, groups], dtype: t.dtype, produce: async () => {
        const b = (await compute())[2];
        if (!opts.keepDequantized) pending = undefined;
        return b;
      } }]);
    }
    tensors.push({ ...t, dtype: 'float32', values: () => holder.values!, bytes: () => bytesOf(holder.values!) });
  }
  await saveSafetensors(join(dir, 'model.safetensors'), entries as never, { format: 'mlx' }, { maxShardBytes: opts.maxShardBytes });
  const quantization: Record<string, unknown> = { group_size: opts.groupSize, bits: opts.bits, ...(opts.mode ? { mode: opts.mode } : {}), ...(opts.overrides ?? {}) };
  await writeFile(join(dir, 'config.json'), JSON.stringify({ ...model.config, quantization, quantization_config: quantization }, null, 2) + '\n');
  return opts.keepDequantized ? { ...model, tensors } : model;
}
