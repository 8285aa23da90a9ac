// Reading MLX-LM quantized folders: config.json's `quantization` (or
// `quantization_config`: group_size, bits, mode, and per-module overrides keyed
// by the module's path, a spec or `false`), the uint32 `*.weight` beside
// `*.scales` and (affine) `*.biases`, any batch dimensions (stacked
// switch_mlp experts). Each quantized module becomes a conversion source:
//
// - repacked exactly, on the GPU, when ggml has a block whose decoding is MLX's
//   `scale * q + bias` bit for bit: affine 4-bit -> Q4_0 when every bias is
//   -8 * scale (MLX's own mapping of Q4_0), else Q4_1; affine 5-bit -> Q5_1;
//   affine 8-bit -> Q8_0 when every bias is -128 * scale (Q4_0 / Q8_0: equal
//   values, but ggml's (q - 8) * d is -0 where MLX's d * q - 8d is +0, for d < 0);
//   mxfp4 -> MXFP4 (code 8: MLX -0, ggml +0; the same
//   E2M1 codes and E8M0 bytes). Q4_x / Q5_1 / Q8_0 hold float16 d and m, so
//   every scale and bias must be exactly a float16 (bfloat16 values beyond
//   float16's range or precision are not);
// - otherwise decoded on the GPU to MLX's float32 values, which the pipeline
//   then quantizes to the requested type (and reports the RMSE against them).

import { FormatError } from '../../errors.js';
import type { SafetensorsFile, SafetensorsTensorInfo } from '../../io/safetensors/reader.js';
import { fromBytes } from '../../runtime/upload.js';
import type { Device } from '../../runtime/device.js';
import { bf16BitsToF32, f16BitsToF32, f32ToF16Bits } from '../../runtime/half.js';
import { QuantizedArray } from '../../runtime/quantized.js';
import { ggmlType, type GGMLType } from '../../runtime/ggml-types.js';
import { mlxAffineDequantizeGpu, mlxMxfp4DequantizeGpu, repackGpu, type RepackTarget } from '../../kernels/mlx-quantize.js';
import { checkMlxSpec, mlxAffineDequantizeHost, mlxMxfp4DequantizeHost, readBits, type MlxMode, type MlxQuantSpec } from '../../quant/mlx-host.js';
import type { TensorSource } from '../pipeline.js';
import { readBuffer } from '../../runtime/readback.js';

type Json = Record<string, unknown>;

export interface MlxQuantization {
  spec: MlxQuantSpec;
  /** Module path -> its own spec, or false (kept in floats). */
  overrides: Map<string, MlxQuantSpec | false>;
  /** Where it came from, for messages. */
  configPath: string;
}

function specOf(v: Json, base: MlxQuantSpec | undefined, what: string, path: string): MlxQuantSpec {
  const mode = (v.mode ?? base?.mode ?? 'affine') as MlxMode;
  const bits = Number(v.bits ?? base?.bits ?? 4);
  const groupSize = Number(v.group_size ?? base?.groupSize ?? (mode === 'mxfp4' ? 32 : 64));
  const spec = { mode, bits, groupSize };
  try {
    checkMlxSpec(spec, what);
  } catch (e) {
    throw new FormatError(path, undefined, (e as Error).message);
  }
  return spec;
}

/** config.json's MLX quantization, or undefined for a float model. */
export function readMlxQuantization(config: Json, configPath: string): MlxQuantization | undefined {
  const q = (config.quantization ?? config.quantization_config) as Json | undefined;
  if (!q || typeof q !== 'object') return undefined;
  // Hugging Face's own quantization_config (bitsandbytes, gptq, ...) names a quant_method; MLX's does not.
  if (typeof q.quant_method === 'string') {
    throw new FormatError(configPath, undefined, `quantization_config.quant_method '${q.quant_method}' is not MLX's quantization; wgarray reads float weights and MLX-quantized ones`);
  }
  const spec = specOf(q, undefined, 'quantization', configPath);
  const overrides = new Map<string, MlxQuantSpec | false>();
  for (const [k, v] of Object.entries(q)) {
    if (k === 'group_size' || k === 'bits' || k === 'mode') continue;
    if (v === false) overrides.set(k, false);
    else if (v && typeof v === 'object') overrides.set(k, specOf(v as Json, spec, `quantization of module ${k}`, configPath));
  }
  return { spec, overrides, configPath };
}

