// ggml's own iq2xs_init_impl as an oracle for src/quant/grids/iq2xs.ts: a small C
// program that #includes ggml/src/ggml-quants.c from the llama.cpp source
// node-llama-cpp ships (its git bundle), so it can read the static iq2_data that
// ggml_quantize_init fills, compiled with gcc against the prebuilt libggml-base
// (for ggml_abort and friends) and cached in ~/.cache/wgarray-test/.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { libggmlBasePath } from './ggml-quantize.js';
import { REPO } from './child.js';
import { IQ2XS_KMAP_SIZE } from '../../src/quant/grids/iq2xs.js';

const BUNDLE = join(REPO, 'node_modules', 'node-llama-cpp', 'llama', 'gitRelease.bundle');

// writes iq2_data[type]: the grid (u64 per point), kmap (i32 x 43692), the neighbour lists (u16).
// ggml sorts (distance, index) pairs with qsort and a comparator that orders them
// totally, so their sorted order is unique: a counting sort by distance (stable, and
// checked against ggml's comparator) gives the same lists 20x faster than glibc's qsort.
const MAIN = `#include <stdlib.h>
#include <string.h>
static void oracle_sort(void * base, size_t n, size_t size, int (*cmp)(const void *, const void *));
#define qsort oracle_sort
#include "ggml-quants.c"
#undef qsort
static void oracle_sort(void * base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
  int * a = (int *) base;
  int ok = size == 2 * sizeof(int);
  for (size_t i = 0; ok && i < n; ++i) ok = a[2 * i] >= 0 && a[2 * i] < 1024;
  if (!ok) { qsort(base, n, size, cmp); return; }
  static size_t start[1025];
  memset(start, 0, sizeof(start));
  for (size_t i = 0; i < n; ++i) start[a[2 * i] + 1]++;
  for (int d = 0; d < 1024; ++d) start[d + 1] += start[d];
  int * sorted = (int *) malloc(n * size);
  for (size_t i = 0; i < n; ++i) {
    const size_t at = start[a[2 * i]]++;
    sorted[2 * at] = a[2 * i];
    sorted[2 * at + 1] = a[2 * i + 1];
  }
  for (size_t i = 1; i < n; ++i) if (cmp(sorted + 2 * (i - 1), sorted + 2 * i) >= 0) abort();
  memcpy(base, sorted, n * size);
  free(sorted);
}
int main(int argc, char ** argv) {
  (void) argc;
  enum ggml_type t = (enum ggml_type) atoi(argv[1]);
  iq2xs_init_impl(t);
  const int g = iq2_data_index(t), n = iq2_grid_size(t), kmap_size = ${IQ2XS_KMAP_SIZE};
  int total = 0;
  for (int i = 0; i < kmap_size; ++i) {
    if (iq2_data[g].map[i] >= 0) continue;
    const int o = -iq2_data[g].map[i] - 1;
    if (o + 1 + iq2_data[g].neighbours[o] > total) total = o + 1 + iq2_data[g].neighbours[o];
  }
  fwrite(iq2_data[g].grid, 8, n, stdout);
  fwrite(iq2_data[g].map, 4, kmap_size, stdout);
  fwrite(iq2_data[g].neighbours, 2, total, stdout);
  return 0;
}
`;

/** Whether the oracle can be built here (gcc, git, the bundle, libggml-base); with WGARRAY_REQUIRE_ORACLES=1 a missing piece throws. */
export function ggmlIq2xsInitAvailable(): boolean {
  const missing = !libggmlBasePath()
    ? "node-llama-cpp's prebuilt libggml-base"
    : !existsSync(BUNDLE)
      ? "node-llama-cpp's llama.cpp source bundle"
      : spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status !== 0
        ? 'gcc'
        : spawnSync('git', ['--version'], { stdio: 'ignore' }).status !== 0
          ? 'git'
          : undefined;
  if (missing && process.env.WGARRAY_REQUIRE_ORACLES === '1') {
    throw new Error(`the ggml iq2xs_init_impl oracle needs ${missing}, and WGARRAY_REQUIRE_ORACLES=1 forbids skipping it`);
  }
  return !missing;
}

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Buffer {
  const r = spawnSync(cmd, args, { env, maxBuffer: 256 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

function oracleBinary(): string {
  const dir = join(homedir(), '.cache', 'wgarray-test', `iq2xs-init-v2-${statSync(BUNDLE).size}`);
  const bin = join(dir, 'iq2xs-init');
  if (existsSync(bin)) return bin;
  const work = mkdtempSync(join(tmpdir(), 'wgarray-iq2xs-init-'));
  try {
    const git = join(work, 'src.git');
    run('git', ['clone', '-q', '--bare', BUNDLE, git]);
    const tar = join(work, 'ggml.tar');
    run('git', ['--git-dir', git, 'archive', `--output=${tar}`, 'HEAD', 'ggml/include', 'ggml/src']);
    run('tar', ['-xf', tar, '-C', work]);
    const main = join(work, 'main.c');
    writeFileSync(main, MAIN);
    mkdirSync(dir, { recursive: true });
    const ggml = join(work, 'ggml');
    run('gcc', ['-O2', '-I', join(ggml, 'include'), '-I', join(ggml, 'src'), main, libggmlBasePath()!, '-lm', '-o', `${bin}.tmp`]);
    run('mv', [`${bin}.tmp`, bin]);
    return bin;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export interface GgmlIq2xsData {
  /** iq2_data's grid: 8 bytes (2l + 1) per point. */
  grid: Int8Array;
  map: Int32Array;
  neighbours: Uint16Array;
}

/** What ggml's iq2xs_init_impl computes for ggml type id `typeId` (IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M). */
export function ggmlIq2xsInit(typeId: number, gridSize: number): GgmlIq2xsData {
  const libDir = dirname(libggmlBasePath()!);
  const env = { ...process.env, LD_LIBRARY_PATH: libDir, DYLD_LIBRARY_PATH: libDir };
  const out = run(oracleBinary(), [String(typeId)], env);
  const bytes = new Uint8Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.length));
  const mapAt = gridSize * 8;
  const neighboursAt = mapAt + IQ2XS_KMAP_SIZE * 4;
  return {
    grid: new Int8Array(bytes.buffer, 0, mapAt),
    map: new Int32Array(bytes.buffer, mapAt, IQ2XS_KMAP_SIZE),
    neighbours: new Uint16Array(bytes.buffer, neighboursAt, (bytes.length - neighboursAt) / 2),
  };
}
