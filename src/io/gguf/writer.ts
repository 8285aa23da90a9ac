// GGUF v3 writer.
//
//   saveGGUF(path, tensors, metadata?, options?): Promise<SaveGGUFResult>
//
//   tensors:  Record<string, T> | Map<string, T> | Iterable<[string, T]>, written in that order, where T is
//             WgArray                          (dtype float32/float16/bfloat16/int8/int16/int32/int64/float64)
//             QuantizedArray                   (raw ggml blocks of any type)
//             { shape, type | dtype, data }    (host bytes: the CPU fallback path)
//             { shape, type | dtype, produce } (lazy: produce() is called right before the tensor is written
//                                               and what it returns is disposed right after)
//             shape is row-major: [rows, cols] is written as ne = [cols, rows]; type is a ggml type name ('q4_K').
//   metadata: Record<string, value> | Map: plain values, TypedArrays, 1-D WgArrays, or gguf.u32(...) etc.;
//             standard keys get llama.cpp's types (see metadata.ts for the rules).
//   options:  { alignment = 32, signal?: AbortSignal, onProgress?: (p: SaveProgress) => void,
//               strictKeyTypes = true, chunkBytes = 64 MiB }
//
// The header is computed from shapes and types alone and written first; each
// tensor then streams from its GPU buffer's mapped ranges to the file. The file
// is written beside the target and renamed over it only when complete (see
// atomic.ts): an error or an abort leaves the old target untouched.

import { AbortError, ArgumentError, DisposedError, DTypeError, ShapeError } from '../../errors.js';
import { formatShape, WgArray, type Shape } from '../../runtime/array.js';
import { DTYPES } from '../../runtime/dtype.js';
import { QuantizedArray } from '../../runtime/quantized.js';
import type { Profile } from '../../runtime/profile.js';
import { ggmlTypeOfDType, type GGMLType } from '../../runtime/ggml-types.js';
import { writeAtomically } from '../atomic.js';
import { isWellFormed } from '../text.js';
import {
  bytesOf,
  checkProduced,
  checkShape,
  declaredGGML,
  isHost,
  isLazy,
  releaseProduced,
  streamTensorData,
  tensorEntries,
  type TensorData,
  type TensorInput,
  type TensorInputs,
} from '../tensors.js';
import { alignUp, GGML_MAX_DIMS, GGML_MAX_NAME, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, isPowerOfTwo } from './constants.js';
import { ByteWriter, GGUFValue, payloadBytes, stringBytes, typeMetadataValue } from './metadata.js';

export type GGUFMetadataInput = Record<string, unknown> | Map<string, unknown>;

export interface SaveProgress {
  /** Name of the tensor being written, its index and the tensor count. */
  tensor: string;
  index: number;
  tensorCount: number;
  /** Bytes of this tensor written so far, of its total. */
  tensorBytesWritten: number;
  tensorBytes: number;
  /** Bytes of the whole file written so far, of its final size. */
  bytesWritten: number;
  totalBytes: number;
}

export interface SaveGGUFOptions {
  /** Alignment of the data section and of every tensor: a power of two (default 32, or the metadata's general.alignment). */
  alignment?: number;
  /** Stops the save: the temporary file is removed, the target untouched, and the save rejects with AbortError. */
  signal?: AbortSignal;
  /** Called after each chunk of tensor data reaches the file. */
  onProgress?: (progress: SaveProgress) => void;
  /** Refuse explicit types that llama.cpp rejects for standard keys (default true). */
  strictKeyTypes?: boolean;
  /** Bytes per GPU readback chunk (default 64 MiB). */
  chunkBytes?: number;
  /** Adds readback and write times to this profile. */
  profile?: Profile | null;
}

export interface SaveGGUFResult {
  path: string;
  /** Size of the file written. */
  bytes: number;
  /** Where the tensor data section starts. */
  dataOffset: number;
  tensorCount: number;
}

/** One tensor's line in the header, and where its bytes come from. */
export interface GGUFTensorPlan {
  name: string;
  shape: readonly number[];
  type: GGMLType;
  nbytes: number;
  /** Offset within the data section (a multiple of the alignment). */
  offset: number;
  input: TensorInput;
}

/** The GGUF type a WgArray dtype is stored as. */
export function ggmlTypeForArray(name: string, a: WgArray): GGMLType {
  const t = ggmlTypeOfDType(a.dtype);
  if (!t) {
    throw new DTypeError(
      `tensor '${name}': ${a.describe()} has dtype ${a.dtype}, which GGUF cannot store; ` +
        `GGUF holds float32, float16, bfloat16, int8, int16, int32, int64 and float64 (cast with astype() first)`,
    );
  }
  return t;
}

