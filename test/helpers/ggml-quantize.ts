// ggml's own quantizer on arbitrary float32 input: ggml_quantize_chunk from the
// libggml-base that node-llama-cpp ships prebuilt (the library llama.cpp runs),
// called through python3's ctypes. No importance matrix: the reference
// quantizers, the same path that made test/fixtures/golden.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GGMLType } from '../../src/quant/ggml-types.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** node-llama-cpp's prebuilt libggml-base for this platform, if installed. */
export function libggmlBasePath(): string | undefined {
  const plat = `${process.platform}-${process.arch}`;
  const bins = join(root, 'node_modules', '@node-llama-cpp', plat, 'bins', plat);
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
lib.ggml_quantize_init(tid)
size = lib.ggml_quantize_chunk(tid, src, dst, 0, rows, n_per_row, None)
open(sys.argv[6], 'wb').write(dst.raw[:size])
`;

/** ggml's bytes for `x` (rows of nPerRow values) quantized to `type`. */
export function ggmlQuantize(type: GGMLType, x: Float32Array, nPerRow: number): Uint8Array {
  const lib = libggmlBasePath();
  if (!lib) throw new Error('ggmlQuantize: no prebuilt libggml-base (node-llama-cpp) for this platform');
  const dir = mkdtempSync(join(tmpdir(), 'wgarray-ggml-'));
  try {
    const input = join(dir, 'x.f32');
    const output = join(dir, 'q.bin');
    writeFileSync(input, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    const rows = x.length / nPerRow;
    const r = spawnSync('python3', ['-c', SCRIPT, lib, String(type.id), String(rows), String(nPerRow), input, output], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`ggml_quantize_chunk (${type.name}) failed: ${r.stderr || r.error}`);
    const b = readFileSync(output);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