/** How one quantized module is converted. */
export interface MlxModuleSource {
  module: string;
  spec: MlxQuantSpec;
  /** Logical (unpacked) shape. */
  shape: number[];
  /** The exact ggml type, or undefined: decoded to float32 and requantized. */
  exact?: GGMLType;
  /** Why it is not exact (for the report). */
  why?: string;
  /** Reads the scales and biases and sets `exact` or `why`. */
  decide(): Promise<void>;
  /**
   * The source as the pipeline reads it: the exact type's blocks (rows permuted by
   * `permute` first) when `exact` is set and `repack` is true, else MLX's float32 values.
   */
  source(options: { repack: boolean; permute?: Int32Array }): TensorSource;
}

export interface MlxModules {
  /** `module.weight` -> its source. */
  byWeight: Map<string, MlxModuleSource>;
  /** Tensor names that belong to a quantized module besides its weight (scales, biases). */
  companions: Set<string>;
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

function floatsOf(bytes: Uint8Array, info: SafetensorsTensorInfo): Float32Array {
  const copy = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  if (info.dtype === 'float32') return new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4).slice();
  const h = new Uint16Array(copy.buffer, copy.byteOffset, copy.byteLength / 2);
  const conv = info.dtype === 'float16' ? f16BitsToF32 : bf16BitsToF32;
  return Float32Array.from(h, conv);
}

function u32Of(bytes: Uint8Array): Uint32Array {
  const copy = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Uint32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
}

/** Rows of `rowLen` items permuted: row j = row perm[j] (of each batch matrix of `rows` rows). */
function permuteRowItems<T extends Uint32Array | Float32Array | Uint8Array>(a: T, rows: number, perm: Int32Array | undefined): T {
  if (!perm) return a;
  const rowLen = a.length / rows;
  const out = new (a.constructor as new (n: number) => T)(a.length);
  for (let j = 0; j < rows; j++) out.set(a.subarray(perm[j] * rowLen, (perm[j] + 1) * rowLen), j * rowLen);
  return out;
}

/** Finds the quantized modules of `weights` and checks them against the config. */
export function mlxModules(weights: SafetensorsFile, q: MlxQuantization, device?: Device): MlxModules {
  const names = new Set(weights.tensorInfos.map((t) => t.name));
  const byWeight = new Map<string, MlxModuleSource>();
  const companions = new Set<string>();
  for (const info of weights.tensorInfos) {
    const m = /^(.*)\.(scales|biases)$/.exec(info.name);
    if (m && names.has(`${m[1]}.weight`)) {
      companions.add(info.name);
      continue;
    }
    if (!info.name.endsWith('.weight') || info.dtype !== 'uint32') continue;
    const module = info.name.slice(0, -'.weight'.length);
    const override = q.overrides.get(module);
    if (override === false) {
      throw new FormatError(info.file, info.fileOffset, `module ${module}: config.json marks it unquantized, but ${info.name} is uint32 (packed) of shape ${shapeText(info.shape)}`);
    }
    const spec = override ?? q.spec;
    const scalesName = `${module}.scales`;
    const biasesName = `${module}.biases`;
    if (!names.has(scalesName)) {
      throw new FormatError(info.file, info.fileOffset, `module ${module}: packed weight ${info.name} of shape ${shapeText(info.shape)} has no ${scalesName} (MLX ${spec.mode} quantization needs one scale per group)`);
    }
    const scales = weights.tensor(scalesName);
    const biases = spec.mode === 'affine' ? (names.has(biasesName) ? weights.tensor(biasesName) : undefined) : undefined;
    if (spec.mode === 'affine' && !biases) {
      throw new FormatError(info.file, info.fileOffset, `module ${module}: packed weight of shape ${shapeText(info.shape)} and scales of shape ${shapeText(scales.shape)} but no ${biasesName} (affine quantization needs one bias per group)`);
    }
    const ws = info.shape;
    const ss = scales.shape;
    const fits =
      ws.length === ss.length &&
      ws.length >= 1 &&
      ws.slice(0, -1).every((d, i) => d === ss[i]) &&
      ws[ws.length - 1] * 32 === ss[ss.length - 1] * spec.groupSize * spec.bits;
    if (!fits) {
      throw new FormatError(
        info.file,
        info.fileOffset,
        `module ${module}: packed weight of shape ${shapeText(ws)} does not match scales of shape ${shapeText(ss)} for ${spec.mode} quantization with ${spec.bits} bits and group size ${spec.groupSize} ` +
          `(a row of ${ss[ss.length - 1]} groups needs ${(ss[ss.length - 1] * spec.groupSize * spec.bits) / 32} uint32 words)`,
      );
    }
    if (biases && (biases.shape.length !== ss.length || biases.shape.some((d, i) => d !== ss[i]))) {
      throw new FormatError(biases.file, biases.fileOffset, `module ${module}: biases of shape ${shapeText(biases.shape)} differ from scales of shape ${shapeText(ss)}`);
    }
    if (spec.mode === 'mxfp4' && scales.dtype !== 'uint8') {
      throw new FormatError(scales.file, scales.fileOffset, `module ${module}: mxfp4 scales must be uint8 (E8M0 bytes), not ${scales.fileDtype}`);
    }
    if (spec.mode === 'affine' && !['float32', 'float16', 'bfloat16'].includes(scales.dtype)) {
      throw new FormatError(scales.file, scales.fileOffset, `module ${module}: affine scales must be F32, F16 or BF16, not ${scales.fileDtype}`);
    }
    const shape = [...ws.slice(0, -1), ss[ss.length - 1] * spec.groupSize];
    byWeight.set(info.name, moduleSource(weights, module, info, scales, biases, spec, shape, device));
  }
  return { byWeight, companions };
}

