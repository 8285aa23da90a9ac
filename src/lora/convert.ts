// `wgarray convert --lora ADAPTER_DIR`: the adapter as a step of the
// conversion pipeline (src/convert/pipeline.ts), applied to each targeted
// tensor in its Hugging Face layout, before q/k permutation and quantization.

import type { ConversionPlan, TensorTransform } from '../convert/pipeline.js';
import type { LoraAdapter } from './adapter.js';

/**
 * Checks `adapter` against every tensor of `plan` (throws, naming the module
 * and shapes, before anything is written) and returns the pipeline step that
 * fuses it. The fused tensor is float32 unless the output keeps 16-bit
 * floats, so a quantized output quantizes W + delta rounded once.
 */
export function loraTransform(adapter: LoraAdapter, plan: ConversionPlan, baseLabel: string): TensorTransform {
  adapter.check(
    plan.tensors.map((t) => [t.sourceName, t.shape] as const),
    baseLabel,
  );
  const step: TensorTransform = (t, array) => {
    const dtype = t.to.name === 'f16' ? 'float16' : t.to.name === 'bf16' ? 'bfloat16' : 'float32';
    return adapter.fuse(t.sourceName, array, { dtype });
  };
  step.applies = (t) => adapter.touches(t.sourceName);
  return step;
}
