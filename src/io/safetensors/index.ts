export { saveSafetensors, encodeSafetensorsHeader } from './writer.js';
export type { SaveSafetensorsOptions, SaveSafetensorsResult, SafetensorsProgress } from './writer.js';
export { loadSafetensors } from './reader.js';
export type { SafetensorsFile, SafetensorsTensorInfo, LoadSafetensorsOptions } from './reader.js';
export { DTYPE_TO_SAFETENSORS, SAFETENSORS_TO_DTYPE } from './format.js';
