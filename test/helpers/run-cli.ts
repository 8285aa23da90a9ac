import { runCli, type CliOptions } from '../../src/cli/cli.js';
import { sink } from './text-sink.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `wgarray args` run in-process, its output kept; stderr is not a terminal unless options say so. */
export async function runCliCaptured(args: string[], options: Omit<CliOptions, 'stdout' | 'stderr'> = {}): Promise<CliRun> {
  const stdout = sink();
  const stderr = sink();
  const code = await runCli(args, { ...options, isTTY: options.isTTY ?? false, stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** The same, for a command that must succeed: its stdout, or an error with its stderr. */
export async function runCliOk(args: string[], options: Omit<CliOptions, 'stdout' | 'stderr'> = {}): Promise<string> {
  const r = await runCliCaptured(args, options);
  if (r.code !== 0) throw new Error(`wgarray ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}
