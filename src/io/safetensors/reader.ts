// safetensors reader: one file, or a sharded model (model.safetensors.index.json
// naming several files, or a folder holding one).
//
//   const f = await loadSafetensors('model.safetensors.index.json');
//   f.tensorInfos  // [{ name, dtype, shape, file, fileOffset, nbytes }]
//   const w = await f.arrays['model.embed_tokens.weight']();
//
// Each header is checked before anything is returned: its size against the
// 100 MB limit and the file, UTF-8, JSON, duplicate names, dtypes, shapes,
// dtype x shape = bytes, and offsets that tile the data section exactly
// (contiguous from 0 to the end of the file). Tensor data is read on demand.

import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { ArgumentError, FileError, FormatError } from '../../errors.js';
import { shapeSize, WgArray } from '../../runtime/array.js';
import { deviceOf } from '../../runtime/device.js';
import type { Device } from '../../runtime/device.js';
import { DTYPES, type DType } from '../../runtime/dtype.js';
import { fileError } from '../atomic.js';
import { openForRead, readExact, readRange, uploadFromFile, type FileStamp } from '../source.js';
import { strictUtf8 } from '../text.js';
import { INDEX_SUFFIX, MAX_HEADER_BYTES, METADATA_KEY, SAFETENSORS_TO_DTYPE } from './format.js';

export interface SafetensorsTensorInfo {
  name: string;
  dtype: DType;
  /** The dtype as the file names it ('BF16'). */
  fileDtype: string;
  shape: number[];
  /** The file holding the tensor (a shard, for sharded models). */
  file: string;
  /** Absolute byte offset of its data in that file. */
  fileOffset: number;
  nbytes: number;
}

export interface LoadSafetensorsOptions {
  device?: Device;
}

export interface SafetensorsFile {
  /** The path given. */
  path: string;
  /** Files read (one, or every shard). */
  files: string[];
  /** The headers' __metadata__ (merged over shards). */
  metadata: Record<string, string>;
  /** A sharded model's index.json "metadata" (e.g. total_size), when there is one. */
  indexMetadata?: Record<string, unknown>;
  /** In file order (shard by shard). */
  tensorInfos: SafetensorsTensorInfo[];
  arrays: Record<string, () => Promise<WgArray>>;
  tensor(name: string): SafetensorsTensorInfo;
  readTensorBytes(name: string): Promise<Uint8Array>;
  loadAll(): Promise<Record<string, WgArray>>;
}

interface ParsedFile {
  stamp: FileStamp;
  metadata: Record<string, string>;
  tensors: SafetensorsTensorInfo[];
}

/**
 * The top-level keys of a JSON object text, with their character positions, in
 * order: JSON.parse keeps only the last of duplicate keys, this sees them all.
 */
export function topLevelKeys(json: string): { key: string; at: number }[] {
  const keys: { key: string; at: number }[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const ch = json[i];
    if (ch === '"') {
      const start = i;
      for (i++; i < json.length && json[i] !== '"'; i++) if (json[i] === '\\') i++;
      if (depth === 1 && expectKey) {
        keys.push({ key: JSON.parse(json.slice(start, i + 1)) as string, at: start });
        expectKey = false;
      }
    } else if (ch === '{' || ch === '[') {
      depth++;
      expectKey = ch === '{' && depth === 1;
    } else if (ch === '}' || ch === ']') depth--;
    else if (ch === ',' && depth === 1) expectKey = true;
  }
  return keys;
}

