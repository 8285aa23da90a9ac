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

// `wgarray inspect model.gguf | head`: a closed pipe ends the output, not in a stack trace
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

const controller = new AbortController();
let interrupts = 0;
process.on('SIGINT', () => {
  interrupts++;
  if (interrupts > 1) process.exit(EXIT.INTERRUPTED);
  process.stderr.write('\nwgarray: stopping (Ctrl-C again to quit at once)\n');
  controller.abort(new Error('interrupted (Ctrl-C)'));
});

const code = await runCli(process.argv.slice(2), { signal: controller.signal });
process.exitCode = code;
// Dawn's threads can keep the event loop alive after the device is closed.
setTimeout(() => process.exit(code), 200).unref();
