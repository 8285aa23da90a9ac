// llama.cpp's own imatrix reader, the one llama-quantize --imatrix and
// llama-imatrix --in-file use (common/imatrix-loader.cpp, common_imatrix_load),
// compiled with g++ from the llama.cpp source node-llama-cpp ships (its git
// bundle) against the prebuilt libggml-base (for gguf_*), with two one-line
// shims for the logging and string helpers it includes from common/. The
// binary is cached in ~/.cache/wgarray-test/. readImatrixWithLlama(file)
// returns what the loader read, after llama-quantize's own metadata check.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleOracleAvailable, cachedOracleBinary, oracleEnv, run } from './bundle-oracle.js';
import { libggmlBasePath } from './ggml-quantize.js';


const COMMON_SHIM = `#pragma once
#include <string>
#include <string_view>
inline bool string_remove_suffix(std::string & s, std::string_view suffix) {
  if (s.size() < suffix.size() || s.compare(s.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  s.resize(s.size() - suffix.size());
  return true;
}
`;
const LOG_SHIM = `#pragma once
#include <cstdio>
#define LOG_ERR(...) fprintf(stderr, __VA_ARGS__)
#define LOG_WRN(...) fprintf(stderr, __VA_ARGS__)
#define LOG_INF(...) fprintf(stderr, __VA_ARGS__)
#define LOG_DBG(...) do {} while (0)
`;
// prints what common_imatrix_load read, as JSON; exits 1 where llama-quantize's load_imatrix would
const MAIN = `#include "imatrix-loader.h"
#include <cstdio>
int main(int argc, char ** argv) {
  common_imatrix m;
  if (!common_imatrix_load(argv[1], m)) { fprintf(stderr, "failed to load imatrix\\n"); return 1; }
  if (!m.is_legacy && !m.has_metadata) { fprintf(stderr, "missing imatrix metadata\\n"); return 1; }
  printf("{\\"legacy\\":%d,\\"chunk_count\\":%d,\\"chunk_size\\":%d,\\"datasets\\":[", m.is_legacy ? 1 : 0, m.chunk_count, m.chunk_size);
  for (size_t i = 0; i < m.datasets.size(); i++) printf("%s\\"%s\\"", i ? "," : "", m.datasets[i].c_str());
  printf("],\\"entries\\":{");
  bool first = true;
  for (const auto & [name, e] : m.entries) {
    printf("%s\\"%s\\":{\\"counts\\":[", first ? "" : ",", name.c_str());
    first = false;
    for (size_t i = 0; i < e.counts.size(); i++) printf("%s%lld", i ? "," : "", (long long) e.counts[i]);
    printf("],\\"sums\\":[");
    for (size_t i = 0; i < e.sums.size(); i++) printf("%s%.9g", i ? "," : "", e.sums[i]);
    printf("]}");
  }
  printf("}}\\n");
  return 0;
}
`;

export interface LlamaImatrix {
  legacy: number;
  chunk_count: number;
  chunk_size: number;
  datasets: string[];
  entries: Record<string, { counts: number[]; sums: number[] }>;
}

/** Whether the loader can be built here (g++, git, the bundle, libggml-base); with WGARRAY_REQUIRE_ORACLES=1 a missing piece throws. */
export function imatrixLoaderAvailable(): boolean {
  return bundleOracleAvailable('the llama.cpp imatrix loader oracle', 'g++');
}

function loaderBinary(): string {
  return cachedOracleBinary('imatrix-loader', 'v2', (work, git, out) => {
    const files = ['common/imatrix-loader.cpp', 'common/imatrix-loader.h', 'ggml/include/gguf.h', 'ggml/include/ggml.h'];
    for (const f of files) writeFileSync(join(work, f.split('/').pop()!), run('git', ['--git-dir', git, 'show', `HEAD:${f}`]));
    writeFileSync(join(work, 'common.h'), COMMON_SHIM);
    writeFileSync(join(work, 'log.h'), LOG_SHIM);
    writeFileSync(join(work, 'main.cpp'), MAIN);
    run('g++', ['-std=c++17', '-O1', '-I', work, join(work, 'main.cpp'), join(work, 'imatrix-loader.cpp'), libggmlBasePath()!, '-o', out]);
  });
}

/** What llama.cpp's common_imatrix_load reads from `file` (rejects as llama-quantize would). */
export function readImatrixWithLlama(file: string): LlamaImatrix {
  return JSON.parse(run(loaderBinary(), [file], oracleEnv()).toString('utf8')) as LlamaImatrix;
}
