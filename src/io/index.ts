// The io layer: GGUF and safetensors files, streamed from GPU buffers, written atomically.
export * from './gguf/index.js';
export * from './safetensors/index.js';
export { load, detectFormat } from './load.js';
export type { Loaded, FileFormat } from './load.js';
export { writeAtomically, AtomicFile, removeStaleTemps } from './atomic.js';
export type { TensorData, TensorInput, TensorInputs, HostTensor, LazyTensor, TensorTypeSpec } from './tensors.js';
export { loadImatrix, imatrixWeights, parseLegacyImatrix, filterImatrix } from './imatrix.js';
export type { Imatrix } from './imatrix.js';
