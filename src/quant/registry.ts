// The quantization formats wgarray implements: one descriptor each
// (src/quant/formats/<type>.ts), looked up by ggml type name.

import { ArgumentError } from '../errors.js';
import type { QuantFormat } from './format.js';
import { ggmlType, type GGMLType } from '../runtime/ggml-types.js';
import { q8_0 } from './formats/q8_0.js';
import { q2_K } from './formats/q2_K.js';
import { q4_K } from './formats/q4_K.js';
import { q5_K } from './formats/q5_K.js';
import { q3_K } from './formats/q3_K.js';
import { q6_K } from './formats/q6_K.js';
import { q4_0 } from './formats/q4_0.js';
import { q4_1 } from './formats/q4_1.js';
import { q5_0 } from './formats/q5_0.js';
import { q5_1 } from './formats/q5_1.js';
import { iq4_nl } from './formats/iq4_nl.js';
import { iq4_xs } from './formats/iq4_xs.js';
import { mxfp4 } from './formats/mxfp4.js';
import { tq1_0 } from './formats/tq1_0.js';
import { tq2_0 } from './formats/tq2_0.js';
import { iq3_xxs } from './formats/iq3_xxs.js';
import { iq3_s } from './formats/iq3_s.js';
import { iq2_xxs } from './formats/iq2_xxs.js';
import { iq2_xs } from './formats/iq2_xs.js';
import { iq2_s } from './formats/iq2_s.js';
import { iq1_s } from './formats/iq1_s.js';
import { iq1_m } from './formats/iq1_m.js';

export const QUANT_FORMATS: ReadonlyMap<string, QuantFormat> = new Map(
  [
    q8_0,
    q2_K,
    q4_K,
    q5_K,
    q3_K,
    q6_K,
    q4_0,
    q4_1,
    q5_0,
    q5_1,
    iq4_nl,
    iq4_xs,
    mxfp4,
    tq1_0,
    tq2_0,
    iq3_xxs,
    iq3_s,
    iq2_xxs,
    iq2_xs,
    iq2_s,
    iq1_s,
    iq1_m,
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