function checkName(name: string): void {
  if (name.length === 0) throw new ArgumentError('a tensor name is empty');
  if (!isWellFormed(name)) throw new ArgumentError(`tensor name '${name}' has a lone UTF-16 surrogate`);
  const n = Buffer.byteLength(name, 'utf8');
  if (n >= GGML_MAX_NAME) {
    throw new ArgumentError(`tensor name '${name}' is ${n} bytes; llama.cpp allows at most ${GGML_MAX_NAME - 1} bytes (GGML_MAX_NAME ${GGML_MAX_NAME} with the NUL)`);
  }
}

/** Works out each tensor's type, size and offset from shapes and types alone (nothing is produced or read). */
export function planTensors(tensors: TensorInputs, alignment: number): GGUFTensorPlan[] {
  const plans: GGUFTensorPlan[] = [];
  let offset = 0;
  for (const [name, input] of tensorEntries(tensors)) {
    checkName(name);
    let shape: Shape;
    let type: GGMLType;
    if (input instanceof WgArray) {
      if (input.disposed) throw new DisposedError(`tensor '${name}': ${input.describe()} was disposed`);
      // A non-contiguous view is gathered by one GPU copy when it is streamed (io/tensors.ts).
      shape = input.shape;
      type = ggmlTypeForArray(name, input);
    } else if (input instanceof QuantizedArray) {
      if (input.disposed) throw new DisposedError(`tensor '${name}': ${input.describe()} was disposed`);
      shape = input.shape;
      type = input.type;
    } else {
      shape = input.shape;
      const declared = declaredGGML(name, input);
      if (declared) type = declared;
      else {
        const t = ggmlTypeOfDType(input.dtype!);
        if (!t) throw new DTypeError(`tensor '${name}': dtype ${input.dtype} has no GGUF tensor type; GGUF holds float32, float16, bfloat16, int8, int16, int32, int64 and float64`);
        type = t;
      }
    }
    const elements = checkShape(name, shape);
    if (shape.length > GGML_MAX_DIMS) {
      throw new ShapeError(`tensor '${name}' has ${shape.length} dimensions (shape ${formatShape(shape)}); GGUF tensors have at most ${GGML_MAX_DIMS}`);
    }
    const row = shape.length ? shape[shape.length - 1] : 1;
    if (row % type.blockSize !== 0) {
      throw new ShapeError(
        `tensor '${name}': row length ${row} (last dimension of ${formatShape(shape)}, GGUF ne[0]) is not a multiple of ${type.name}'s block size ${type.blockSize}`,
      );
    }
    const nbytes = (elements / type.blockSize) * type.typeSize;
    if (isHost(input) && input.data.byteLength !== nbytes) {
      throw new ShapeError(`tensor '${name}': ${input.data.byteLength} bytes of data, but shape ${formatShape(shape)} of ${type.name} is ${nbytes} bytes`);
    }
    plans.push({ name, shape: [...shape], type, nbytes, offset, input });
    offset += alignUp(nbytes, alignment);
  }
  return plans;
}

/** Types every metadata entry (reading 1-D WgArrays back); keeps the caller's order. */
export async function typeMetadata(metadata: GGUFMetadataInput | undefined, strict = true): Promise<[string, GGUFValue][]> {
  const entries = metadata instanceof Map ? [...metadata.entries()] : Object.entries(metadata ?? {});
  const out: [string, GGUFValue][] = [];
  for (const [key, raw] of entries) {
    if (typeof key !== 'string' || key.length === 0) throw new ArgumentError(`metadata key ${JSON.stringify(key)} must be a non-empty string`);
    if (!isWellFormed(key)) throw new ArgumentError(`metadata key '${key}' has a lone UTF-16 surrogate`);
    let value = raw;
    if (raw instanceof WgArray) value = await metadataFromArray(key, raw);
    out.push([key, typeMetadataValue(key, value, strict)]);
  }
  return out;
}

/** A 0-D or 1-D WgArray as a metadata value (as MLX: the dtype picks the GGUF type). */
async function metadataFromArray(key: string, a: WgArray): Promise<unknown> {
  if (a.ndim > 1) throw new ShapeError(`metadata '${key}': ${a.describe()} has ${a.ndim} dimensions; metadata arrays are 1-D`);
  const t: Record<string, string | undefined> = {
    float32: 'f32', float64: 'f64', int8: 'i8', uint8: 'u8', int16: 'i16', uint16: 'u16',
    int32: 'i32', uint32: 'u32', int64: 'i64', uint64: 'u64', bool: 'bool',
  };
  const elem = t[a.dtype];
  if (!elem) throw new DTypeError(`metadata '${key}': ${a.describe()} has dtype ${a.dtype}, which has no GGUF value type (cast it to float32)`);
  const data = await a.data();
  const values = elem === 'bool' ? Array.from(data as Uint8Array, (x) => x !== 0) : data;
  if (a.ndim === 0) {
    const x = (values as ArrayLike<unknown>)[0];
    return elem === 'bool' ? x : new GGUFValue(elem as never, x as never);
  }
  return elem === 'bool' ? new GGUFValue('array<bool>', values as boolean[]) : new GGUFValue(`array<${elem}>` as never, values as never);
}

