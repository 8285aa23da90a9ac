// Every WGSL file under shaders/ (not lib/, which kernels include) compiles,
// with its includes resolved, on devices with and without shader-f16. A broken
// shader fails here with the compiler's message and line, instead of as a
// device error in whatever test first dispatches it.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Device } from '../src/index.js';
import { SHADER_DIR, shaderErrors } from '../src/kernels/shader.js';

function wgslFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'lib' ? [] : wgslFiles(path);
    return name.endsWith('.wgsl') ? [relative(SHADER_DIR, path)] : [];
  });
}

const files = wgslFiles(SHADER_DIR).sort();
const devices: { name: string; f16: boolean; device?: Device }[] = [
  { name: 'shader-f16', f16: true },
  { name: 'integer f16', f16: false },
];

beforeAll(async () => {
  for (const d of devices) d.device = await Device.open({ shaderF16: d.f16 });
});
afterAll(() => {
  for (const d of devices) d.device?.close();
});

test('the shader folder holds the kernels', () => {
  expect(files).toContain('cast.wgsl');
  expect(files).toContain('quant/q4_K.wgsl');
});

describe.each(devices)('$name', (d) => {
  test.each(files)('%s compiles', async (file) => {
    expect(await shaderErrors(d.device!, file)).toEqual([]);
  });
});
