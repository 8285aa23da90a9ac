// Oracles compiled from the llama.cpp source that node-llama-cpp ships (its git
// bundle) against its prebuilt libggml-base: the parts every such oracle shares.
// Binaries are cached in ~/.cache/wgarray-test/, keyed by the bundle (i.e. the
// llama.cpp version), so they name no library folder of their own: each run
// finds this checkout's libggml-base through oracleEnv().

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO } from './child.js';
import { libggmlBasePath } from './ggml-quantize.js';

export const BUNDLE = join(REPO, 'node_modules', 'node-llama-cpp', 'llama', 'gitRelease.bundle');

/**
 * Whether an oracle built with `compiler` can be built here (the compiler, git, the bundle,
 * libggml-base); with WGARRAY_REQUIRE_ORACLES=1 a missing piece throws, naming `oracle`.
 */
export function bundleOracleAvailable(oracle: string, compiler: 'gcc' | 'g++'): boolean {
  const missing = !libggmlBasePath()
    ? "node-llama-cpp's prebuilt libggml-base"
    : !existsSync(BUNDLE)
      ? "node-llama-cpp's llama.cpp source bundle"
      : spawnSync(compiler, ['--version'], { stdio: 'ignore' }).status !== 0
        ? compiler
        : spawnSync('git', ['--version'], { stdio: 'ignore' }).status !== 0
          ? 'git'
          : undefined;
  if (missing && process.env.WGARRAY_REQUIRE_ORACLES === '1') {
    throw new Error(`${oracle} needs ${missing}, and WGARRAY_REQUIRE_ORACLES=1 forbids skipping it`);
  }
  return !missing;
}

/** Runs a command; its stdout, or an error with its stderr. */
export function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Buffer {
  const r = spawnSync(cmd, args, { env, maxBuffer: 256 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

/** The environment an oracle binary runs in: the prebuilt libggml-base on the library path. */
export function oracleEnv(): NodeJS.ProcessEnv {
  const libDir = dirname(libggmlBasePath()!);
  return { ...process.env, LD_LIBRARY_PATH: libDir, DYLD_LIBRARY_PATH: libDir };
}

/**
 * The cached binary `name` (cache key `version`), built first if missing: `build(work, git, out)`
 * gets a temporary folder, a bare clone of the bundle in it and the path to write the binary to.
 */
export function cachedOracleBinary(name: string, version: string, build: (work: string, git: string, out: string) => void): string {
  const dir = join(homedir(), '.cache', 'wgarray-test', `${name}-${version}-${statSync(BUNDLE).size}`);
  const bin = join(dir, name);
  if (existsSync(bin)) return bin;
  const work = mkdtempSync(join(tmpdir(), `wgarray-${name}-`));
  try {
    const git = join(work, 'src.git');
    run('git', ['clone', '-q', '--bare', BUNDLE, git]);
    const built = join(work, `${name}.out`);
    build(work, git, built);
    // moved into the cache folder, then renamed there (atomic): test files in
    // other workers may build it at the same time
    mkdirSync(dir, { recursive: true });
    const staged = `${bin}.${process.pid}`;
    run('mv', [built, staged]);
    renameSync(staged, bin);
    return bin;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