/** Resolves the alignment from the option and the metadata's general.alignment. */
function resolveAlignment(meta: [string, GGUFValue][], option: number | undefined): number {
  const entry = meta.find(([k]) => k === 'general.alignment');
  const fromMeta = entry ? Number(entry[1].value) : undefined;
  if (option !== undefined && fromMeta !== undefined && option !== fromMeta) {
    throw new ArgumentError(`alignment option ${option} disagrees with metadata general.alignment ${fromMeta}`);
  }
  const alignment = option ?? fromMeta ?? GGUF_DEFAULT_ALIGNMENT;
  if (!isPowerOfTwo(alignment)) throw new ArgumentError(`alignment ${alignment} is not a power of two`);
  if (!entry && alignment !== GGUF_DEFAULT_ALIGNMENT) meta.push(['general.alignment', new GGUFValue('u32', alignment)]);
  return alignment;
}

/** The header bytes (magic ... tensor infos), zero-padded to the data section's start. */
export function encodeHeader(meta: [string, GGUFValue][], plans: GGUFTensorPlan[], alignment: number): Buffer {
  let size = 4 + 4 + 8 + 8;
  for (const [k, v] of meta) size += stringBytes(k) + 4 + payloadBytes(v);
  for (const p of plans) size += stringBytes(p.name) + 4 + 8 * p.shape.length + 4 + 8;
  const w = new ByteWriter(alignUp(size, alignment));
  w.bytes(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(plans.length);
  w.u64(meta.length);
  for (const [k, v] of meta) {
    w.string(k);
    w.value(v);
  }
  for (const p of plans) {
    w.string(p.name);
    w.u32(p.shape.length);
    for (let i = p.shape.length - 1; i >= 0; i--) w.u64(p.shape[i]);
    w.u32(p.type.id);
    w.u64(p.offset);
  }
  if (w.pos !== size) throw new Error(`internal: GGUF header size ${w.pos} != computed ${size}`);
  return w.buf;
}

/** Saves tensors and metadata as a GGUF v3 file, atomically. See the top of this file. */
export async function saveGGUF(
  path: string,
  tensors: TensorInputs,
  metadata?: GGUFMetadataInput,
  options: SaveGGUFOptions = {},
): Promise<SaveGGUFResult> {
  const { signal, onProgress } = options;
  if (signal?.aborted) throw abortError(path, signal);
  const meta = await typeMetadata(metadata, options.strictKeyTypes ?? true);
  const alignment = resolveAlignment(meta, options.alignment);
  const plans = planTensors(tensors, alignment);
  const header = encodeHeader(meta, plans, alignment);
  const dataOffset = header.length;
  const totalBytes = dataOffset + plans.reduce((n, p) => n + alignUp(p.nbytes, alignment), 0);

  await writeAtomically(
    path,
    async (file) => {
      await file.write(header);
      for (let index = 0; index < plans.length; index++) {
        const p = plans[index];
        file.checkAbort();
        if (file.position !== dataOffset + p.offset) throw new Error(`internal: tensor '${p.name}' at ${file.position}, planned ${dataOffset + p.offset}`);
        let produced: TensorData | undefined;
        try {
          let data: TensorData;
          if (isLazy(p.input)) {
            produced = checkProduced(p.name, await p.input.produce(), p.shape, p.nbytes, p.type.name, (d) =>
              d instanceof WgArray ? ggmlTypeOfDType(d.dtype)?.id === p.type.id : d instanceof QuantizedArray && d.type.id === p.type.id,
            );
            data = produced;
          } else if (isHost(p.input)) data = bytesOf(p.input.data);
          else data = p.input as WgArray | QuantizedArray;
          file.checkAbort();
          let written = 0;
          const pad = alignUp(p.nbytes, alignment) - p.nbytes;
          const report = (n: number) => {
            written += n;
            onProgress?.({
              tensor: p.name,
              index,
              tensorCount: plans.length,
              tensorBytesWritten: written,
              tensorBytes: p.nbytes,
              // The tensor's padding follows at once: count it with its last chunk, so the last event reads totalBytes.
              bytesWritten: file.position + (written === p.nbytes ? pad : 0),
              totalBytes,
            });
          };
          if (p.nbytes === 0) report(0);
          else await streamTensorData(file, p.name, data, { chunkBytes: options.chunkBytes, onChunk: report, profile: options.profile });
        } finally {
          releaseProduced(produced);
        }
        await file.zeros(alignUp(p.nbytes, alignment) - p.nbytes);
      }
      if (file.position !== totalBytes) throw new Error(`internal: wrote ${file.position} bytes, planned ${totalBytes}`);
    },
    { signal },
  );
  return { path, bytes: totalBytes, dataOffset, tensorCount: plans.length };
}

function abortError(path: string, signal: AbortSignal): AbortError {
  const reason = signal.reason;
  return new AbortError(`saving ${path} was aborted${reason instanceof Error ? `: ${reason.message}` : ''}; nothing was written`);
}
