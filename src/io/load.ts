// load(path): a GGUF or safetensors file (or sharded safetensors model) read
// whole onto the GPU, the format picked from the file's first bytes (then its
// name), as MLX's mx.load does.

import { stat } from 'node:fs/promises';
import { FormatError } from '../errors.js';
import type { WgArray } from '../runtime/array.js';
import type { Device } from '../runtime/device.js';
import type { QuantizedArray } from '../runtime/quantized.js';
import { fileError } from './atomic.js';
import { GGUF_MAGIC } from './gguf/constants.js';
import type { GGUFPlainValue } from './gguf/metadata.js';
import { loadGGUF } from './gguf/reader.js';
import { MAX_HEADER_BYTES } from './safetensors/format.js';
import { loadSafetensors } from './safetensors/reader.js';
import { openForRead, readExact } from './source.js';

export type FileFormat = 'gguf' | 'safetensors';

export interface Loaded {
  format: FileFormat;
  arrays: Record<string, WgArray | QuantizedArray>;
  /** GGUF: typed values as loadGGUF's `metadata`; safetensors: the __metadata__ strings. */
  metadata: Record<string, GGUFPlainValue>;
}

/** Tells GGUF from safetensors by the first bytes, then by the name; undefined when neither fits. */
export async function detectFormat(path: string): Promise<FileFormat | undefined> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw fileError(path, e, 'cannot open');
  }
  if (st.isDirectory() || path.endsWith('.json')) return 'safetensors';
  const { handle, stamp } = await openForRead(path);
  try {
    const head = new Uint8Array(Math.min(9, stamp.size));
    await readExact(handle, path, head, 0, 'the first bytes');
    if (head.length >= 4 && GGUF_MAGIC.every((b, i) => head[i] === b)) return 'gguf';
    if (head.length === 9 && head[8] === 0x7b /* { */) {
      const n = Buffer.from(head).readBigUInt64LE(0);
      if (n > 0n && n <= BigInt(MAX_HEADER_BYTES) && n + 8n <= BigInt(stamp.size)) return 'safetensors';
    }
  } finally {
    await handle.close().catch(() => {});
  }
  if (/\.gguf$/i.test(path)) return 'gguf';
  if (/\.safetensors$/i.test(path)) return 'safetensors';
  return undefined;
}

/** Loads every tensor of a GGUF or safetensors file (or a sharded safetensors model) onto the GPU. */
export async function load(path: string, options: { device?: Device; format?: FileFormat } = {}): Promise<Loaded> {
  const format = options.format ?? (await detectFormat(path));
  if (format === 'gguf') {
    const f = await loadGGUF(path, options);
    return { format, arrays: await f.loadAll(), metadata: f.metadata };
  }
  if (format === 'safetensors') {
    const f = await loadSafetensors(path, options);
    return { format, arrays: await f.loadAll(), metadata: f.metadata };
  }
  throw new FormatError(path, 0, 'neither a GGUF file (magic "GGUF") nor a safetensors file (8-byte length + JSON header); name it .gguf or .safetensors or pass { format }');
}
