// Importance matrices, as llama-imatrix writes them and llama-quantize reads
// them (llama.cpp common/imatrix-loader.cpp + tools/quantize/quantize.cpp):
//
//   GGUF (general.type = imatrix): `imatrix.datasets` (array<string>),
//   `imatrix.chunk_count`, `imatrix.chunk_size` (u32), and per tensor
//   `<name>.in_sum2` (f32, [row length, experts]) and `<name>.counts` (f32,
//   [1, experts]); an optional `<name>.in_sum` is not used by quantization.
//   Weights: in_sum2 / lround(count) per expert, in float32; an expert whose
//   count is 0 gets weights 1 (as llama-quantize does: an expert the
//   calibration text never routed to).
//
//   Legacy .dat: i32 entry count, then per entry i32 name length, the name,
//   i32 ncall, i32 value count, float32 values; an optional trailer of i32
//   chunk count, i32 dataset length, dataset name. Weights: values / ncall in
//   float32 (the values themselves when ncall is 0).
//
// Both are turned into one float32 vector of per-column weights per tensor:
// row length x experts values, what ggml_quantize_chunk's quant_weights takes
// (one row-length slice per expert). A file llama-quantize would refuse, or
// whose weights are not finite and non-negative, is a FormatError naming the
// file, the tensor and what was expected, before anything is quantized.

import { ArgumentError, FormatError } from '../errors.js';
import { loadGGUF } from './gguf/reader.js';
import { GGUF_MAGIC } from './gguf/constants.js';
import { openForRead, readExact } from './source.js';

export interface Imatrix {
  /** The file it was read from. */
  file: string;
  format: 'gguf' | 'dat';
  /** Calibration datasets (GGUF: imatrix.datasets; .dat: the trailer's name, if any). */
  datasets: string[];
  /** Chunks of calibration text it was computed on (0 if the file does not say). */
  chunkCount: number;
  /** Tokens per chunk (GGUF only; 0 otherwise). */
  chunkSize: number;
  /** Per-column weights by tensor name: row length x experts float32 values. */
  entries: Map<string, Float32Array>;
}

/** Reads an importance matrix (GGUF or legacy .dat, told apart by the GGUF magic, as llama.cpp does). */
export async function loadImatrix(path: string): Promise<Imatrix> {
  const { handle, stamp } = await openForRead(path);
  let head = new Uint8Array(0);
  try {
    head = new Uint8Array(Math.min(4, stamp.size));
    await readExact(handle, path, head, 0, 'the magic');
    if (head.length === 4 && head.every((b, i) => b === GGUF_MAGIC[i])) {
      await handle.close().catch(() => {});
      return await loadGGUFImatrix(path);
    }
    const bytes = new Uint8Array(stamp.size);
    await readExact(handle, path, bytes, 0, 'the importance matrix');
    return parseLegacyImatrix(path, bytes);
  } finally {
    await handle.close().catch(() => {});
  }
}

function checkWeights(file: string, name: string, w: Float32Array, offset?: number): void {
  for (let i = 0; i < w.length; i++) {
    if (!(w[i] >= 0) || w[i] === Infinity) {
      throw new FormatError(
        file,
        offset,
        `importance matrix entry '${name}': weight ${i} is ${w[i]}; expected finite, non-negative values (${w.length} of them)`,
      );
    }
  }
}

