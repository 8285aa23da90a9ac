// What the writers accept as a tensor, and how its bytes reach the file:
// straight from a GPU buffer's mapped range (WgArray, QuantizedArray), from
// host bytes, or from a producer called right before the tensor is written
// (so a whole-model conversion holds one tensor at a time).

import { ArgumentError, DTypeError, ShapeError } from '../errors.js';
import { formatShape, shapeSize, WgArray, type Shape } from '../runtime/array.js';
import { DTYPES, isDType, type DType } from '../runtime/dtype.js';
import { QuantizedArray } from '../runtime/quantized.js';
import { streamBuffer } from '../runtime/readback.js';
import { ggmlType, type GGMLType } from '../runtime/ggml-types.js';
import type { AtomicFile } from './atomic.js';
import type { Profile } from '../runtime/profile.js';
import { contiguous } from '../ops/layout.js';

/** Tensor bytes: an array on the GPU, ggml blocks on the GPU, or raw little-endian bytes on the host. */
export type TensorData = WgArray | QuantizedArray | Uint8Array;

/** Element type of a host or lazy tensor: a ggml type ('f16', 'q4_K', ...) or a wgarray dtype. */
export interface TensorTypeSpec {
  /** ggml type name or GGMLType (GGUF: any type; safetensors: plain types only). */
  type?: GGMLType | string;
  /** wgarray dtype (safetensors: any; GGUF: the ones ggml stores). */
  dtype?: DType;
}

/** Raw bytes already on the host (the CPU fallback path). */
export interface HostTensor extends TensorTypeSpec {
  /** Row-major logical shape (GGUF writes it reversed as ne). */
  shape: Shape;
  /** Little-endian element bytes or ggml blocks, exactly as many as shape and type need (any TypedArray or Buffer: its bytes are taken). */
  data: ArrayBufferView;
}

/**
 * A tensor made on demand: `produce` is called right before its bytes are
 * written, and what it returns is released (dispose()) right after. Shape and
 * type are needed up front: the header is written before any tensor data.
 */
export interface LazyTensor extends TensorTypeSpec {
  shape: Shape;
  /** A WgArray, a QuantizedArray, or host bytes (any TypedArray; its bytes are taken). */
  produce: () => Promise<WgArray | QuantizedArray | ArrayBufferView> | WgArray | QuantizedArray | ArrayBufferView;
}

export type TensorInput = WgArray | QuantizedArray | HostTensor | LazyTensor;

/** Tensors by name, in the order they are written: a record, a Map, or [name, tensor] pairs. */
export type TensorInputs = Record<string, TensorInput> | Map<string, TensorInput> | Iterable<readonly [string, TensorInput]>;

export function isLazy(t: TensorInput): t is LazyTensor {
  return !(t instanceof WgArray) && !(t instanceof QuantizedArray) && typeof (t as LazyTensor).produce === 'function';
}

export function isHost(t: TensorInput): t is HostTensor {
  return !(t instanceof WgArray) && !(t instanceof QuantizedArray) && ArrayBuffer.isView((t as HostTensor).data);
}

