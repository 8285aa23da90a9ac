// ggml's own quantizer on arbitrary float32 input: ggml_quantize_chunk from the
// libggml-base that node-llama-cpp ships prebuilt (the library llama.cpp runs),
// called through python3's ctypes. Without an importance matrix: the reference
// quantizers, the same path that made test/fixtures/golden; with one (quant_weights,
// one row's worth of per-column weights), the _impl paths llama-quantize takes.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GGMLType } from '../../src/runtime/ggml-types.js';

/** The checkout: test/helpers/ in the tests, dist/test/helpers/ when a bench imports the compiled copy. */
export function projectRoot(): string {
  let dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  while (!existsSync(join(dir, 'node_modules')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** node-llama-cpp's prebuilt libggml-base for this platform, if installed. */
export function libggmlBasePath(): string | undefined {
  const plat = `${process.platform}-${process.arch}`;
  const bins = join(projectRoot(), 'node_modules', '@node-llama-cpp', plat, 'bins', plat);
  if (!existsSync(bins)) return undefined;
  const lib = readdirSync(bins).find((f) => /^libggml-base(\.v?[\d.]+)?\.(so|dylib)$/.test(f));
  return lib ? join(bins, lib) : undefined;
}

/**
 * Whether an oracle test can run: `lib` (node-llama-cpp's prebuilt library)
 * exists and python3 with ctypes runs. Missing, the tests skip, except where
 * WGARRAY_REQUIRE_ORACLES=1 (as .ci/run sets it): then this throws, so that CI
 * cannot pass by skipping them.
 */
export function oracleAvailable(what: string, lib: string | undefined): boolean {
  const missing = !lib
    ? `node-llama-cpp's prebuilt ${what} for ${process.platform}-${process.arch}`
    : spawnSync('python3', ['-c', 'import ctypes'], { stdio: 'ignore' }).status !== 0
      ? 'python3 (with ctypes)'
      : undefined;
  if (missing && process.env.WGARRAY_REQUIRE_ORACLES === '1') {
    throw new Error(`the ${what} oracle tests need ${missing}, and WGARRAY_REQUIRE_ORACLES=1 forbids skipping them`);
  }
  return !missing;
}

export function ggmlQuantizeAvailable(): boolean {
  return oracleAvailable('libggml-base', libggmlBasePath());
}

const SCRIPT = String.raw`
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
lib.ggml_quantize_chunk.restype = ctypes.c_size_t
lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
lib.ggml_row_size.restype = ctypes.c_size_t
tid, rows, n_per_row = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
data = open(sys.argv[5], 'rb').read()
src = ctypes.create_string_buffer(data, len(data))
dst = ctypes.create_string_buffer(rows * lib.ggml_row_size(tid, n_per_row))
qw = None
if len(sys.argv) > 7:
    w = open(sys.argv[7], 'rb').read()
    qw = ctypes.create_string_buffer(w, len(w))
lib.ggml_quantize_init(tid)
size = lib.ggml_quantize_chunk(tid, src, dst, 0, rows, n_per_row, qw)
open(sys.argv[6], 'wb').write(dst.raw[:size])
`;

/** ggml's bytes for `x` (rows of nPerRow values) quantized to `type`, with quant_weights `weights` (nPerRow values) if given. */
export function ggmlQuantize(type: GGMLType, x: Float32Array, nPerRow: number, weights?: Float32Array): Uint8Array {
  const lib = libggmlBasePath();
  if (!lib) throw new Error('ggmlQuantize: no prebuilt libggml-base (node-llama-cpp) for this platform');
  const dir = mkdtempSync(join(tmpdir(), 'wgarray-ggml-'));
  try {
    const input = join(dir, 'x.f32');
    const output = join(dir, 'q.bin');
    writeFileSync(input, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    const rows = x.length / nPerRow;
    const args = ['-c', SCRIPT, lib, String(type.id), String(rows), String(nPerRow), input, output];
    if (weights) {
      if (weights.length !== nPerRow) throw new Error(`ggmlQuantize: ${weights.length} weights, expected one row's ${nPerRow}`);
      const w = join(dir, 'w.f32');
      writeFileSync(w, new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength));
      args.push(w);
    }
    const r = spawnSync('python3', args, {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`ggml_quantize_chunk (${type.name}) failed: ${r.stderr || r.error}`);
    const b = readFileSync(output);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const BATCH_SCRIPT = String.raw`
import ctypes, sys, json
lib = ctypes.CDLL(sys.argv[1])
lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
lib.ggml_quantize_chunk.restype = ctypes.c_size_t
lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
lib.ggml_row_size.restype = ctypes.c_size_t
jobs = json.load(open(sys.argv[2]))
for j in jobs:
    tid, rows, n = j['type'], j['rows'], j['nPerRow']
    data = open(j['x'], 'rb').read()
    src = ctypes.create_string_buffer(data, len(data))
    dst = ctypes.create_string_buffer(rows * lib.ggml_row_size(tid, n))
    qw = None
    if j.get('w'):
        w = open(j['w'], 'rb').read()
        qw = ctypes.create_string_buffer(w, len(w))
    lib.ggml_quantize_init(tid)
    size = lib.ggml_quantize_chunk(tid, src, dst, 0, rows, n, qw)
    open(j['out'], 'wb').write(dst.raw[:size])
`;

export interface GgmlQuantizeJob {
  type: GGMLType;
  x: Float32Array;
  nPerRow: number;
  /** quant_weights: one row's nPerRow per-column weights. */
  weights?: Float32Array;
}

/** ggmlQuantize for many inputs in one python3 process (one start-up instead of one per case). */
export function ggmlQuantizeBatch(jobs: readonly GgmlQuantizeJob[]): Uint8Array[] {
  const lib = libggmlBasePath();
  if (!lib) throw new Error('ggmlQuantizeBatch: no prebuilt libggml-base (node-llama-cpp) for this platform');
  const dir = mkdtempSync(join(tmpdir(), 'wgarray-ggml-'));
  try {
    const manifest = jobs.map((j, i) => {
      if (j.weights && j.weights.length !== j.nPerRow) throw new Error(`ggmlQuantizeBatch: job ${i} has ${j.weights.length} weights, expected ${j.nPerRow}`);
      const x = join(dir, `x${i}.f32`);
      writeFileSync(x, new Uint8Array(j.x.buffer, j.x.byteOffset, j.x.byteLength));
      let w: string | undefined;
      if (j.weights) {
        w = join(dir, `w${i}.f32`);
        writeFileSync(w, new Uint8Array(j.weights.buffer, j.weights.byteOffset, j.weights.byteLength));
      }
      return { type: j.type.id, rows: j.x.length / j.nPerRow, nPerRow: j.nPerRow, x, w, out: join(dir, `q${i}.bin`) };
    });
    const m = join(dir, 'jobs.json');
    writeFileSync(m, JSON.stringify(manifest));
    const r = spawnSync('python3', ['-c', BATCH_SCRIPT, lib, m], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ggml_quantize_chunk (batch of ${jobs.length}) failed: ${r.stderr || r.error}`);
    return manifest.map((j) => {
      const b = readFileSync(j.out);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