export interface Loaded {
  wq: Uint32Array;
  scales: Float32Array;
  biases: Float32Array;
  e8m0: Uint8Array;
}

/**
 * The exact ggml type for these scales and biases, or why there is none. A scale
 * that is not a float16 is harmless in a group whose codes are all 0 (a zero-range
 * group: MLX snaps its scale to about 1e-7, below float16's normals): every value
 * there is the bias, so that scale is set to 0 (`codes` reads the packed words
 * only when such a group exists).
 */
async function exactType(spec: MlxQuantSpec, l: Omit<Loaded, 'wq'>, codes: () => Promise<Uint32Array>): Promise<{ type?: RepackTarget | 'q4_0' | 'q8_0'; why?: string }> {
  if (spec.mode === 'mxfp4') return { type: 'mxfp4' };
  if (spec.bits !== 4 && spec.bits !== 5 && spec.bits !== 8) return { why: `MLX ${spec.bits}-bit has no ggml block with the same grid` };
  const isF16 = (v: number) => Number.isFinite(v) && f16BitsToF32(f32ToF16Bits(v)) === v;
  let wq: Uint32Array | undefined;
  for (let g = 0; g < l.scales.length; g++) {
    const s = l.scales[g];
    const b = l.biases[g];
    if (!isF16(b)) return { why: `group ${g}: bias ${b} is not exactly a float16` };
    if (isF16(s)) continue;
    wq ??= await codes();
    for (let j = 0; j < spec.groupSize; j++) {
      if (readBits(wq, (g * spec.groupSize + j) * spec.bits, spec.bits) !== 0) return { why: `group ${g}: scale ${s} is not exactly a float16` };
    }
    l.scales[g] = 0;
  }
  const offset = spec.bits === 4 ? -8 : spec.bits === 8 ? -128 : NaN;
  let symmetric = true;
  for (let g = 0; g < l.scales.length && symmetric; g++) symmetric = l.biases[g] === offset * l.scales[g];
  if (spec.bits === 4) return { type: symmetric ? 'q4_0' : 'q4_1' };
  if (spec.bits === 5) return { type: 'q5_1' };
  return symmetric ? { type: 'q8_0' } : { why: 'MLX 8-bit with biases other than -128 * scale has no ggml block (Q8_0 is symmetric)' };
}

