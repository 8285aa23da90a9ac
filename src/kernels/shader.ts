// Loads WGSL from shaders/ and builds compute pipelines, cached per device.
//
// WGSL has no preprocessor; shaders share code through one directive,
// a comment line `//#include lib/name.wgsl`, replaced by that file once.
// `lib/half.wgsl` is virtual: it resolves to lib/half_native.wgsl on devices
// with shader-f16 and to lib/half_soft.wgsl elsewhere; `gen/*.wgsl` files are
// generated from the TypeScript tables (src/kernels/wgsl-gen.ts), except
// `gen/dequantized_read.wgsl`, which depends on the rest of the shader (below). `enable` directives are
// hoisted to the top, where WGSL requires them. Numeric specialisation uses
// WGSL `override` constants, passed as `constants`.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Device } from '../runtime/device.js';
import { generatedWgsl } from './wgsl-gen.js';

function findShaderDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'shaders');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new Error('wgarray: cannot find the shaders/ folder above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

export const SHADER_DIR = findShaderDir();

const fileCache = new Map<string, string>();
function readShaderFile(name: string): string {
  let text = fileCache.get(name);
  if (text === undefined) {
    text = readFileSync(join(SHADER_DIR, name), 'utf8');
    fileCache.set(name, text);
  }
  return text;
}

const INCLUDE = /^\s*\/\/#include\s+(\S+)\s*$/;
const DEQUANTIZED_READ = 'gen/dequantized_read.wgsl';
const DEQUANTIZED_READ_MARK = '// @@gen/dequantized_read.wgsl@@';

/**
 * gen/dequantized_read.wgsl: `dequantized4(j)`, the float32 scratch's vector j as the
 * format's dequantize_part wrote it, through the variable it writes: `out4`
 * (array<vec4<f32>>, lib/legacy_quant.wgsl) where the shader assigns to it, else
 * `out` (lib/dequantize_io.wgsl). WGSL forbids one entry point two variables on
 * one binding, so quant_entry.wgsl's quant_error must read the one the format writes.
 */
function dequantizedRead(body: string): string {
  if (/\bout4\s*\[[^\]]*\]\s*=(?!=)/.test(body)) return 'fn dequantized4(j: u32) -> vec4<f32> { return out4[j]; }';
  return 'fn dequantized4(j: u32) -> vec4<f32> {\n  let i = 4u * j;\n  return vec4<f32>(out[i], out[i + 1u], out[i + 2u], out[i + 3u]);\n}';
}
const ENABLE = /^\s*enable\s+[\w\s,]+;\s*$/;

/** The full WGSL of shaders/`name` for `device`, includes resolved. */
export function shaderSource(name: string, f16: boolean): string {
  const seen = new Set<string>();
  const enables = new Set<string>();
  const expand = (file: string): string => {
    const resolved = file === 'lib/half.wgsl' ? (f16 ? 'lib/half_native.wgsl' : 'lib/half_soft.wgsl') : file;
    if (seen.has(resolved)) return '';
    seen.add(resolved);
    if (resolved === DEQUANTIZED_READ) return DEQUANTIZED_READ_MARK;
    const out: string[] = [];
    const text = resolved.startsWith('gen/') ? generatedWgsl(resolved, name) : readShaderFile(resolved);
    if (text === undefined) throw new Error(`wgarray: shaders/${name} includes ${resolved}, which is not generated`);
    for (const line of text.split('\n')) {
      const inc = INCLUDE.exec(line);
      if (inc) out.push(expand(inc[1]));
      else if (ENABLE.test(line)) enables.add(line.trim());
      else out.push(line);
    }
    return out.join('\n');
  };
  let body = expand(name);
  if (seen.has(DEQUANTIZED_READ)) body = body.replace(DEQUANTIZED_READ_MARK, dequantizedRead(body));
  return [...enables, body].join('\n');
}

export type Constants = Record<string, number>;

const pipelines = new WeakMap<Device, Map<string, GPUComputePipeline>>();

/**
 * The compute pipeline for entry point `entry` of shaders/`name` with the
 * given override constants, built once per device. Building is synchronous
 * so ops can be; a shader that fails to compile is reported by the device as
 * a GPU error on the next call (shaderErrors() reports it directly).
 */
export function pipeline(device: Device, name: string, constants: Constants = {}, entry = 'main'): GPUComputePipeline {
  device.check();
  let cache = pipelines.get(device);
  if (!cache) pipelines.set(device, (cache = new Map()));
  const key = `${name}:${entry}:${JSON.stringify(constants)}`;
  let p = cache.get(key);
  if (!p) {
    const module = device.gpuDevice.createShaderModule({ code: shaderSource(name, device.features.shaderF16), label: name });
    p = device.gpuDevice.createComputePipeline({
      layout: 'auto',
      label: `${name}:${entry}`,
      compute: { module, entryPoint: entry, constants },
    });
    cache.set(key, p);
  }
  return p;
}

/** Compiles shaders/`name` and returns its error messages (empty when it compiles). */
export async function shaderErrors(device: Device, name: string): Promise<string[]> {
  const module = device.gpuDevice.createShaderModule({ code: shaderSource(name, device.features.shaderF16), label: name });
  const info = await module.getCompilationInfo();
  return info.messages.filter((m) => m.type === 'error').map((m) => `${name}:${m.lineNum}:${m.linePos}: ${m.message}`);
}

/** A bind group of whole or windowed buffers, bound at 0, 1, 2, ... in order. */
export function bindGroup(
  device: Device,
  pipe: GPUComputePipeline,
  entries: (GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number } | undefined)[],
  group = 0,
): GPUBindGroup {
  return device.gpuDevice.createBindGroup({
    layout: pipe.getBindGroupLayout(group),
    // an undefined entry: a binding number the shader does not declare (skipped)
    entries: entries.flatMap((e, binding) => (e ? [{ binding, resource: 'buffer' in e ? e : { buffer: e } }] : [])),
  });
}
