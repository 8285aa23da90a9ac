// A tiny MLX-LM quantized model made by the tests: a synthetic Hugging Face
// model (src/convert/synthetic.ts) whose linear and embedding weights are
// quantized with wgarray's MLX quantize (as mlx_lm.convert -q does: every 2-D
// weight whose rows split into groups), written as MLX-LM writes its folders
// (uint32 `*.weight`, `*.scales`, `*.biases` in the model's dtype, config.json
// with `quantization` and `quantization_config`). Also returns the model with
// MLX's dequantized values, for the float64 reference forward pass.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { array, dequantize, f32ToBf16Bits, f32ToF16Bits, quantize, saveSafetensors } from '../../src/index.js';
import { writeSyntheticModel, type SyntheticModel, type SyntheticTensor } from '../../src/convert/synthetic.js';

export interface MlxModelOptions {
  bits: number;
  groupSize: number;
  mode?: 'affine' | 'mxfp4';
  /** Per-module overrides (config.json's quantization[module] = { bits, group_size }). */
  overrides?: Record<string, { bits: number; group_size: number }>;
  /** Modules left unquantized. */
  skip?: (name: string) => boolean;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Writes `model` MLX-quantized into `dir`; returns the model with MLX's dequantized weights. */
export async function writeMlxModel(dir: string, model: SyntheticModel, o: MlxModelOptions): Promise<SyntheticModel> {
  // tokenizer files and config first (as a float model), then the weights replaced
  await writeSyntheticModel(dir, model);
  const out: [string, { shape: number[]; dtype: string; produce: () => Uint8Array }][] = [];
  const dequantized: SyntheticTensor[] = [];
  for (const t of model.tensors) {
    const module = t.name.replace(/\.weight$/, '');
    const override = o.overrides?.[module];
    const bits = override?.bits ?? o.bits;
    const groupSize = override?.group_size ?? o.groupSize;
    const quantizable = t.shape.length === 2 && t.name.endsWith('.weight') && t.shape[1] % groupSize === 0 && !o.skip?.(module);
    if (!quantizable) {
      out.push([t.name, { shape: t.shape, dtype: t.dtype, produce: () => t.bytes() }]);
      dequantized.push(t);
      continue;
    }
    const raw = t.bytes();
    const src = t.dtype === 'float32' ? array(new Float32Array(raw.slice().buffer), { shape: t.shape }) : array(new Uint16Array(raw.slice().buffer), { shape: t.shape, dtype: t.dtype });
    const spec = { mode: o.mode ?? 'affine', groupSize, bits } as const;
    const q = quantize(src, spec);
    const wq = bytesOf((await q.wq.data()) as Uint32Array);
    const scales = bytesOf((await q.scales.data()) as ArrayBufferView);
    const back = (await dequantize(q, spec).data()) as Float32Array;
    out.push([`${module}.weight`, { shape: [...q.wq.shape], dtype: 'uint32', produce: () => wq }]);
    out.push([`${module}.scales`, { shape: [...q.scales.shape], dtype: q.scales.dtype, produce: () => scales }]);
    if (q.biases) {
      const biases = bytesOf((await q.biases.data()) as ArrayBufferView);
      out.push([`${module}.biases`, { shape: [...q.biases.shape], dtype: q.biases.dtype, produce: () => biases }]);
    }
    dequantized.push({
      ...t,
      dtype: 'float32',
      values: () => back,
      bytes: () => bytesOf(back),
    });
    for (const a of [src, q.wq, q.scales, q.biases]) a?.dispose();
  }
  await saveSafetensors(join(dir, 'model.safetensors'), out as never, { format: 'mlx' });
  const quantization: Record<string, unknown> = { group_size: o.groupSize, bits: o.bits, ...(o.mode ? { mode: o.mode } : {}), ...(o.overrides ?? {}) };
  const config = { ...model.config, quantization, quantization_config: quantization };
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  return { ...model, tensors: dequantized };
}

/** bfloat16 / float16 bits of float32 values (for fixtures). */
export function halfBits(x: Float32Array, dtype: 'float16' | 'bfloat16'): Uint16Array {
  return Uint16Array.from(x, dtype === 'float16' ? f32ToF16Bits : f32ToBf16Bits);
}
