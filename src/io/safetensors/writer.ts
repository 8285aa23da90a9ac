// safetensors writer.
//
//   saveSafetensors(path, tensors, metadata?: Record<string, string>, options?)
//
// tensors as saveGGUF takes them (WgArray of any dtype, { shape, dtype, data },
// { shape, dtype, produce }), written in the order given; the JSON header
// first (padded with spaces to 8 bytes), then each tensor's bytes streamed
// from its GPU buffer, with no gaps. With maxShardBytes the tensors are split
// over <stem>-00001-of-0000N.safetensors files plus <path>.index.json, as
// Hugging Face shards models. Every file is written atomically, and a sharded
// save is all or nothing (every file flushed before any is renamed into place).

import { readFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ArgumentError, DTypeError, DisposedError, AbortError } from '../../errors.js';
import { WgArray, type Shape } from '../../runtime/array.js';
import { DTYPES, type DType } from '../../runtime/dtype.js';
import { QuantizedArray } from '../../runtime/quantized.js';
import { writeAtomically, writeAtomicallyTogether, type AtomicFile } from '../atomic.js';
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
import { isWellFormed } from '../text.js';
import { DTYPE_TO_SAFETENSORS, HEADER_ALIGN, INDEX_SUFFIX, METADATA_KEY } from './format.js';

export interface SafetensorsProgress {
  file: string;
  tensor: string;
  index: number;
  tensorCount: number;
  tensorBytesWritten: number;
  tensorBytes: number;
  /** Tensor bytes written so far over all files, of the total. */
  bytesWritten: number;
  totalBytes: number;
}

export interface SaveSafetensorsOptions {
  signal?: AbortSignal;
  onProgress?: (progress: SafetensorsProgress) => void;
  /** Split into shards of at most this many tensor bytes (a tensor larger than this gets a shard of its own). */
  maxShardBytes?: number;
  /** Bytes per GPU readback chunk (default 64 MiB). */
  chunkBytes?: number;
}

export interface SaveSafetensorsResult {
  /** The files written: one, or the shards followed by the index. */
  files: string[];
  /** Tensor bytes written. */
  bytes: number;
}

interface Plan {
  name: string;
  shape: number[];
  dtype: DType;
  nbytes: number;
  input: TensorInput;
}

function dtypeOf(name: string, input: TensorInput): DType {
  if (input instanceof QuantizedArray) {
    throw new DTypeError(`tensor '${name}': ${input.describe()} holds ggml blocks, which safetensors cannot store; dequantize() it or save GGUF`);
  }
  if (input instanceof WgArray) return input.dtype;
  const t = declaredGGML(name, input);
  if (!t) return input.dtype!;
  if (!t.dtype) throw new DTypeError(`tensor '${name}': ggml type ${t.name} is a block format, which safetensors cannot store`);
  return t.dtype;
}

function plan(tensors: TensorInputs): Plan[] {
  return tensorEntries(tensors).map(([name, input]) => {
    if (name === METADATA_KEY) throw new ArgumentError(`'${METADATA_KEY}' is reserved for the header's metadata; rename the tensor`);
    if (name.length === 0) throw new ArgumentError('a tensor name is empty');
    if (!isWellFormed(name)) throw new ArgumentError(`tensor name '${name}' has a lone UTF-16 surrogate`);
    if ((input instanceof WgArray || input instanceof QuantizedArray) && input.disposed) {
      throw new DisposedError(`tensor '${name}': ${input.describe()} was disposed`);
    }
    // A non-contiguous view is gathered by one GPU copy when it is streamed (io/tensors.ts).
    const dtype = dtypeOf(name, input);
    const shape = [...(input as { shape: Shape }).shape];
    const nbytes = checkShape(name, shape) * DTYPES[dtype].bytes;
    if (isHost(input) && input.data.byteLength !== nbytes) {
      throw new ArgumentError(`tensor '${name}': ${input.data.byteLength} bytes of data, but shape [${shape.join(', ')}] of ${dtype} is ${nbytes} bytes`);
    }
    return { name, shape, dtype, nbytes, input };
  });
}

function checkMetadata(metadata: Record<string, string> | undefined): Record<string, string> | undefined {
  if (metadata === undefined) return undefined;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw new ArgumentError('safetensors metadata must be an object of strings');
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new ArgumentError(`safetensors metadata '${k}' is ${typeof v}; safetensors metadata values are strings (JSON.stringify it)`);
    if (!isWellFormed(k) || !isWellFormed(v)) throw new ArgumentError(`safetensors metadata '${k}' has a lone UTF-16 surrogate`);
  }
  return metadata;
}

