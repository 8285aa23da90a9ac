// LoRA fusion on the GPU: W' = W + scale * (the adapter's low-rank product),
// per targeted module, as one addmm per tensor (float32 accumulation, rounded
// once to W's dtype). Works on Hugging Face tensor names
// ('model.layers.0.self_attn.q_proj.weight').
//
//   const adapter = await loadLoraAdapter('my-adapter/');
//   adapter.check(baseShapes);                       // every error before any work
//   const fused = await adapter.fuse(name, weight);  // a new array; weight is kept
//
// or, for a dictionary of base tensors, fuseLora(base, 'my-adapter/').

import { ArgumentError, DTypeError, FormatError, ShapeError } from '../errors.js';
import { loadSafetensors, type SafetensorsFile, type SafetensorsTensorInfo } from '../io/safetensors/reader.js';
import { formatShape, WgArray, type Shape } from '../runtime/array.js';
import { fromBytes } from '../ops/creation.js';
import { addmm, matrixTranspose } from '../ops/linalg.js';
import {
  locateAdapter,
  mlxKey,
  peftKey,
  PRODUCTS,
  scaleRule,
  type Factor,
  type KeyMeaning,
  type LayerKind,
  type LoraFormat,
} from './config.js';

export type { LoraFormat, LayerKind } from './config.js';

export interface LoraOptions {
  /** 'peft' or 'mlx'; default: told from adapter_config.json. */
  format?: LoraFormat;
  /** Multiplies every module's scale (default 1), as llama.cpp's --lora-scaled. */
  strength?: number;
  /** Replaces the scale the config implies, for every module (before `strength`). */
  scale?: number;
}

/** One targeted module: its two factors and the scale its delta is added with. */
export interface LoraModule {
  /** Module path, 'model.layers.0.self_attn.q_proj'. */
  module: string;
  /** The base tensor it changes, 'model.layers.0.self_attn.q_proj.weight'. */
  target: string;
  layer: LayerKind;
  rank: number;
  /** The factor on the product (config scale, times options.strength). */
  scale: number;
  a: SafetensorsTensorInfo;
  b: SafetensorsTensorInfo;
}

const FLOATS = new Set(['float32', 'float16', 'bfloat16']);

function productShape(format: LoraFormat, layer: LayerKind, a: Shape, b: Shape): number[] {
  const [left, right] = PRODUCTS[format][layer];
  const dims = (f: Factor) => {
    const s = [...(f.tensor === 'a' ? a : b)];
    if (f.transpose) [s[s.length - 2], s[s.length - 1]] = [s[s.length - 1], s[s.length - 2]];
    return s;
  };
  const l = dims(left);
  const r = dims(right);
  return [...l.slice(0, -1), r[r.length - 1]];
}

/** The rank dimension of each factor, to check that they agree. */
function rankOf(format: LoraFormat, which: 'a' | 'b', layer: LayerKind, shape: Shape): number {
  const n = shape.length;
  if (format === 'peft') return which === 'a' ? shape[n - 2] : shape[n - 1];
  if (layer === 'experts') return which === 'a' ? shape[n - 2] : shape[n - 1];
  return which === 'a' ? shape[n - 1] : shape[n - 2];
}

/** Heuristic for MLX-LM's square embedding-or-linear ambiguity: embeddings are named so. */
const looksLikeEmbedding = (module: string) => /(^|\.)(embed[a-z_]*|wte|tok_embeddings|word_embeddings|embeddings)$/.test(module);

export class LoraAdapter {
  readonly format: LoraFormat;
  readonly dir: string;
  readonly configFile: string;
  readonly weightsFile: string;
  readonly config: Readonly<Record<string, unknown>>;
  /** Targeted modules by the base tensor they change. */
  modules: ReadonlyMap<string, LoraModule>;
  /** Whole tensors the adapter replaces (PEFT modules_to_save, MLX-LM full fine-tunes), by base tensor name. */
  replacements: ReadonlyMap<string, SafetensorsTensorInfo>;
  /** Conventions applied that a reader should know about (rsLoRA, mlx-lm's older alpha, a renamed prefix). */
  readonly notes: string[];
  readonly #file: SafetensorsFile;

  private constructor(init: {
    format: LoraFormat;
    dir: string;
    configFile: string;
    weightsFile: string;
    config: Record<string, unknown>;
    modules: Map<string, LoraModule>;
    replacements: Map<string, SafetensorsTensorInfo>;
    notes: string[];
    file: SafetensorsFile;
  }) {
    this.format = init.format;
    this.dir = init.dir;
    this.configFile = init.configFile;
    this.weightsFile = init.weightsFile;
    this.config = init.config;
    this.modules = init.modules;
    this.replacements = init.replacements;
    this.notes = init.notes;
    this.#file = init.file;
  }