/** The bytes of any TypedArray / Buffer / DataView, without a copy. */
export function bytesOf(v: ArrayBufferView): Uint8Array {
  return v instanceof Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** The tensors as [name, tensor] pairs, in order; duplicate names are an error. */
export function tensorEntries(inputs: TensorInputs): [string, TensorInput][] {
  let pairs: [string, TensorInput][];
  if (inputs instanceof Map) pairs = [...inputs.entries()];
  else if (typeof (inputs as Iterable<unknown>)[Symbol.iterator] === 'function') pairs = [...(inputs as Iterable<[string, TensorInput]>)].map(([k, v]) => [k, v]);
  else pairs = Object.entries(inputs as Record<string, TensorInput>);
  const seen = new Set<string>();
  for (const [name, t] of pairs) {
    if (typeof name !== 'string') throw new ArgumentError(`tensor name ${String(name)} is not a string`);
    if (seen.has(name)) throw new ArgumentError(`tensor '${name}' is given twice; tensor names must be unique`);
    seen.add(name);
    if (!(t instanceof WgArray) && !(t instanceof QuantizedArray) && !isLazy(t) && !isHost(t)) {
      throw new ArgumentError(
        `tensor '${name}': expected a WgArray, a QuantizedArray, { shape, type|dtype, data: Uint8Array } or { shape, type|dtype, produce }`,
      );
    }
  }
  return pairs;
}

/** A host/lazy tensor's declared element type as a ggml type (undefined when only a dtype without ggml type is given). */
export function declaredGGML(name: string, t: TensorTypeSpec): GGMLType | undefined {
  if (t.type !== undefined && t.dtype !== undefined) throw new ArgumentError(`tensor '${name}': give type or dtype, not both`);
  if (t.type !== undefined) return typeof t.type === 'string' ? ggmlType(t.type) : ggmlType(t.type.id);
  if (t.dtype === undefined) throw new ArgumentError(`tensor '${name}': a host or lazy tensor needs type (a ggml type) or dtype`);
  if (!isDType(t.dtype)) throw new DTypeError(`tensor '${name}': unknown dtype '${String(t.dtype)}'`);
  return undefined;
}

export function checkShape(name: string, shape: Shape): number {
  if (!Array.isArray(shape)) throw new ShapeError(`tensor '${name}': shape must be a list of dimensions`);
  return shapeSize(shape, `tensor '${name}' shape`);
}

export interface StreamOptions {
  chunkBytes?: number;
  /** Adds the time spent writing chunks to the file ('write') and waiting for GPU chunks ('readback'). */
  profile?: Profile | null;
  /** Called after each chunk reaches the file, with its size. */
  onChunk?: (bytes: number) => void;
}

const HOST_CHUNK = 64 * 2 ** 20;

/** Appends a tensor's bytes to `file`: GPU buffers through mapped ranges, host bytes in chunks. */
export async function streamTensorData(file: AtomicFile, name: string, data: TensorData, options: StreamOptions = {}): Promise<void> {
  const onChunk = options.onChunk ?? (() => {});
  const profile = options.profile;
  let writeMs = 0;
  const sink = async (chunk: Uint8Array): Promise<void> => {
    const t0 = performance.now();
    await file.write(chunk);
    const ms = performance.now() - t0;
    writeMs += ms;
    profile?.add('write', ms, chunk.length);
    onChunk(chunk.length);
  };
  if (data instanceof Uint8Array) {
    const step = options.chunkBytes ?? HOST_CHUNK;
    for (let at = 0; at < data.length; at += step) await sink(data.subarray(at, Math.min(data.length, at + step)));
    return;
  }
  if (data instanceof WgArray) {
    if (!data.isContiguous) {
      // A view (transposed, sliced) is gathered into row-major order on the GPU by one strided copy.
      const c = contiguous(data);
      try {
        return await streamTensorData(file, name, c, options);
      } finally {
        c.dispose();
      }
    }
    const item = DTYPES[data.dtype].bytes;
    const t0 = performance.now();
    await streamBuffer(data.device, data.storage.buffer, data.offset * item, data.nbytes, sink, { chunkBytes: options.chunkBytes });
    profile?.add('readback', performance.now() - t0 - writeMs, data.nbytes);
    return;
  }
  const t0 = performance.now();
  await streamBuffer(data.device, data.storage.buffer, 0, data.nbytes, sink, { chunkBytes: options.chunkBytes });
  profile?.add('readback', performance.now() - t0 - writeMs, data.nbytes);
}

/** Checks that what a producer returned is the tensor its entry declared. */
export function checkProduced(name: string, produced: unknown, shape: Shape, nbytes: number, describeType: string, typeMatches: (d: TensorData) => boolean): TensorData {
  if (ArrayBuffer.isView(produced)) {
    if (produced.byteLength !== nbytes) {
      throw new ShapeError(`tensor '${name}': produce() returned ${produced.byteLength} bytes; shape ${formatShape(shape)} of ${describeType} is ${nbytes} bytes`);
    }
    return bytesOf(produced);
  }
  if (produced instanceof WgArray || produced instanceof QuantizedArray) {
    if (produced.shape.length !== shape.length || produced.shape.some((d, i) => d !== shape[i])) {
      throw new ShapeError(`tensor '${name}': produce() returned shape ${formatShape(produced.shape)}, but the tensor was declared as ${formatShape(shape)}`);
    }
    if (!typeMatches(produced)) {
      const got = produced instanceof WgArray ? produced.dtype : produced.type.name;
      throw new DTypeError(`tensor '${name}': produce() returned ${got}, but the tensor was declared as ${describeType}`);
    }
    return produced;
  }
  throw new ArgumentError(`tensor '${name}': produce() must return a WgArray, a QuantizedArray or host bytes (a TypedArray), got ${produced === null ? 'null' : typeof produced}`);
}

/** Releases what a producer returned (host bytes need nothing). */
export function releaseProduced(d: TensorData | undefined): void {
  if (d instanceof WgArray || d instanceof QuantizedArray) d.dispose();
}
