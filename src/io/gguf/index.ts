export { saveGGUF, planTensors, typeMetadata, encodeHeader, ggmlTypeForArray } from './writer.js';
export type { SaveGGUFOptions, SaveGGUFResult, SaveProgress, GGUFMetadataInput, GGUFTensorPlan } from './writer.js';
export { loadGGUF } from './reader.js';
export type { GGUFFile, GGUFTensorInfo, LoadGGUFOptions } from './reader.js';
export { gguf, GGUFValue, checkType, typeMetadataValue } from './metadata.js';
export type { GGUFType, GGUFPlainValue, GGUFNumericArray } from './metadata.js';
export { standardKeyTypes, STANDARD_KEYS } from './keys.js';
export {
  GGUF_VERSION,
  GGUF_DEFAULT_ALIGNMENT,
  GGML_MAX_NAME,
  GGML_MAX_DIMS,
  GGUF_TYPE_IDS,
  GGUF_TYPE_NAMES,
} from './constants.js';
export type { GGUFScalarType, GGUFValueTypeName } from './constants.js';
