// WGSL generated from the TypeScript tables, so that a fact has one source:
// shaders include these as virtual files (`//#include gen/<name>.wgsl`,
// resolved by src/kernels/shader.ts).
//   gen/block_geometry.wgsl: QK, BLOCK_BYTES and (when whole) BLOCK_WORDS of the
//     ggml type the including shader is named after (shaders/quant/<type>.wgsl).
//   gen/elementwise_ops.wgsl: the elementwise op codes as OP_<NAME> constants.

import { ggmlType } from '../runtime/ggml-types.js';
import { EW, wgslOpName, type EwOp } from './elementwise-ops.js';

/** The text of virtual file `file` for top-level shader `shader`, or undefined when `file` is not generated. */
export function generatedWgsl(file: string, shader: string): string | undefined {
  if (file === 'gen/block_geometry.wgsl') return blockGeometry(shader);
  if (file === 'gen/elementwise_ops.wgsl') return elementwiseOps();
  return undefined;
}

function blockGeometry(shader: string): string {
  const stem = /(?:^|\/)([^/]+)\.wgsl$/.exec(shader)?.[1];
  if (!stem) throw new Error(`gen/block_geometry.wgsl: cannot name a ggml type after shader ${shader}`);
  const t = ggmlType(stem);
  const lines = [
    `// ${t.name}'s geometry from the ggml type table (src/runtime/ggml-types.ts).`,
    `const QK: u32 = ${t.blockSize}u;`,
    `const BLOCK_BYTES: u32 = ${t.typeSize}u;`,
  ];
  if (t.typeSize % 4 === 0) lines.push(`const BLOCK_WORDS: u32 = ${t.typeSize / 4}u;`);
  return lines.join('\n');
}

function elementwiseOps(): string {
  return (Object.entries(EW) as [EwOp, number][]).map(([op, code]) => `const ${wgslOpName(op)}: u32 = ${code}u;`).join('\n');
}