  /** Reads an adapter folder's config and tensor headers (no tensor data) and checks them. */
  static async load(dir: string, options: LoraOptions = {}): Promise<LoraAdapter> {
    const files = await locateAdapter(dir, options.format);
    const rule = scaleRule(files);
    const strength = options.strength ?? 1;
    if (!Number.isFinite(strength)) throw new ArgumentError(`LoRA strength must be a finite number, not ${strength}`);
    if (options.scale !== undefined && !Number.isFinite(options.scale)) throw new ArgumentError(`LoRA scale must be a finite number, not ${options.scale}`);
    const file = await loadSafetensors(files.weightsFile);
    const where = files.weightsFile;

    const factors = new Map<string, { a?: SafetensorsTensorInfo; b?: SafetensorsTensorInfo; embedding: boolean }>();
    const replacements = new Map<string, SafetensorsTensorInfo>();
    for (const t of file.tensorInfos) {
      const meaning: KeyMeaning = files.format === 'peft' ? peftKey(t.name) : mlxKey(t.name, rule.full);
      if (meaning.kind === 'unsupported') {
        throw new FormatError(where, t.fileOffset, `tensor '${t.name}' is ${meaning.why}, which cannot be fused (only plain LoRA factors and whole tensors can)`);
      }
      if (!FLOATS.has(t.dtype)) {
        throw new DTypeError(`${where}: tensor '${t.name}' is ${t.dtype}; LoRA tensors must be float32, float16 or bfloat16`);
      }
      if (meaning.kind === 'replacement') {
        replacements.set(meaning.target, t);
        continue;
      }
      let entry = factors.get(meaning.module);
      if (!entry) factors.set(meaning.module, (entry = { embedding: meaning.embedding }));
      entry[meaning.which] = t;
    }

    const modules = new Map<string, LoraModule>();
    for (const [module, { a, b, embedding }] of factors) {
      if (!a || !b) {
        const have = (a ?? b)!;
        throw new FormatError(where, have.fileOffset, `module '${module}' has '${have.name}' but not its ${a ? 'B' : 'A'} factor`);
      }
      const nd = a.shape.length;
      const layer: LayerKind =
        nd === 3 && b.shape.length === 3
          ? 'experts'
          : embedding
            ? 'embedding'
            : rule.fanInFanOut
              ? 'linear-fan-in-fan-out'
              : files.format === 'mlx' && looksLikeEmbedding(module)
                ? 'embedding'
                : 'linear';
      if (a.shape.length !== b.shape.length || (nd !== 2 && layer !== 'experts')) {
        throw new FormatError(
          where,
          a.fileOffset,
          `module '${module}': factors '${a.name}' ${formatShape(a.shape)} and '${b.name}' ${formatShape(b.shape)} are not ` +
            `LoRA matrices (2-D, or 3-D for stacked experts); convolution LoRA cannot be fused`,
        );
      }
      const ra = rankOf(files.format, 'a', layer, a.shape);
      const rb = rankOf(files.format, 'b', layer, b.shape);
      if (ra !== rb || (layer === 'experts' && a.shape[0] !== b.shape[0])) {
        throw new FormatError(
          where,
          a.fileOffset,
          `module '${module}': the factors' ranks differ: '${a.name}' ${formatShape(a.shape)} has rank ${ra}, '${b.name}' ${formatShape(b.shape)} has rank ${rb}`,
        );
      }
      const configRank = rule.rank(module);
      if (configRank !== undefined && configRank !== ra) {
        throw new FormatError(
          files.configFile,
          undefined,
          `module '${module}': the config gives rank ${configRank}, but its factors have rank ${ra} ('${a.name}' ${formatShape(a.shape)})`,
        );
      }
      const scale = (options.scale ?? rule.scale(module, ra)) * strength;
      const target = `${module}.weight`;
      if (replacements.has(target)) {
        throw new FormatError(where, undefined, `tensor '${target}' is both replaced whole and changed by LoRA factors of '${module}'`);
      }
      modules.set(target, { module, target, layer, rank: ra, scale, a, b });
    }
    if (modules.size === 0 && replacements.size === 0) {
      throw new FormatError(where, undefined, 'the adapter holds no tensors');
    }
    return new LoraAdapter({
      format: files.format,
      dir,
      configFile: files.configFile,
      weightsFile: files.weightsFile,
      config: files.config,
      modules,
      replacements,
      notes: rule.notes,
      file,
    });
  }