async function loadGGUFImatrix(path: string): Promise<Imatrix> {
  const g = await loadGGUF(path);
  const meta = g.metadata;
  const type = meta['general.type'];
  if (type !== undefined && type !== 'imatrix') {
    throw new FormatError(path, undefined, `general.type is '${String(type)}', expected 'imatrix' (an importance matrix from llama-imatrix)`);
  }
  for (const key of ['imatrix.datasets', 'imatrix.chunk_count', 'imatrix.chunk_size']) {
    if (!(key in meta)) {
      // llama-quantize refuses a GGUF imatrix without its metadata ("missing imatrix metadata").
      throw new FormatError(path, undefined, `missing key ${key}: expected llama-imatrix's metadata (imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size)`);
    }
  }
  const u32 = (key: string): number => {
    if (g.metadataTypes[key] !== 'u32') throw new FormatError(path, undefined, `${key} is ${g.metadataTypes[key]}, expected u32`);
    return meta[key] as number;
  };
  if (g.metadataTypes['imatrix.datasets'] !== 'array<string>') {
    throw new FormatError(path, undefined, `imatrix.datasets is ${g.metadataTypes['imatrix.datasets']}, expected array<string>`);
  }
  const pairs = new Map<string, { sums?: string; counts?: string }>();
  for (const t of g.tensorInfos) {
    for (const suffix of ['.in_sum2', '.counts'] as const) {
      if (t.name.endsWith(suffix) && t.name.length > suffix.length) {
        const base = t.name.slice(0, -suffix.length);
        const p = pairs.get(base) ?? {};
        if (suffix === '.in_sum2') p.sums = t.name;
        else p.counts = t.name;
        pairs.set(base, p);
      }
    }
  }
  if (pairs.size === 0) throw new FormatError(path, undefined, 'no <tensor>.in_sum2 / <tensor>.counts tensors: expected at least one importance matrix entry');
  const entries = new Map<string, Float32Array>();
  for (const [name, { sums, counts }] of [...pairs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!sums || !counts) {
      throw new FormatError(path, undefined, `tensor '${name}': ${sums ? `${name}.counts` : `${name}.in_sum2`} is missing; expected both ${name}.in_sum2 and ${name}.counts`);
    }
    const si = g.tensor(sums);
    const ci = g.tensor(counts);
    for (const t of [si, ci]) {
      if (t.type.name !== 'f32') throw new FormatError(path, t.fileOffset, `tensor '${t.name}' is ${t.type.name}, expected f32`);
    }
    const nval = si.ne.reduce((a, b) => a * b, 1);
    const ncounts = ci.ne.reduce((a, b) => a * b, 1);
    if (ncounts === 0 || nval === 0 || nval % ncounts !== 0) {
      throw new FormatError(
        path,
        si.fileOffset,
        `tensor '${name}': ${nval} sums and ${ncounts} counts; expected the sums to be a whole number of rows, one per count (expert)`,
      );
    }
    const sumsF = f32View(await g.readTensorBytes(sums));
    const countsF = f32View(await g.readTensorBytes(counts));
    const ne0 = nval / ncounts;
    const w = new Float32Array(nval);
    for (let j = 0; j < ncounts; j++) {
      const c = countsF[j];
      if (!Number.isFinite(c) || c < 0) {
        throw new FormatError(path, ci.fileOffset + 4 * j, `tensor '${name}': count ${j} is ${c}, expected a finite, non-negative number of tokens`);
      }
      // (float)(int64_t)lroundf(count): counts are whole numbers of tokens
      const count = Math.fround(Math.sign(c) * Math.floor(Math.abs(c) + 0.5));
      for (let i = 0; i < ne0; i++) w[j * ne0 + i] = count > 0 ? Math.fround(sumsF[j * ne0 + i] / count) : 1;
    }
    checkWeights(path, name, w, si.fileOffset);
    entries.set(name, w);
  }
  return {
    file: path,
    format: 'gguf',
    datasets: [...(meta['imatrix.datasets'] as string[])],
    chunkCount: u32('imatrix.chunk_count'),
    chunkSize: u32('imatrix.chunk_size'),
    entries,
  };
}

function f32View(b: Uint8Array): Float32Array {
  const a = b.byteOffset % 4 === 0 ? b : b.slice();
  return new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4);
}

