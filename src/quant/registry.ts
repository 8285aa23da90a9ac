// The quantization formats wgarray implements: one descriptor each
// (src/quant/formats/<type>.ts), looked up by ggml type name.

import { ArgumentError } from '../errors.js';
import type { QuantFormat } from './format.js';
import { ggmlType, type GGMLType } from './ggml-types.js';
import { q8_0 } from './formats/q8_0.js';
import { q3_K } from './formats/q3_K.js';
import { q6_K } from './formats/q6_K.js';

export const QUANT_FORMATS: ReadonlyMap<string, QuantFormat> = new Map(
  [
    q8_0,
    q3_K,
    q6_K,
  ].map((f) => [f.type.name, f]),
);

/** Plain float types that quantize() and dequantize() treat as trivial formats (a cast). */
export const PLAIN_FLOAT_TYPES = ['f32', 'f16', 'bf16'] as const;

/** The block format `type` names (case-insensitive), or an error listing those implemented. */
export function quantFormat(type: string | GGMLType): QuantFormat {
  const t = typeof type === 'string' ? ggmlType(type) : type;
  const f = QUANT_FORMATS.get(t.name);
  if (!f) {
    throw new ArgumentError(
      `no quantizer for ggml type ${t.name}; implemented: ${[...PLAIN_FLOAT_TYPES, ...QUANT_FORMATS.keys()].join(', ')}`,
    );
  }
  return f;
}
