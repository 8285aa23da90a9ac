#!/usr/bin/env node
// The `wgarray` executable. Ctrl-C aborts the work in progress: the output is
// written to a temporary file that is removed, so nothing partial is left; a
// second Ctrl-C exits at once.

import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, EXIT } from './cli.js';

if (process.platform === 'linux' && !process.env.XDG_RUNTIME_DIR) {
  // Vulkan's loader (under Dawn) warns without a runtime folder
  const dir = join(tmpdir(), `wgarray-xdg-${process.getuid?.() ?? 0}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  } catch {
    // only a warning is at stake
  }
}

const controller = new AbortController();

// `wgarray inspect model.gguf | head`: a closed pipe ends the output, not in a stack trace.
// Once a signal is stopping the work (a closed terminal sends SIGHUP, then writes fail
// with EIO), output errors are ignored so that the abort can remove the temporary file.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (controller.signal.aborted) return;
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

// SIGINT (Ctrl-C), SIGTERM (kill, timeout, docker stop) and SIGHUP (a closed terminal)
// all abort the work: the temporary file is removed and the exit code is 128 + n.
// A second signal exits at once (the exit hook in io/atomic.ts still removes it).
const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
let interrupts = 0;
let signalExit: number = EXIT.INTERRUPTED;
for (const [name, n] of Object.entries(SIGNALS) as [keyof typeof SIGNALS, number][]) {
  process.on(name, () => {
    interrupts++;
    if (interrupts > 1) process.exit(128 + n);
    signalExit = 128 + n;
    const why = name === 'SIGINT' ? 'interrupted (Ctrl-C)' : `${name} received`;
    if (name !== 'SIGHUP') process.stderr.write(`\nwgarray: stopping: ${why}${name === 'SIGINT' ? ' (Ctrl-C again to quit at once)' : ''}\n`);
    controller.abort(new Error(why));
  });
}

const result = await runCli(process.argv.slice(2), { signal: controller.signal });
const code = result === EXIT.INTERRUPTED ? signalExit : result;
process.exitCode = code;
// Dawn's threads can keep the event loop alive after the device is closed.
setTimeout(() => process.exit(code), 200).unref();
