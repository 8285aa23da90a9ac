// llama.cpp's own imatrix reader, the one llama-quantize --imatrix and
// llama-imatrix --in-file use (common/imatrix-loader.cpp, common_imatrix_load),
// compiled with g++ from the llama.cpp source node-llama-cpp ships (its git
// bundle) against the prebuilt libggml-base (for gguf_*), with two one-line
// shims for the logging and string helpers it includes from common/. The
// binary is cached in ~/.cache/wgarray-test/. readImatrixWithLlama(file)
// returns what the loader read, after llama-quantize's own metadata check.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { libggmlBasePath } from './ggml-quantize.js';
import { REPO } from './child.js';

const BUNDLE = join(REPO, 'node_modules', 'node-llama-cpp', 'llama', 'gitRelease.bundle');

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
  const missing = !libggmlBasePath()
    ? "node-llama-cpp's prebuilt libggml-base"
    : !existsSync(BUNDLE)
      ? "node-llama-cpp's llama.cpp source bundle"
      : spawnSync('g++', ['--version'], { stdio: 'ignore' }).status !== 0
        ? 'g++'
        : spawnSync('git', ['--version'], { stdio: 'ignore' }).status !== 0
          ? 'git'
          : undefined;
  if (missing && process.env.WGARRAY_REQUIRE_ORACLES === '1') {
    throw new Error(`the llama.cpp imatrix loader oracle needs ${missing}, and WGARRAY_REQUIRE_ORACLES=1 forbids skipping it`);
  }
  return !missing;
}

function run(cmd: string, args: string[], cwd?: string, env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 256 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

function loaderBinary(): string {
  const lib = libggmlBasePath()!;
  // Cached across checkouts (keyed by the bundle, i.e. the llama.cpp version): it names no
  // library folder of its own; each run finds this checkout's libggml-base (readImatrixWithLlama).
  const dir = join(homedir(), '.cache', 'wgarray-test', `imatrix-loader-v2-${statSync(BUNDLE).size}`);
  const bin = join(dir, 'imatrix-loader');
  if (existsSync(bin)) return bin;
  const work = mkdtempSync(join(tmpdir(), 'wgarray-imatrix-loader-'));
  try {
    const git = join(work, 'src.git');
    run('git', ['clone', '-q', '--bare', BUNDLE, git]);
    const files = ['common/imatrix-loader.cpp', 'common/imatrix-loader.h', 'ggml/include/gguf.h', 'ggml/include/ggml.h'];
    for (const f of files) writeFileSync(join(work, f.split('/').pop()!), run('git', ['--git-dir', git, 'show', `HEAD:${f}`]));
    writeFileSync(join(work, 'common.h'), COMMON_SHIM);
    writeFileSync(join(work, 'log.h'), LOG_SHIM);
    writeFileSync(join(work, 'main.cpp'), MAIN);
    mkdirSync(dir, { recursive: true });
    // built aside, then renamed within the cache folder (atomic): test files in
    // other workers may build it at the same time
    const built = join(work, 'imatrix-loader');
    run('g++', ['-std=c++17', '-O1', '-I', work, join(work, 'main.cpp'), join(work, 'imatrix-loader.cpp'), lib, '-o', built]);
    const staged = `${bin}.${process.pid}`;
    run('mv', [built, staged]);
    renameSync(staged, bin);
    return bin;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** What llama.cpp's common_imatrix_load reads from `file` (rejects as llama-quantize would). */
export function readImatrixWithLlama(file: string): LlamaImatrix {
  const libDir = dirname(libggmlBasePath()!);
  const env = { ...process.env, LD_LIBRARY_PATH: libDir, DYLD_LIBRARY_PATH: libDir };
  return JSON.parse(run(loaderBinary(), [file], undefined, env)) as LlamaImatrix;
}