function isDims(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/** Parses and checks one file's header. */
async function parseFile(path: string): Promise<ParsedFile> {
  const { handle, stamp } = await openForRead(path);
  let json: string;
  let headerBytes: number;
  try {
    if (stamp.size < 8) throw new FormatError(path, 0, `the file is ${stamp.size} bytes; a safetensors file starts with an 8-byte header length`);
    const lenBuf = new Uint8Array(8);
    await readExact(handle, path, lenBuf, 0, 'the header length');
    const n = Buffer.from(lenBuf).readBigUInt64LE(0);
    if (n > BigInt(MAX_HEADER_BYTES)) {
      throw new FormatError(path, 0, `header length ${n} is over safetensors' limit of ${MAX_HEADER_BYTES} bytes (not a safetensors file, or a corrupt one)`);
    }
    headerBytes = Number(n);
    if (8 + headerBytes > stamp.size) {
      throw new FormatError(path, 0, `header length ${headerBytes} runs past the end of the file (${stamp.size} bytes); truncated file?`);
    }
    const raw = new Uint8Array(headerBytes);
    await readExact(handle, path, raw, 8, 'the JSON header');
    try {
      json = strictUtf8.decode(raw);
    } catch {
      throw new FormatError(path, 8, 'the JSON header is not valid UTF-8');
    }
  } finally {
    await handle.close().catch(() => {});
  }
  const byteAt = (charAt: number) => 8 + Buffer.byteLength(json.slice(0, charAt), 'utf8');
  let header: unknown;
  try {
    header = JSON.parse(json);
  } catch (e) {
    throw new FormatError(path, 8, `the header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new FormatError(path, 8, 'the header is not a JSON object');
  }
  const positions = new Map<string, number>();
  for (const { key, at } of topLevelKeys(json)) {
    if (positions.has(key)) throw new FormatError(path, byteAt(at), `'${key}' appears twice in the header`);
    positions.set(key, at);
  }
  const at = (key: string) => byteAt(positions.get(key) ?? 0);
  const dataStart = 8 + headerBytes;
  const dataBytes = stamp.size - dataStart;
  const metadata: Record<string, string> = Object.create(null);
  const entries: { info: SafetensorsTensorInfo; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FormatError(path, at(name), `${METADATA_KEY} is not an object`);
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw new FormatError(path, at(name), `${METADATA_KEY}['${k}'] is ${typeof v}; metadata values are strings`);
        metadata[k] = v;
      }
      continue;
    }
    const e = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) throw new FormatError(path, at(name), `tensor '${name}' is not an object with dtype, shape and data_offsets`);
    const dtype = typeof e.dtype === 'string' ? SAFETENSORS_TO_DTYPE[e.dtype] : undefined;
    if (!dtype) {
      throw new FormatError(path, at(name), `tensor '${name}' has dtype ${JSON.stringify(e.dtype)}; expected one of ${Object.keys(SAFETENSORS_TO_DTYPE).join(' ')}`);
    }
    if (!isDims(e.shape)) throw new FormatError(path, at(name), `tensor '${name}' has shape ${JSON.stringify(e.shape)}; expected a list of integers >= 0`);
    const offs = e.data_offsets;
    if (!isDims(offs) || offs.length !== 2 || offs[0] > offs[1]) {
      throw new FormatError(path, at(name), `tensor '${name}' has data_offsets ${JSON.stringify(offs)}; expected [begin, end] with 0 <= begin <= end`);
    }
    let elements: number;
    try {
      elements = shapeSize(e.shape, `tensor '${name}'`);
    } catch {
      throw new FormatError(path, at(name), `tensor '${name}' has shape ${JSON.stringify(e.shape)} with too many elements`);
    }
    const nbytes = elements * DTYPES[dtype].bytes;
    if (offs[1] - offs[0] !== nbytes) {
      throw new FormatError(
        path,
        at(name),
        `tensor '${name}' (${e.dtype} ${JSON.stringify(e.shape)}) needs ${nbytes} bytes, but its data_offsets [${offs[0]}, ${offs[1]}] span ${offs[1] - offs[0]}`,
      );
    }
    entries.push({
      info: { name, dtype, fileDtype: e.dtype as string, shape: [...e.shape], file: path, fileOffset: dataStart + offs[0], nbytes },
      begin: offs[0],
      end: offs[1],
    });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expect = 0;
  let prev: string | undefined;
  for (const s of sorted) {
    if (s.begin !== expect) {
      const what = s.begin < expect ? `overlaps ${prev ? `tensor '${prev}'` : 'the previous tensor'}` : `leaves a gap of ${s.begin - expect} bytes after ${prev ? `tensor '${prev}'` : 'the header'}`;
      throw new FormatError(path, at(s.info.name), `tensor '${s.info.name}' starts at data offset ${s.begin} and ${what}; tensors must be contiguous`);
    }
    expect = s.end;
    prev = s.info.name;
  }
  if (expect !== dataBytes) {
    const msg = expect > dataBytes
      ? `the tensors need ${expect} bytes of data, but the file has ${dataBytes} after the header (truncated file?)`
      : `the file has ${dataBytes - expect} bytes after the last tensor; the offsets do not cover the data`;
    throw new FormatError(path, expect > dataBytes ? stamp.size : dataStart + expect, msg);
  }
  return { stamp, metadata, tensors: entries.map((x) => x.info) };
}

/** Where a safetensors path leads: one file, or an index and its shards. */
async function locate(path: string): Promise<{ index?: string; file?: string }> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw fileError(path, e, 'cannot open');
  }
  if (!st.isDirectory()) return path.endsWith('.json') ? { index: path } : { file: path };
  for (const name of ['model.safetensors.index.json', 'model.safetensors']) {
    try {
      await stat(join(path, name));
      return name.endsWith('.json') ? { index: join(path, name) } : { file: join(path, name) };
    } catch {
      // try the next
    }
  }
  throw new FileError(path, 'the folder has neither model.safetensors.index.json nor model.safetensors');
}

async function readIndex(index: string): Promise<{ weightMap: Map<string, string>; metadata?: Record<string, unknown> }> {
  let text: string;
  try {
    text = strictUtf8.decode(await readFile(index));
  } catch (e) {
    if (e instanceof TypeError) throw new FormatError(index, 0, 'the index is not valid UTF-8');
    throw fileError(index, e, 'cannot read the index');
  }
  let json: { weight_map?: unknown; metadata?: unknown };
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError(index, 0, `the index is not valid JSON: ${(e as Error).message}`);
  }
  const wm = json?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) throw new FormatError(index, 0, 'the index has no "weight_map" object');
  const weightMap = new Map<string, string>();
  for (const [name, file] of Object.entries(wm)) {
    if (typeof file !== 'string' || file.length === 0 || isAbsolute(file) || normalize(file).split(sep).includes('..')) {
      throw new FormatError(index, 0, `weight_map['${name}'] is ${JSON.stringify(file)}; expected a file name beside the index`);
    }
    weightMap.set(name, file);
  }
  const md = json.metadata;
  return { weightMap, metadata: typeof md === 'object' && md !== null && !Array.isArray(md) ? (md as Record<string, unknown>) : undefined };
}

/** Opens a safetensors file or sharded model: headers parsed and checked now, tensors read when asked. */
export async function loadSafetensors(path: string, options: LoadSafetensorsOptions = {}): Promise<SafetensorsFile> {
  const where = await locate(path);
  const parsed: ParsedFile[] = [];
  let indexMetadata: Record<string, unknown> | undefined;
  if (where.file) parsed.push(await parseFile(where.file));
  else {
    const index = where.index!;
    const { weightMap, metadata } = await readIndex(index);
    indexMetadata = metadata;
    const dir = dirname(index);
    const shardNames = [...new Set(weightMap.values())];
    for (const name of shardNames) parsed.push(await parseFile(resolve(dir, name)));
    const have = new Map<string, Set<string>>();
    parsed.forEach((p, i) => have.set(shardNames[i], new Set(p.tensors.map((t) => t.name))));
    for (const [name, file] of weightMap) {
      if (!have.get(file)!.has(name)) throw new FormatError(index, undefined, `weight_map puts tensor '${name}' in ${file}, which does not hold it`);
    }
  }
  const byName = new Map<string, SafetensorsTensorInfo>();
  const stampOf = new Map<SafetensorsTensorInfo, FileStamp>();
  const metadata: Record<string, string> = Object.create(null);
  for (const p of parsed) {
    Object.assign(metadata, p.metadata);
    for (const t of p.tensors) {
      const other = byName.get(t.name);
      if (other) throw new FormatError(t.file, undefined, `tensor '${t.name}' is also in ${other.file}; names must be unique across shards`);
      byName.set(t.name, t);
      stampOf.set(t, p.stamp);
    }
  }
  const info = (name: string): SafetensorsTensorInfo => {
    const t = byName.get(name);
    if (!t) throw new ArgumentError(`${path}: no tensor named '${name}' (there are ${byName.size})`);
    return t;
  };
  const upload = async (t: SafetensorsTensorInfo): Promise<WgArray> => {
    const out = WgArray.empty(deviceOf(options.device), t.shape, t.dtype, t.name);
    try {
      await uploadFromFile(out.device, stampOf.get(t)!, t.fileOffset, t.nbytes, out.storage.buffer, `tensor '${t.name}'`);
    } catch (e) {
      out.dispose();
      throw e;
    }
    return out;
  };
  const tensorInfos = [...byName.values()];
  const arrays: Record<string, () => Promise<WgArray>> = Object.create(null);
  for (const t of tensorInfos) arrays[t.name] = () => upload(t);
  return {
    path,
    files: parsed.map((p) => p.stamp.path),
    metadata,
    indexMetadata,
    tensorInfos,
    arrays,
    tensor: info,
    readTensorBytes: (name) => {
      const t = info(name);
      return readRange(stampOf.get(t)!, t.fileOffset, t.nbytes, `tensor '${t.name}'`);
    },
    async loadAll() {
      const out: Record<string, WgArray> = Object.create(null);
      try {
        for (const t of tensorInfos) out[t.name] = await upload(t);
      } catch (e) {
        for (const a of Object.values(out)) a.dispose();
        throw e;
      }
      return out;
    },
  };
}
