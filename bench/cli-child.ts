// The CLI run in a child node process, for the benches that time it whole
// (e2e.ts, vs-llama.ts): its exit code, peak RSS, wall and CPU time.

import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface ChildResult {
  code: number;
  maxRssBytes: number;
  wallMs: number;
  /** The child's own CPU time (user + system, all its threads: lavapipe's included). */
  cpuMs: number;
  stderr: string;
}

/** Runs `wgarray ARGS` in a child node process and returns its exit code, peak RSS, wall and CPU time. */
export function runChild(args: string[], cliPath?: string): Promise<ChildResult> {
  const here = dirname(fileURLToPath(import.meta.url));
  const cli = pathToFileURL(cliPath ?? join(here, '..', 'src', 'cli', 'cli.js')).href;
  const script =
    `const { runCli } = await import(${JSON.stringify(cli)});` +
    `const code = await runCli(JSON.parse(process.argv[1]), { isTTY: false });` +
    // maxRSS is in kilobytes, CPU times in microseconds
    `const u = process.resourceUsage();` +
    `process.stdout.write('\\n@@' + JSON.stringify({ code, maxRSS: u.maxRSS, cpuUs: u.userCPUTime + u.systemCPUTime }) + '\\n');` +
    `process.exit(code);`;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', () => {
      const wallMs = performance.now() - t0;
      const at = out.lastIndexOf('@@');
      if (at < 0) return reject(new Error(`the CLI child died:\n${err.slice(-4000)}`));
      const r = JSON.parse(out.slice(at + 2)) as { code: number; maxRSS: number; cpuUs: number };
      resolve({ code: r.code, maxRssBytes: r.maxRSS * 1024, wallMs, cpuMs: r.cpuUs / 1000, stderr: err });
    });
  });
}
