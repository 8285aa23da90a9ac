// The io layer: GGUF and safetensors files, streamed from GPU buffers, written atomically.
export * from './gguf/index.js';
export { writeAtomically, AtomicFile, removeStaleTemps } from './atomic.js';
export type { TensorData, TensorInput, TensorInputs, HostTensor, LazyTensor, TensorTypeSpec } from './tensors.js';
