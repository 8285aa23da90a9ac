// llama.cpp's CPU matrix product for K-quant weights, through python3 ctypes:
// ggml's quantize_row_q8_K_ref (libggml-base) rounds each activation row to
// Q8_K and ggml_vec_dot_q{4,5,6}_K_q8_K (the generic CPU library node-llama-cpp
// ships, libggml-cpu-x64 on x86, else libggml-cpu) takes each row's integer
// dot products with the weight's blocks: what a llama.cpp forward pass
// computes for one output element.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { libggmlBasePath, oracleAvailable } from './ggml-quantize.js';

/** node-llama-cpp's prebuilt CPU backend library without ISA-specific kernels (generic x86-64, or the only one). */
export function libggmlCpuPath(): string | undefined {
  const base = libggmlBasePath();
  if (!base) return undefined;
  const bins = dirname(base);
  const libs = readdirSync(bins).filter((f) => /^libggml-cpu(-x64)?\.(so|dylib)$/.test(f));
  const lib = libs.find((f) => f.includes('-x64')) ?? libs[0];
  return lib && existsSync(join(bins, lib)) ? join(bins, lib) : undefined;
}

export function ggmlVecDotAvailable(): boolean {
  return oracleAvailable('libggml-base and libggml-cpu', libggmlBasePath() && libggmlCpuPath());
}

/** sizeof(block_q8_K): float d, int8 qs[256], int16 bsums[16]. */
export const Q8K_BLOCK_BYTES = 292;

const SCRIPT = String.raw`
import ctypes, sys
base = ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL)
cpu = ctypes.CDLL(sys.argv[2])
cpu.ggml_cpu_init()  # fills the float16 tables its K-quant dots read
wtype, m, n, k = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
x = open(sys.argv[7], 'rb').read()
w = open(sys.argv[8], 'rb').read()
base.quantize_row_q8_K_ref.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
q8row = (k // 256) * 292
xbuf = ctypes.create_string_buffer(x, len(x))
q8 = ctypes.create_string_buffer(m * q8row)
for i in range(m):
    base.quantize_row_q8_K_ref(ctypes.addressof(xbuf) + i * k * 4, ctypes.addressof(q8) + i * q8row, k)
dot = getattr(cpu, 'ggml_vec_dot_%s_q8_K' % wtype)
dot.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
wbuf = ctypes.create_string_buffer(w, len(w))
wrow = len(w) // n
out = (ctypes.c_float * (m * n))()
s = ctypes.c_float()
for i in range(m):
    for j in range(n):
        dot(k, ctypes.byref(s), 0, ctypes.addressof(wbuf) + j * wrow, 0, ctypes.addressof(q8) + i * q8row, 0, 1)
        out[i * n + j] = s.value
open(sys.argv[9], 'wb').write(q8.raw)
open(sys.argv[10], 'wb').write(bytes(out))
`;

/**
 * ggml's Q8_K rows of x [m, k] (block_q8_K each 256 values) and y = x @ wᵀ as
 * ggml_vec_dot_<wtype>_q8_K computes it, for w's ggml bytes [n rows].
 */
export function ggmlVecDotQ8K(wtype: 'q4_K' | 'q5_K' | 'q6_K', x: Float32Array, w: Uint8Array, m: number, n: number, k: number): { q8: Uint8Array; y: Float32Array } {
  const base = libggmlBasePath();
  const cpu = libggmlCpuPath();
  if (!base || !cpu) throw new Error('ggmlVecDotQ8K: no prebuilt libggml-base / libggml-cpu (node-llama-cpp) for this platform');
  const dir = mkdtempSync(join(tmpdir(), 'wgarray-vecdot-'));
  try {
    const files = ['x.f32', 'w.bin', 'q8.bin', 'y.f32'].map((f) => join(dir, f));
    writeFileSync(files[0], new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    writeFileSync(files[1], w);
    const r = spawnSync('python3', ['-c', SCRIPT, base, cpu, wtype, String(m), String(n), String(k), ...files], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ggml_vec_dot_${wtype}_q8_K failed: ${r.stderr || r.error}`);
    const q8 = readFileSync(files[2]);
    const y = readFileSync(files[3]);
    return { q8: new Uint8Array(q8.buffer, q8.byteOffset, q8.byteLength), y: new Float32Array(y.buffer.slice(y.byteOffset, y.byteOffset + y.byteLength)) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