/** Q4_0 / Q8_0 blocks on the host (symmetric groups: d = scale, q - 8 / q - 128). */
function symmetricBlocks(type: 'q4_0' | 'q8_0', l: Loaded, groupSize: number): Uint8Array {
  const n = l.scales.length * groupSize;
  const bits = type === 'q4_0' ? 4 : 8;
  const size = type === 'q4_0' ? 18 : 34;
  const out = new Uint8Array((n / 32) * size);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < n / 32; b++) {
    const d = f32ToF16Bits(l.scales[Math.floor((b * 32) / groupSize)]);
    dv.setUint16(b * size, d, true);
    for (let j = 0; j < 32; j++) {
      const q = readBits(l.wq, (b * 32 + j) * bits, bits);
      if (type === 'q8_0') out[b * size + 2 + j] = (q - 128) & 0xff;
      else if (j < 16) out[b * size + 2 + j] |= q;
      else out[b * size + 2 + j - 16] |= q << 4;
    }
  }
  return out;
}

function moduleSource(
  weights: SafetensorsFile,
  module: string,
  info: SafetensorsTensorInfo,
  scalesInfo: SafetensorsTensorInfo,
  biasesInfo: SafetensorsTensorInfo | undefined,
  spec: MlxQuantSpec,
  shape: number[],
  device: Device | undefined,
): MlxModuleSource {
  const label = `${info.file.split('/').pop()}: ${info.name}`;
  // Scales and biases are small (one per group) and decide the repack: read once and kept;
  // the packed words are read when the tensor is produced.
  let groups: Promise<Omit<Loaded, 'wq'>> | undefined;
  const loadGroups = (): Promise<Omit<Loaded, 'wq'>> =>
    (groups ??= (async () => {
      const sb = await weights.readTensorBytes(scalesInfo.name);
      if (spec.mode === 'mxfp4') return { scales: new Float32Array(0), biases: new Float32Array(0), e8m0: sb.slice() };
      const scales = floatsOf(sb, scalesInfo);
      const biases = floatsOf(await weights.readTensorBytes(biasesInfo!.name), biasesInfo!);
      return { scales, biases, e8m0: new Uint8Array(0) };
    })());
  const load = async (): Promise<Loaded> => ({ wq: u32Of(await weights.readTensorBytes(info.name)).slice(), ...(await loadGroups()) });
  const rows = shape.length >= 2 ? shape[shape.length - 2] : 1;
  const batch = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  const permuted = async (perm?: Int32Array): Promise<Loaded> => {
    const l = await load();
    if (!perm) return l;
    const per = (a: Uint32Array | Float32Array | Uint8Array) => {
      // each batch matrix permuted alike
      const out = new (a.constructor as new (n: number) => typeof a)(a.length);
      const m = a.length / batch;
      for (let k = 0; k < batch; k++) out.set(permuteRowItems(a.subarray(k * m, (k + 1) * m), rows, perm), k * m);
      return out;
    };
    return { wq: per(l.wq) as Uint32Array, scales: per(l.scales) as Float32Array, biases: per(l.biases) as Float32Array, e8m0: per(l.e8m0) as Uint8Array };
  };
  const dequantHost = (l: Loaded): Float32Array =>
    spec.mode === 'mxfp4' ? mlxMxfp4DequantizeHost(l.wq, l.e8m0) : mlxAffineDequantizeHost(l.wq, l.scales, l.biases, spec.groupSize, spec.bits);

  const result: MlxModuleSource = {
    module,
    spec,
    shape,
    decide: async () => {
      const t = await exactType(spec, await loadGroups(), async () => u32Of(await weights.readTensorBytes(info.name)));
      if (t.type) result.exact = ggmlType(t.type);
      else result.why = t.why;
    },
    source({ repack: wanted, permute: perm }): TensorSource {
      const exactName = wanted ? result.exact?.name : undefined;
      if (exactName) {
        const type = result.exact!;
        const repack = async (d: Device): Promise<QuantizedArray> => {
          const l = await permuted(perm);
          if (exactName === 'q4_0' || exactName === 'q8_0') {
            const bytes = symmetricBlocks(exactName, l, spec.groupSize);
            const u = fromBytes(bytes, [bytes.length], 'uint8', d);
            const q = new QuantizedArray(u.storage.retain(), shape, type, info.name);
            u.dispose();
            return q;
          }
          const wq = fromBytes(l.wq, [l.wq.length], 'uint32', d);
          let pg: Uint32Array;
          if (exactName === 'mxfp4') pg = Uint32Array.from(l.e8m0);
          else pg = Uint32Array.from(l.scales, (s, g) => (f32ToF16Bits(s) | (f32ToF16Bits(l.biases[g]) << 16)) >>> 0);
          const pga = fromBytes(pg, [pg.length], 'uint32', d);
          try {
            return repackGpu(exactName as RepackTarget, wq, pga, shape, spec.groupSize, info.name);
          } finally {
            wq.dispose();
            pga.dispose();
          }
        };
        return {
          label,
          shape,
          type,
          load: repack,
          read: async () => {
            if (device) {
              const q = await repack(device);
              try {
                return await readBuffer(device, q.buffer, 0, q.nbytes);
              } finally {
                q.dispose();
              }
            }
            const l = await permuted(perm);
            if (exactName === 'q4_0' || exactName === 'q8_0') return symmetricBlocks(exactName, l, spec.groupSize);
            return repackHost(exactName as RepackTarget, l, spec.groupSize);
          },
        };
      }
      return {
        label,
        shape,
        type: ggmlType('f32'),
        load: async (d: Device) => {
          const l = await load();
          const wq = fromBytes(l.wq, [l.wq.length], 'uint32', d);
          try {
            if (spec.mode === 'mxfp4') {
              const s = fromBytes(Uint32Array.from(l.e8m0), [l.e8m0.length], 'uint32', d);
              const out = mlxMxfp4DequantizeGpu(wq, s.reshape(...shape.slice(0, -1), shape[shape.length - 1] / 32));
              s.dispose();
              return out;
            }
            const s = fromBytes(l.scales, groupShape(shape, spec.groupSize), 'float32', d);
            const b = fromBytes(l.biases, groupShape(shape, spec.groupSize), 'float32', d);
            try {
              return mlxAffineDequantizeGpu(wq, s, b, spec.groupSize, spec.bits);
            } finally {
              s.dispose();
              b.dispose();
            }
          } finally {
            wq.dispose();
          }
        },
        read: async () => {
          const x = dequantHost(await load());
          return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
        },
      };
    },
  };
  return result;
}

