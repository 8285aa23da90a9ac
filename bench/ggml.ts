// ggml's own quantizer timed in the same run as wgarray's: ggml_quantize_chunk
// from node-llama-cpp's prebuilt libggml-base (one thread: one call over all
// rows), through python3's ctypes, timed inside python around the call only.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { libggmlBasePath } from '../test/helpers/ggml-quantize.js';


const SCRIPT = String.raw`
import ctypes, sys, time
lib = ctypes.CDLL(sys.argv[1])
lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
lib.ggml_quantize_chunk.restype = ctypes.c_size_t
lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
lib.ggml_row_size.restype = ctypes.c_size_t
tid, rows, n, runs = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
data = open(sys.argv[6], 'rb').read()
src = ctypes.create_string_buffer(data, len(data))
qw = None
if len(sys.argv) > 7:
    w = open(sys.argv[7], 'rb').read()
    qw = ctypes.create_string_buffer(w, len(w))
dst = ctypes.create_string_buffer(rows * lib.ggml_row_size(tid, n))
lib.ggml_quantize_init(tid)
ts = []
for r in range(runs):
    t0 = time.perf_counter()
    lib.ggml_quantize_chunk(tid, src, dst, 0, rows, n, qw)
    ts.append(time.perf_counter() - t0)
ts.sort()
print(ts[len(ts) // 2])
`;

/** Median seconds of ggml_quantize_chunk(typeId, x as rows of n, quant_weights = weights) on one thread; undefined without the library. */
export function ggmlQuantizeSeconds(typeId: number, x: Float32Array, n: number, runs: number, weights?: Float32Array): number | undefined {
  const lib = libggmlBasePath();
  if (!lib) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'wgarray-bench-ggml-'));
  try {
    const xs = join(dir, 'x.f32');
    writeFileSync(xs, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    const args = ['-c', SCRIPT, lib, String(typeId), String(x.length / n), String(n), String(runs), xs];
    if (weights) {
      const ws = join(dir, 'w.f32');
      writeFileSync(ws, new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength));
      args.push(ws);
    }
    const r = spawnSync('python3', args, { encoding: 'utf8' });
    if (r.status !== 0) return undefined;
    return Number(r.stdout.trim());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
