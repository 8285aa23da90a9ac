// GGUF reader (v2 and v3, little-endian).
//
//   const f = await loadGGUF('model.gguf');
//   f.metadata['llama.context_length']      // 4096 (u64/i64 as bigint, numeric arrays as TypedArrays)
//   f.metadataTypes['llama.context_length'] // 'u32'
//   f.tensorInfos                           // [{ name, shape, ne, type, offset, fileOffset, nbytes }]
//   const w = await f.arrays['blk.0.attn_q.weight']();  // read on demand, uploaded in chunks
//   const bytes = await f.readTensorBytes('output_norm.weight');
//
// The header is parsed and checked in full before anything is returned:
// magic, version, counts and string lengths against the bytes left in the file
// (no allocation is sized by an unchecked count), value types, array nesting,
// UTF-8, duplicate keys and names, name lengths, dimensions, ggml types, block
// geometry, alignment, offsets, overlap and the end of the file. Tensor data is
// read only when asked for. Quantized tensors come back as QuantizedArrays of
// raw blocks, so loadGGUF -> saveGGUF reproduces every tensor byte.

import { ArgumentError, FormatError, LimitError, quoteName } from '../../errors.js';
import { WgArray } from '../../runtime/array.js';
import { deviceOrDefault } from '../../runtime/device.js';
import type { Device } from '../../runtime/device.js';
import { GpuStorage } from '../../runtime/pool.js';
import { QuantizedArray } from '../../runtime/quantized.js';
import { ggmlTypeById, type GGMLType } from '../../runtime/ggml-types.js';
import { openForRead, readExact, readRange, uploadFromFile, type FileStamp } from '../source.js';
import { strictUtf8 } from '../text.js';
import {
  alignUp,
  GGML_MAX_DIMS,
  GGML_MAX_NAME,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_ARRAY_DEPTH,
  GGUF_READ_VERSIONS,
  GGUF_SCALAR_BYTES,
  GGUF_TYPE_NAMES,
  isPowerOfTwo,
  minEncodedBytes,
  type GGUFScalarType,
} from './constants.js';
import { containerOf, GGUFValue, isNumericType, type GGUFPlainValue, type GGUFType } from './metadata.js';

export interface GGUFTensorInfo {
  name: string;
  /** Row-major shape (ne reversed). */
  shape: number[];
  /** Dimensions as stored, innermost first. */
  ne: number[];
  type: GGMLType;
  /** Offset within the data section, as stored. */
  offset: number;
  /** Absolute byte offset of the tensor's data in the file. */
  fileOffset: number;
  nbytes: number;
}

export interface LoadGGUFOptions {
  /** Device the arrays are uploaded to (default: the one opened by init()). */
  device?: Device;
}

export interface GGUFFile {
  path: string;
  version: number;
  alignment: number;
  /** Absolute offset of the tensor data section. */
  dataOffset: number;
  fileSize: number;
  /** Values as JS values: u64/i64 as bigint, numeric arrays as TypedArrays, bool/string arrays as lists. */
  metadata: Record<string, GGUFPlainValue>;
  /** Each key's GGUF type: 'u32', 'f32', 'array<string>', ... */
  metadataTypes: Record<string, GGUFType>;
  /** Values with their types: pass this as saveGGUF's metadata to write the same bytes back. */
  typedMetadata: Record<string, GGUFValue>;
  /** In file order. */
  tensorInfos: GGUFTensorInfo[];
  /** Per-tensor loaders: `await f.arrays[name]()` reads the tensor and uploads it to the GPU. */
  arrays: Record<string, () => Promise<WgArray | QuantizedArray>>;
  /** The info of one tensor; an ArgumentError for a name the file does not have. */
  tensor(name: string): GGUFTensorInfo;
  /** A tensor's raw bytes on the host (for the CPU path). */
  readTensorBytes(name: string): Promise<Uint8Array>;
  /** Every tensor uploaded (disposes what it made if one fails). */
  loadAll(): Promise<Record<string, WgArray | QuantizedArray>>;
}