/** Parses a legacy .dat importance matrix (the whole file's bytes). */
export function parseLegacyImatrix(path: string, bytes: Uint8Array): Imatrix {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const i32 = (what: string): number => {
    if (pos + 4 > bytes.length) {
      throw new FormatError(path, pos, `the file ends here, inside ${what} (${pos + 4 - bytes.length} more bytes expected; truncated file?)`);
    }
    const v = dv.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const nEntries = i32('the entry count');
  if (nEntries < 1) throw new FormatError(path, 0, `entry count ${nEntries}: expected at least one entry (neither a GGUF nor a legacy .dat importance matrix?)`);
  const entries = new Map<string, Float32Array>();
  for (let e = 0; e < nEntries; e++) {
    const at = pos;
    const len = i32(`the name length of entry ${e}`);
    if (len < 0 || pos + len > bytes.length) {
      throw new FormatError(path, at, `entry ${e}: name length ${len}, but ${bytes.length - pos} bytes are left; expected a name of 0 to ${bytes.length - pos} bytes`);
    }
    const raw = bytes.subarray(pos, pos + len);
    const nul = raw.indexOf(0);
    // llama.cpp keeps the name up to its first NUL byte
    const name = new TextDecoder('utf-8', { fatal: false }).decode(nul >= 0 ? raw.subarray(0, nul) : raw);
    pos += len;
    const ncall = i32(`the call count of '${name}'`);
    const nvalAt = pos;
    const nval = i32(`the value count of '${name}'`);
    if (nval < 1) throw new FormatError(path, nvalAt, `tensor '${name}': ${nval} values, expected at least 1`);
    if (pos + 4 * nval > bytes.length) {
      throw new FormatError(
        path,
        pos,
        `tensor '${name}': the file ends inside its ${nval} values (expected ${4 * nval} bytes, ${bytes.length - pos} left; truncated file?)`,
      );
    }
    const values = f32View(bytes.subarray(pos, pos + 4 * nval));
    const w = new Float32Array(nval);
    // sums / ncall: the int64 count converted to float, a float division
    const c = Math.fround(ncall);
    for (let i = 0; i < nval; i++) w[i] = ncall > 0 ? Math.fround(values[i] / c) : values[i];
    checkWeights(path, name, w, pos);
    entries.set(name, w);
    pos += 4 * nval;
  }
  let chunkCount = 0;
  const datasets: string[] = [];
  if (pos < bytes.length) {
    // the optional trailer: chunk count, then a dataset name (read as far as it goes, as llama.cpp does)
    if (pos + 4 <= bytes.length) {
      chunkCount = dv.getInt32(pos, true);
      pos += 4;
      if (pos + 4 <= bytes.length) {
        const len = dv.getInt32(pos, true);
        pos += 4;
        if (len > 0 && pos + len <= bytes.length) {
          const raw = bytes.subarray(pos, pos + len);
          const nul = raw.indexOf(0);
          datasets.push(new TextDecoder().decode(nul >= 0 ? raw.subarray(0, nul) : raw));
        }
      }
    }
  }
  return { file: path, format: 'dat', datasets, chunkCount, chunkSize: 0, entries };
}

/**
 * The per-column weights of tensor `name` (rows of `rowLength`, `experts`
 * matrices, 1 for a 2-D tensor): undefined when the imatrix has no entry for
 * it; a FormatError naming the file, the tensor and the expected size when
 * the entry's length is not rowLength x experts.
 */
export function imatrixWeights(imatrix: Imatrix, name: string, rowLength: number, experts = 1): Float32Array | undefined {
  const w = imatrix.entries.get(name);
  if (!w) return undefined;
  if (w.length !== rowLength * experts) {
    throw new FormatError(
      imatrix.file,
      undefined,
      `tensor '${name}': the importance matrix has ${w.length} weights, expected ${rowLength * experts} (row length ${rowLength}${experts > 1 ? ` x ${experts} experts` : ''})`,
    );
  }
  return w;
}

/**
 * llama-quantize's --exclude-weights / --include-weights: drops the entries
 * whose names contain any `exclude` substring, or keeps only those that contain
 * an `include` one (the two cannot be combined).
 */
export function filterImatrix(imatrix: Imatrix, options: { include?: readonly string[]; exclude?: readonly string[] }): Imatrix {
  const include = options.include ?? [];
  const exclude = options.exclude ?? [];
  if (include.length && exclude.length) {
    throw new ArgumentError('--include-weights and --exclude-weights cannot be used together');
  }
  const entries = new Map(
    [...imatrix.entries].filter(([name]) =>
      include.length ? include.some((s) => name.includes(s)) : !exclude.some((s) => name.includes(s)),
    ),
  );
  return { ...imatrix, entries };
}
