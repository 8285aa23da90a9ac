// wgarray: arrays in WebGPU buffers, dtype casts and GGUF quantization in WGSL,
// streamed to GGUF and safetensors files.

export * from './errors.js';
export { Device, getDevice, closeDevice, configureDevice, init, close, deviceOf } from './runtime/device.js';
export type { DeviceOptions, DeviceLimits, DeviceFeatures, AdapterDescription } from './runtime/device.js';
export { WgArray, shapeSize, contiguousStrides, formatShape } from './runtime/array.js';
export type { Shape } from './runtime/array.js';
export { DTYPES, ALL_DTYPES, COMPUTED_DTYPES, dtypeInfo, isDType } from './runtime/dtype.js';
export type { DType, DTypeInfo, ReadbackTypes, TypedArray } from './runtime/dtype.js';
export { array, fromBytes, zeros, ones, full, arange } from './ops/creation.js';
export type { CreateOptions } from './ops/creation.js';
export {
  f32ToF16Bits,
  f16BitsToF32,
  f32ToBf16Bits,
  bf16BitsToF32,
} from './runtime/half.js';
export { streamBuffer, readBuffer } from './runtime/readback.js';
export type { ChunkSink, StreamOptions } from './runtime/readback.js';
export { QuantizedArray, checkBlockShape } from './runtime/quantized.js';
// quantize(w, 'q4_K') -> ggml blocks; quantize(w, { mode: 'affine', groupSize, bits }) -> MLX's { wq, scales, biases }.
export { quantize, dequantize } from './ops/mlx-quantize.js';
export type { MlxQuantizeOptions, MlxQuantized } from './ops/mlx-quantize.js';
export type { QuantizeOptions } from './kernels/quantize.js';
export { GGML_TYPES, ggmlType, ggmlTypeById, ggmlTypeByName, ggmlTypeOfDType, ggmlBytes } from './runtime/ggml-types.js';
export type { GGMLType } from './runtime/ggml-types.js';
export { QUANT_FORMATS, quantFormat, PLAIN_FLOAT_TYPES } from './quant/registry.js';
export type { QuantFormat } from './quant/format.js';
export { quantizeHost, quantizeHostWeighted, dequantizeHost } from './quant/host.js';
// Array operations (src/ops): views and layout, elementwise, reductions, random.
export * from './ops/index.js';
// io (src/io): GGUF and safetensors files, streamed from GPU buffers, written atomically.
export * from './io/index.js';
// LoRA (src/lora): PEFT and MLX-LM adapters fused into base weights on the GPU.
export { LoraAdapter, loadLoraAdapter, fuseLora, loraTransform } from './lora/index.js';
export type { LoraOptions, LoraModule, LoraFormat, LayerKind } from './lora/index.js';
// Model conversion and quantization (src/convert, src/quant/presets): the pipeline behind
// `wgarray convert` / `wgarray quantize`, llama-quantize's presets and per-tensor rules,
// and the quality measure of the report.
export { planFromHF, planFromSafetensors, resolveOuttype } from './convert/from-hf.js';
export type { HFPlanOptions } from './convert/from-hf.js';
export { planFromGGUF, modelShapeOf } from './convert/from-gguf.js';
export { runPlan } from './convert/pipeline.js';
export type {
  ConversionPlan,
  PlannedTensor,
  TensorSource,
  TensorTransform,
  TensorReport,
  RunOptions,
  RunResult,
  RunProgress,
} from './convert/pipeline.js';
export { syntheticModel, writeSyntheticModel } from './convert/synthetic.js';
export type { SyntheticModel, SyntheticModelOptions } from './convert/synthetic.js';
export { quantPresets, LLAMA_QUANT_PRESETS, FTYPE, quantPreset, llamaPreset, presetTypes, missingFormats, chooseTensorTypes, allowsQuantization } from './quant/presets.js';
export type { QuantPreset, ModelShape, TensorInfo, TypeChoiceOptions, TensorTypeChoice, TensorTypeOverride } from './quant/presets.js';
import { quantPresets } from './quant/presets.js';
/** The presets wgarray makes, in llama-quantize's order (quantPresets(), evaluated when the package is imported). */
export const QUANT_PRESETS = quantPresets();
export { quantizationError } from './kernels/quant-error.js';
export type { ErrorStats } from './kernels/quant-error.js';

// The forward pass: tokenizer, logits, perplexity / KL divergence, importance matrix
export { loadModel, Model, modelConfig } from './model/model.js';
export type { ModelConfig, LoadModelOptions, LogitsOptions } from './model/model.js';
export { Tokenizer, SUPPORTED_PRE_TOKENIZERS } from './model/tokenizer.js';
export type { TokenizeOptions } from './model/tokenizer.js';
export { MODEL_ARCHITECTURES } from './model/architectures.js';
export type { ModelArchitecture } from './model/architectures.js';
export { textChunks } from './model/chunks.js';
export type { ChunkOptions } from './model/chunks.js';
export { evaluate, perplexity, requireSameVocabulary } from './model/eval.js';
export type { EvalOptions, EvalResult, Percentiles } from './model/eval.js';
export { computeImatrix, saveImatrix } from './model/imatrix.js';
export type { ImatrixEntry, ImatrixResult, ImatrixOptions } from './model/imatrix.js';
