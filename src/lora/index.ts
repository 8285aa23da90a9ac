// LoRA adapters (PEFT and MLX-LM) fused into base weights on the GPU.
export { LoraAdapter, loadLoraAdapter, fuseLora } from './adapter.js';
export type { LoraOptions, LoraModule, LoraFormat, LayerKind } from './adapter.js';
export { loraTransform } from './convert.js';
