// `wgarray inspect FILE [--json] [--full]`: a GGUF's or safetensors file's
// metadata (long arrays and strings summarised) and tensor table (name,
// shape, type, bytes), like gguf-dump. Reads headers only.

import { ArgumentError, escapeControls } from '../errors.js';
import { loadGGUF } from '../io/gguf/reader.js';
import { detectFormat } from '../io/load.js';
import { loadSafetensors } from '../io/safetensors/reader.js';
import { formatBytes, formatCount, formatShape, table } from './format.js';
import type { TextSink } from './progress.js';

const HEAD = 8;
/** Arrays longer than this are summarised in JSON unless --full. */
const JSON_ARRAY_LIMIT = 64;

function isList(v: unknown): v is ArrayLike<unknown> {
  return Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView));
}

/** The shortest decimal that reads back as the same float32 (1e-5, not 0.000009999999747378752). */
function f32Text(x: number): string {
  if (!Number.isFinite(x) || Number.isInteger(x)) return String(x);
  for (let p = 1; p <= 9; p++) {
    const s = x.toPrecision(p);
    if (Math.fround(Number(s)) === x) return String(Number(s));
  }
  return String(x);
}

function text(v: unknown, max = 60, type = ''): string {
  if (typeof v === 'number' && (type === 'f32' || type === 'array<f32>')) return f32Text(v);
  if (typeof v === 'string') {
    const s = JSON.stringify(v);
    return s.length > max ? `${s.slice(0, max)}…" (${v.length} chars)` : s;
  }
  if (typeof v === 'bigint') return v.toString();
  if (isList(v)) {
    const items = Array.from({ length: Math.min(HEAD, v.length) }, (_, i) => text(v[i], 24, type));
    return `[${items.join(', ')}${v.length > HEAD ? ', …' : ''}]`;
  }
  return String(v);
}

function jsonValue(v: unknown, full: boolean): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  if (isList(v)) {
    const all = Array.from(v, (x) => jsonValue(x, full));
    if (full || all.length <= JSON_ARRAY_LIMIT) return all;
    return { count: all.length, head: all.slice(0, 16) };
  }
  return v;
}

export async function inspect(path: string, options: { json?: boolean; full?: boolean }, out: TextSink): Promise<void> {
  const format = await detectFormat(path);
  if (format === 'gguf') {
    const f = await loadGGUF(path);
    const params = f.tensorInfos.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    const tensorBytes = f.tensorInfos.reduce((n, t) => n + t.nbytes, 0);
    if (options.json) {
      const doc = {
        format: 'gguf',
        path,
        version: f.version,
        alignment: f.alignment,
        data_offset: f.dataOffset,
        file_size: f.fileSize,
        parameters: params,
        tensor_bytes: tensorBytes,
        metadata: Object.fromEntries(
          Object.keys(f.metadata).map((k) => [k, { type: f.metadataTypes[k], value: jsonValue(f.metadata[k], options.full ?? false) }]),
        ),
        tensors: f.tensorInfos.map((t) => ({ name: t.name, shape: t.shape, ne: t.ne, type: t.type.name, bytes: t.nbytes, offset: t.offset })),
      };
      out.write(JSON.stringify(doc, null, 2) + '\n');
      return;
    }
    out.write(`${path}: GGUF v${f.version}, ${f.tensorInfos.length} tensors, ${Object.keys(f.metadata).length} metadata keys, ${formatBytes(f.fileSize)}\n`);
    out.write(`alignment ${f.alignment}, tensor data at byte ${f.dataOffset}\n\n`);
    // names from the file are shown with control characters escaped: no file can move the cursor or colour the terminal
    const meta = Object.keys(f.metadata).map((k) => [escapeControls(k), f.metadataTypes[k], text(f.metadata[k], 60, f.metadataTypes[k])]);
    out.write(table([['key', 'type', 'value'], ...meta], ['l', 'l', 'l']) + '\n\n');
    const rows = f.tensorInfos.map((t, i) => [String(i), escapeControls(t.name), formatShape(t.shape), t.type.name, formatBytes(t.nbytes)]);
    out.write(table([['#', 'tensor', 'shape', 'type', 'size'], ...rows], ['r', 'l', 'l', 'l', 'r']) + '\n\n');
    out.write(`${formatCount(params)} parameters, ${formatBytes(tensorBytes)} of tensor data (${params ? ((tensorBytes * 8) / params).toFixed(2) : '0'} bits per weight)\n`);
    return;
  }
  if (format === 'safetensors') {
    const f = await loadSafetensors(path);
    const params = f.tensorInfos.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    const tensorBytes = f.tensorInfos.reduce((n, t) => n + t.nbytes, 0);
    if (options.json) {
      const doc = {
        format: 'safetensors',
        path,
        files: f.files,
        parameters: params,
        tensor_bytes: tensorBytes,
        metadata: f.metadata,
        tensors: f.tensorInfos.map((t) => ({ name: t.name, shape: t.shape, dtype: t.fileDtype, bytes: t.nbytes, file: t.file, offset: t.fileOffset })),
      };
      out.write(JSON.stringify(doc, null, 2) + '\n');
      return;
    }
    out.write(`${path}: safetensors, ${f.tensorInfos.length} tensors in ${f.files.length} file(s)\n\n`);
    const meta = Object.entries(f.metadata).map(([k, v]) => [escapeControls(k), text(v)]);
    if (meta.length) out.write(table([['key', 'value'], ...meta], ['l', 'l']) + '\n\n');
    const rows = f.tensorInfos.map((t, i) => [String(i), escapeControls(t.name), formatShape(t.shape), t.fileDtype, formatBytes(t.nbytes)]);
    out.write(table([['#', 'tensor', 'shape', 'dtype', 'size'], ...rows], ['r', 'l', 'l', 'l', 'r']) + '\n\n');
    out.write(`${formatCount(params)} parameters, ${formatBytes(tensorBytes)} of tensor data\n`);
    return;
  }
  throw new ArgumentError(`${path}: not a GGUF or safetensors file (inspect reads those two formats)`);
}