  /** Base tensor names the adapter changes, sorted. */
  targets(): string[] {
    return [...this.modules.keys(), ...this.replacements.keys()].sort();
  }

  /** Whether the adapter changes base tensor `name`. */
  touches(name: string): boolean {
    return this.modules.has(name) || this.replacements.has(name);
  }

  /** The shape module `m`'s product has for a base tensor of shape `base` (resolving MLX-LM's square ambiguity). */
  #layerFor(m: LoraModule, base: Shape): LayerKind {
    if (this.format !== 'mlx' || (m.layer !== 'linear' && m.layer !== 'embedding')) return m.layer;
    const same = (s: Shape) => s.length === base.length && s.every((d, i) => d === base[i]);
    if (same(productShape('mlx', m.layer, m.a.shape, m.b.shape))) return m.layer;
    const other: LayerKind = m.layer === 'linear' ? 'embedding' : 'linear';
    return same(productShape('mlx', other, m.a.shape, m.b.shape)) ? other : m.layer;
  }

  /**
   * Checks the adapter against the base model's tensor shapes: every module
   * and whole tensor it names must exist there, with the shape its product
   * has. Throws (naming the module, both shapes and the adapter file) before
   * any work is done.
   */
  check(base: ReadonlyMap<string, Shape> | Record<string, Shape> | Iterable<readonly [string, Shape]>, baseLabel = 'the base model'): void {
    const shapes = toMap(base);
    this.#matchPrefix(shapes);
    const missing = (what: string, target: string): never => {
      const tail = target.split('.').slice(-3).join('.');
      const near = [...shapes.keys()].filter((n) => n.endsWith(tail)).slice(0, 3);
      throw new ArgumentError(
        `LoRA adapter ${this.weightsFile}: ${what} targets '${target}', which ${baseLabel} does not have` +
          (near.length ? ` (it has ${near.map((n) => `'${n}'`).join(', ')}: an adapter for a differently named model?)` : ''),
      );
    };
    for (const m of this.modules.values()) {
      const shape = shapes.get(m.target);
      if (!shape) missing(`module '${m.module}'`, m.target);
      this.#checkShape(m.target, shape!, baseLabel);
    }
    for (const [target, t] of this.replacements) {
      const shape = shapes.get(target);
      if (!shape) missing(`whole tensor '${t.name}'`, target);
      this.#checkShape(target, shape!, baseLabel);
    }
  }

  /**
   * An adapter trained on the bare transformer (LlamaModel) names
   * 'layers.0.self_attn.q_proj' where the checkpoint (LlamaForCausalLM) has
   * 'model.layers.0...', and the other way round: when none of the adapter's
   * targets exist as named but all do with 'model.' added or removed, the
   * adapter is renamed to the base's names (and says so in `notes`).
   */
  #matchPrefix(shapes: ReadonlyMap<string, Shape>): void {
    const targets = this.targets();
    if (targets.length === 0 || targets.some((t) => shapes.has(t))) return;
    const renames: [string, (t: string) => string][] = [
      ["added 'model.'", (t) => `model.${t}`],
      ["removed 'model.'", (t) => (t.startsWith('model.') ? t.slice(6) : t)],
    ];
    for (const [what, rename] of renames) {
      if (!targets.every((t) => rename(t) !== t && shapes.has(rename(t)))) continue;
      this.modules = new Map(
        [...this.modules.values()].map((m) => {
          const target = rename(m.target);
          return [target, { ...m, target, module: target.slice(0, -'.weight'.length) }] as const;
        }),
      );
      this.replacements = new Map([...this.replacements].map(([t, info]) => [rename(t), info] as const));
      this.notes.push(`module names ${what} to match the base model`);
      return;
    }
  }

  /** Throws unless what the adapter makes for `target` has the base tensor's `shape`. */
  #checkShape(target: string, shape: Shape, baseLabel: string): void {
    const m = this.modules.get(target);
    if (m) {
      const layer = this.#layerFor(m, shape);
      const want = productShape(this.format, layer, m.a.shape, m.b.shape);
      if (want.length !== shape.length || want.some((d, i) => d !== shape[i])) {
        throw new ShapeError(
          `LoRA adapter ${this.weightsFile}: module '${m.module}' gives a delta of shape ${formatShape(want)} ` +
            `('${m.a.name}' ${formatShape(m.a.shape)}, '${m.b.name}' ${formatShape(m.b.shape)}), ` +
            `but ${baseLabel}'s '${m.target}' has shape ${formatShape(shape)}`,
        );
      }
      return;
    }
    const t = this.replacements.get(target)!;
    if (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i])) {
      throw new ShapeError(
        `LoRA adapter ${this.weightsFile}: whole tensor '${t.name}' has shape ${formatShape(t.shape)}, ` +
          `but ${baseLabel}'s '${target}' has shape ${formatShape(shape)}`,
      );
    }
  }

  async #upload(t: SafetensorsTensorInfo, like: WgArray): Promise<WgArray> {
    const bytes = await this.#file.readTensorBytes(t.name);
    return fromBytes(bytes, t.shape, t.dtype, like.device, t.name);
  }

  /**
   * The base tensor `name` with the adapter applied: W + scale * product for a
   * targeted module (computed on W's device in float32, rounded once to W's
   * dtype, or to `options.dtype`), or the adapter's whole tensor in that
   * dtype. Returns a new array; `weight` is left as it was. Throws if the
   * adapter does not touch `name`.
   */
  async fuse(name: string, weight: WgArray, options: { dtype?: 'float32' | 'float16' | 'bfloat16' } = {}): Promise<WgArray> {
    const replacement = this.replacements.get(name);
    const m = this.modules.get(name);
    if (!m && !replacement) throw new ArgumentError(`LoRA adapter ${this.weightsFile} does not change '${name}'`);
    this.#checkShape(name, weight.shape, `the given ${weight.describe()}`);
    if (!FLOATS.has(weight.dtype)) {
      throw new DTypeError(`LoRA fusion of '${name}': ${weight.describe()} must be float32, float16 or bfloat16 (dequantize it first)`);
    }
    const dtype = options.dtype ?? (weight.dtype as 'float32' | 'float16' | 'bfloat16');
    if (replacement) {
      const whole = await this.#upload(replacement, weight);
      if (whole.dtype === dtype) return whole;
      try {
        return whole.astype(dtype);
      } finally {
        whole.dispose();
      }
    }
    const layer = this.#layerFor(m!, weight.shape);
    const [left, right] = PRODUCTS[this.format][layer];
    const a = await this.#upload(m!.a, weight);
    let b: WgArray | undefined;
    const views: WgArray[] = [];
    try {
      b = await this.#upload(m!.b, weight);
      const operand = (f: Factor): WgArray => {
        const x = f.tensor === 'a' ? a : b!;
        if (!f.transpose) return x;
        const v = matrixTranspose(x);
        views.push(v);
        return v;
      };
      const out = addmm(weight, operand(left), operand(right), {
        alpha: m!.scale,
        beta: 1,
        dtype,
        name: weight.name ?? name,
      });
      return out;
    } finally {
      a.dispose();
      b?.dispose();
      for (const v of views) v.dispose();
    }
  }
}

