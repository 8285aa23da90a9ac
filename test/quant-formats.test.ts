// The format descriptors (src/quant/registry.ts) are consistent: each names a
// shader that exists, takes its geometry from the ggml type table, and has a
// dispatch geometry the shared entry points (shaders/lib/quant_entry.wgsl)
// can run: whole 32-bit words per quantize invocation (no two invocations
// write one word), whole blocks per dequantize workgroup.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ggmlType, QUANT_FORMATS } from '../src/index.js';
import { dequantizeBlocksPerWorkgroup, quantizeBlocksPerWorkgroup } from '../src/quant/format.js';
import { SHADER_DIR } from '../src/kernels/shader.js';

describe.each([...QUANT_FORMATS.values()].map((f) => [f.type.name, f] as const))('%s', (name, f) => {
  test('geometry from the ggml type table, shader shaders/quant/<type>.wgsl', () => {
    expect(f.type).toBe(ggmlType(name));
    expect(f.shader).toBe(`quant/${name}.wgsl`);
    expect(existsSync(join(SHADER_DIR, f.shader))).toBe(true);
  });

  test('a dispatch geometry the shared entry points can run', () => {
    const { workgroupSize: qws, blocksPerInvocation } = f.quantize;
    const { workgroupSize: dws, invocationsPerBlock } = f.dequantize;
    for (const x of [qws, blocksPerInvocation, dws, invocationsPerBlock]) expect(Number.isInteger(x) && x > 0).toBe(true);
    expect((blocksPerInvocation * f.type.typeSize) % 4).toBe(0);
    expect(dws % invocationsPerBlock).toBe(0);
    // WebGPU's guaranteed maxComputeInvocationsPerWorkgroup
    expect(Math.max(qws, dws)).toBeLessThanOrEqual(256);
    expect(quantizeBlocksPerWorkgroup(f)).toBe(qws * blocksPerInvocation);
    expect(dequantizeBlocksPerWorkgroup(f)).toBe(dws / invocationsPerBlock);
  });

  test('a non-finite rule and an imatrix use', () => {
    expect(['marked', 'as-ggml']).toContain(f.nonFinite);
    expect(['ignored', 'optional', 'required']).toContain(f.imatrix);
  });
});
