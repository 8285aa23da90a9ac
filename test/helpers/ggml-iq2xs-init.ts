// ggml's own IQ2 code as an oracle: a small C program that #includes
// ggml/src/ggml-quants.c from the llama.cpp source node-llama-cpp ships (its git
// bundle), so it can read the static iq2_data that iq2xs_init_impl fills (for
// src/quant/grids/iq2xs.ts) and run quantize_iq2_* / dequantize_row_iq2_* after a
// quick init (test/quant-iq2.test.ts; the prebuilt library's ggml_quantize_chunk
// pays seconds of qsort per type at init, and the registry tests compare with it
// too). Compiled with gcc -O2 (no -march: no FMA contraction, as the prebuilt
// x86-64 build) against the prebuilt libggml-base (ggml_abort, ggml_row_size...),
// cached in ~/.cache/wgarray-test/.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleOracleAvailable, cachedOracleBinary, oracleEnv, run } from './bundle-oracle.js';
import { libggmlBasePath } from './ggml-quantize.js';
import { IQ2XS_KMAP_SIZE } from '../../src/quant/grids/iq2xs.js';


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
static void * read_file(const char * path, long * size) {
  FILE * f = fopen(path, "rb");
  if (!f) abort();
  fseek(f, 0, SEEK_END);
  *size = ftell(f);
  fseek(f, 0, SEEK_SET);
  void * p = malloc(*size);
  if (fread(p, 1, *size, f) != (size_t) *size) abort();
  fclose(f);
  return p;
}
// iq2xs-init TYPE: iq2_data for TYPE on stdout.
// iq2xs-init q TYPE N_PER_ROW X OUT [W]: quantize_iq2_xxs / _xs / _s row by row (as ggml_quantize_chunk
// calls them), W one row's quant_weights or one row of them per row of X.
// iq2xs-init d TYPE BLOCKS OUT: dequantize_row_iq2_xxs / _xs / _s (the types' to_float).
int main(int argc, char ** argv) {
  if (argc > 2 && argv[1][0] == 'q') {
    enum ggml_type t = (enum ggml_type) atoi(argv[2]);
    const int64_t n = atoll(argv[3]);
    long xs, ws = 0;
    const float * x = (const float *) read_file(argv[4], &xs);
    const float * w = argc > 6 ? (const float *) read_file(argv[6], &ws) : NULL;
    const int64_t rows = xs / 4 / n;
    iq2xs_init_impl(t);
    const size_t row_bytes = ggml_row_size(t, n);
    char * y = (char *) calloc(rows, row_bytes);
    // W holds one row's weights, or one per row of X (a batch of cases)
    const int per_row = w && ws / 4 == rows * n;
    for (int64_t r = 0; r < rows; ++r) {
      const float * wr = per_row ? w + r * n : w;
      if (t == GGML_TYPE_IQ2_XXS) quantize_iq2_xxs(x + r * n, y + r * row_bytes, 1, n, wr);
      else if (t == GGML_TYPE_IQ2_XS) quantize_iq2_xs(x + r * n, y + r * row_bytes, 1, n, wr);
      else if (t == GGML_TYPE_IQ2_S) quantize_iq2_s(x + r * n, y + r * row_bytes, 1, n, wr);
      else abort();
    }
    const size_t bytes = rows * row_bytes;
    FILE * f = fopen(argv[5], "wb");
    fwrite(y, 1, bytes, f);
    fclose(f);
    return 0;
  }
  if (argc > 2 && argv[1][0] == 'd') {
    enum ggml_type t = (enum ggml_type) atoi(argv[2]);
    long size;
    const void * b = read_file(argv[3], &size);
    const int64_t k = size / ggml_type_size(t) * QK_K;
    float * y = (float *) malloc(k * sizeof(float));
    if (t == GGML_TYPE_IQ2_XXS) dequantize_row_iq2_xxs(b, y, k);
    else if (t == GGML_TYPE_IQ2_XS) dequantize_row_iq2_xs(b, y, k);
    else if (t == GGML_TYPE_IQ2_S) dequantize_row_iq2_s(b, y, k);
    else abort();
    FILE * f = fopen(argv[4], "wb");
    fwrite(y, sizeof(float), k, f);
    fclose(f);
    return 0;
  }
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
export function ggmlIq2InitAvailable(): boolean {
  return bundleOracleAvailable('the ggml iq2xs_init_impl oracle', 'gcc');
}

function oracleBinary(): string {
  return cachedOracleBinary('iq2xs-init', 'v4', (work, git, out) => {
    const tar = join(work, 'ggml.tar');
    run('git', ['--git-dir', git, 'archive', `--output=${tar}`, 'HEAD', 'ggml/include', 'ggml/src']);
    run('tar', ['-xf', tar, '-C', work]);
    const main = join(work, 'main.c');
    writeFileSync(main, MAIN);
    const ggml = join(work, 'ggml');
    run('gcc', ['-O2', '-I', join(ggml, 'include'), '-I', join(ggml, 'src'), main, libggmlBasePath()!, '-lm', '-o', out]);
  });
}

export interface GgmlIq2xsData {
  /** iq2_data's grid: 8 bytes (2l + 1) per point. */
  grid: Int8Array;
  map: Int32Array;
  neighbours: Uint16Array;
}

/** What ggml's iq2xs_init_impl computes for ggml type id `typeId` (IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M). */
export function ggmlIq2xsInit(typeId: number, gridSize: number): GgmlIq2xsData {
  const out = run(oracleBinary(), [String(typeId)], oracleEnv());
  const bytes = new Uint8Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.length));
  const mapAt = gridSize * 8;
  const neighboursAt = mapAt + IQ2XS_KMAP_SIZE * 4;
  return {
    grid: new Int8Array(bytes.buffer, 0, mapAt),
    map: new Int32Array(bytes.buffer, mapAt, IQ2XS_KMAP_SIZE),
    neighbours: new Uint16Array(bytes.buffer, neighboursAt, (bytes.length - neighboursAt) / 2),
  };
}

function withDir<T>(f: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'wgarray-iq2-oracle-'));
  try {
    return f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** ggml's quantize_iq2_xxs / _xs / _s (as ggml_quantize_chunk calls them) of rows of nPerRow values, with quant_weights if given: nPerRow values, or nPerRow per row. */
export function ggmlIq2Quantize(typeId: number, x: Float32Array, nPerRow: number, weights?: Float32Array): Uint8Array {
  return withDir((dir) => {
    const args = ['q', String(typeId), String(nPerRow), join(dir, 'x'), join(dir, 'y')];
    writeFileSync(join(dir, 'x'), new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    if (weights) {
      writeFileSync(join(dir, 'w'), new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength));
      args.push(join(dir, 'w'));
    }
    run(oracleBinary(), args, oracleEnv());
    return new Uint8Array(readFileSync(join(dir, 'y')));
  });
}

/** ggml's dequantize_row_iq2_xxs / _xs / _s of whole blocks. */
export function ggmlIq2Dequantize(typeId: number, blocks: Uint8Array): Float32Array {
  return withDir((dir) => {
    writeFileSync(join(dir, 'b'), blocks);
    run(oracleBinary(), ['d', String(typeId), join(dir, 'b'), join(dir, 'y')], oracleEnv());
    const b = readFileSync(join(dir, 'y'));
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
  });
}