/** The header: u64 length + JSON (in tensor order, padded with spaces). */
export function encodeSafetensorsHeader(plans: readonly Plan[], metadata?: Record<string, string>): Buffer {
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length) {
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${Object.entries(metadata).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  let offset = 0;
  for (const p of plans) {
    parts.push(`${JSON.stringify(p.name)}:${JSON.stringify({ dtype: DTYPE_TO_SAFETENSORS[p.dtype], shape: p.shape, data_offsets: [offset, offset + p.nbytes] })}`);
    offset += p.nbytes;
  }
  const json = `{${parts.join(',')}}`;
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  const padded = Math.ceil((8 + jsonBytes) / HEADER_ALIGN) * HEADER_ALIGN - 8;
  const buf = Buffer.alloc(8 + padded, 0x20);
  buf.writeBigUInt64LE(BigInt(padded), 0);
  buf.write(json, 8, 'utf8');
  return buf;
}

type Progress = { written: number; total: number; index: number; count: number };

/** Writes one safetensors file's header and tensor bytes into `file` (the target `path`). */
async function writeBody(
  file: AtomicFile,
  path: string,
  plans: Plan[],
  metadata: Record<string, string> | undefined,
  options: SaveSafetensorsOptions,
  progress: Progress,
): Promise<void> {
  await file.write(encodeSafetensorsHeader(plans, metadata));
  for (const p of plans) {
    file.checkAbort();
    let produced: TensorData | undefined;
    try {
      let data: TensorData;
      if (isLazy(p.input)) {
        produced = checkProduced(p.name, await p.input.produce(), p.shape, p.nbytes, p.dtype, (d) => d instanceof WgArray && d.dtype === p.dtype);
        data = produced;
      } else if (isHost(p.input)) data = bytesOf(p.input.data);
      else data = p.input as WgArray;
      let mine = 0;
      const index = progress.index;
      const report = (n: number) => {
        mine += n;
        progress.written += n;
        options.onProgress?.({
          file: path,
          tensor: p.name,
          index,
          tensorCount: progress.count,
          tensorBytesWritten: mine,
          tensorBytes: p.nbytes,
          bytesWritten: progress.written,
          totalBytes: progress.total,
        });
      };
      if (p.nbytes === 0) report(0);
      else await streamTensorData(file, p.name, data, { chunkBytes: options.chunkBytes, onChunk: report });
    } finally {
      releaseProduced(produced);
    }
    progress.index++;
  }
}

/** Saves tensors (and string metadata) as a safetensors file, or as shards plus an index. */
export async function saveSafetensors(
  path: string,
  tensors: TensorInputs,
  metadata?: Record<string, string>,
  options: SaveSafetensorsOptions = {},
): Promise<SaveSafetensorsResult> {
  if (options.signal?.aborted) throw new AbortError(`saving ${path} was aborted; nothing was written`);
  const meta = checkMetadata(metadata);
  const plans = plan(tensors);
  const total = plans.reduce((n, p) => n + p.nbytes, 0);
  const progress = { written: 0, total, index: 0, count: plans.length };
  const max = options.maxShardBytes;
  if (max !== undefined && (!Number.isSafeInteger(max) || max <= 0)) throw new ArgumentError(`maxShardBytes ${max} must be a positive integer`);
  const stem = basename(path).replace(/\.safetensors$/, '');
  const dir = dirname(path);
  const indexPath = `${path}${INDEX_SUFFIX}`;
  // A save to `path` replaces the model stored under that name, single file or
  // sharded: what an earlier save left that the new one does not rewrite (its
  // index and shards, or its single file) is removed once the new files are in
  // place, so that no loader picks up the old model beside the new one.
  const oldShards = await shardsOfIndex(indexPath, stem);
  if (max === undefined || total <= max) {
    await writeAtomically(path, (file) => writeBody(file, path, plans, meta, options, progress), { signal: options.signal });
    if (oldShards.length > 0) await removeQuietly([indexPath, ...oldShards.map((name) => join(dir, name))]);
    return { files: [path], bytes: total };
  }
  const shards: Plan[][] = [[]];
  let size = 0;
  for (const p of plans) {
    if (size > 0 && size + p.nbytes > max) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(p);
    size += p.nbytes;
  }
  const n = shards.length;
  const names = shards.map((_, i) => `${stem}-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`);
  const weightMap: Record<string, string> = Object.create(null);
  shards.forEach((shard, i) => {
    for (const p of shard) weightMap[p.name] = names[i];
  });
  const index = JSON.stringify({ metadata: { ...(meta ?? {}), total_size: total }, weight_map: weightMap }, null, 2) + '\n';
  // All shards and the index are flushed to disk before any is renamed into
  // place: a failure leaves the earlier save whole.
  await writeAtomicallyTogether(
    [
      ...shards.map((shard, i) => {
        const target = join(dir, names[i]);
        return { target, write: (file: AtomicFile) => writeBody(file, target, shard, meta, options, progress) };
      }),
      { target: indexPath, write: (file: AtomicFile) => file.write(Buffer.from(index, 'utf8')) },
    ],
    { signal: options.signal },
  );
  const stale = oldShards.filter((name) => !names.includes(name)).map((name) => join(dir, name));
  await removeQuietly([path, ...stale]);
  return { files: [...names.map((x) => join(dir, x)), indexPath], bytes: total };
}

/** The shard files an existing index at `indexPath` names in the shard pattern of `stem` (none if it is missing or unreadable). */
async function shardsOfIndex(indexPath: string, stem: string): Promise<string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch {
    return [];
  }
  const map = (parsed as { weight_map?: unknown } | null)?.weight_map;
  if (!map || typeof map !== 'object') return [];
  const escaped = stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^${escaped}-\\d{5}-of-\\d{5}\\.safetensors$`);
  return [...new Set(Object.values(map as Record<string, unknown>))].filter(
    (name): name is string => typeof name === 'string' && pattern.test(name),
  );
}

/** Removes files left by an earlier save (missing ones, and failures, are ignored: the new save stands). */
async function removeQuietly(paths: string[]): Promise<void> {
  for (const p of paths) await rm(p, { force: true }).catch(() => {});
}