function groupShape(shape: readonly number[], groupSize: number): number[] {
  const s = [...shape];
  s[s.length - 1] /= groupSize;
  return s;
}

/** The host twin of repackGpu (the CPU path). */
export function repackHost(target: RepackTarget, l: Loaded, groupSize: number): Uint8Array {
  const type = ggmlType(target);
  const nGroups = target === 'mxfp4' ? l.e8m0.length : l.scales.length;
  const nBlocks = (nGroups * groupSize) / 32;
  const out = new Uint8Array(nBlocks * type.typeSize);
  const dv = new DataView(out.buffer);
  const bits = target === 'q5_1' ? 5 : 4;
  for (let b = 0; b < nBlocks; b++) {
    const g = Math.floor((b * 32) / groupSize);
    const p = b * type.typeSize;
    const q = (j: number) => readBits(l.wq, (b * 32 + j) * bits, bits);
    if (target === 'mxfp4') {
      out[p] = l.e8m0[g];
      for (let j = 0; j < 16; j++) out[p + 1 + j] = q(j) | (q(j + 16) << 4);
      continue;
    }
    dv.setUint16(p, f32ToF16Bits(l.scales[g]), true);
    dv.setUint16(p + 2, f32ToF16Bits(l.biases[g]), true);
    let qs = p + 4;
    if (target === 'q5_1') {
      let qh = 0;
      for (let j = 0; j < 32; j++) qh |= (q(j) >> 4) << j;
      dv.setUint32(p + 4, qh >>> 0, true);
      qs = p + 8;
    }
    for (let j = 0; j < 16; j++) out[qs + j] = (q(j) & 15) | ((q(j + 16) & 15) << 4);
  }
  return out;
}
