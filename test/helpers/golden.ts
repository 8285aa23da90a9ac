// Reads ggml's golden vectors (test/fixtures/golden/ggml-v1, see its README:
// what they are and where they come from). They live in the repository so that
// a clone alone runs the tests.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export const GOLDEN_DIR = resolve(here, '../fixtures/golden/ggml-v1');

export interface GoldenType {
  name: string;
  ggml_type: number;
  block_size: number;
  type_size: number;
  row_bytes: number;
  data: string;
  dequant: string;
}

export interface GoldenManifest {
  rows: number;
  n_per_row: number;
  input: string;
  types: GoldenType[];
}

export function goldenAvailable(): boolean {
  return existsSync(join(GOLDEN_DIR, 'manifest.json'));
}

export function manifest(): GoldenManifest {
  if (!goldenAvailable()) {
    throw new Error(`ggml's golden vectors are missing: expected ${join(GOLDEN_DIR, 'manifest.json')} (they are committed with the tests)`);
  }
  return JSON.parse(readFileSync(join(GOLDEN_DIR, 'manifest.json'), 'utf8')) as GoldenManifest;
}

function bytes(name: string): Uint8Array {
  const b = readFileSync(join(GOLDEN_DIR, name));
  return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function goldenInput(): Float32Array {
  return new Float32Array(bytes(manifest().input).buffer);
}

export function goldenData(t: GoldenType): Uint8Array {
  return bytes(t.data);
}

export function goldenDequant(t: GoldenType): Float32Array {
  return new Float32Array(bytes(t.dequant).buffer);
}

/** Index of the first differing byte, or -1. */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Distance in units in the last place between two float32 values (NaN vs number: Infinity). */
export function ulpDistance(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  const f = new Float32Array([a, b]);
  const i = new Int32Array(f.buffer);
  const key = (x: number) => (x < 0 ? 0x80000000 - x : x); // monotonic over all floats
  return Math.abs(key(i[0]) - key(i[1]));
}
