import { mkdirSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// Dawn (through Vulkan's loader) wants a writable XDG_RUNTIME_DIR.
const runtimeDir = process.env.XDG_RUNTIME_DIR ?? join(tmpdir(), 'wgarray-xdg');
mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'tmp/**/*.test.ts'],
    // dawn.node is a native addon: one process per test file, not worker threads.
    pool: 'forks',
    // A test file's process mostly keeps one core busy (LLVM compiling a shader,
    // a ctypes oracle, a child process): vitest's default of cores - 1 workers
    // left one of a 2-core machine's cores idle.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // --expose-gc lets a test check the FinalizationRegistry net deterministically.
    execArgv: ['--expose-gc'],
    env: { XDG_RUNTIME_DIR: runtimeDir },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