/** Thrown inside the parser when the header runs past the bytes read so far. */
class NeedMore {
  constructor(readonly upTo: number) {}
}

/**
 * What the parser allocates per metadata value, in bytes, rounded up from V8
 * measurements (a nested array, as a GGUFValue with its list and its plain()
 * copy, retains ~260 bytes; a string ~16 bytes plus its characters), so the
 * memory a header takes is known before it is taken. A header may cost at most HEADER_MEMORY_BASE + HEADER_MEMORY_PER_BYTE
 * times the file's size: no file of N bytes makes the reader hold more than a
 * small multiple of N (8 million empty nested arrays in 96 MB would need 4 GB).
 */
export const PARSER_COST = { value: 512, string: 32, stringByte: 2, bool: 16, numericArray: 64 } as const;
export const HEADER_MEMORY_BASE = 64 * 2 ** 20;
export const HEADER_MEMORY_PER_BYTE = 4;

class Cursor {
  pos = 0;
  private readonly dv: DataView;
  /** Estimated bytes the parsed values take (PARSER_COST), and the most they may. */
  spent = 0;
  readonly budget: number;
  constructor(
    readonly buf: Uint8Array,
    readonly fileSize: number,
    readonly file: string,
  ) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.budget = HEADER_MEMORY_BASE + HEADER_MEMORY_PER_BYTE * fileSize;
  }

  /** Counts `bytes` of parser memory for `what`; a LimitError past the budget. */
  charge(bytes: number, what: string): void {
    this.spent += bytes;
    if (this.spent > this.budget) {
      const mib = (x: number) => `${Math.round(x / 2 ** 20)} MiB`;
      throw new LimitError(
        `${this.file} at byte ${this.pos}: ${what} takes the header's metadata past ${mib(this.budget)} of memory ` +
          `(64 MiB + ${HEADER_MEMORY_PER_BYTE} x the file's ${this.fileSize} bytes); a GGUF header this dense is refused rather than read`,
      );
    }
  }

  fail(at: number, msg: string): never {
    throw new FormatError(this.file, at, msg);
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.fileSize) {
      this.fail(this.pos, `the file ends at byte ${this.fileSize}, inside ${what} (${this.pos + n - this.fileSize} more bytes expected; truncated file?)`);
    }
    if (this.pos + n > this.buf.length) throw new NeedMore(this.pos + n);
  }

  get left(): number {
    return this.fileSize - this.pos;
  }

  u8(what: string): number {
    this.need(1, what);
    return this.dv.getUint8(this.pos++);
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u64(what: string): bigint {
    this.need(8, what);
    const v = this.dv.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A u64 count of items each at least `minEach` bytes: refused when the rest of the file cannot hold them. */
  count(what: string, minEach: number): number {
    const at = this.pos;
    const n = this.u64(what);
    if (n * BigInt(minEach) > BigInt(this.left)) {
      this.fail(at, `${what} is ${n}, but only ${this.left} bytes follow (each takes at least ${minEach}); corrupt or truncated file`);
    }
    return Number(n);
  }

  scalar(t: Exclude<GGUFScalarType, 'string'>, what: string): number | bigint | boolean {
    const size = GGUF_SCALAR_BYTES[t];
    this.need(size, what);
    const p = this.pos;
    const dv = this.dv;
    this.pos += size;
    switch (t) {
      case 'u8': return dv.getUint8(p);
      case 'i8': return dv.getInt8(p);
      case 'u16': return dv.getUint16(p, true);
      case 'i16': return dv.getInt16(p, true);
      case 'u32': return dv.getUint32(p, true);
      case 'i32': return dv.getInt32(p, true);
      case 'f32': return dv.getFloat32(p, true);
      case 'f64': return dv.getFloat64(p, true);
      case 'u64': return dv.getBigUint64(p, true);
      case 'i64': return dv.getBigInt64(p, true);
      case 'bool': {
        const b = dv.getUint8(p);
        if (b > 1) this.fail(p, `${what} is a bool stored as ${b}; expected 0 or 1`);
        return b === 1;
      }
    }
  }

  string(what: string | (() => string)): string {
    const at = this.pos;
    // fast path (millions of vocabulary strings): the length read without BigInt, the message built only on failure
    if (at + 8 <= this.buf.length) {
      const lo = this.dv.getUint32(at, true);
      const hi = this.dv.getUint32(at + 4, true);
      if (hi === 0 && at + 8 + lo <= this.buf.length) {
        this.spent += PARSER_COST.string + PARSER_COST.stringByte * lo;
        if (this.spent > this.budget) this.charge(0, typeof what === 'string' ? what : what());
        this.pos = at + 8 + lo;
        if (lo === 0) return '';
        const bytes = this.buf.subarray(at + 8, at + 8 + lo);
        let ascii = lo <= 64;
        for (let i = 0; ascii && i < lo; i++) ascii = bytes[i] < 0x80;
        if (ascii) return String.fromCharCode.apply(null, bytes as unknown as number[]);
        try {
          return strictUtf8.decode(bytes);
        } catch {
          return this.fail(at + 8, `${typeof what === 'string' ? what : what()} is not valid UTF-8`);
        }
      }
    }
    const name = typeof what === 'string' ? what : what();
    const n = this.count(`length of ${name}`, 1);
    this.charge(PARSER_COST.string + PARSER_COST.stringByte * n, name);
    if (n === 0) return '';
    this.need(n, name);
    const bytes = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    try {
      return strictUtf8.decode(bytes);
    } catch {
      return this.fail(at + 8, `${name} is not valid UTF-8`);
    }
  }

  /** `n` bytes copied out of the buffer (aligned for a TypedArray view). */
  copy(n: number, what: string): ArrayBuffer {
    this.need(n, what);
    const out = this.buf.slice(this.pos, this.pos + n).buffer;
    this.pos += n;
    return out;
  }
}

function valueType(c: Cursor, id: number, at: number, what: string): GGUFScalarType | 'array' {
  const t = GGUF_TYPE_NAMES[id];
  if (t === undefined) c.fail(at, `${what} has value type ${id}; GGUF value types are 0 to 12`);
  return t;
}

/** Reads a value of type id `id` (already read at `at`). */
function readValue(c: Cursor, id: number, at: number, what: string, depth: number): GGUFValue {
  const t = valueType(c, id, at, what);
  if (t === 'string') return new GGUFValue('string', c.string(what));
  if (t !== 'array') return new GGUFValue(t, c.scalar(t, what) as never);
  if (depth >= GGUF_MAX_ARRAY_DEPTH) c.fail(at, `${what} nests arrays more than ${GGUF_MAX_ARRAY_DEPTH} deep`);
  const elAt = c.pos;
  const elId = c.u32(`element type of ${what}`);
  const el = valueType(c, elId, elAt, `an element of ${what}`);
  const n = c.count(`element count of ${what}`, minEncodedBytes(el));
  // ask for the least the elements take now: one re-read of the header for a big array, not one per doubling
  c.need(n * minEncodedBytes(el), what);
  if (el === 'string') {
    const out: string[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = c.string(() => `${what}[${i}]`);
    return new GGUFValue('array<string>', out);
  }
  c.charge(PARSER_COST.value, what);
  if (el === 'bool') {
    c.charge(PARSER_COST.bool * n, what);
    const out: boolean[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = c.scalar('bool', `${what}[${i}]`) as boolean;
    return new GGUFValue('array<bool>', out);
  }
  if (el === 'array') {
    const out: GGUFValue[] = [];
    for (let i = 0; i < n; i++) out.push(readValue(c, elId, elAt, `${what}[${i}]`, depth + 1));
    const same = out.length > 0 && out.every((x) => x.type === out[0].type);
    return new GGUFValue(same ? `array<${out[0].type}>` : 'array<array>', out);
  }
  if (!isNumericType(el)) throw new Error('unreachable');
  const Container = containerOf(el);
  c.charge(PARSER_COST.numericArray + n * GGUF_SCALAR_BYTES[el], what);
  const raw = c.copy(n * GGUF_SCALAR_BYTES[el], what);
  return new GGUFValue(`array<${el}>`, new Container(raw) as never);
}

interface ParsedHeader {
  version: number;
  meta: [string, GGUFValue][];
  tensors: GGUFTensorInfo[];
  alignment: number;
  dataOffset: number;
}

/** Parses a whole header from `buf` (a prefix of the file); throws NeedMore when it needs more bytes. */
function parseHeader(buf: Uint8Array, fileSize: number, file: string): ParsedHeader {
  const c: Cursor = new Cursor(buf, fileSize, file);
  if (fileSize < 4) c.fail(0, `the file is ${fileSize} bytes; a GGUF file starts with the 4-byte magic "GGUF"`);
  c.need(4, 'the magic');
  if (!GGUF_MAGIC.every((b, i) => buf[i] === b)) {
    const got = Buffer.from(buf.subarray(0, 4)).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
    c.fail(0, `not a GGUF file: it starts with "${got}" (bytes ${Buffer.from(buf.subarray(0, 4)).toString('hex')}), expected "GGUF"`);
  }
  c.pos = 4;
  const version = c.u32('the version');
  if ((version & 0xffff) === 0 && version !== 0) {
    c.fail(4, `the version field reads ${version} (0x${version.toString(16).padStart(8, '0')}): this is a big-endian GGUF file; wgarray reads little-endian GGUF only`);
  }
  if (version === 1) c.fail(4, 'GGUF version 1 (2023) is not supported; re-convert the model with a current llama.cpp');
  if (!GGUF_READ_VERSIONS.includes(version)) c.fail(4, `GGUF version ${version} is not supported; wgarray reads versions ${GGUF_READ_VERSIONS.join(' and ')}`);

  const nTensors = c.count('the tensor count', 8 + 4 + 4 + 8);
  const nKV = c.count('the metadata count', 8 + 4 + 1);

  const meta: [string, GGUFValue][] = [];
  const valueAt = new Map<string, number>();
  const keys = new Set<string>();
  for (let i = 0; i < nKV; i++) {
    const at = c.pos;
    const key = c.string(`metadata key #${i}`);
    if (key === '') c.fail(at, `metadata key #${i} is empty; keys are non-empty names such as general.architecture`);
    if (keys.has(key)) c.fail(at, `metadata key ${quoteName(key)} appears twice`);
    keys.add(key);
    const typeAt = c.pos;
    valueAt.set(key, typeAt);
    const id = c.u32(`the type of metadata ${quoteName(key)}`);
    meta.push([key, readValue(c, id, typeAt, `metadata ${quoteName(key)}`, 0)]);
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignEntry = meta.find(([k]) => k === 'general.alignment');
  if (alignEntry) {
    const v = alignEntry[1];
    if (v.type !== 'u32' || !isPowerOfTwo(v.value as number)) {
      c.fail(valueAt.get('general.alignment')!, `metadata general.alignment is ${v.type} ${String(v.plain())}; expected a u32 power of two`);
    }
    alignment = v.value as number;
  }

  const tensors: GGUFTensorInfo[] = [];
  const infoAt: number[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const at = c.pos;
    const name = c.string(`the name of tensor #${i}`);
    const nameBytes = c.pos - at - 8;
    if (nameBytes === 0) c.fail(at, `tensor #${i} has an empty name`);
    if (nameBytes >= GGML_MAX_NAME) c.fail(at, `tensor name ${quoteName(name)} is ${nameBytes} bytes; llama.cpp allows at most ${GGML_MAX_NAME - 1}`);
    if (names.has(name)) c.fail(at, `tensor ${quoteName(name)} appears twice`);
    names.add(name);
    const dimsAt = c.pos;
    const nDims = c.u32(`the dimension count of tensor ${quoteName(name)}`);
    if (nDims > GGML_MAX_DIMS) c.fail(dimsAt, `tensor ${quoteName(name)} has ${nDims} dimensions; GGUF tensors have at most ${GGML_MAX_DIMS}`);
    const ne: number[] = [];
    let elements = 1n;
    for (let d = 0; d < nDims; d++) {
      const neAt = c.pos;
      const x = c.u64(`ne[${d}] of tensor ${quoteName(name)}`);
      if (x >= 2n ** 63n) c.fail(neAt, `tensor ${quoteName(name)} has ne[${d}] = ${x}, which is negative as ggml's int64`);
      elements *= x;
      if (elements > BigInt(Number.MAX_SAFE_INTEGER)) c.fail(neAt, `tensor ${quoteName(name)} has ${elements}+ elements; no file holds that many`);
      ne.push(Number(x));
    }
    const typeAt = c.pos;
    const typeId = c.u32(`the type of tensor ${quoteName(name)}`);
    const type = ggmlTypeById(typeId);
    if (!type) c.fail(typeAt, `tensor ${quoteName(name)} has ggml type ${typeId}, which is not a ggml type wgarray knows (removed or newer than this version)`);
    const row = nDims ? ne[0] : 1;
    if (row % type.blockSize !== 0) {
      c.fail(dimsAt, `tensor ${quoteName(name)} has ne[0] = ${row}, not a multiple of ${type.name}'s block size ${type.blockSize}`);
    }
    const offAt = c.pos;
    const off = c.u64(`the offset of tensor ${quoteName(name)}`);
    if (off > BigInt(fileSize)) c.fail(offAt, `tensor ${quoteName(name)} has data offset ${off}, past the end of the file (${fileSize} bytes)`);
    const offset = Number(off);
    if (offset % alignment !== 0) c.fail(offAt, `tensor ${quoteName(name)} has data offset ${offset}, not a multiple of the alignment ${alignment}`);
    const nbytes = (Number(elements) / type.blockSize) * type.typeSize;
    tensors.push({ name, shape: [...ne].reverse(), ne, type, offset, fileOffset: 0, nbytes });
    infoAt.push(at);
  }

  const dataOffset = alignUp(c.pos, alignment);
  if (tensors.length && dataOffset > fileSize) {
    c.fail(c.pos, `the tensor data section starts at byte ${dataOffset} (after padding to ${alignment}), past the end of the file (${fileSize} bytes)`);
  }
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    t.fileOffset = dataOffset + t.offset;
    const end = t.fileOffset + t.nbytes;
    if (end > fileSize) {
      c.fail(infoAt[i], `tensor ${quoteName(t.name)} (${t.type.name}, ne [${t.ne.join(', ')}]) occupies bytes ${t.fileOffset} to ${end}, past the end of the file (${fileSize} bytes)`);
    }
  }
  const byStart = tensors.map((t, i) => i).sort((a, b) => tensors[a].fileOffset - tensors[b].fileOffset);
  for (let k = 1; k < byStart.length; k++) {
    const prev = tensors[byStart[k - 1]];
    const cur = tensors[byStart[k]];
    if (prev.nbytes > 0 && cur.nbytes > 0 && cur.fileOffset < prev.fileOffset + prev.nbytes) {
      c.fail(infoAt[byStart[k]], `tensor ${quoteName(cur.name)} (bytes ${cur.fileOffset} to ${cur.fileOffset + cur.nbytes}) overlaps tensor ${quoteName(prev.name)} (bytes ${prev.fileOffset} to ${prev.fileOffset + prev.nbytes})`);
    }
  }
  return { version, meta, tensors, alignment, dataOffset };
}

const FIRST_READ = 1 << 20;

/** Reads and checks a GGUF header, reading more of the file only as the parse needs it. */
async function readHeader(path: string): Promise<{ header: ParsedHeader; stamp: FileStamp }> {
  const { handle, stamp } = await openForRead(path);
  try {
    let buf = new Uint8Array(Math.min(stamp.size, FIRST_READ));
    await readExact(handle, path, buf, 0, 'the header');
    for (;;) {
      try {
        return { header: parseHeader(buf, stamp.size, path), stamp };
      } catch (e) {
        if (!(e instanceof NeedMore)) throw e;
        const size = Math.min(stamp.size, Math.max(buf.length * 2, e.upTo + FIRST_READ));
        const next = new Uint8Array(size);
        next.set(buf);
        await readExact(handle, path, next.subarray(buf.length), buf.length, 'the header');
        buf = next;
      }
    }
  } finally {
    await handle.close().catch(() => {});
  }
}

/** Makes an empty GPU array for a tensor: a WgArray for plain types, a QuantizedArray of blocks otherwise. */
function allocateFor(device: Device, t: GGUFTensorInfo): WgArray | QuantizedArray {
  if (t.type.dtype) return WgArray.empty(device, t.shape, t.type.dtype, t.name);
  return new QuantizedArray(GpuStorage.allocate(device, t.nbytes, t.name), t.shape, t.type, t.name);
}

/** Uploads one tensor of a parsed file to `device`. */
export async function uploadTensor(device: Device, stamp: FileStamp, t: GGUFTensorInfo): Promise<WgArray | QuantizedArray> {
  const out = allocateFor(device, t);
  try {
    await uploadFromFile(device, stamp, t.fileOffset, t.nbytes, out.storage.buffer, `tensor ${quoteName(t.name)}`);
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}

/** Opens a GGUF file: parses and checks its header now, reads tensors when asked. */
export async function loadGGUF(path: string, options: LoadGGUFOptions = {}): Promise<GGUFFile> {
  const { header, stamp } = await readHeader(path);
  const metadata: Record<string, GGUFPlainValue> = Object.create(null);
  const metadataTypes: Record<string, GGUFType> = Object.create(null);
  const typedMetadata: Record<string, GGUFValue> = Object.create(null);
  for (const [k, v] of header.meta) {
    metadata[k] = v.plain();
    metadataTypes[k] = v.type;
    typedMetadata[k] = v;
  }
  const byName = new Map(header.tensors.map((t) => [t.name, t]));
  const info = (name: string): GGUFTensorInfo => {
    const t = byName.get(name);
    if (!t) throw new ArgumentError(`${path}: no tensor named ${quoteName(name)} (the file has ${byName.size} tensors)`);
    return t;
  };
  const arrays: Record<string, () => Promise<WgArray | QuantizedArray>> = Object.create(null);
  for (const t of header.tensors) arrays[t.name] = async () => uploadTensor(await deviceOrDefault(options.device), stamp, t);
  return {
    path,
    version: header.version,
    alignment: header.alignment,
    dataOffset: header.dataOffset,
    fileSize: stamp.size,
    metadata,
    metadataTypes,
    typedMetadata,
    tensorInfos: header.tensors,
    arrays,
    tensor: info,
    readTensorBytes: (name) => {
      const t = info(name);
      return readRange(stamp, t.fileOffset, t.nbytes, `tensor ${quoteName(t.name)}`);
    },
    async loadAll() {
      const out: Record<string, WgArray | QuantizedArray> = Object.create(null);
      const device = await deviceOrDefault(options.device);
      try {
        for (const t of header.tensors) out[t.name] = await uploadTensor(device, stamp, t);
      } catch (e) {
        for (const a of Object.values(out)) a.dispose();
        throw e;
      }
      return out;
    },
  };
}
