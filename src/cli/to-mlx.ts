// `wgarray convert model.gguf --to mlx -o DIR [--q-bits 4 --q-group-size 64]`: a GGUF
// as an MLX-LM folder (src/convert/mlx/write.ts), with a per-tensor table: mapped exactly,
// requantized with MLX's affine rule (and the RMSE against the GGUF's values), or
// copied as floats.

import { basename, resolve } from 'node:path';
import { ArgumentError } from '../errors.js';
import { checkToMlxArgs, writeMlxFromGGUF, type MlxWriteResult } from '../convert/mlx/write.js';
import { openBackend } from './backend.js';
import type { CommandIO } from './commands.js';

export interface ToMlxArgs {
  input: string;
  output?: string;
  'q-bits'?: string;
  'q-group-size'?: string;
  quiet?: boolean;
  cpu?: boolean;
}

function int(v: string | undefined, flag: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new ArgumentError(`${flag} ${v}: expected an integer`);
  return n;
}

export async function toMlxCommand(a: ToMlxArgs, io: CommandIO): Promise<MlxWriteResult> {
  const bits = int(a['q-bits'], '--q-bits', 4);
  const groupSize = int(a['q-group-size'], '--q-group-size', 64);
  checkToMlxArgs(bits, groupSize);
  const output = a.output ?? `${basename(resolve(a.input)).replace(/\.gguf$/i, '')}-mlx`;
  const backend = await openBackend({ cpu: a.cpu, stderr: io.stderr, device: io.device });
  try {
    const started = performance.now();
    const res = await writeMlxFromGGUF(a.input, output, { bits, groupSize, device: backend.device, signal: io.signal });
    if (!a.quiet) {
      const w = Math.max(...res.tensors.map((t) => t.name.length), 6);
      io.stdout.write(`${'tensor'.padEnd(w)}  ${'from'.padEnd(6)}  mlx\n`);
      for (const t of res.tensors) {
        const how = t.how === 'float' ? 'float (copied)' : `${t.bits}-bit g${t.groupSize} ${t.how === 'exact' ? 'exact' : `requantized, RMSE ${t.rmse?.toExponential(3)}`}`;
        io.stdout.write(`${t.name.padEnd(w)}  ${t.from.padEnd(6)}  ${how}\n`);
      }
    }
    const exact = res.tensors.filter((t) => t.how === 'exact').length;
    const req = res.tensors.filter((t) => t.how === 'requantized').length;
    io.stdout.write(
      `wrote ${res.dir} (${res.files.length} files) on ${backend.label}: ${exact} tensors mapped exactly, ${req} requantized (affine ${bits}-bit g${groupSize}), ` +
        `${res.tensors.length - exact - req} copied, in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
    );
    return res;
  } finally {
    await backend.close();
  }
}