function toMap(base: ReadonlyMap<string, Shape> | Record<string, Shape> | Iterable<readonly [string, Shape]>): Map<string, Shape> {
  if (base instanceof Map) return base as Map<string, Shape>;
  if (Symbol.iterator in (base as object)) return new Map(base as Iterable<readonly [string, Shape]>);
  return new Map(Object.entries(base as Record<string, Shape>));
}

/** Reads a PEFT or MLX-LM adapter folder (config and tensor headers; data is read when fused). */
export function loadLoraAdapter(dir: string, options: LoraOptions = {}): Promise<LoraAdapter> {
  return LoraAdapter.load(dir, options);
}

/**
 * Applies an adapter to a dictionary of base tensors (Hugging Face names):
 * checks every module and shape first, then returns a Map with a new fused
 * array for each tensor the adapter changes and the base's own array for each
 * it does not (so dispose only the new ones, or the base and then those).
 */
export async function fuseLora(
  base: ReadonlyMap<string, WgArray> | Record<string, WgArray>,
  adapter: LoraAdapter | string,
  options: LoraOptions = {},
): Promise<Map<string, WgArray>> {
  const entries: [string, WgArray][] = base instanceof Map ? [...base.entries()] : Object.entries(base);
  const lora = typeof adapter === 'string' ? await LoraAdapter.load(adapter, options) : adapter;
  lora.check(entries.map(([n, w]) => [n, w.shape] as const));
  const out = new Map<string, WgArray>();
  try {
    for (const [name, w] of entries) out.set(name, lora.touches(name) ? await lora.fuse(name, w) : w);
  } catch (e) {
    for (const [name, w] of out) if (w !== (base instanceof Map ? base.get(name) : (base as Record<string, WgArray>)[name])) w.dispose();
    throw e;
  }
  return out;
}
