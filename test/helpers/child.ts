// Runs a Node script in a child process against the built package (dist/),
// for what must happen in a process of its own: a missing GPU driver, process
// exit after close(), a crash or kill mid-write. `npm test` builds dist first.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DIST_INDEX = pathToFileURL(join(REPO, 'dist/src/index.js')).href;

export interface ChildResult {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the child had to be killed at the time limit. */
  timedOut: boolean;
  ms: number;
}

/**
 * Runs `source` (an ES module; `WG` is imported from the built package) with
 * extra environment variables; kills it after `timeoutMs`, or (SIGKILL, as a
 * crash would) as soon as its stdout matches `killWhen`.
 */
export function runChild(
  source: string,
  env: Record<string, string | undefined> = {},
  timeoutMs = 30_000,
  killWhen?: RegExp,
): Promise<ChildResult> {
  const dir = mkdtempSync(join(tmpdir(), 'wgarray-child-'));
  const file = join(dir, 'child.mjs');
  writeFileSync(file, `import * as WG from ${JSON.stringify(DIST_INDEX)};\n${source}\n`);
  const t0 = performance.now();
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      if (killWhen?.test(stdout)) child.kill('SIGKILL');
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ pid: child.pid!, code, signal, stdout, stderr, timedOut, ms: performance.now() - t0 });
    });
  });
}
